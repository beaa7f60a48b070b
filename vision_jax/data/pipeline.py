"""From `config.data` to per-process batches: TFDS array_record sources read
through Grain.

Every dataset, built-in or not, is a TFDS dataset prepared in array_record
format and read with random access (`builder.as_data_source`, what
`tfds.data_source` returns), so no TensorFlow is needed at any point.

The training stream is defined globally and then split, so that what a
process sees depends only on the seed and the global batch, never on how
many processes share the work:

  element j of the stream = example perm_e(j mod N) of epoch e = j // N,
      with perm_e a Grain index shuffle seeded by (seed + e);
      augmented with a generator seeded by (seed, j);
  global batch b = elements [b * G, (b + 1) * G);
  process p reads the p-th contiguous slice of L = G / P elements of it.

Concatenating the local batches of all processes in process order gives the
global batch of a single-process run with the same seed. Grain's `MapDataset`
is lazy and indexable, so each process only decodes its own slice, and an
iterator's state is the index of its next batch: resumption is exact.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shlex
import zlib
from typing import Any, Mapping

import grain
import numpy as np
import tensorflow_datasets as tfds
from absl import flags

from vision_jax.data import augment, digits, memory, moving_shapes, shapes, shapes3d

DEFAULT_DATA_DIR = os.environ.get("VISION_JAX_DATA_DIR") or os.path.expanduser(
    "~/.cache/vision_jax/tensorflow_datasets")
BUILTIN = ("shapes", "digits", "moving_shapes", "shapes3d")

# Defaults of the `config.data` fields; `augment` and `shapes` are sections.
DEFAULTS: dict[str, Any] = {
    "name": "shapes",
    "data_dir": None,
    "train_split": "train",
    "eval_split": "test",
    "num_train_examples": -1,
    "image_size": 32,
    "image_key": "image",
    "label_key": "label",
    "worker_count": 0,
    "in_memory": "auto",
    "label_noise": 0.0,
    "label_noise_seed": 0,
    "image_randomization": "none",
    "image_randomization_seed": 0,
    "shapes": {},
    "moving_shapes": {},
    "shapes3d": {},
    "augment": {},
}
_ARRAY_RECORD = "array_record"
log = logging.getLogger("vision_jax")


class DatasetNotFoundError(ValueError):
    """A dataset is not prepared (in array_record format) under data_dir."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model and a trainer need to know about a dataset.

    image_shape is (H, W, C) after the pipeline's resize, (T, H, W, C) for a
    dataset of clips (`moving_shapes`); split_sizes holds
    the number of examples per split, the train split counted after the
    `num_train_examples` prefix.
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    split_sizes: dict[str, int]
    class_names: tuple[str, ...] | None = None


# ---------------------------------------------------------------------------
# Config.


def _get(data_cfg: Mapping, key: str):
    value = data_cfg.get(key, None) if data_cfg is not None else None
    return DEFAULTS[key] if value is None else value


def _data_dir(data_cfg: Mapping) -> str:
    return os.path.expanduser(_get(data_cfg, "data_dir") or DEFAULT_DATA_DIR)


def _shapes_params(data_cfg: Mapping) -> shapes.ShapesParams:
    return shapes.ShapesParams.from_mapping(_get(data_cfg, "shapes"))


def _moving_shapes_params(data_cfg: Mapping) -> moving_shapes.MovingShapesParams:
    return moving_shapes.MovingShapesParams.from_mapping(_get(data_cfg, "moving_shapes"))


def _shapes3d_params(data_cfg: Mapping) -> shapes3d.Shapes3DParams:
    return shapes3d.Shapes3DParams.from_mapping(_get(data_cfg, "shapes3d"))


def _label_noise(data_cfg: Mapping) -> float:
    p = float(_get(data_cfg, "label_noise"))
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"data.label_noise={p} must be a fraction in [0, 1]")
    return p


# Zhang et al. 2017, sec. 2: the images' randomisation tests (labels stay true).
IMAGE_RANDOMIZATIONS = ("none", "shuffled_pixels", "random_pixels", "gaussian")


