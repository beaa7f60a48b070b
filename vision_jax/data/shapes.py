"""`shapes`: procedurally generated scenes of coloured geometric shapes.

The project's built-in dataset: no download, generated in seconds, yet not
trivial. Each scene holds one clearly larger *main* object (whose shape is the
classification label) and up to `max_objects - 1` smaller distractors of any
class, on one of four background kinds (the `group` attribute). Positions,
sizes, small rotations, colours and backgrounds vary, so a linear model on raw
pixels does poorly while a small CNN learns the task.

Example `i` of a split is a pure function of (builder parameters except the
split sizes, split, i): the random generator is seeded with (seed, split, i)
and the builder disables TFDS shuffling. Hence the first N training examples
are the same for every `train_size >= N`, which makes nested subsets for
data-scaling studies free.

Besides the label, every example carries dense annotations (segmentation
mask, boxes, counts, a caption) so detection, segmentation, counting and
captioning probes can use the same scenes.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math

import numpy as np
import PIL.Image
import PIL.ImageDraw
import tensorflow_datasets as tfds

SHAPES = ("circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star", "cross")
COLORS = {  # name -> RGB; saturated hues that differ from every background kind
    "red": (220, 30, 30),
    "orange": (245, 130, 20),
    "yellow": (235, 210, 20),
    "green": (30, 170, 50),
    "cyan": (20, 190, 210),
    "blue": (35, 60, 220),
    "purple": (140, 40, 190),
    "pink": (240, 90, 170),
}
COLOR_NAMES = tuple(COLORS)
BACKGROUNDS = ("plain_light", "plain_dark", "gradient", "noise")

# Sizes are circumradii as fractions of the image side. The main object spans
# roughly half the image so its outline survives 32x32; distractors are at most
# half its smallest size, so "the largest object" is never ambiguous.
MAIN_RADIUS = (0.24, 0.34)
DISTRACTOR_RADIUS = (0.09, 0.14)
MAX_ROTATION_DEG = 15.0  # small, so that square and diamond stay distinct classes
SUPERSAMPLE = 4  # shapes are rasterised at 4x and box-filtered: anti-aliased edges
_SPLIT_CODES = {"train": 0, "test": 1}


@dataclasses.dataclass(frozen=True)
class ShapesParams:
    """Builder parameters; `config_name` encodes all of them."""

    resolution: int = 32
    max_objects: int = 3
    train_size: int = 50_000
    test_size: int = 10_000
    seed: int = 0
    group_skew: float = 0.0
    # Spurious correlation (Waterbirds-style): in train, the background is the
    # label's own kind (`aligned_background`) with this probability, another
    # kind otherwise; test backgrounds stay uniform and independent of the
    # label. 0 turns it off (and keeps the generator bit-identical).
    spurious: float = 0.0

    def __post_init__(self):
        if self.resolution < 8:
            raise ValueError(f"shapes.resolution={self.resolution}: must be >= 8")
        if self.max_objects < 1:
            raise ValueError(f"shapes.max_objects={self.max_objects}: must be >= 1")
        for key in ("train_size", "test_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"shapes.{key}={getattr(self, key)}: must be >= 1")
        if not 0.0 <= self.group_skew < 1.0:
            raise ValueError(f"shapes.group_skew={self.group_skew}: must be in [0, 1)")
        if self.spurious and not 1.0 / len(BACKGROUNDS) <= self.spurious <= 1.0:
            raise ValueError(f"shapes.spurious={self.spurious}: must be 0 (off) or in "
                             f"[{1.0 / len(BACKGROUNDS)}, 1] (1/4 = no correlation)")
        if self.spurious and self.group_skew:
            raise ValueError("shapes.spurious and shapes.group_skew both set: the background "
                             "is drawn either from the label or from the skew, not both")

    @property
    def config_name(self) -> str:
        name = (f"r{self.resolution}_o{self.max_objects}_n{self.train_size}"
                f"_t{self.test_size}_s{self.seed}_g{float(self.group_skew)}")
        # Only a spurious dataset gets the suffix: existing names stay valid.
        return name + (f"_c{float(self.spurious)}" if self.spurious else "")

    @classmethod
    def from_mapping(cls, cfg) -> "ShapesParams":
        """Builds params from a (possibly partial) mapping, rejecting unknown keys."""
        cfg = dict(cfg or {})
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - valid)
        if unknown:
            raise ValueError(f"data.shapes has unknown keys {unknown}; valid keys: {sorted(valid)}")
        types = {f.name: type(f.default) for f in dataclasses.fields(cls)}
        return cls(**{k: types[k](v) for k, v in cfg.items()})


class ShapesConfig(tfds.core.BuilderConfig):
    """A BuilderConfig carrying `ShapesParams`; its name encodes them."""

    def __init__(self, params: ShapesParams):
        super().__init__(name=params.config_name,
                         description=f"shapes scenes with {params}")
        self.params = params


# ---------------------------------------------------------------------------
# Geometry: unit outlines (circumradius 1, centred at the origin, y down).


def _regular(n: int, phase: float = -math.pi / 2) -> np.ndarray:
    angles = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    angles = -math.pi / 2 + math.pi * np.arange(2 * points) / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _cross(arm: float = 0.34) -> np.ndarray:
    a, b = arm, 1.0 / math.sqrt(1.0 + arm * arm)  # arm ends lie on the unit circle
    a *= b
    return np.array([(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b),
                     (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)])


# Square sides are axis-aligned; the diamond is a narrower rhombus standing on
# a vertex, so it differs from a rotated square even at low resolution.
_OUTLINES = {
    "circle": _regular(48),
    "square": _regular(4, phase=math.pi / 4),
    "triangle": _regular(3) + np.array([0.0, 0.15]),  # centred on its bounding box
    "diamond": np.array([(0.0, -1.0), (0.62, 0.0), (0.0, 1.0), (-0.62, 0.0)]),
    "pentagon": _regular(5),
    "hexagon": _regular(6, phase=0.0),
    "star": _star(),
    "cross": _cross(),
}


def _outline(shape: int, center: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """Vertices (x, y) in pixels of a rotated, scaled shape."""
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return _OUTLINES[SHAPES[shape]] @ rot.T * radius + center


def _coverage(vertices: np.ndarray, resolution: int) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Anti-aliased coverage in [0, 1] of a polygon, rasterised at SUPERSAMPLE x.

    Returns the coverage of the polygon's bounding window and the window's
    (rows, cols) slices: objects cover a fraction of the image, and drawing
    and compositing only that window is most of what keeps generation fast.
    """
    x0, y0 = (max(0, int(v)) for v in np.floor(vertices.min(axis=0)))
    x1, y1 = (min(resolution, int(v)) for v in np.ceil(vertices.max(axis=0)))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    layer = PIL.Image.new("L", ((x1 - x0) * SUPERSAMPLE, (y1 - y0) * SUPERSAMPLE), 0)
    points = ((vertices - (x0, y0)) * SUPERSAMPLE).ravel().tolist()
    PIL.ImageDraw.Draw(layer).polygon(points, fill=255)
    window = np.asarray(layer.reduce(SUPERSAMPLE), dtype=np.float32) * (1.0 / 255.0)  # box filter
    return window, (slice(y0, y1), slice(x0, x1))


