"""3-D tasks on `shapes3d` (vision_jax/data/shapes3d.py): NeRF, PointNet, single-view voxels.

    config.task = "nerf"       # views of the 'scene' variant with their cameras
    config.task = "pointnet"   # surface points of the 'objects' variant -> its class
    config.task = "voxels"     # one view of the 'objects' variant -> its occupancy grid

NeRF (Mildenhall et al. 2020, arXiv:2003.08934). A batch is B training views
with their cameras (extra keys 'camera_to_world', 'focal'). The loss draws
`nerf.rays_per_view` random pixels of every view with the step's RNG, casts
their rays and renders them twice:

  coarse  `coarse_samples` stratified samples: [near, far] cut into equal
          bins, one uniform sample per bin (the bin's midpoint in eval);
  fine    `fine_samples` more, drawn by inverse transform sampling from the
          piecewise-constant density of the coarse weights (hierarchical
          sampling, the weights held constant), rendered together with the
          coarse ones by the fine field (its own network, or the coarse one
          when `fine_network=False`).

Volume rendering (`volume_render`) treats each sample as the constant
density of its interval [e_i, e_{i+1}] (the bins for the coarse pass; for
the fine pass the midpoints between sorted samples, closed by near and
far): alpha_i = 1 - exp(-sigma_i (e_{i+1} - e_i)), transmittance
T_i = exp(-sum_{j<i} sigma_j (e_{j+1} - e_j)), weight w_i = T_i - T_{i+1},
colour sum_i w_i c_i + T_S * background (black, as the dataset's). For a
constant density the rendered opacity is exactly 1 - exp(-sigma (far - near)).
The loss is the mean squared error of both passes against the pixels in
[0, 1]; eval renders every pixel of the held-out views (in chunks of rays)
and reports the PSNR of the fine pass per view, averaged over views (`psnr`,
the score), beside the coarse pass's (`psnr_coarse`).

PointNet (Qi et al. 2017): cross-entropy on the surface points, each
training cloud rotated by a random angle about the vertical axis and
jittered (`pointnet.rotate`, `pointnet.jitter`); eval reports accuracy.

Single-view voxels (the 3D-R2N2 task, Choy et al. 2016): per-voxel binary
cross-entropy of occupancy logits (positives weighted by `voxels.pos_weight`);
eval reports the mean per-example IoU of the grid thresholded at
probability 0.5 (`iou`, the score), and the IoU of all test voxels pooled
(`iou_pooled`).

`python -m vision_jax.tasks.three_d orbit --workdir RUN --out docs/figures/nerf_orbit.gif`
renders a camera orbit with a trained NeRF; `... voxels --workdir RUN --out F.png`
draws a voxels run's predictions beside the truth.
"""

from __future__ import annotations

import argparse
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vision_jax.data import shapes3d
from vision_jax.models import three_d
from vision_jax.metrics import psnr_from_mse
from vision_jax.tasks.base import Task
from vision_jax.tasks.classification import cross_entropy


def base_config(task: str, variant: str, *, steps: int, learning_rate: float, seed: int = 0,
                train_size: int = 4_000, test_size: int = 1_000):
    """What the configs under configs/three_d share: `task` on a 32x32 `shapes3d`
    `variant`, Adam with warmup and cosine decay, `steps` steps, eval at the end."""
    from vision_jax.config import base_config as base
    c = base()
    c.seed = seed
    c.task = task
    c.data.name = "shapes3d"
    c.data.shapes3d = dict(variant=variant, resolution=32, voxels=16, points=256,
                           train_size=train_size, test_size=test_size, seed=0)
    c.data.image_size = 32
    c.total_steps = c.checkpoint.every_steps = steps
    c.optimizer.update(name="adam", learning_rate=learning_rate, weight_decay=0.0)
    c.schedule.warmup_steps = 50
    c.log_every_steps = 100
    c.eval_every_steps = 0
    return c


def shrink_for_local(c, **data):
    """The configs' `runlocal` switch: 5 steps of 8 examples on a tiny split."""
    c.data.shapes3d.update(**data)
    c.batch_size = 8
    c.total_steps = c.checkpoint.every_steps = c.log_every_steps = 5
    return c