def _image_randomization(data_cfg: Mapping) -> str:
    kind = str(_get(data_cfg, "image_randomization"))
    if kind not in IMAGE_RANDOMIZATIONS:
        raise ValueError(f"data.image_randomization={kind!r} is not valid; choose one of "
                         f"{list(IMAGE_RANDOMIZATIONS)}")
    return kind


def _augment_config(data_cfg: Mapping) -> augment.AugmentConfig:
    return augment.AugmentConfig.from_mapping(_get(data_cfg, "augment"))


def _local_batch_size(global_batch_size: int, process_index: int, process_count: int) -> int:
    if process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(f"process_index={process_index} must be in [0, process_count="
                         f"{process_count})")
    if global_batch_size < 1 or global_batch_size % process_count:
        raise ValueError(f"global_batch_size={global_batch_size} must be a positive multiple "
                         f"of process_count={process_count}")
    return global_batch_size // process_count


# ---------------------------------------------------------------------------
# Builders and sources.


def prepare_command(data_cfg: Mapping) -> str:
    """The shell command that prepares the configured dataset."""
    name, data_dir = _get(data_cfg, "name"), _data_dir(data_cfg)
    if name not in BUILTIN:
        return (f"tfds build {shlex.quote(name)} --data_dir={shlex.quote(data_dir)} "
                f"--file_format={_ARRAY_RECORD}")
    args = ["vision-jax", "datasets", "prepare", name, "--data-dir", data_dir]
    params = {"shapes": _shapes_params, "moving_shapes": _moving_shapes_params,
              "shapes3d": _shapes3d_params}.get(name)
    if params is not None:
        params = params(data_cfg)
        for field in dataclasses.fields(params):
            value = getattr(params, field.name)
            args += [f"--{field.name.replace('_', '-')}", str(value)]
    return shlex.join(args)


def _not_found(data_cfg: Mapping, detail: str = "") -> DatasetNotFoundError:
    name, data_dir = _get(data_cfg, "name"), _data_dir(data_cfg)
    return DatasetNotFoundError(
        f"dataset {name!r} is not prepared in data_dir {data_dir!r}{detail}; "
        f"prepare it with: {prepare_command(data_cfg)}")


def _builtin_builder(data_cfg: Mapping) -> tfds.core.DatasetBuilder:
    name, data_dir = _get(data_cfg, "name"), _data_dir(data_cfg)
    if name == "shapes":
        return shapes.make_builder(_shapes_params(data_cfg), data_dir=data_dir,
                                   file_format=_ARRAY_RECORD)
    if name == "moving_shapes":
        return moving_shapes.make_builder(_moving_shapes_params(data_cfg), data_dir=data_dir,
                                          file_format=_ARRAY_RECORD)
    if name == "shapes3d":
        return shapes3d.make_builder(_shapes3d_params(data_cfg), data_dir=data_dir,
                                     file_format=_ARRAY_RECORD)
    return digits.Digits(data_dir=data_dir, file_format=_ARRAY_RECORD)


def _builder(data_cfg: Mapping) -> tfds.core.DatasetBuilder:
    """The prepared builder of the configured dataset, or DatasetNotFoundError."""
    name = _get(data_cfg, "name")
    if name in BUILTIN:
        builder = _builtin_builder(data_cfg)
    else:
        try:
            builder = tfds.builder(name, data_dir=_data_dir(data_cfg))
        except tfds.core.registered.DatasetNotFoundError as e:
            raise _not_found(data_cfg) from e
    if not builder.is_prepared():
        raise _not_found(data_cfg)
    if builder.info.file_format.value != _ARRAY_RECORD:
        raise _not_found(data_cfg, f" in {_ARRAY_RECORD} format (found "
                                   f"{builder.info.file_format.value}; "
                                   f"`tfds convert_format` converts it)")
    return builder


def _split_size(builder, split: str) -> int:
    if split not in builder.info.splits:
        raise ValueError(f"split {split!r} is not in dataset {builder.info.name!r}; "
                         f"valid splits: {sorted(builder.info.splits)}")
    return builder.info.splits[split].num_examples


