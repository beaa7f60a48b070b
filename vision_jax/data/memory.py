"""The in-memory input path: a small split decoded once into numpy, batches
gathered by index, augmentation applied to whole batches by jitted ops.

The Grain pipeline (pipeline.py) decodes, resizes and augments every example
of every epoch in Python, one at a time; on a small model that costs more
than the train step. Here a split is read once per process (`load`: uint8
images already at `data.image_size`, labels after label noise, the task's
extra entries), and a batch is a numpy gather plus one jitted call.

The order is the Grain pipeline's, by construction: the stream's element j
is read from the same `grain.MapDataset.range(N).shuffle(seed).repeat()`
index map, and process p's k-th batch is global batch k of the stream cut
into per-process slices exactly as `ds.batch(L)[p::P]` cuts it. A test
checks the two give the same examples in the same order. Each process holds
the whole split (the global shuffle sends any example to any process); only
the batches are per process. The iterator state is Grain's own
({'next_index': k}), so a checkpoint resumes on either path.

Augmentation keeps `data.augment`'s interface and draws: each example's
randomness comes from a key folded from (augment seed, its position j in the
stream), so a batch is a pure function of (seed, step) and does not depend on
the number of processes. The jitted ops (dm-pix and jax.numpy) draw
differently from the numpy ops of augment.py, so an augmented run is not
bit-identical to its Grain twin; with no augmentation (configs/default.py)
the batches are identical. Mixup/CutMix stays augment.mix_batch, seeded per
batch. What this path does not do (the views of self-supervised tasks,
per-pixel targets that must follow the geometry, random resized crops,
RandAugment, augmented clips) falls back to Grain with a message saying why.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
from typing import Any, Mapping

import grain
import numpy as np

from vision_jax.data import augment

log = logging.getLogger("vision_jax")

#: `data.in_memory='auto'` loads a split when its uint8 images at
#: `data.image_size` take at most this many bytes (the 50k default `shapes`
#: scenes at 32x32 take 154 MB).
AUTO_MAX_BYTES = 2 * 2**30


def split_bytes(num_examples: int, image_shape) -> int:
    """Bytes of a split's uint8 images at the pipeline's shape."""
    return int(num_examples) * int(np.prod(image_shape))


def unsupported(cfg: augment.AugmentConfig, image_shape, extra_keys, views,
                dense_keys) -> str | None:
    """Why the in-memory path cannot serve a training stream, or None when it can."""
    if views is not None:
        return "the two-view self-supervised augmentation (ssl.views) runs on Grain"
    dense = sorted(set(extra_keys) & set(dense_keys))
    if dense:
        return f"per-pixel targets {dense} must follow the geometry (augment.augment_dense)"
    if cfg.min_crop_area is not None:
        return "data.augment.random_resized_crop crops before resizing, per example"
    if cfg.randaugment_layers:
        return "data.augment.randaugment_layers uses Pillow ops per example"
    if len(image_shape) == 4 and _augments(cfg):
        return "augmented clips (one draw per clip) run on Grain"
    return None


def _augments(cfg: augment.AugmentConfig) -> bool:
    """Whether any per-example op is on (mixing is per batch and separate)."""
    return bool(cfg.crop_padding or cfg.flip or cfg.color_jitter or cfg.cutout)


# ---------------------------------------------------------------------------
# Loading.


@dataclasses.dataclass(frozen=True)
class Split:
    """A split in memory: images uint8 [N, H, W, C] (clips [N, T, H, W, C]) at
    the pipeline's size, labels int32 [N] (after label noise), extra entries."""

    images: np.ndarray
    labels: np.ndarray
    extra: dict

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> dict:
        """The examples at `indices`: uint8 'image', 'label' and the extra entries."""
        return {"image": self.images[indices], "label": self.labels[indices],
                **{k: v[indices] for k, v in self.extra.items()}}


def load(source, size: int, read, image_size: int, *, relabel=None,
         cache: str | None = None) -> Split:
    """Reads the first `size` examples of `source` once.

    `read(features)` -> (image, label, extra dict), as the Grain transforms
    read them; `relabel(labels)` (label noise) then replaces labels as the
    Grain pipeline does, from each example's position in the split. With
    `cache` (a file path), the decoded images and labels of the whole split
    are kept there, so later processes (a sweep's trials) skip the decoding;
    a split with extra entries is not cached.
    """
    split = _load_cached(cache, size) if cache else None
    if split is None:
        whole = len(source) if cache else size
        split = _decode(source, whole, read, image_size)
        if cache and not split.extra:
            _save_cached(cache, split)
        split = Split(split.images[:size], split.labels[:size],
                      {k: v[:size] for k, v in split.extra.items()})
    if relabel is not None:
        split = dataclasses.replace(split, labels=relabel(split.labels))
    return split