def _model_options(config) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v
            for k, v in config.model.items() if k != "name"}


def _params3d(config) -> shapes3d.Shapes3DParams:
    return shapes3d.Shapes3DParams.from_mapping(config.data.get("shapes3d"))


# ---------------------------------------------------------------------------
# Rays and volume rendering (pure functions).


def pixel_rays(camera_to_world, focal, rows, cols, height: int, width: int):
    """(origins, unit directions) [B, R, 3] through pixels (rows, cols) [B, R] of
    cameras camera_to_world [B, 3, 4] with focal lengths [B] (the dataset's convention)."""
    f = focal.reshape(-1, 1)
    camera = jnp.stack([(cols + 0.5 - width / 2) / f, -(rows + 0.5 - height / 2) / f,
                        -jnp.ones(rows.shape, jnp.float32)], -1)
    dirs = jnp.einsum("brk,bjk->brj", camera, camera_to_world[:, :, :3])
    dirs = dirs / jnp.linalg.norm(dirs, axis=-1, keepdims=True)
    return jnp.broadcast_to(camera_to_world[:, None, :, 3], dirs.shape), dirs


def volume_render(sigma, rgb, edges, background: float = 0.0):
    """Emission-absorption along rays with constant density per interval.

    sigma [..., S] >= 0, rgb [..., S, C], edges [..., S + 1] (increasing) ->
    (colour [..., C], weights [..., S], transmittance at the edges [..., S + 1]).
    """
    tau = sigma * (edges[..., 1:] - edges[..., :-1])
    zero = jnp.zeros(tau.shape[:-1] + (1,), tau.dtype)
    transmittance = jnp.exp(-jnp.concatenate([zero, jnp.cumsum(tau, -1)], -1))
    weights = transmittance[..., :-1] - transmittance[..., 1:]
    color = (weights[..., None] * rgb).sum(-2) + transmittance[..., -1:] * background
    return color, weights, transmittance


def sample_pdf(edges, weights, u):
    """Inverse transform samples [..., N] of the piecewise-constant density that
    puts mass `weights` [..., S] on the bins `edges` [..., S + 1], at u [..., N] in [0, 1)."""
    pdf = weights / jnp.maximum(weights.sum(-1, keepdims=True), 1e-12)
    zero = jnp.zeros(pdf.shape[:-1] + (1,), pdf.dtype)
    cdf = jnp.concatenate([zero, jnp.cumsum(pdf, -1)], -1)  # [..., S + 1]
    index = (u[..., :, None] >= cdf[..., None, 1:-1]).sum(-1)  # bin of each u, [..., N]
    take = lambda a, i: jnp.take_along_axis(a, i, -1)  # noqa: E731
    c0, c1 = take(cdf, index), take(cdf, index + 1)
    e0, e1 = take(edges, index), take(edges, index + 1)
    frac = jnp.clip((u - c0) / jnp.maximum(c1 - c0, 1e-12), 0.0, 1.0)
    return e0 + frac * (e1 - e0)


# ---------------------------------------------------------------------------
# NeRF.