def _num_examples(data_cfg: Mapping, builder, split: str) -> int:
    """Size of a split, the train split cut to its `num_train_examples` prefix."""
    available = _split_size(builder, split)
    wanted = int(_get(data_cfg, "num_train_examples"))
    if split != _get(data_cfg, "train_split") or wanted <= 0:
        return available
    if wanted > available:
        raise ValueError(f"data.num_train_examples={wanted} exceeds the {available} examples "
                         f"of split {split!r} of {builder.info.name!r}")
    return wanted


def _open(data_cfg: Mapping, split: str) -> tuple[DatasetInfo, Any, int]:
    """The dataset's info, a random-access source of the split (its images
    randomised when `data.image_randomization` says so), and how many of the
    split's examples to use."""
    builder = _builder(data_cfg)
    size = _num_examples(data_cfg, builder, split)
    source = builder.as_data_source(split=split)
    kind = _image_randomization(data_cfg)
    if kind != "none":
        mean, std = (None, None) if kind != "gaussian" else _pixel_statistics(data_cfg, builder)
        source = RandomizedImages(source, _get(data_cfg, "image_key"), kind,
                                  int(_get(data_cfg, "image_randomization_seed")), split,
                                  mean, std)
    return _dataset_info(data_cfg, builder), source, size


#: Examples (evenly spaced over the train split) that the Gaussian images'
#: mean and standard deviation are measured on.
STATISTICS_EXAMPLES = 1024
_STATISTICS: dict = {}


