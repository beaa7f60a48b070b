"""3-D: the shapes3d renderer and voxeliser against their SDFs, volume rendering
against the analytic transmittance, PointNet's permutation invariance, every
3-D config, and one real training run per 3-D task on the 8-device mesh."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import config as config_lib, data
from vision_jax.data import shapes3d
from vision_jax.models import three_d as models3d
from vision_jax.tasks import three_d

from helpers import config_path, tiny_config


def test_volume_rendering_equals_the_analytic_transmittance():
    near, far, sigma = 2.0, 6.0, 0.7
    # A step density: empty until t0 (not on an edge), then s; read at the
    # midpoints of fine intervals.
    t0, s, n = 3.3, 1.5, 4000
    color3 = jnp.array([0.2, 0.5, 0.9])

    @jax.jit
    def render():  # one compile for every case
        edges = jnp.linspace(near, far, 65)
        constant = three_d.volume_render(jnp.full((64,), sigma),
                                         jnp.broadcast_to(color3, (64, 3)), edges,
                                         background=1.0)
        fine = jnp.linspace(near, far, n + 1)
        mids = 0.5 * (fine[1:] + fine[:-1])
        step = three_d.volume_render(jnp.where(mids > t0, s, 0.0), jnp.ones((n, 3)), fine)
        bins = jnp.linspace(near, far, 9)
        samples = three_d.sample_pdf(bins, jnp.zeros(8).at[5].set(1.0),
                                     jnp.linspace(0, 0.999, 50))
        return edges, constant, fine, mids, step, bins, samples

    edges, (color, weights, trans), fine, mids, step, bins, samples = jax.device_get(render())
    # Constant density: T(t) = exp(-sigma (t - near)), opacity 1 - exp(-sigma (far - near)).
    np.testing.assert_allclose(trans, np.exp(-sigma * (edges - near)), rtol=1e-5)
    opacity = 1 - math.exp(-sigma * (far - near))
    np.testing.assert_allclose(weights.sum(), opacity, rtol=1e-6)
    np.testing.assert_allclose(color, np.asarray(color3) * opacity + (1 - opacity), rtol=1e-5)
    # The step: opacity 1 - exp(-s (far - t0)) up to the one straddling interval.
    _, weights, trans = step
    np.testing.assert_allclose(weights.sum(), 1 - math.exp(-s * (far - t0)), atol=1e-3)
    assert np.abs(trans - np.exp(-s * np.clip(fine - t0, 0, None))).max() < 2e-3
    # Its expected termination depth: t0 + 1/s, less the mass cut off at far.
    depth = (weights * mids).sum() / weights.sum()
    tail = (far - t0) * math.exp(-s * (far - t0)) / (1 - math.exp(-s * (far - t0)))
    np.testing.assert_allclose(depth, t0 + 1 / s - tail, atol=2e-3)
    # Hierarchical sampling puts every sample in the bin that holds the weight.
    assert samples.min() >= bins[5] and samples.max() <= bins[6]


def test_renderer_voxels_and_points_agree_with_the_sdf():
    sphere = (shapes3d.Object("sphere", (0.6,)),)
    # Voxel occupancy of a sphere ~ its volume.
    for size, tol in ((16, 0.06), (32, 0.02)):
        volume = shapes3d.voxelize(sphere, size).mean() * 8.0
        assert abs(volume / (4 / 3 * math.pi * 0.6 ** 3) - 1) < tol, size
    # A ray through the centre hits at distance - radius; a ray past the side misses.
    c2w = shapes3d.orbit_camera(0.3, 0.4, 4.0)
    origin, centre = c2w[:, 3][None], -c2w[:, 3][None] / 4.0
    t, hit = shapes3d.trace(sphere, origin, centre)
    assert hit[0] and abs(t[0] - 3.4) < 2e-3
    _, hit = shapes3d.trace(sphere, origin, (centre + 0.3 * c2w[:, 0][None]) / 1.044)
    assert not hit[0]
    # Rendered sphere: its disc covers the pixels whose rays pass within 0.6 of the centre.
    image = shapes3d.render(sphere, c2w, 38.6, 32, supersample=1)
    origins, dirs = shapes3d.camera_rays(c2w, 38.6, 32, 32)
    miss = np.linalg.norm(np.cross(dirs, -origins), axis=-1)  # distance of each ray to 0
    covered = image.max(-1) > 0
    assert (covered == (miss < 0.6))[np.abs(miss - 0.6) > 0.02].all()
    # Surface points lie on the surface of every primitive.
    rng = np.random.default_rng(0)
    for _ in range(10):
        _, obj = shapes3d.random_object(rng)
        points = shapes3d.surface_points((obj,), 64, rng)
        assert np.abs(obj.sdf(points.astype(np.float64))).max() < 1e-4, obj.kind
    # The task's JAX rays are the dataset's rays.
    rows, cols = np.meshgrid(np.arange(32.0), np.arange(32.0), indexing="ij")
    o, d = three_d.pixel_rays(jnp.asarray(c2w[None], jnp.float32), jnp.array([38.6]),
                              jnp.asarray(rows.reshape(1, -1)), jnp.asarray(cols.reshape(1, -1)),
                              32, 32)
    np.testing.assert_allclose(d[0], dirs.reshape(-1, 3), atol=1e-5)
    np.testing.assert_allclose(o[0], origins.reshape(-1, 3), atol=1e-5)


def test_examples_are_deterministic_and_the_scene_views_differ():
    params = shapes3d.Shapes3DParams(train_size=8, test_size=8, resolution=16, voxels=8,
                                     points=32)
    a, b = (shapes3d.render_example(params, "train", 3) for _ in range(2))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["voxels"].shape == (8, 8, 8) and a["points"].shape == (32, 3)
    assert a["voxels"].any() and a["image"].any()
    scene = shapes3d.Shapes3DParams(variant="scene", resolution=16)
    train, test = (shapes3d.render_example(scene, s, 0) for s in ("train", "test"))
    assert not np.allclose(train["camera_to_world"], test["camera_to_world"])
    with pytest.raises(ValueError, match="unknown keys"):
        shapes3d.Shapes3DParams.from_mapping({"views": 3})


def test_pointnet_is_permutation_invariant():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(3, 50, 3)).astype(np.float32)
    shuffled = np.stack([p[rng.permutation(50)] for p in points])
    model = models3d.PointNet(num_classes=5, features=(16, 32), head=(16,), tnet=True)

    @jax.jit
    def logits(points, shuffled):
        params = model.init(jax.random.key(0), points)
        # Random (not zero) weights everywhere, so that the T-Net acts too.
        params = jax.tree.map(lambda x: jax.random.normal(jax.random.key(1), x.shape), params)
        return (model.apply(params, points), model.apply(params, shuffled),
                model.apply(params, points[:, ::-1] * 1.5))

    a, b, c = logits(points, shuffled)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert not np.allclose(a, c, atol=1e-3)  # yet it sees the points


CONFIGS = ("three_d/nerf.py", "three_d/pointnet.py", "three_d/voxels.py")


@pytest.mark.parametrize("path", CONFIGS)
def test_3d_configs_build_abstractly(path):
    from vision_jax import train
    extra = {"nerf": ":full", "pointnet": ":tnet=True", "voxels": ":voxels=32"}
    for arg in ("", ":runlocal", next(v for k, v in extra.items() if k in path)):
        c = config_lib.load_config(config_path(path) + arg)
        config_lib.validate(c, num_devices=8)
        info = data.DatasetInfo(name="synthetic", num_classes=5,
                                image_shape=(c.data.image_size, c.data.image_size, 3),
                                split_sizes={"train": 32, "test": 16})
        state = train.setup(c, info=info).abstract
        assert jax.tree.leaves(state.params), path + arg


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds3d"))
    for variant in ("scene", "objects"):
        data.prepare({"name": "shapes3d", "data_dir": path, "image_size": 16,
                      "shapes3d": dict(variant=variant, resolution=16, voxels=8, points=32,
                                       train_size=8, test_size=8)})
    return path


@pytest.mark.parametrize("spec, overrides, score", [
    ("three_d/nerf.py:runlocal", [], "psnr"),
    ("three_d/pointnet.py:runlocal,tnet=True", ["data.shapes3d.points=32"], "accuracy"),
    ("three_d/voxels.py:runlocal", ["data.shapes3d.voxels=8"], "iou"),
])
def test_one_real_training_run_per_3d_task(tfds_dir, tmp_path, spec, overrides, score):
    from vision_jax import train
    variant = "scene" if "nerf" in spec else "objects"
    c = tiny_config(spec, tfds_dir, "total_steps=2", "checkpoint.every_steps=2",
                    "data.image_size=16", "data.shapes3d.resolution=16",
                    "data.shapes3d.train_size=8", "data.shapes3d.test_size=8",
                    f"data.shapes3d.variant={variant}", "data.shapes3d.voxels=8",
                    "data.shapes3d.points=32", *overrides)
    summary = train.train(c, str(tmp_path))
    assert summary["devices"] == 8 and summary["steps"] == 2
    assert summary["task"] == c.task and np.isfinite(summary["train_loss"])
    assert summary["eval_examples"] == 8 and np.isfinite(summary[f"eval_{score}"])