class NeRF(Task):
    """Coarse + fine volume rendering of random rays of the training views."""

    score = "psnr"
    extra_keys = ("camera_to_world", "focal")

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        self.opts = config.nerf
        data = _params3d(config)
        if config.data.name != "shapes3d" or data.variant != "scene":
            raise ValueError("task 'nerf' trains on views of data.name='shapes3d' with "
                             "data.shapes3d.variant='scene'")
        if int(config.data.image_size) != data.resolution:
            raise ValueError(f"task 'nerf': data.image_size={config.data.image_size} must equal "
                             f"data.shapes3d.resolution={data.resolution} (the cameras' "
                             "focal lengths are in the dataset's pixels)")
        self.near, self.far = float(self.opts.near), float(self.opts.far)
        if not 0 < self.near < self.far:
            raise ValueError(f"nerf.near={self.near}, nerf.far={self.far}: need 0 < near < far")
        self.field = three_d.NeRFField(**_model_options(config))
        self.fine_network = bool(self.opts.fine_network)

    # -- data ------------------------------------------------------------
    def example_batch(self, batch_size=1):
        return {**super().example_batch(batch_size),
                "camera_to_world": jnp.asarray(np.tile(shapes3d.orbit_camera(0, 0.5, 4.0),
                                                       (batch_size, 1, 1)), jnp.float32),
                "focal": jnp.full((batch_size,), _params3d(self.config).focal, jnp.float32)}

    def synthetic_batch(self, batch_size, seed=0):
        return {**super().synthetic_batch(batch_size, seed),
                **{k: np.asarray(v) for k, v in self.example_batch(batch_size).items()
                   if k in self.extra_keys}}

    # -- variables ---------------------------------------------------------
    def init(self, rng, batch):
        del batch
        x = jnp.zeros((1, 3), jnp.float32)
        coarse, fine = jax.random.split(rng)
        params = {"coarse": self.field.init(coarse, x)["params"]}
        if self.fine_network:
            params["fine"] = self.field.init(fine, x)["params"]
        return params, {}

    def _field(self, params, name, x):
        return self.field.apply({"params": params[name if self.fine_network else "coarse"]}, x)

    def render_rays(self, params, origins, dirs, rng=None):
        """Coarse and fine colours [N, 3] of rays [N, 3]; stratified and
        hierarchical samples are random with `rng`, deterministic without."""
        n, s_c, s_f = origins.shape[0], int(self.opts.coarse_samples), int(self.opts.fine_samples)
        edges = jnp.broadcast_to(jnp.linspace(self.near, self.far, s_c + 1), (n, s_c + 1))
        if rng is None:
            u_c = jnp.full((n, s_c), 0.5)
            u_f = jnp.broadcast_to((jnp.arange(s_f) + 0.5) / s_f, (n, s_f))
        else:
            rng_c, rng_f = jax.random.split(rng)
            u_c, u_f = jax.random.uniform(rng_c, (n, s_c)), jax.random.uniform(rng_f, (n, s_f))
        t_c = edges[:, :-1] + u_c * (edges[:, 1:] - edges[:, :-1])

        def shade(name, t, e):
            sigma, rgb = self._field(params, name, origins[:, None] + t[..., None] * dirs[:, None])
            return volume_render(sigma, rgb, e)

        coarse, weights, _ = shade("coarse", t_c, edges)
        t_f = sample_pdf(edges, jax.lax.stop_gradient(weights), u_f)
        t = jnp.sort(jnp.concatenate([t_c, t_f], -1), -1)
        e = jnp.concatenate([edges[:, :1], 0.5 * (t[:, 1:] + t[:, :-1]), edges[:, -1:]], -1)
        fine, _, _ = shade("fine", t, e)
        return coarse, fine

    def render_views(self, params, camera_to_world, focal, height: int, width: int):
        """Coarse and fine images [B, H, W, 3] in [0, 1], rendered in chunks of
        `nerf.chunk` rays per view (lax.map), deterministically."""
        b, pixels = camera_to_world.shape[0], height * width
        chunk = min(int(self.opts.chunk), pixels)
        chunks = math.ceil(pixels / chunk)
        index = jnp.arange(chunks * chunk) % pixels  # wraps: the tail is cut below
        rows = jnp.broadcast_to(index // width, (b, chunks * chunk)).astype(jnp.float32)
        cols = jnp.broadcast_to(index % width, (b, chunks * chunk)).astype(jnp.float32)
        origins, dirs = pixel_rays(camera_to_world, focal, rows, cols, height, width)

        def one(rays):  # [B, chunk, 3] twice
            o, d = rays
            c, f = self.render_rays(params, o.reshape(-1, 3), d.reshape(-1, 3))
            return c.reshape(b, chunk, 3), f.reshape(b, chunk, 3)

        split = lambda a: a.reshape(b, chunks, chunk, 3).transpose(1, 0, 2, 3)  # noqa: E731
        coarse, fine = jax.lax.map(one, (split(origins), split(dirs)))
        merge = lambda a: a.transpose(1, 0, 2, 3).reshape(b, -1, 3)[:, :pixels].reshape(  # noqa: E731
            b, height, width, 3)
        return merge(coarse), merge(fine)

    # -- objective -----------------------------------------------------------
    def loss(self, params, variables, batch, rng, group=None):
        image = (batch["image"] + 1.0) / 2.0
        b, h, w, _ = image.shape
        r = int(self.opts.rays_per_view)
        pick, render = jax.random.split(rng)
        index = jax.random.randint(pick, (b, r), 0, h * w)
        origins, dirs = pixel_rays(batch["camera_to_world"], batch["focal"].astype(jnp.float32),
                                   (index // w).astype(jnp.float32),
                                   (index % w).astype(jnp.float32), h, w)
        target = jnp.take_along_axis(image.reshape(b, h * w, 3), index[..., None], 1)
        coarse, fine = self.render_rays(params, origins.reshape(-1, 3), dirs.reshape(-1, 3),
                                        render)
        target = target.reshape(-1, 3)
        mse_coarse, mse_fine = ((coarse - target) ** 2).mean(), ((fine - target) ** 2).mean()
        return mse_coarse + mse_fine, {"mse": mse_fine, "psnr": psnr_from_mse(mse_fine)}, variables

    def eval_step(self, params, variables, batch, rng):
        image = (batch["image"] + 1.0) / 2.0
        b, h, w, _ = image.shape
        coarse, fine = self.render_views(params, batch["camera_to_world"],
                                         batch["focal"].astype(jnp.float32), h, w)
        mask = batch["mask"]
        mse_f = ((fine - image) ** 2).mean((1, 2, 3))
        mse_c = ((coarse - image) ** 2).mean((1, 2, 3))
        return {"count": mask.sum(), "mse_sum": (mse_f * mask).sum(),
                "psnr_sum": (psnr_from_mse(mse_f) * mask).sum(),
                "psnr_coarse_sum": (psnr_from_mse(mse_c) * mask).sum(),
                "loss_sum": ((mse_f + mse_c) * mask).sum()}


# ---------------------------------------------------------------------------
# PointNet and single-view voxels: the 'objects' variant.


class _Objects(Task):
    """A task on the 'objects' variant whose extra key (`key`) is a fixed-shape array."""

    key = ""

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        self.data = _params3d(config)
        if config.data.name != "shapes3d" or self.data.variant != "objects":
            raise ValueError(f"task {config.task!r} trains on data.name='shapes3d' with "
                             "data.shapes3d.variant='objects'")

    @property
    def extra_keys(self):
        return (self.key,)

    def key_shape(self) -> tuple[int, ...]:
        return {"points": (self.data.points, 3), "voxels": (self.data.voxels,) * 3}[self.key]

    def example_batch(self, batch_size=1):
        return {**super().example_batch(batch_size),
                self.key: jnp.zeros((batch_size, *self.key_shape()), jnp.float32)}

    def synthetic_batch(self, batch_size, seed=0):
        rng = np.random.default_rng(seed + 1)
        return {**super().synthetic_batch(batch_size, seed),
                self.key: rng.uniform(-1, 1, (batch_size, *self.key_shape()))
                .astype(np.float32)}


class PointNetTask(_Objects):
    """Classify a surface point cloud [B, N, 3] of one object."""

    score = "accuracy"
    key = "points"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        self.model = three_d.PointNet(num_classes=info.num_classes, **_model_options(config))
        self.opts = config.pointnet

    def init(self, rng, batch):
        return self.model.init(rng, batch["points"])["params"], {}

    def augment(self, points, rng):
        """A random rotation about the vertical axis per cloud, plus Gaussian jitter."""
        b = points.shape[0]
        angle_rng, jitter_rng = jax.random.split(rng)
        if self.opts.rotate:
            a = jax.random.uniform(angle_rng, (b,), maxval=2 * jnp.pi)
            c, s, z, o = jnp.cos(a), jnp.sin(a), jnp.zeros((b,)), jnp.ones((b,))
            rot = jnp.stack([jnp.stack([c, z, s], -1), jnp.stack([z, o, z], -1),
                             jnp.stack([-s, z, c], -1)], -2)  # [B, 3, 3]
            points = jnp.einsum("bnk,bjk->bnj", points, rot)
        return points + float(self.opts.jitter) * jax.random.normal(jitter_rng, points.shape)

    def loss(self, params, variables, batch, rng, group=None):
        logits = self.model.apply({"params": params}, self.augment(batch["points"], rng))
        loss = cross_entropy(logits, batch["label"], self.info.num_classes).mean()
        accuracy = (logits.argmax(-1) == batch["label"]).mean()
        return loss, {"accuracy": accuracy}, variables

    def eval_step(self, params, variables, batch, rng):
        logits = self.model.apply({"params": params}, batch["points"])
        mask = batch["mask"]
        per = cross_entropy(logits, batch["label"], self.info.num_classes)
        return {"count": mask.sum(), "loss_sum": (per * mask).sum(),
                "accuracy_sum": ((logits.argmax(-1) == batch["label"]) * mask).sum()}


class VoxelTask(_Objects):
    """One view [B, H, W, 3] -> the object's occupancy grid [B, V, V, V]."""

    score = "iou"
    key = "voxels"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        self.model = three_d.VoxelNet(voxels=self.data.voxels, **_model_options(config))
        self.pos_weight = float(config.voxels.pos_weight)

    def init(self, rng, batch):
        return self.model.init(rng, batch["image"])["params"], {}

    def per_example_loss(self, logits, voxels):
        target = voxels.astype(jnp.float32)
        bce = optax.sigmoid_binary_cross_entropy(logits, target)
        weight = 1.0 + (self.pos_weight - 1.0) * target
        return (weight * bce).mean((1, 2, 3))

    def loss(self, params, variables, batch, rng, group=None):
        logits = self.model.apply({"params": params}, batch["image"])
        loss = self.per_example_loss(logits, batch["voxels"]).mean()
        inter, union = _overlap(logits, batch["voxels"])
        return loss, {"iou": (inter / jnp.maximum(union, 1.0)).mean()}, variables

    def eval_step(self, params, variables, batch, rng):
        logits = self.model.apply({"params": params}, batch["image"])
        mask = batch["mask"]
        inter, union = _overlap(logits, batch["voxels"])
        iou = jnp.where(union > 0, inter / jnp.maximum(union, 1.0), 1.0)
        return {"count": mask.sum(),
                "loss_sum": (self.per_example_loss(logits, batch["voxels"]) * mask).sum(),
                "iou_sum": (iou * mask).sum(), "intersection": (inter * mask).sum(),
                "union": (union * mask).sum()}

    def eval_reduce(self, totals):
        out = super().eval_reduce(totals)
        out["iou_pooled"] = totals["intersection"] / max(totals["union"], 1.0)
        return out


def _overlap(logits, voxels):
    """(intersection, union) [B] of the grids thresholded at probability 0.5 and the truth."""
    pred, true = logits > 0, voxels > 0
    return ((pred & true).sum((1, 2, 3)).astype(jnp.float32),
            (pred | true).sum((1, 2, 3)).astype(jnp.float32))


# ---------------------------------------------------------------------------
# The orbit GIF.


def render_orbit(config, workdir: str, *, frames: int = 36, elevation_deg: float = 30.0,
                 distance: float = shapes3d.SCENE_RADIUS):
    """(step, uint8 [frames, H, W, 3]): a trained NeRF's views on a circular orbit,
    beside (second output) the dataset's renderer's ground truth of the same cameras."""
    from vision_jax import sharding, train
    mesh = sharding.make_mesh(dict(config.mesh))
    rules = sharding.rules_from_config(config.logical_rules)
    run, step, state = train.restore_workdir(config, workdir, mesh, rules)
    task, data = run.task, _params3d(config)
    params = state.ema if (config.ema.decay and config.ema.evaluate and state.ema) \
        else state.params
    cameras = np.stack([shapes3d.orbit_camera(2 * math.pi * i / frames,
                                              math.radians(elevation_deg), distance)
                        for i in range(frames)]).astype(np.float32)
    focal = np.full((frames,), data.focal, np.float32)
    size = data.resolution
    render = jax.jit(lambda p, c, f: task.render_views(p, c, f, size, size)[1])
    images = np.asarray(jax.device_get(render(params, cameras, focal)))
    truth = np.stack([shapes3d.render(shapes3d.SCENE, c, data.focal, size) for c in cameras])
    return step, np.clip(255 * images + 0.5, 0, 255).astype(np.uint8), truth


def save_gif(path: str, predicted, truth=None, *, scale: int = 4, ms_per_frame: int = 80):
    """An animated GIF of frames [T, H, W, 3] (uint8), ground truth on the left when given."""
    import PIL.Image
    frames = predicted if truth is None else np.concatenate([truth, predicted], 2)
    images = [PIL.Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale),
                                            PIL.Image.NEAREST) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)