def _pixel_statistics(data_cfg: Mapping, builder) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of the train split's pixels (its
    `num_train_examples` prefix; up to STATISTICS_EXAMPLES evenly spaced
    examples of it), as stored (uint8, before any resize)."""
    train = _get(data_cfg, "train_split")
    size = _num_examples(data_cfg, builder, train)
    # A built-in dataset's full name carries its variant (the builder config's name).
    key = (_data_dir(data_cfg), builder.info.full_name, train, size, _get(data_cfg, "image_key"))
    if key not in _STATISTICS:
        source, image_key = builder.as_data_source(split=train), _get(data_cfg, "image_key")
        picks = np.unique(np.linspace(0, size - 1, min(size, STATISTICS_EXAMPLES)).astype(int))
        images = [_with_channels(np.asarray(source[int(i)][image_key])) for i in picks]
        pixels = np.concatenate([im.reshape(-1, im.shape[-1]) for im in images]).astype(np.float64)
        _STATISTICS[key] = (tuple(pixels.mean(0)), tuple(pixels.std(0)))
    return _STATISTICS[key]


def _with_channels(image: np.ndarray) -> np.ndarray:
    """A greyscale [H, W] image as [H, W, 1]; images [H, W, C] and clips as they are."""
    return image[..., None] if image.ndim == 2 else image


def randomized_image(image: np.ndarray, index: int, *, kind: str, seed: int, split: str,
                     mean=None, std=None) -> np.ndarray:
    """Example `index` of `split` after one of Zhang et al. 2017's image
    randomisations (sec. 2, "Randomization tests"), a pure function of
    (kind, seed, split, index):

      shuffled_pixels  one random permutation of the pixel positions, drawn
                       from `seed` alone, applied to every image of every split
      random_pixels    a new random permutation for every image
      gaussian         every pixel drawn from N(mean, std) per channel (the
                       train split's, `_pixel_statistics`), rounded and
                       clipped to 0..255: images carrying nothing of their class

    A permutation moves whole pixels (all channels together; for a clip, the
    same permutation in every frame), so an image keeps its multiset of pixel
    values. Shape and dtype are kept.
    """
    check = _with_channels(np.asarray(image))
    *lead, h, w, c = check.shape
    if kind == "gaussian":
        rng = np.random.default_rng((seed, zlib.crc32(split.encode()), index))
        noise = rng.normal(np.asarray(mean), np.asarray(std), size=check.shape)
        return np.clip(np.round(noise), 0, 255).astype(image.dtype).reshape(image.shape)
    if kind == "shuffled_pixels":
        order = np.random.default_rng(seed).permutation(h * w)
    elif kind == "random_pixels":
        order = np.random.default_rng((seed, zlib.crc32(split.encode()), index)).permutation(h * w)
    else:
        raise ValueError(f"image randomisation {kind!r} is not one of {IMAGE_RANDOMIZATIONS[1:]}")
    flat = check.reshape(*lead, h * w, c)
    return flat[..., order, :].reshape(image.shape)


@dataclasses.dataclass(frozen=True)
class RandomizedImages:
    """A random-access source whose example i has `randomized_image`'s image.

    Wraps the TFDS source of a split, so the Grain path, eval and the
    in-memory path (which then keeps no decoded copy on disk) all read the
    same randomised pixels; labels are untouched."""

    source: Any
    image_key: str
    kind: str
    seed: int
    split: str
    mean: tuple | None = None
    std: tuple | None = None

    def __len__(self) -> int:
        return len(self.source)

    def _randomize(self, index: int, features: Mapping) -> dict:
        image = randomized_image(np.asarray(features[self.image_key]), index, kind=self.kind,
                                 seed=self.seed, split=self.split, mean=self.mean, std=self.std)
        return {**features, self.image_key: image}

    def __getitem__(self, index: int) -> dict:
        return self._randomize(int(index), self.source[index])

    def __getitems__(self, indices) -> list[dict]:
        indices = [int(i) for i in indices]
        many = getattr(self.source, "__getitems__", None)
        features = many(indices) if many else [self.source[i] for i in indices]
        return [self._randomize(i, f) for i, f in zip(indices, features)]


def prepare(data_cfg: Mapping) -> None:
    """Generates a built-in dataset unless already there (a fast no-op then).

    Other datasets cannot be generated here (they need downloads); for them
    this only checks that they are prepared, raising DatasetNotFoundError
    with the command to run otherwise.
    """
    if _get(data_cfg, "name") in BUILTIN:
        builder = _builtin_builder(data_cfg)
        if not builder.is_prepared():
            builder.download_and_prepare(file_format=_ARRAY_RECORD)
    _builder(data_cfg)


def dataset_info(data_cfg: Mapping) -> DatasetInfo:
    return _dataset_info(data_cfg, _builder(data_cfg))


def _dataset_info(data_cfg: Mapping, builder: tfds.core.DatasetBuilder) -> DatasetInfo:
    label_key, image_key = _get(data_cfg, "label_key"), _get(data_cfg, "image_key")
    for key in (label_key, image_key):
        if key not in builder.info.features:
            raise ValueError(f"data key {key!r} is not a feature of {builder.info.name!r}; "
                             f"features: {sorted(builder.info.features)}")
    label = builder.info.features[label_key]
    image_shape = builder.info.features[image_key].shape
    channels = image_shape[-1] if len(image_shape) in (3, 4) and image_shape[-1] else 3
    size = int(_get(data_cfg, "image_size"))
    frames = (int(image_shape[0]),) if len(image_shape) == 4 else ()  # a clip: [T, H, W, C]
    return DatasetInfo(
        name=builder.info.full_name,
        num_classes=int(label.num_classes),
        image_shape=(*frames, size, size, int(channels)),
        split_sizes={s: _num_examples(data_cfg, builder, s) for s in builder.info.splits},
        class_names=tuple(label.names) if getattr(label, "names", None) else None,
    )


# ---------------------------------------------------------------------------
# Per-example transforms. Classes rather than closures so that Grain can
# pickle them into worker processes.


@dataclasses.dataclass(frozen=True)
class _Keys:
    image: str
    label: str
    extra: tuple[str, ...] = ()  # further per-example entries a task asked for

    def read(self, features: Mapping) -> tuple[np.ndarray, np.int32]:
        return _with_channels(np.asarray(features[self.image])), np.int32(features[self.label])

    def read_extra(self, features: Mapping) -> dict:
        return {key: extra_value(features, key) for key in self.extra}


# Per-pixel targets: batch key -> the feature holding them ('mask' itself names
# a batch's real examples). In training they follow the image's geometry
# (augment.augment_dense); eval batches carry them at the dataset's resolution.
DENSE_FEATURES = {"segmentation": "mask"}


def extra_value(features: Mapping, key: str) -> np.ndarray:
    """An `extra_keys` entry of one example: a fixed-shape feature of the
    dataset, else a derived attribute (`shapes.ATTRIBUTES`: the main object's
    colour, the number of objects)."""
    if key in DENSE_FEATURES:
        return np.asarray(features[DENSE_FEATURES[key]])
    if key in features:
        return np.asarray(features[key])
    if key in shapes.ATTRIBUTES:
        return np.asarray(shapes.ATTRIBUTES[key](features))
    raise ValueError(f"extra key {key!r} is neither a feature ({sorted(features)}) nor a "
                     f"derived attribute ({sorted(shapes.ATTRIBUTES)})")


def _extra_keys(extra_keys) -> tuple[str, ...]:
    extra = tuple(extra_keys)
    taken = sorted(set(extra) & {"image", "label", "mask", "soft_label"})
    if taken:
        raise ValueError(f"extra_keys {taken} clash with the batch's own entries")
    return extra


def noisy_labels(labels: np.ndarray, indices: np.ndarray, *, fraction: float,
                 num_classes: int, seed: int) -> np.ndarray:
    """Labels of examples `indices` after label noise (Zhang et al. 2017, sec. 2).

    Each example is independently chosen with probability `fraction` and its
    label redrawn uniformly from all `num_classes` classes, so about
    fraction * (K - 1) / K of the labels actually change, and fraction=1.0
    gives labels independent of the images. The draw is a pure function of
    (seed, example index): nested `num_train_examples` prefixes share their
    noisy labels, every epoch sees the same corruption, and a resumed run
    continues on the same labels.
    """
    labels = np.array(labels, dtype=np.int32, copy=True)
    if fraction <= 0.0:
        return labels
    for j, index in enumerate(np.asarray(indices).reshape(-1)):
        rng = np.random.default_rng((int(seed), int(index)))
        chosen, new_label = rng.random() < fraction, rng.integers(num_classes)
        if chosen:
            labels.reshape(-1)[j] = new_label
    return labels


@dataclasses.dataclass(frozen=True)
class _NoisyLabel(grain.transforms.MapWithIndex):
    """Replaces the label of source example `index` with its noisy label.

    Applied before the shuffle, so `index` is the example's position in the
    split, not in the stream; Grain hands later epochs of a repeated dataset
    e * size + position, hence the modulo."""

    label_key: str
    fraction: float
    num_classes: int
    seed: int
    size: int

    def map_with_index(self, index: int, features):
        label = noisy_labels(np.asarray([features[self.label_key]]),
                             np.asarray([index % self.size]),
                             fraction=self.fraction, num_classes=self.num_classes,
                             seed=self.seed)[0]
        return {**features, self.label_key: label}


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """augment.resize of an image, or of every frame of a clip [T, H, W, C]."""
    if image.ndim == 4:
        return np.stack([augment.resize(frame, size) for frame in image])
    return augment.resize(image, size)


def _augment(image: np.ndarray, size: int, cfg: augment.AugmentConfig,
             rng: np.random.Generator) -> np.ndarray:
    """augment.augment_image of an image, or of a clip [T, H, W, C] frame by
    frame with the same draws (one crop, one jitter for the whole clip), so
    that the augmentation does not itself move anything between frames."""
    if image.ndim == 3:
        return augment.augment_image(image, size, cfg, rng)
    seed = int(rng.integers(2**63))
    return np.stack([augment.augment_image(frame, size, cfg, np.random.default_rng(seed))
                     for frame in image])


def _check_clip_augment(cfg: augment.AugmentConfig) -> None:
    # A flip turns 'left' into 'right'; CutMix's box is cut from (H, W).
    if cfg.flip or cfg.cutmix_alpha > 0:
        raise ValueError("data.augment.flip and data.augment.cutmix_alpha are not supported "
                         "on clips (a flip changes a motion's direction label)")


@dataclasses.dataclass(frozen=True)
class _TrainExample(grain.transforms.RandomMap):
    keys: _Keys
    image_size: int
    cfg: augment.AugmentConfig

    def random_map(self, features, rng: np.random.Generator):
        image, label = self.keys.read(features)
        extra = self.keys.read_extra(features)
        dense = {k: extra.pop(k) for k in self.keys.extra if k in DENSE_FEATURES}
        if dense:
            image, dense = augment.augment_dense(image, dense, self.image_size, self.cfg, rng)
        else:
            image = _augment(image, self.image_size, self.cfg, rng)
        return {"image": image, "label": label, **extra, **dense}


@dataclasses.dataclass(frozen=True)
class _EvalExample(grain.transforms.Map):
    """Position -> example with mask 1, or a zero example with mask 0 past the end.

    `noise` (a _NoisyLabel) is set when evaluating on the training split, so
    that train accuracy is measured against the labels trained on."""

    source: Any
    size: int
    keys: _Keys
    image_shape: tuple[int, int, int]
    noise: _NoisyLabel | None = None

    def map(self, position: int):
        if position >= self.size:
            extra = {k: np.zeros_like(v) for k, v in self.keys.read_extra(self.source[0]).items()}
            return {"image": np.zeros(self.image_shape, np.float32),
                    "label": np.int32(0), "mask": np.float32(0), **extra}
        features = self.source[position]
        if self.noise is not None:
            features = self.noise.map_with_index(position, features)
        image, label = self.keys.read(features)
        image = augment.normalize(_resize(image, self.image_shape[-2]))
        return {"image": image, "label": label, "mask": np.float32(1),
                **self.keys.read_extra(features)}


@dataclasses.dataclass(frozen=True)
class _ViewsExample(grain.transforms.RandomMap):
    """Self-supervised training example: `views.num_views` crops of the image
    ('views', uint8 until `_Photometric`) with their photometric parameters."""

    keys: _Keys
    image_size: int
    views: augment.ViewsConfig

    def random_map(self, features, rng: np.random.Generator):
        image, label = self.keys.read(features)
        views, params = augment.random_views(image, self.image_size, self.views, rng)
        return {"views": views, "view_params": params, "label": label,
                **self.keys.read_extra(features)}


@dataclasses.dataclass(frozen=True)
class _EvalViews(grain.transforms.RandomMap):
    """Views of an eval example (seeded by its position, so every pass over the
    split sees the same views); the clean 'image' stays beside them."""

    views: augment.ViewsConfig

    def random_map(self, example, rng: np.random.Generator):
        pixels = np.round((example["image"] + 1.0) * 127.5).astype(np.uint8)
        views, params = augment.random_views(pixels, pixels.shape[0], self.views, rng)
        return {**example, "views": views, "view_params": params}


@dataclasses.dataclass(frozen=True)
class _Photometric(grain.transforms.Map):
    """A batch's views through the photometric half of the augmentation."""

    def map(self, batch):
        batch = dict(batch)
        batch["views"] = augment.photometric(batch["views"], batch.pop("view_params"))
        return batch


@dataclasses.dataclass(frozen=True)
class _MixBatch(grain.transforms.RandomMap):
    num_classes: int
    cfg: augment.AugmentConfig

    def random_map(self, batch, rng: np.random.Generator):
        return augment.mix_batch(batch, self.num_classes, self.cfg, rng)


@dataclasses.dataclass(frozen=True)
class _OneHot(grain.transforms.Map):
    """Eval batches carry 'soft_label' too when training mixes, so both
    streams have the same keys."""

    num_classes: int

    def map(self, batch):
        return {**batch, "soft_label": np.eye(self.num_classes, dtype=np.float32)[batch["label"]]}


def _seeds(seed: int) -> tuple[int, int]:
    """Independent 32-bit seeds for augmentation and mixing, derived from `seed`."""
    augment_seed, mix_seed = np.random.SeedSequence(seed).generate_state(2)
    return int(augment_seed), int(mix_seed)


def _iterable(ds: grain.MapDataset, data_cfg: Mapping) -> grain.IterDataset:
    # Elements of `ds` are whole batches: threads prefetch batches in order.
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=4, prefetch_buffer_size=4))
    workers = int(_get(data_cfg, "worker_count"))
    if workers > 0:
        # Grain's worker start-up reads absl flags, which raise when unparsed
        # (that is, outside an absl app): accept their defaults.
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return it


