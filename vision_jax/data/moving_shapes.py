"""`moving_shapes`: procedurally generated clips of one moving shape; label = the motion.

The project's built-in video dataset, the clip counterpart of `shapes` (whose
outlines, rasteriser and backgrounds it reuses). Each clip holds `frames`
frames of one shape on a static background; the label is how the shape
changes over time:

    right, left, down, up          translation in one of four directions
    clockwise, counterclockwise    rotation about its centre
    grow, shrink                   scaling about its centre
    recolor                        a drift of its hue

One frame cannot tell the class, by construction: every clip is built around
its *anchor frame* (index frames // 2), and the scene at the anchor (shape,
centre, size, angle, colour, background) is drawn from one distribution that
does not depend on the label; the label only decides how the other frames
depart from it. So the anchor frame of a clip, which is the frame a
single-frame model sees, is independent of the label and a single-frame
classifier can do no better than chance. Other frames are weakly informative
on their own (a right-moving shape sits a little left of centre in frame 0),
which is why single-frame models read the anchor.

The circle is left out (a rotating circle does not change), and rotations
stay below half of every remaining shape's rotational symmetry per frame, so
the direction of a rotation is visible between consecutive frames. Speeds
(distance, angle, scale or hue travelled over the clip) are drawn per clip.

`motions='translation'` keeps only the four direction classes (chance 1/4):
the harder-to-fake check of the issue, "a single-frame model sits near
chance on the direction classes", is then the plain top-1 of a run.

Example `i` of a split is a pure function of (builder parameters except the
split sizes, split, i), exactly as in `shapes`: nested prefixes are free.
Clips are stored as a `Sequence` of `frames` PNG-encoded `Image`s, decoded by
TFDS into a uint8 array [T, H, W, 3] without TensorFlow.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math

import numpy as np
import tensorflow_datasets as tfds

from vision_jax.data import shapes

MOTIONS = ("right", "left", "down", "up", "clockwise", "counterclockwise", "grow", "shrink",
           "recolor")
MOTION_SETS = {"all": MOTIONS, "translation": MOTIONS[:4]}
# Unit vectors (x, y), y down, of the translation classes.
_DIRECTIONS = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "down": (0.0, 1.0), "up": (0.0, -1.0)}
CLIP_SHAPES = tuple(i for i, s in enumerate(shapes.SHAPES) if s != "circle")

# Anchor scene, in fractions of the image side. The centre keeps clear of the
# borders so that a translation never takes the centre out of the image.
ANCHOR_CENTER = (0.28, 0.72)
ANCHOR_RADIUS = (0.13, 0.19)
# Motion over the whole clip (first to last frame).
TRAVEL = (0.25, 0.40)  # translation distance, fraction of the side
SPIN_DEG = (40.0, 70.0)  # rotation; < 30 deg per frame from 3 frames on (hexagon: 60)
SCALE_RATIO = (1.7, 2.2)  # last radius / first radius (or its inverse)
HUE_SHIFT = (0.3, 0.5)  # fraction of the hue circle
_SPLIT_CODES = {"train": 0, "test": 1}


@dataclasses.dataclass(frozen=True)
class MovingShapesParams:
    """Builder parameters; `config_name` encodes all of them."""

    resolution: int = 32
    frames: int = 8
    train_size: int = 10_000
    test_size: int = 2_000
    seed: int = 0
    motions: str = "all"

    def __post_init__(self):
        if self.resolution < 8:
            raise ValueError(f"moving_shapes.resolution={self.resolution}: must be >= 8")
        if not 3 <= self.frames <= 64:
            raise ValueError(f"moving_shapes.frames={self.frames}: must be in [3, 64]")
        for key in ("train_size", "test_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"moving_shapes.{key}={getattr(self, key)}: must be >= 1")
        if self.motions not in MOTION_SETS:
            raise ValueError(f"moving_shapes.motions={self.motions!r}: expected one of "
                             f"{sorted(MOTION_SETS)}")

    @property
    def config_name(self) -> str:
        return (f"r{self.resolution}_f{self.frames}_n{self.train_size}_t{self.test_size}"
                f"_s{self.seed}_{self.motions}")

    @property
    def classes(self) -> tuple[str, ...]:
        return MOTION_SETS[self.motions]

    @property
    def anchor(self) -> int:
        """Index of the anchor frame: the one whose content ignores the label."""
        return self.frames // 2

    @classmethod
    def from_mapping(cls, cfg) -> "MovingShapesParams":
        """Builds params from a (possibly partial) mapping, rejecting unknown keys."""
        cfg = dict(cfg or {})
        fields = {f.name: type(f.default) for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - set(fields))
        if unknown:
            raise ValueError(f"data.moving_shapes has unknown keys {unknown}; "
                             f"valid keys: {sorted(fields)}")
        return cls(**{k: fields[k](v) for k, v in cfg.items()})


class MovingShapesConfig(tfds.core.BuilderConfig):
    def __init__(self, params: MovingShapesParams):
        super().__init__(name=params.config_name,
                         description=f"moving_shapes clips with {params}")
        self.params = params


# ---------------------------------------------------------------------------
# Scenes and motions.


def sample_scene(params: MovingShapesParams, rng: np.random.Generator) -> dict:
    """The anchor scene and the clip's speeds; nothing here depends on the label.

    Every speed is drawn for every clip (whatever motion uses it), so the
    number of draws, and hence the scene, is the same for every label.
    """
    r = params.resolution
    kind = int(rng.integers(len(shapes.BACKGROUNDS)))
    return {
        "group": kind,
        "background": shapes._background(kind, r, rng),
        "shape": int(CLIP_SHAPES[rng.integers(len(CLIP_SHAPES))]),
        "center": rng.uniform(*ANCHOR_CENTER, size=2) * r,
        "radius": rng.uniform(*ANCHOR_RADIUS) * r,
        "angle": rng.uniform(0.0, 2 * math.pi),
        "hsv": (rng.random(), rng.uniform(0.65, 0.95), rng.uniform(0.75, 0.95)),
        "travel": rng.uniform(*TRAVEL) * r,
        "spin": math.radians(rng.uniform(*SPIN_DEG)),
        "scale": math.log(rng.uniform(*SCALE_RATIO)),
        "hue_shift": rng.uniform(*HUE_SHIFT) * rng.choice((-1.0, 1.0)),
    }


def _state(scene: dict, motion: str, d: float) -> tuple[np.ndarray, float, float, float]:
    """(centre, radius, angle, hue) at clip time d, in clip lengths from the anchor."""
    center, radius, angle = scene["center"], scene["radius"], scene["angle"]
    hue = scene["hsv"][0]
    if motion in _DIRECTIONS:
        center = center + np.asarray(_DIRECTIONS[motion]) * scene["travel"] * d
    elif motion in ("clockwise", "counterclockwise"):  # y points down: +angle is clockwise
        angle += scene["spin"] * d * (1.0 if motion == "clockwise" else -1.0)
    elif motion in ("grow", "shrink"):
        radius *= math.exp(scene["scale"] * d * (1.0 if motion == "grow" else -1.0))
    else:  # recolor
        hue += scene["hue_shift"] * d
    return center, radius, angle, hue % 1.0


def render_clip(params: MovingShapesParams, scene: dict, motion: str) -> np.ndarray:
    """uint8 [frames, R, R, 3]: `scene` (see sample_scene) moving by `motion`."""
    if motion not in MOTIONS:
        raise ValueError(f"motion={motion!r}: expected one of {MOTIONS}")
    r, frames = params.resolution, params.frames
    _, saturation, value = scene["hsv"]
    clip = np.empty((frames, r, r, 3), np.uint8)
    for t in range(frames):
        center, radius, angle, hue = _state(scene, motion, (t - params.anchor) / (frames - 1))
        image = scene["background"].copy()
        alpha, window = shapes._coverage(shapes._outline(scene["shape"], center, radius, angle), r)
        color = 255.0 * np.asarray(colorsys.hsv_to_rgb(hue, saturation, value), np.float32)
        image[window] += alpha[..., None] * (color - image[window])
        clip[t] = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    return clip


def render_example(params: MovingShapesParams, split: str, index: int) -> dict:
    """Example `index` of `split`, decoded: a pure function of (params, split, index)."""
    rng = np.random.default_rng((params.seed, _SPLIT_CODES[split], index))
    label = int(rng.integers(len(params.classes)))
    scene = sample_scene(params, rng)
    return {"image": render_clip(params, scene, params.classes[label]), "label": label,
            "shape": scene["shape"], "group": scene["group"]}


def save_figure(path: str, params: MovingShapesParams = MovingShapesParams(), *,
                split: str = "test", scale: int = 3) -> None:
    """A PNG of the first clip of every class of `split`, one row per class
    (frames left to right, the anchor frame outlined), named on the left.

        python -c "from vision_jax.data import moving_shapes as m; \\
            m.save_figure('docs/figures/moving_shapes.png')"
    """
    import PIL.Image
    import PIL.ImageDraw

    rows, index = {}, 0
    while len(rows) < len(params.classes):
        example = render_example(params, split, index)
        rows.setdefault(example["label"], example["image"])
        index += 1
    r, gap, margin = params.resolution * scale, 4, 120
    sheet = PIL.Image.new("RGB", (margin + params.frames * (r + gap), len(rows) * (r + gap)),
                          "white")
    draw = PIL.ImageDraw.Draw(sheet)
    for label, clip in sorted(rows.items()):
        y = label * (r + gap)
        draw.text((4, y + r // 2 - 6), params.classes[label], fill="black")
        for t, frame in enumerate(clip):
            x = margin + t * (r + gap)
            sheet.paste(PIL.Image.fromarray(frame).resize((r, r), PIL.Image.NEAREST), (x, y))
            if t == params.anchor:
                draw.rectangle((x - 2, y - 2, x + r + 1, y + r + 1), outline="black", width=2)
    sheet.save(path, optimize=True)


def make_builder(params: MovingShapesParams, **kwargs) -> "MovingShapes":
    """A `MovingShapes` builder for any params (kwargs go to the builder: data_dir, ...)."""
    predefined = {c.name for c in MovingShapes.BUILDER_CONFIGS}
    config = (params.config_name if params.config_name in predefined
              else MovingShapesConfig(params))
    return MovingShapes(config=config, **kwargs)


class MovingShapes(tfds.core.GeneratorBasedBuilder):
    """Clips of one moving shape; label = the motion."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [MovingShapesConfig(MovingShapesParams())]

    @property
    def params(self) -> MovingShapesParams:
        return self.builder_config.params

    def _info(self) -> tfds.core.DatasetInfo:
        p = self.params
        frame = tfds.features.Image(shape=(p.resolution, p.resolution, 3), encoding_format="png")
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                # The clip, [T, H, W, 3]; named 'image' so the pipeline's
                # defaults (data.image_key) read it like any image dataset.
                "image": tfds.features.Sequence(frame, length=p.frames),
                "label": tfds.features.ClassLabel(names=p.classes),
                "shape": tfds.features.ClassLabel(names=shapes.SHAPES),
                "group": tfds.features.ClassLabel(names=shapes.BACKGROUNDS),
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
        # Frames are PNG bytes: TFDS encodes a Sequence of images without
        # TensorFlow only when each image arrives already encoded.
        for index in range(size):
            example = render_example(self.params, split, index)
            yield index, {**example, "image": [shapes._png(f) for f in example["image"]]}