def _decode(source, size: int, read, image_size: int) -> Split:
    from vision_jax.data.pipeline import _resize  # the Grain path's own resize

    images, labels, extra = [], np.empty(size, np.int32), {}
    for i, features in enumerate(_read_all(source, size)):
        image, label, more = read(features)
        images.append(_resize(image, image_size))
        labels[i] = label
        for k, v in more.items():
            extra.setdefault(k, []).append(v)
    return Split(np.stack(images), labels, {k: np.stack(v) for k, v in extra.items()})


def _load_cached(path: str, size: int) -> Split | None:
    try:
        with np.load(path) as f:
            if len(f["labels"]) >= size:
                return Split(f["images"][:size], f["labels"][:size], {})
    except (OSError, KeyError, ValueError):
        pass
    return None


def _save_cached(path: str, split: Split) -> None:
    """Writes atomically (concurrent trials may race); a read-only data_dir is fine."""
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    try:
        np.savez(tmp, images=split.images, labels=split.labels)
        os.replace(tmp, path)
    except OSError as e:
        log.info("not caching the decoded split at %s: %s", path, e)


def _read_all(source, size: int, chunk: int = 1024):
    """source[0], ..., source[size - 1], decoded in chunks by a few threads
    (a TFDS source's `__getitems__` reads a chunk in one call)."""
    import concurrent.futures

    def read(start):
        keys = list(range(start, min(start + chunk, size)))
        if hasattr(source, "__getitems__"):
            return source.__getitems__(keys)
        return [source[i] for i in keys]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for part in pool.map(read, range(0, size, chunk)):
            yield from part


# ---------------------------------------------------------------------------
# Jitted per-example augmentation of a batch (dm-pix and jax.numpy).


def _augment_one(image, u, cfg: augment.AugmentConfig):
    """augment.augment_image's ops for one uint8 [H, W, C] image, in its order
    (pad-and-crop shift, flip, colour jitter, normalise, cutout), with its
    draws read off `u`, float32 [_DRAWS] uniforms in [0, 1)."""
    import dm_pix
    import jax
    import jax.numpy as jnp

    height, width, channels = image.shape
    x = image.astype(jnp.float32)
    if cfg.crop_padding:
        p = cfg.crop_padding
        padded = jnp.pad(x, ((p, p), (p, p), (0, 0)), mode="reflect")
        top, left = (jnp.floor(u[:2] * (2 * p + 1))).astype(jnp.int32)
        x = jax.lax.dynamic_slice(padded, (top, left, 0), (height, width, channels))
    if cfg.flip:
        x = jnp.where(u[2] < 0.5, dm_pix.flip_left_right(x), x)
    if cfg.color_jitter:
        s = cfg.color_jitter
        brightness, contrast, saturation = 1 - s + 2 * s * u[3:6]
        x = x * brightness
        x = (x - x.mean()) * contrast + x.mean()
        if channels == 3:
            grey = x @ jnp.array([0.299, 0.587, 0.114], jnp.float32)
            x = (x - grey[..., None]) * saturation + grey[..., None]
        x = jnp.clip(x, 0, 255)
    x = jnp.clip(x / 127.5 - 1.0, -1.0, 1.0)  # XLA may multiply by 1/127.5
    if cfg.cutout:
        cy, cx = jnp.floor(u[6] * height), jnp.floor(u[7] * width)
        rows, cols = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
        half = cfg.cutout // 2
        inside = ((rows >= cy - half) & (rows < cy + cfg.cutout - half)
                  & (cols >= cx - half) & (cols < cx + cfg.cutout - half))
        x = jnp.where(inside[..., None], 0.0, x)
    return x


_DRAWS = 8  # uniforms per example: shift (2), flip, jitter (3), cutout centre (2)