# ---------------------------------------------------------------------------
# The in-memory path (memory.py) for splits that fit.


def _in_memory_mode(data_cfg: Mapping):
    """data.in_memory as 'auto', True or False (strings from the command line too)."""
    mode = _get(data_cfg, "in_memory")
    text = str(mode).strip().lower()
    if text in ("auto", "true", "false"):
        return {"auto": "auto", "true": True, "false": False}[text]
    raise ValueError(f"data.in_memory={mode!r} must be 'auto', True or False")


def _use_memory(data_cfg: Mapping, info: DatasetInfo, size: int, why_not: str | None) -> bool:
    """Whether to read a split of `size` examples through memory.py.

    'auto' loads it when its images fit memory.AUTO_MAX_BYTES; True loads it
    whatever its size. Either falls back to Grain, saying why, for what the
    in-memory path does not support (`why_not`).
    """
    mode = _in_memory_mode(data_cfg)
    if mode is False:
        return False
    if why_not is not None:
        (log.warning if mode is True else log.info)(
            "data.in_memory=%s: %s; reading %r through the Grain pipeline", mode, why_not,
            info.name)
        return False
    nbytes = memory.split_bytes(size, info.image_shape)
    if mode == "auto" and nbytes > memory.AUTO_MAX_BYTES:
        log.info("data.in_memory=auto: %r is %.2f GB at its image size, over the %.2f GB "
                 "limit; reading it through the Grain pipeline", info.name, nbytes / 1e9,
                 memory.AUTO_MAX_BYTES / 1e9)
        return False
    return True