def predict_voxels(config, workdir: str, num: int):
    """(step, images uint8 [N, H, W, 3], true grids [N, V, V, V], predicted grids) of
    the first `num` test objects of a `voxels` run."""
    from vision_jax import sharding, train
    from vision_jax.sample import to_uint8
    mesh = sharding.make_mesh(dict(config.mesh))
    rules = sharding.rules_from_config(config.logical_rules)
    run, step, state = train.restore_workdir(config, workdir, mesh, rules)
    task = run.task
    batch = next(iter(task.eval_batches(config.data.eval_split, global_batch_size=num,
                                        process_index=0, process_count=1)))
    logits = jax.jit(lambda p, x: task.model.apply({"params": p}, x))(state.params,
                                                                        batch["image"])
    return (step, to_uint8(batch["image"]), batch["voxels"] > 0,
            np.asarray(jax.device_get(logits)) > 0)


def voxel_figure(images, truth, predicted, path: str, *, title: str = ""):
    """Columns: objects; rows: the view, the true grid, the predicted grid, seen from
    about the camera's direction."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(images)
    fig = plt.figure(figsize=(1.6 * n, 5.0))
    for i in range(n):
        ax = fig.add_subplot(3, n, i + 1)
        ax.imshow(images[i], interpolation="nearest")
        ax.set_axis_off()
        for row, grid in ((1, truth[i]), (2, predicted[i])):
            ax = fig.add_subplot(3, n, row * n + i + 1, projection="3d")
            # World (x, y up, z) -> matplotlib (x, -z, y up): a rotation, no mirror;
            # the camera (azimuth 0, on +z) then looks from -y.
            ax.voxels(np.transpose(grid, (0, 2, 1))[:, ::-1], facecolors="tab:blue",
                      edgecolor="k", linewidth=0.1)
            ax.view_init(elev=25, azim=-90)
            ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from vision_jax.sample import load_run_config
    parser = argparse.ArgumentParser(prog="python -m vision_jax.tasks.three_d")
    commands = parser.add_subparsers(dest="command", required=True)
    orbit = commands.add_parser("orbit", help="GIF of a camera orbit rendered by a NeRF run "
                                              "(ground truth left, NeRF right)")
    orbit.add_argument("--workdir", required=True)
    orbit.add_argument("--out", required=True)
    orbit.add_argument("--frames", type=int, default=36)
    orbit.add_argument("--elevation", type=float, default=30.0)
    voxels = commands.add_parser("voxels", help="views, true and predicted grids of a voxels "
                                                "run's first test objects (PNG)")
    voxels.add_argument("--workdir", required=True)
    voxels.add_argument("--out", required=True)
    voxels.add_argument("--num", type=int, default=8)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    config = load_run_config(args.workdir)
    if args.command == "voxels":
        step, images, truth, predicted = predict_voxels(config, args.workdir, args.num)
        voxel_figure(images, truth, predicted, args.out,
                     title=f"single-view voxels, step {step}: view, truth, prediction")
        print(args.out)
        return 0
    step, images, truth = render_orbit(config, args.workdir, frames=args.frames,
                                       elevation_deg=args.elevation)
    save_gif(args.out, images, truth)
    print(f"{args.out}: {args.frames} frames of the NeRF at step {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
