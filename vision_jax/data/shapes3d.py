"""`shapes3d`: analytic 3-D shapes (signed distance functions) and their renderer.

The project's built-in 3-D dataset. Every object is an exact signed distance
function (SDF; Quilez, https://iquilezles.org/articles/distfunctions/, read
2026-12-04) in its own frame, placed with a rotation, a centre and a colour.
The renderer is part of the dataset: a pinhole camera looking at the origin
casts one ray per pixel (2 x 2 per pixel, box-filtered), the rays are sphere
traced against the union of the SDFs, and a hit is shaded Lambertian under
one fixed directional light plus an ambient term, on a black background. A
view's light does not depend on the camera, so the scene's radiance is view
independent (a NeRF needs no view directions here).

From the same SDFs come an occupancy voxeliser (the sign of the SDF at the
voxel centres of [-1, 1]^3, 16^3 by default) and a surface point sampler
(points in the object's bounding cube projected onto the surface along the
SDF's gradient, p <- p - f(p) grad f(p), which lands exactly on the surface
for an exact SDF wherever the nearest surface point is unique).

Two variants (`variant`):

  objects  one random object per example (`SHAPES`: its class is the label),
           random size, pose and colour. The camera's azimuth is 0 and its
           elevation and distance are random: the world frame is viewer
           aligned, so one view determines the voxels (the object's own pose
           is what varies). Features: image, camera_to_world [3, 4], focal,
           voxels [V, V, V] (uint8 occupancy, indexed [x, y, z]), points [N, 3],
           label.
  scene    one fixed scene of five objects on a slab (`SCENE`), seen from
           cameras on the upper hemisphere at distance 4 looking at the
           origin; example i of a split is view i, and the test split's views
           are other random views (held-out views). Features: image,
           camera_to_world, focal, label (always 0).

Cameras follow the OpenGL convention of NeRF's synthetic scenes: columns of
camera_to_world are the camera's right, up and backward axes and its
position; pixel (row i, column j) looks along
right * (j + 0.5 - W / 2) / f - up * (i + 0.5 - H / 2) / f - backward.

Example `i` of a split is a pure function of (params except the split sizes,
split, i), as in `shapes`: nested prefixes are free (`data.num_train_examples`
picks the first views of the scene).
"""

from __future__ import annotations

import colorsys
import dataclasses
import math

import numpy as np
import tensorflow_datasets as tfds

from vision_jax.data import shapes

SHAPES = ("sphere", "box", "torus", "capsule", "cylinder")
VARIANTS = ("objects", "scene")
_SPLIT_CODES = {"train": 0, "test": 1}
FOV_DEG = 45.0  # horizontal field of view of every camera
SUPERSAMPLE = 2  # rays per pixel side, box-filtered
LIGHT = np.array([0.4, 0.8, 0.45]) / np.linalg.norm([0.4, 0.8, 0.45])  # towards the light
AMBIENT = 0.25
HIT_EPS = 1e-3  # a ray hits where the SDF falls below this
TRACE_STEPS = 96
# Near and far planes of every camera: objects sit inside the unit ball (the
# scene inside radius 1.5), cameras at distance 2.3 to 4.
NEAR, FAR = 1.0, 6.5
SCENE_RADIUS = 4.0  # distance of the scene variant's cameras from the origin
SCENE_ELEVATION_DEG = (10.0, 80.0)


@dataclasses.dataclass(frozen=True)
class Shapes3DParams:
    """Builder parameters; `config_name` encodes all of them."""

    variant: str = "objects"
    resolution: int = 32
    voxels: int = 16
    points: int = 256
    train_size: int = 4_000
    test_size: int = 1_000
    seed: int = 0

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"shapes3d.variant={self.variant!r}: expected one of {VARIANTS}")
        for key, low in (("resolution", 8), ("voxels", 4), ("points", 1), ("train_size", 1),
                         ("test_size", 1)):
            if getattr(self, key) < low:
                raise ValueError(f"shapes3d.{key}={getattr(self, key)}: must be >= {low}")

    @property
    def config_name(self) -> str:
        return (f"{self.variant}_r{self.resolution}_v{self.voxels}_p{self.points}"
                f"_n{self.train_size}_t{self.test_size}_s{self.seed}")

    @property
    def focal(self) -> float:
        """Focal length in pixels."""
        return 0.5 * self.resolution / math.tan(math.radians(FOV_DEG) / 2)

    @classmethod
    def from_mapping(cls, cfg) -> "Shapes3DParams":
        """Builds params from a (possibly partial) mapping, rejecting unknown keys."""
        cfg, types = dict(cfg or {}), {f.name: type(f.default) for f in dataclasses.fields(cls)}
        if set(cfg) - set(types):
            raise ValueError(f"data.shapes3d has unknown keys {sorted(set(cfg) - set(types))}; "
                             f"valid keys: {sorted(types)}")
        return cls(**{k: types[k](v) for k, v in cfg.items()})