# Loaded splits, most recent last: eval reads its split once per process, not
# once per evaluation.
_LOADED: dict = {}
_MAX_LOADED = 4


def _memory_split(data_cfg: Mapping, split: str, source, size: int, keys: _Keys,
                  info: DatasetInfo, noise: "_NoisyLabel | None") -> memory.Split:
    key = (_data_dir(data_cfg), info.name, repr(dict(_get(data_cfg, "shapes"))),
           repr(dict(_get(data_cfg, "moving_shapes"))), split, size, keys,
           info.image_shape, noise, _image_randomization(data_cfg),
           int(_get(data_cfg, "image_randomization_seed")))
    if key not in _LOADED:
        while len(_LOADED) >= _MAX_LOADED:
            _LOADED.pop(next(iter(_LOADED)))
        read = lambda features: (*keys.read(features), keys.read_extra(features))  # noqa: E731
        relabel = None if noise is None else (lambda labels: noisy_labels(
            labels, np.arange(len(labels)), fraction=noise.fraction,
            num_classes=noise.num_classes, seed=noise.seed))
        # (A RandomizedImages source has no dataset_info: its pixels are not cached.)
        directory = getattr(getattr(source, "dataset_info", None), "data_dir", None)
        cache = None if keys.extra or not directory else os.path.join(
            directory, f"in_memory-{split}-{keys.image}-{keys.label}-{info.image_shape[-2]}px.npz")
        _LOADED[key] = memory.load(source, size, read, info.image_shape[-2], relabel=relabel,
                                   cache=cache)
    return _LOADED[key]