@functools.lru_cache(maxsize=None)
def _batch_augmenter(cfg: augment.AugmentConfig):
    """(uint8 images [L, H, W, C], positions uint32 [L, 2], seed) -> float32
    images, jitted once per config. One threefry hash per example: its key is
    folded from the seed and its stream position, then gives all its draws."""
    import jax

    def run(images, positions, seed):
        base = jax.random.key(seed)

        def draws(hi_lo):
            key = jax.random.fold_in(jax.random.fold_in(base, hi_lo[0]), hi_lo[1])
            return jax.random.uniform(key, (_DRAWS,))

        u = jax.vmap(draws)(positions)
        return jax.vmap(lambda im, ui: _augment_one(im, ui, cfg))(images, u)

    return jax.jit(run)


def augment_batch(images: np.ndarray, positions: np.ndarray, cfg: augment.AugmentConfig,
                  seed: int) -> np.ndarray:
    """The per-example training augmentation of a batch: uint8 [L, ...] images
    and their stream positions [L] -> normalised float32. Without augmentation
    it is augment.normalize, bit-identical to the Grain path."""
    if not _augments(cfg):
        return augment.normalize(images)
    import jax

    positions = np.asarray(positions, np.int64)
    hi_lo = np.stack([positions >> 31, positions & (2**31 - 1)], -1).astype(np.uint32)
    ops = dataclasses.replace(cfg, mixup_alpha=0.0, cutmix_alpha=0.0)  # one compile for both
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        return np.asarray(_batch_augmenter(ops)(images, hi_lo, np.uint32(seed)))


# ---------------------------------------------------------------------------
# Iterators.


class TrainIterator:
    """Endless per-process training batches from a Split, in the Grain order.

    get_state()/set_state() use the Grain iterator's format, {'next_index': k}
    with k the number of this process's batches already returned.
    """

    def __init__(self, split: Split, *, local_batch: int, seed: int, process_index: int,
                 process_count: int, cfg: augment.AugmentConfig, augment_seed: int,
                 mix_seed: int, num_classes: int):
        self.split, self.local, self.cfg = split, local_batch, cfg
        self.p, self.n_proc = process_index, process_count
        self.augment_seed, self.mix_seed, self.num_classes = augment_seed, mix_seed, num_classes
        # The Grain pipeline's index map: stream position -> example.
        self.order = grain.MapDataset.range(len(split)).shuffle(seed=seed).repeat()
        self.next_index = 0

    def __iter__(self):
        return self

    def positions(self, k: int) -> np.ndarray:
        """Stream positions of this process's k-th batch: local batch k * P + p."""
        start = (k * self.n_proc + self.p) * self.local
        return np.arange(start, start + self.local, dtype=np.int64)

    def indices(self, k: int) -> np.ndarray:
        """Examples of this process's k-th batch (positions in the split)."""
        return np.fromiter((self.order[int(j)] for j in self.positions(k)), np.int64,
                           count=self.local)

    def __next__(self) -> dict:
        k = self.next_index
        positions = self.positions(k)
        batch = self.split.take(self.indices(k))
        batch["image"] = augment_batch(batch["image"], positions, self.cfg, self.augment_seed)
        if self.cfg.mixes:
            rng = np.random.default_rng((self.mix_seed, k * self.n_proc + self.p))
            batch = augment.mix_batch(batch, self.num_classes, self.cfg, rng)
        self.next_index = k + 1
        return batch

    def get_state(self) -> dict:
        return {"next_index": self.next_index}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.next_index = int(state["next_index"])


class EvalBatches:
    """A finite, re-iterable sequence of per-process eval batches from a Split:
    the Grain eval pipeline's batches (padded with zero examples, mask 0)."""

    def __init__(self, split: Split, *, global_batch: int, process_index: int,
                 process_count: int, num_classes: int | None):
        self.split, self.global_batch = split, global_batch
        self.local = global_batch // process_count
        self.p, self.n_proc, self.num_classes = process_index, process_count, num_classes

    def __len__(self) -> int:
        return math.ceil(len(self.split) / self.global_batch)

    def __iter__(self):
        size = len(self.split)
        for b in range(len(self)):
            start = (b * self.n_proc + self.p) * self.local
            positions = np.arange(start, start + self.local)
            real = positions < size
            batch = self.split.take(np.where(real, positions, 0))
            batch["image"] = augment.normalize(batch["image"])
            for k, v in batch.items():  # padding rows are zeros, as Grain's
                v[~real] = 0
            batch["mask"] = real.astype(np.float32)
            if self.num_classes is not None:
                batch["soft_label"] = np.eye(self.num_classes,
                                             dtype=np.float32)[batch["label"]]
            yield batch