# ---------------------------------------------------------------------------
# Backgrounds.


@functools.lru_cache(maxsize=None)
def _unit_grid(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (y, x) scaled to [-0.5, 0.5]."""
    yy, xx = np.mgrid[0:resolution, 0:resolution].astype(np.float32) / (resolution - 1) - 0.5
    return yy, xx


def _background(kind: int, resolution: int, rng: np.random.Generator) -> np.ndarray:
    """A float32 [R, R, 3] background in [0, 255] of the given kind."""
    r = resolution
    name = BACKGROUNDS[kind]
    if name == "plain_light":
        base = rng.uniform(175, 250) + rng.uniform(-20, 20, size=3)
        return np.broadcast_to(base, (r, r, 3)).astype(np.float32)
    if name == "plain_dark":
        base = rng.uniform(10, 80) + rng.uniform(-15, 15, size=3)
        return np.broadcast_to(base, (r, r, 3)).astype(np.float32)
    if name == "gradient":
        start, end = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
        theta = rng.uniform(0, 2 * math.pi)
        yy, xx = _unit_grid(r)
        t = np.clip(xx * math.cos(theta) + yy * math.sin(theta) + 0.5, 0, 1)[..., None]
        return start + t * (end - start)
    # noise: a mid-tone with blocky texture (upsampled low-res noise) plus grain
    base = rng.uniform(60, 200, size=3)
    cells = max(2, r // 4)
    blocks = rng.normal(0, 35, size=(cells, cells, 3))
    texture = np.repeat(np.repeat(blocks, -(-r // cells), 0), -(-r // cells), 1)[:r, :r]
    return (base + texture + rng.normal(0, 12, size=(r, r, 3))).astype(np.float32)


# ---------------------------------------------------------------------------
# Scenes.


def _place_distractor(placed, resolution, rng, tries=20):
    """A distractor (center, radius) that stays mostly visible.

    `placed` lists the objects already in the scene, the main object first.
    Distractors keep clear of the main object's circumcircle (so it is never
    hidden) and of each other; after `tries` failures the distractor is
    dropped, which only makes the scene emptier.
    """
    radius = rng.uniform(*DISTRACTOR_RADIUS) * resolution
    for _ in range(tries):
        center = rng.uniform(radius, resolution - radius, size=2)
        if all(np.linalg.norm(center - o["center"]) >= o["radius"] + 0.6 * radius
               for o in placed):
            return {"center": center, "radius": radius}
    return None


def _relation(a: np.ndarray, b: np.ndarray) -> str:
    """Where centre a lies relative to centre b, by the dominant axis."""
    dx, dy = a - b
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def _caption(objects) -> str:
    def noun(o):
        return f"a {COLOR_NAMES[o['color']]} {SHAPES[o['label']]}"

    main, *others = objects
    if not others:
        return noun(main)
    text = f"{noun(main)} {_relation(main['center'], others[0]['center'])} {noun(others[0])}"
    return text + "".join(f" and {noun(o)}" for o in others[1:])


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _group_probs(params: ShapesParams, split: str) -> np.ndarray:
    """Uniform over background kinds, with `group_skew` extra mass on kind 0 in train."""
    uniform = np.full(len(BACKGROUNDS), 1.0 / len(BACKGROUNDS))
    if split != "train":
        return uniform
    onehot = np.eye(len(BACKGROUNDS))[0]
    return (1 - params.group_skew) * uniform + params.group_skew * onehot


def aligned_background(label) -> int:
    """The background kind that `spurious` pairs with a label (classes i and
    i + 4 share kind i): the shortcut a model can take instead of the shape."""
    return label % len(BACKGROUNDS)


def _spurious_probs(params: ShapesParams, split: str, label: int) -> np.ndarray:
    """P(background | label): `spurious` on the aligned kind in train, the
    rest spread evenly over the other kinds; uniform in test."""
    k = len(BACKGROUNDS)
    if split != "train":
        return np.full(k, 1.0 / k)
    probs = np.full(k, (1.0 - params.spurious) / (k - 1))
    probs[aligned_background(label)] = params.spurious
    return probs


def _sample_group(params: ShapesParams, split: str, rng: np.random.Generator,
                  label: int | None = None) -> int:
    probs = (_group_probs(params, split) if label is None else
             _spurious_probs(params, split, label))
    cumulative = np.cumsum(probs)
    return min(int(np.searchsorted(cumulative, rng.random(), side="right")), len(BACKGROUNDS) - 1)


def _sample_objects(params: ShapesParams, rng: np.random.Generator) -> list[dict]:
    """The main object first, then the distractors that found a place."""
    r = params.resolution
    main_radius = rng.uniform(*MAIN_RADIUS) * r
    objects = [{"center": rng.uniform(main_radius, r - main_radius, size=2),
                "radius": main_radius}]
    for _ in range(rng.integers(0, params.max_objects)):
        placed = _place_distractor(objects, r, rng)
        if placed is not None:
            objects.append(placed)
    for o in objects:
        o["label"] = int(rng.integers(len(SHAPES)))
        o["color"] = int(rng.integers(len(COLORS)))
        o["angle"] = math.radians(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    return objects


def _draw(image: np.ndarray, objects: list[dict], rng: np.random.Generator) -> np.ndarray:
    """Composites the objects onto `image` (in place); sets each object's
    'bbox' and returns the segmentation mask (class + 1, 0 = background)."""
    r = image.shape[0]
    mask = np.zeros((r, r), np.uint8)
    for o in objects[::-1]:  # the main object is drawn last: never occluded
        vertices = _outline(o["label"], o["center"], o["radius"], o["angle"])
        alpha, window = _coverage(vertices, r)
        color = np.asarray(COLORS[COLOR_NAMES[o["color"]]], np.float32)
        color *= rng.uniform(0.85, 1.1)  # mild shading variation
        image[window] += alpha[..., None] * (color - image[window])
        mask[window][alpha > 0.5] = o["label"] + 1
        (xmin, ymin), (xmax, ymax) = vertices.min(axis=0) / r, vertices.max(axis=0) / r
        o["bbox"] = np.clip(np.array([ymin, xmin, ymax, xmax], np.float32), 0, 1)
    return mask


def render_example(params: ShapesParams, split: str, index: int) -> dict:
    """Example `index` of `split`: a pure function of (params, split, index)."""
    rng = np.random.default_rng((params.seed, _SPLIT_CODES[split], index))
    if params.spurious:  # the label is drawn first, so the background can follow it
        objects = _sample_objects(params, rng)
        group = _sample_group(params, split, rng, label=objects[0]["label"])
        image = _background(group, params.resolution, rng)
    else:  # the original order of draws: default datasets stay bit-identical
        group = _sample_group(params, split, rng)
        image = _background(group, params.resolution, rng)
        objects = _sample_objects(params, rng)
    mask = _draw(image, objects, rng)
    counts = np.bincount([o["label"] for o in objects], minlength=len(SHAPES)).astype(np.int32)
    return {
        "image": _png(np.clip(image + 0.5, 0, 255).astype(np.uint8)),
        "label": objects[0]["label"],
        "objects": {
            "label": [o["label"] for o in objects],
            "color": [o["color"] for o in objects],
            "bbox": np.stack([o["bbox"] for o in objects]),
        },
        "mask": mask,
        "caption": _caption(objects),
        "counts": counts,
        "group": group,
    }


def main_color(features) -> np.int32:
    """Colour index (COLOR_NAMES) of the main object of a decoded example."""
    return np.int32(features["objects"]["color"][0])


def object_count(features) -> np.int32:
    """Number of objects (main + distractors) in a decoded example."""
    return np.int32(np.sum(features["counts"]))


# Per-example attributes derived from the stored features, by name: the
# pipeline's `extra_keys` puts them into batches (a multi-head feature net's targets).
def caption_tokens(features) -> np.ndarray:
    """The caption as word ids (vision_jax/data/captions.py, which imports this module)."""
    from vision_jax.data import captions
    return captions.caption_tokens(features)


ATTRIBUTES = {"color": main_color, "count": object_count, "caption_tokens": caption_tokens}


def make_builder(params: ShapesParams, **kwargs) -> "Shapes":
    """A `Shapes` builder for any params (kwargs go to the builder: data_dir, ...).

    TFDS refuses a new config object that shares its name with a predefined
    one, so predefined configs are passed by name.
    """
    predefined = {c.name for c in Shapes.BUILDER_CONFIGS}
    config = params.config_name if params.config_name in predefined else ShapesConfig(params)
    return Shapes(config=config, **kwargs)


class Shapes(tfds.core.GeneratorBasedBuilder):
    """Coloured geometric shapes; label = shape of the largest object."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [ShapesConfig(ShapesParams())]

    @property
    def params(self) -> ShapesParams:
        return self.builder_config.params

    def _info(self) -> tfds.core.DatasetInfo:
        r = self.params.resolution
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(r, r, 3), encoding_format="png"),
                "label": tfds.features.ClassLabel(names=SHAPES),
                "objects": tfds.features.Sequence({
                    "label": tfds.features.ClassLabel(names=SHAPES),
                    "color": tfds.features.ClassLabel(names=COLOR_NAMES),
                    "bbox": tfds.features.Tensor(shape=(4,), dtype=np.float32),
                }),
                "mask": tfds.features.Tensor(shape=(r, r), dtype=np.uint8),
                "caption": tfds.features.Text(),
                "counts": tfds.features.Tensor(shape=(len(SHAPES),), dtype=np.int32),
                "group": tfds.features.ClassLabel(names=BACKGROUNDS),
            }),
            supervised_keys=("image", "label"),
            disable_shuffling=True,  # example i stays example i: nested subsets
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # generated locally
        return {
            "train": self._generate_examples("train", self.params.train_size),
            "test": self._generate_examples("test", self.params.test_size),
        }

    def _generate_examples(self, split: str, size: int):
        # Streams examples in index order, so millions never sit in memory;
        # TFDS shows a tqdm progress bar per split.
        for index in range(size):
            yield index, render_example(self.params, split, index)