# ---------------------------------------------------------------------------
# Signed distance functions, p [..., 3] in the object's frame (y up).


def _length(v, axis=-1):
    return np.sqrt(np.sum(v * v, axis=axis))


def sdf_sphere(p, radius):
    return _length(p) - radius


def sdf_box(p, *half):
    q = np.abs(p) - np.asarray(half)
    return _length(np.maximum(q, 0.0)) + np.minimum(q.max(-1), 0.0)


def sdf_torus(p, major, minor):
    q = np.stack([_length(p[..., [0, 2]]) - major, p[..., 1]], -1)
    return _length(q) - minor


def sdf_capsule(p, half_height, radius):
    q = p.copy()
    q[..., 1] -= np.clip(q[..., 1], -half_height, half_height)
    return _length(q) - radius


def sdf_cylinder(p, radius, half_height):
    d = np.abs(np.stack([_length(p[..., [0, 2]]), p[..., 1]], -1)) - [radius, half_height]
    return np.minimum(d.max(-1), 0.0) + _length(np.maximum(d, 0.0))


_SDFS = {"sphere": sdf_sphere, "box": sdf_box, "torus": sdf_torus, "capsule": sdf_capsule,
         "cylinder": sdf_cylinder}


@dataclasses.dataclass(frozen=True)
class Object:
    """One primitive: `SHAPES[kind]` with `size` (its SDF's arguments), placed by
    world = rotation @ local + center, with an RGB colour in [0, 1]."""

    kind: str
    size: tuple
    rotation: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3))
    center: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    color: tuple = (0.8, 0.8, 0.8)

    def sdf(self, p: np.ndarray) -> np.ndarray:
        local = (p - self.center) @ self.rotation  # rotation^T (p - center), row vectors
        return _SDFS[self.kind](local, *self.size)


def scene_sdf(objects, p) -> tuple[np.ndarray, np.ndarray]:
    """(distance to the union [...], index of the nearest object [...])."""
    d = np.stack([o.sdf(p) for o in objects])
    return d.min(0), d.argmin(0)


def normals(objects, p, eps: float = 1e-4) -> np.ndarray:
    """Unit gradients of the union's SDF at p [..., 3] (central differences)."""
    grad = np.stack([scene_sdf(objects, p + eps * e)[0] - scene_sdf(objects, p - eps * e)[0]
                     for e in np.eye(3)], -1)
    return grad / np.maximum(_length(grad)[..., None], 1e-12)


def _rotation(yaw: float, tilt: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """R_y(yaw) @ R_x(tilt) @ R_z(roll)."""
    cy, sy, cx, sx, cz, sz = (math.cos(yaw), math.sin(yaw), math.cos(tilt), math.sin(tilt),
                              math.cos(roll), math.sin(roll))
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return ry @ rx @ rz


# The scene variant: five objects on a grey slab, inside radius 1.5.
SCENE = (
    Object("box", (1.4, 0.06, 1.4), center=np.array([0.0, -0.56, 0.0]), color=(0.6, 0.6, 0.6)),
    Object("sphere", (0.4,), center=np.array([-0.6, -0.1, 0.45]), color=(0.86, 0.12, 0.12)),
    Object("box", (0.3, 0.3, 0.3), _rotation(0.6), np.array([0.65, -0.2, 0.4]),
           (0.12, 0.67, 0.2)),
    Object("torus", (0.38, 0.12), _rotation(0.0, 1.2), np.array([0.0, 0.0, -0.6]),
           (0.14, 0.24, 0.86)),
    Object("capsule", (0.25, 0.17), center=np.array([-0.75, -0.08, -0.55]),
           color=(0.92, 0.82, 0.08)),
    Object("cylinder", (0.22, 0.3), center=np.array([0.75, -0.2, -0.5]),
           color=(0.55, 0.16, 0.75)),
)


def random_object(rng: np.random.Generator) -> tuple[int, Object]:
    """(label, object): a random primitive centred at the origin, inside the unit ball."""
    label = int(rng.integers(len(SHAPES)))
    kind = SHAPES[label]
    if kind == "sphere":
        size = (rng.uniform(0.45, 0.8),)
    elif kind == "box":
        size = tuple(rng.uniform(0.25, 0.5, 3))
    elif kind == "torus":
        major = rng.uniform(0.45, 0.65)
        size = (major, rng.uniform(0.12, 0.25))
    elif kind == "capsule":
        size = (rng.uniform(0.2, 0.45), rng.uniform(0.18, 0.35))
    else:
        size = (rng.uniform(0.25, 0.5), rng.uniform(0.25, 0.5))
    rotation = _rotation(rng.uniform(0, 2 * math.pi), rng.uniform(-0.6, 0.6),
                         rng.uniform(-0.6, 0.6))
    color = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.5, 0.9), rng.uniform(0.7, 1.0))
    return label, Object(kind, size, rotation, np.zeros(3), tuple(color))