def _train_noise(data_cfg: Mapping, keys: _Keys, info: DatasetInfo,
                 size: int) -> "_NoisyLabel | None":
    """The label noise of the train split (None when off)."""
    if _label_noise(data_cfg) <= 0:
        return None
    return _NoisyLabel(keys.label, _label_noise(data_cfg), info.num_classes,
                       int(_get(data_cfg, "label_noise_seed")), size)


# ---------------------------------------------------------------------------
# Public entry points.


def make_train_iterator(data_cfg: Mapping, *, global_batch_size: int, seed: int,
                        process_index: int, process_count: int,
                        extra_keys=(), views: augment.ViewsConfig | None = None
                        ) -> grain.DatasetIterator:
    """An endless iterator of this process's training batches.

    Batches are dicts of numpy arrays: 'image' float32 [L, H, W, C] (clips:
    [L, T, H, W, C]) in [-1, 1], 'label' int32 [L] and, when mixup/cutmix is on, 'soft_label'
    float32 [L, num_classes], with L = global_batch_size // process_count.
    `extra_keys` adds one entry per name (see `extra_value`), e.g. a task's
    further targets. With `views` (self-supervised tasks), 'image' is replaced
    by 'views' float32 [L, V, H, W, C]: V augmented views of each example
    (`augment.random_views`, then `augment.photometric` per batch), and
    `data.augment` is not used. `get_state()` returns a JSON-serialisable dict;
    `set_state()` on a fresh iterator continues exactly where the saved one was.
    """
    local = _local_batch_size(global_batch_size, process_index, process_count)
    info, source, size = _open(data_cfg, _get(data_cfg, "train_split"))
    cfg = _augment_config(data_cfg)
    augment_seed, mix_seed = _seeds(seed)
    keys = _Keys(_get(data_cfg, "image_key"), _get(data_cfg, "label_key"),
                 _extra_keys(extra_keys))

    noise = _train_noise(data_cfg, keys, info, size)
    why_not = memory.unsupported(cfg, info.image_shape, keys.extra, views, DENSE_FEATURES)
    if _use_memory(data_cfg, info, size, why_not):
        if len(info.image_shape) == 4:
            _check_clip_augment(cfg)
        return memory.TrainIterator(
            _memory_split(data_cfg, _get(data_cfg, "train_split"), source, size, keys, info,
                          noise),
            local_batch=local, seed=seed, process_index=process_index,
            process_count=process_count, cfg=cfg, augment_seed=augment_seed,
            mix_seed=mix_seed, num_classes=info.num_classes)

    ds = grain.MapDataset.source(source)[:size]
    if noise is not None:
        ds = ds.map_with_index(noise)
    ds = ds.shuffle(seed=seed).repeat()  # grain reshuffles epoch e with seed + e
    if views is not None:
        if cfg.mixes:
            raise ValueError("data.augment mixup/cutmix cannot be combined with views")
        ds = ds.random_map(_ViewsExample(keys, info.image_shape[0], views), seed=augment_seed)
        return iter(_iterable(ds.batch(local, drop_remainder=True)[process_index::process_count]
                              .map(_Photometric()), data_cfg))
    if len(info.image_shape) == 4:
        _check_clip_augment(cfg)
    ds = ds.random_map(_TrainExample(keys, info.image_shape[-2], cfg), seed=augment_seed)
    ds = ds.batch(local, drop_remainder=True)[process_index::process_count]
    if cfg.mixes:
        ds = ds.random_map(_MixBatch(info.num_classes, cfg), seed=mix_seed)
    return iter(_iterable(ds, data_cfg))