# ---------------------------------------------------------------------------
# Cameras and rendering.


def look_at(position) -> np.ndarray:
    """camera_to_world [3, 4] of a camera at `position` looking at the origin, y up."""
    position = np.asarray(position, np.float64)
    back = position / np.linalg.norm(position)
    right = np.cross([0.0, 1.0, 0.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    return np.stack([right, up, back, position], 1)


def orbit_camera(azimuth: float, elevation: float, distance: float) -> np.ndarray:
    """look_at from spherical coordinates (radians; azimuth 0 on +z, elevation from the ground)."""
    return look_at(distance * np.array([math.cos(elevation) * math.sin(azimuth),
                                        math.sin(elevation),
                                        math.cos(elevation) * math.cos(azimuth)]))


def camera_rays(camera_to_world, focal: float, height: int, width: int,
                supersample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(origins, unit directions), each [height * s, width * s, 3]: s x s rays per pixel."""
    s = supersample
    rows, cols = np.meshgrid((np.arange(height * s) + 0.5) / s, (np.arange(width * s) + 0.5) / s,
                             indexing="ij")
    camera = np.stack([(cols - width / 2) / focal, -(rows - height / 2) / focal,
                       -np.ones_like(rows)], -1)
    c2w = np.asarray(camera_to_world, np.float64)
    dirs = camera @ c2w[:, :3].T
    dirs /= _length(dirs)[..., None]
    return np.broadcast_to(c2w[:, 3], dirs.shape), dirs


def trace(objects, origins, dirs, near: float = NEAR, far: float = FAR,
          steps: int = TRACE_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Sphere tracing: (distance t along each ray [...], hit mask [...])."""
    t = np.full(origins.shape[:-1], near)
    active, hit = np.ones(t.shape, bool), np.zeros(t.shape, bool)
    for _ in range(steps):
        d, _ = scene_sdf(objects, origins[active] + t[active, None] * dirs[active])
        close = d < HIT_EPS
        hit[active] = close
        t[active] += np.where(close, 0.0, d)
        active[active] = ~close & (t[active] < far)
        if not active.any():
            break
    return t, hit


def render(objects, camera_to_world, focal: float, resolution: int,
           supersample: int = SUPERSAMPLE) -> np.ndarray:
    """uint8 [resolution, resolution, 3]: Lambertian shading of the union, black background."""
    origins, dirs = camera_rays(camera_to_world, focal, resolution, resolution, supersample)
    t, hit = trace(objects, origins, dirs)
    image = np.zeros(origins.shape)
    points = origins[hit] + t[hit, None] * dirs[hit]
    _, nearest = scene_sdf(objects, points)
    colors = np.array([o.color for o in objects])[nearest]
    shade = AMBIENT + (1 - AMBIENT) * np.maximum(normals(objects, points) @ LIGHT, 0.0)
    image[hit] = colors * shade[:, None]
    s = supersample
    image = image.reshape(resolution, s, resolution, s, 3).mean((1, 3))
    return np.clip(255 * image + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Voxels and points.


def voxel_centers(size: int, extent: float = 1.0) -> np.ndarray:
    """[size, size, size, 3] centres of a size^3 grid over [-extent, extent]^3, indexed [x, y, z]."""
    axis = (np.arange(size) + 0.5) / size * 2 * extent - extent
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)


def voxelize(objects, size: int = 16, extent: float = 1.0) -> np.ndarray:
    """uint8 [size, size, size] occupancy: 1 where the SDF at a voxel centre is < 0."""
    return (scene_sdf(objects, voxel_centers(size, extent))[0] < 0).astype(np.uint8)


def surface_points(objects, num: int, rng: np.random.Generator, extent: float = 1.0,
                   iterations: int = 3) -> np.ndarray:
    """float32 [num, 3] points on the surface: uniform points of the cube
    projected along the SDF's gradient."""
    p = rng.uniform(-extent, extent, (num, 3))
    for _ in range(iterations):
        p = p - scene_sdf(objects, p)[0][:, None] * normals(objects, p)
    return p.astype(np.float32)


# ---------------------------------------------------------------------------
# Examples.


def scene_camera(params: Shapes3DParams, split: str, index: int) -> np.ndarray:
    """camera_to_world of view `index` of the scene variant's `split`: uniform
    azimuth, elevation uniform in SCENE_ELEVATION_DEG, distance SCENE_RADIUS."""
    rng = np.random.default_rng((params.seed, _SPLIT_CODES[split], index))
    low, high = (math.radians(a) for a in SCENE_ELEVATION_DEG)
    return orbit_camera(rng.uniform(0, 2 * math.pi), rng.uniform(low, high), SCENE_RADIUS)


def render_example(params: Shapes3DParams, split: str, index: int) -> dict:
    """Example `index` of `split`, decoded: a pure function of (params, split, index)."""
    if params.variant == "scene":
        c2w = scene_camera(params, split, index)
        return {"image": render(SCENE, c2w, params.focal, params.resolution),
                "camera_to_world": c2w.astype(np.float32), "focal": np.float32(params.focal),
                "label": 0}
    rng = np.random.default_rng((params.seed, _SPLIT_CODES[split], index))
    label, obj = random_object(rng)
    c2w = orbit_camera(0.0, math.radians(rng.uniform(5.0, 50.0)), rng.uniform(2.3, 2.8))
    return {"image": render((obj,), c2w, params.focal, params.resolution),
            "camera_to_world": c2w.astype(np.float32), "focal": np.float32(params.focal),
            "voxels": voxelize((obj,), params.voxels),
            "points": surface_points((obj,), params.points, rng), "label": label}


def make_builder(params: Shapes3DParams, **kwargs) -> "Shapes3D":
    """A `Shapes3D` builder for any params (kwargs go to the builder: data_dir, ...)."""
    predefined = {c.name for c in Shapes3D.BUILDER_CONFIGS}
    config = params.config_name if params.config_name in predefined else Shapes3DConfig(params)
    return Shapes3D(config=config, **kwargs)


class Shapes3DConfig(tfds.core.BuilderConfig):
    def __init__(self, params: Shapes3DParams):
        super().__init__(name=params.config_name, description=f"shapes3d with {params}")
        self.params = params


class Shapes3D(tfds.core.GeneratorBasedBuilder):
    """Rendered analytic 3-D shapes with cameras, voxels and surface points."""

    name = "shapes3d"  # TFDS would derive 'shapes3_d' from the class name
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [Shapes3DConfig(Shapes3DParams())]

    @property
    def params(self) -> Shapes3DParams:
        return self.builder_config.params

    def _info(self) -> tfds.core.DatasetInfo:
        p = self.params
        features = {
            "image": tfds.features.Image(shape=(p.resolution, p.resolution, 3),
                                         encoding_format="png"),
            "camera_to_world": tfds.features.Tensor(shape=(3, 4), dtype=np.float32),
            "focal": tfds.features.Tensor(shape=(), dtype=np.float32),
            "label": tfds.features.ClassLabel(names=SHAPES if p.variant == "objects"
                                              else ("scene",)),
        }
        if p.variant == "objects":
            features["voxels"] = tfds.features.Tensor(shape=(p.voxels,) * 3, dtype=np.uint8)
            features["points"] = tfds.features.Tensor(shape=(p.points, 3), dtype=np.float32)
        return tfds.core.DatasetInfo(builder=self, description=__doc__,
                                     features=tfds.features.FeaturesDict(features),
                                     disable_shuffling=True)

    def _split_generators(self, dl_manager):
        del dl_manager  # generated locally
        return {"train": self._generate_examples("train", self.params.train_size),
                "test": self._generate_examples("test", self.params.test_size)}

    def _generate_examples(self, split: str, size: int):
        for index in range(size):
            example = render_example(self.params, split, index)
            yield index, {**example, "image": shapes._png(example["image"])}