def make_eval_batches(data_cfg: Mapping, *, split: str, global_batch_size: int,
                      process_index: int, process_count: int,
                      extra_keys=(), views: augment.ViewsConfig | None = None,
                      views_seed: int = 0) -> grain.IterDataset:
    """A finite, re-iterable sequence of this process's eval batches.

    Like training batches plus 'mask' float32 [L]: the split is padded with
    zero examples (mask 0) to a whole number of global batches, so every batch
    has L rows and, over all processes, each example appears once with mask 1.
    Never shuffled or augmented. The train split is cut to its
    `num_train_examples` prefix and carries the same `label_noise` as
    training, so "train accuracy" means the data, and labels, trained on.
    With `views`, batches also carry 'views' [L, V, H, W, C]: augmented views
    of the clean images, a pure function of (views_seed, position).
    """
    local = _local_batch_size(global_batch_size, process_index, process_count)
    info, source, size = _open(data_cfg, split)
    keys = _Keys(_get(data_cfg, "image_key"), _get(data_cfg, "label_key"),
                 _extra_keys(extra_keys))
    padded = math.ceil(size / global_batch_size) * global_batch_size
    noise = _train_noise(data_cfg, keys, info, size) if split == _get(
        data_cfg, "train_split") else None
    why_not = None if views is None else "eval views (ssl.views) run on Grain"
    if _use_memory(data_cfg, info, size, why_not):
        return memory.EvalBatches(
            _memory_split(data_cfg, split, source, size, keys, info, noise),
            global_batch=global_batch_size, process_index=process_index,
            process_count=process_count,
            num_classes=info.num_classes if _augment_config(data_cfg).mixes else None)

    ds = grain.MapDataset.range(padded).map(
        _EvalExample(source, size, keys, info.image_shape, noise))
    if views is not None:
        ds = ds.random_map(_EvalViews(views), seed=views_seed)
    ds = ds.batch(local)[process_index::process_count]
    if views is not None:
        ds = ds.map(_Photometric())
    if _augment_config(data_cfg).mixes:
        ds = ds.map(_OneHot(info.num_classes))
    return _iterable(ds, data_cfg)
