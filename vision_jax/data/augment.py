"""Image augmentations in numpy and Pillow, driven by an explicit generator.

Every random choice draws from the `np.random.Generator` that Grain's
`random_map` hands to the transform, seeded from (pipeline seed, position in
the stream). So a batch is a pure function of (seed, step): runs reproduce,
resumption is exact, and no global RNG state is touched.

Per-example ops take and return uint8 [H, W, C] arrays (C is 1 or 3) until
`color_jitter`, which works in float32; batch-level mixing (`mix_batch`) acts
on normalised float images.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping

import numpy as np
import PIL.Image
import PIL.ImageEnhance
import PIL.ImageOps

# Inception-style crop: aspect ratios drawn log-uniformly in this range.
_CROP_RATIO = (3 / 4, 4 / 3)
# Minimum crop area when `random_resized_crop=True` (the Inception default).
_INCEPTION_MIN_AREA = 0.08
_FILL = 128  # grey fill for pixels that geometric RandAugment ops uncover


def _known_keys(cls, cfg: Mapping | None, section: str) -> dict:
    """A config section as a dict, after checking its keys against the fields of `cls`."""
    cfg = dict(cfg or {})
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(cfg) - valid)
    if unknown:
        raise ValueError(f"{section} has unknown keys {unknown}; valid keys: {sorted(valid)}")
    return cfg


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """The `data.augment` section; every op is off by default.

    random_resized_crop: False (or 0), True (Inception crop, area in [0.08, 1])
      or a float in (0, 1]: the minimum area fraction, for small images where
      8% would leave only a few pixels.
    color_jitter: strength s; brightness, contrast and saturation factors are
      drawn from [1 - s, 1 + s].
    randaugment_magnitude: on RandAugment's 0..10 scale.
    cutout: side in pixels of a square set to zero (the dataset mean, after
      normalisation) at a uniformly drawn centre, clipped at the borders
      (DeVries & Taylor 2017, "Improved Regularization of Convolutional
      Neural Networks with Cutout"; they use 16 on 32x32 CIFAR-10).
    mixup_alpha, cutmix_alpha: Beta(alpha, alpha) mixing; with both on, each
      batch uses one of the two with equal probability.
    """

    crop_padding: int = 0
    random_resized_crop: bool | float = False
    flip: bool = False
    color_jitter: float = 0.0
    randaugment_layers: int = 0
    randaugment_magnitude: float = 9
    cutout: int = 0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0

    def __post_init__(self):
        checks = {
            "crop_padding": self.crop_padding >= 0,
            "random_resized_crop": (isinstance(self.random_resized_crop, bool)
                                    or 0 <= self.random_resized_crop <= 1),
            "color_jitter": 0 <= self.color_jitter < 1,
            "randaugment_layers": self.randaugment_layers >= 0,
            "randaugment_magnitude": 0 <= self.randaugment_magnitude <= 10,
            "cutout": isinstance(self.cutout, int) and self.cutout >= 0,
            "mixup_alpha": self.mixup_alpha >= 0,
            "cutmix_alpha": self.cutmix_alpha >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"data.augment.{key}={getattr(self, key)!r} is out of range; "
                                 f"see vision_jax.data.augment.AugmentConfig")

    @classmethod
    def from_mapping(cls, cfg: Mapping | None) -> "AugmentConfig":
        return cls(**_known_keys(cls, cfg, "data.augment"))

    @property
    def mixes(self) -> bool:
        """Whether batches are mixed (and so carry 'soft_label')."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    @property
    def min_crop_area(self) -> float | None:
        if not self.random_resized_crop:  # False or 0: off
            return None
        if self.random_resized_crop is True:
            return _INCEPTION_MIN_AREA
        return float(self.random_resized_crop)


# ---------------------------------------------------------------------------
# Geometry.


def _to_pil(image: np.ndarray) -> PIL.Image.Image:
    return PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def _from_pil(image: PIL.Image.Image, channels: int) -> np.ndarray:
    array = np.asarray(image)
    return array[..., None] if channels == 1 else array


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of uint8 [H, W, C] to [size, size, C] (a no-op if equal).

    Pillow's bilinear filter widens its support when shrinking, so downsizing
    is anti-aliased.
    """
    if image.shape[:2] == (size, size):
        return image
    pil = _to_pil(image).resize((size, size), PIL.Image.BILINEAR)
    return _from_pil(pil, image.shape[-1])


def crop_window(height: int, width: int, min_area: float, rng: np.random.Generator,
                tries: int = 10) -> tuple[slice, slice]:
    """The (rows, cols) window of an Inception crop: a random area fraction
    and aspect ratio; the whole image if every try falls outside it."""
    for _ in range(tries):
        area = rng.uniform(min_area, 1.0) * height * width
        ratio = math.exp(rng.uniform(*np.log(_CROP_RATIO)))
        h = int(round(math.sqrt(area / ratio)))
        w = int(round(math.sqrt(area * ratio)))
        if 0 < h <= height and 0 < w <= width:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return slice(top, top + h), slice(left, left + w)
    return slice(0, height), slice(0, width)


def random_resized_crop(image: np.ndarray, size: int, min_area: float,
                        rng: np.random.Generator, tries: int = 10) -> np.ndarray:
    """Inception crop: a random area fraction and aspect ratio, resized to size."""
    return resize(image[crop_window(*image.shape[:2], min_area, rng, tries)], size)


def pad_and_crop(image: np.ndarray, padding: int, rng: np.random.Generator) -> np.ndarray:
    """Reflect-pads by `padding` and crops back at a random offset (a random shift)."""
    height, width = image.shape[:2]
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)), mode="reflect")
    top, left = rng.integers(0, 2 * padding + 1, size=2)
    return padded[top:top + height, left:left + width]


def random_flip(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image[:, ::-1] if rng.random() < 0.5 else image


# ---------------------------------------------------------------------------
# Dense targets: per-pixel maps (a semantic mask, instance ids) that follow the
# image's geometry. Labels are never blended: maps are resampled
# nearest-neighbour, and photometric ops leave them alone.


def resize_nearest(labels: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a map [H, W] (any dtype) to [size, size].

    Output pixel i samples input pixel floor((i + 1/2) H / size): pixel
    centres map to pixel centres, as in Pillow's bilinear `resize`, so a map
    resized here stays aligned with its image resized there.
    """
    height, width = labels.shape[:2]
    if (height, width) == (size, size):
        return labels
    rows = np.minimum(((np.arange(size) + 0.5) * height / size).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size) + 0.5) * width / size).astype(np.int64), width - 1)
    return labels[rows[:, None], cols[None, :]]


def augment_dense(image: np.ndarray, maps: Mapping[str, np.ndarray], size: int,
                  cfg: AugmentConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """`augment_image` for an image and its per-pixel maps {name: [H, W]}.

    The geometric ops (random resized crop or resize, pad-and-crop shift,
    flip) move every map with the pixels: the same window, offsets and flip,
    maps resampled nearest-neighbour and reflect-padded like the image. The
    photometric ops (colour jitter, cutout) change the image only. The draws
    are augment_image's, in its order, so the image is the one augment_image
    returns for the same generator. RandAugment, whose ops mix geometry and
    photometry, is refused rather than applied to the image alone.
    """
    if cfg.randaugment_layers:
        raise ValueError("data.augment.randaugment_layers must be 0 with per-pixel targets: "
                         "RandAugment's rotations and shears would move the pixels without "
                         "their labels")
    for name, m in maps.items():
        if m.shape != image.shape[:2]:
            raise ValueError(f"per-pixel map {name!r} has shape {m.shape}, the image "
                             f"{image.shape[:2]}")
    if cfg.min_crop_area is not None:
        window = crop_window(*image.shape[:2], cfg.min_crop_area, rng)
        image, maps = image[window], {k: m[window] for k, m in maps.items()}
    image, maps = resize(image, size), {k: resize_nearest(m, size) for k, m in maps.items()}
    if cfg.crop_padding or cfg.flip:
        # Shift and flip are exact index maps: apply them to the image and the
        # maps stacked as channels, so they share every draw.
        channels = image.shape[-1]
        joint = np.concatenate([image.astype(np.int64)]
                               + [m[..., None].astype(np.int64) for m in maps.values()], -1)
        if cfg.crop_padding:
            joint = pad_and_crop(joint, cfg.crop_padding, rng)
        if cfg.flip:
            joint = random_flip(joint, rng)
        image = joint[..., :channels].astype(np.uint8)
        maps = {k: joint[..., channels + i].astype(m.dtype)
                for i, (k, m) in enumerate(maps.items())}
    photometric = dataclasses.replace(cfg, random_resized_crop=False, crop_padding=0,
                                      flip=False)
    return augment_image(image, size, photometric, rng), dict(maps)


# ---------------------------------------------------------------------------
# RandAugment (Cubuk et al., 2020): `layers` ops drawn uniformly, each at a
# shared magnitude. Each op maps (PIL image, level in [0, 1], signed) -> image.


def _signed(level: float, rng: np.random.Generator) -> float:
    return level if rng.random() < 0.5 else -level


def _enhance(enhancer) -> Callable:
    return lambda img, level, rng: enhancer(img).enhance(1.0 + 0.9 * _signed(level, rng))


def _affine(make_matrix) -> Callable:
    def op(img, level, rng):
        matrix = make_matrix(_signed(level, rng), img.size)
        fill = _FILL if img.mode == "L" else (_FILL,) * 3
        return img.transform(img.size, PIL.Image.AFFINE, matrix,
                             resample=PIL.Image.BILINEAR, fillcolor=fill)
    return op


_RANDAUGMENT_OPS: dict[str, Callable] = {
    "identity": lambda img, level, rng: img,
    "autocontrast": lambda img, level, rng: PIL.ImageOps.autocontrast(img),
    "equalize": lambda img, level, rng: PIL.ImageOps.equalize(img),
    "rotate": lambda img, level, rng: img.rotate(
        30.0 * _signed(level, rng), resample=PIL.Image.BILINEAR,
        fillcolor=_FILL if img.mode == "L" else (_FILL,) * 3),
    "solarize": lambda img, level, rng: PIL.ImageOps.solarize(img, int(256 - 256 * level)),
    "posterize": lambda img, level, rng: PIL.ImageOps.posterize(img, 8 - int(round(4 * level))),
    "color": _enhance(PIL.ImageEnhance.Color),
    "contrast": _enhance(PIL.ImageEnhance.Contrast),
    "brightness": _enhance(PIL.ImageEnhance.Brightness),
    "sharpness": _enhance(PIL.ImageEnhance.Sharpness),
    "shear_x": _affine(lambda s, size: (1, 0.3 * s, 0, 0, 1, 0)),
    "shear_y": _affine(lambda s, size: (1, 0, 0, 0.3 * s, 1, 0)),
    "translate_x": _affine(lambda s, size: (1, 0, 0.3 * s * size[0], 0, 1, 0)),
    "translate_y": _affine(lambda s, size: (1, 0, 0, 0, 1, 0.3 * s * size[1])),
}
RANDAUGMENT_OPS = tuple(_RANDAUGMENT_OPS)


def randaugment(image: np.ndarray, layers: int, magnitude: float,
                rng: np.random.Generator) -> np.ndarray:
    names = rng.choice(len(RANDAUGMENT_OPS), size=layers)
    pil = _to_pil(image)
    for i in names:
        pil = _RANDAUGMENT_OPS[RANDAUGMENT_OPS[i]](pil, magnitude / 10.0, rng)
    return _from_pil(pil, image.shape[-1])


# ---------------------------------------------------------------------------
# Photometric.


def color_jitter(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation jitter on float32 [0, 255] images."""
    brightness, contrast, saturation = rng.uniform(1 - strength, 1 + strength, size=3)
    image = image * brightness
    image = (image - image.mean()) * contrast + image.mean()
    if image.shape[-1] == 3:
        grey = image @ np.array([0.299, 0.587, 0.114], np.float32)
        image = (image - grey[..., None]) * saturation + grey[..., None]
    return np.clip(image, 0, 255).astype(np.float32)


def normalize(image: np.ndarray) -> np.ndarray:
    """uint8 or float [0, 255] -> float32 in [-1, 1]."""
    return (np.asarray(image, np.float32) / 127.5 - 1.0).astype(np.float32)


def augment_image(image: np.ndarray, size: int, cfg: AugmentConfig,
                  rng: np.random.Generator) -> np.ndarray:
    """The training transform: uint8 [H, W, C] -> normalised float32 [size, size, C].

    The crop comes first, on the full-resolution image, so that cropping and
    resizing cost one resampling.
    """
    if cfg.min_crop_area is not None:
        image = random_resized_crop(image, size, cfg.min_crop_area, rng)
    else:
        image = resize(image, size)
    if cfg.crop_padding:
        image = pad_and_crop(image, cfg.crop_padding, rng)
    if cfg.flip:
        image = random_flip(image, rng)
    if cfg.randaugment_layers:
        image = randaugment(image, cfg.randaugment_layers, cfg.randaugment_magnitude, rng)
    image = image.astype(np.float32)
    if cfg.color_jitter:
        image = color_jitter(image, cfg.color_jitter, rng)
    image = normalize(image)
    if cfg.cutout:
        image = cutout(image, cfg.cutout, rng)
    return image


def _random_box(height: int, width: int, box_h: int, box_w: int,
                rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a box_h x box_w box centred uniformly, clipped.

    The centre may lie anywhere in the image, so boxes near a border are
    partly outside it and cover less (as Cutout and CutMix both intend).
    """
    cy, cx = rng.integers(0, height), rng.integers(0, width)
    top, bottom = np.clip([cy - box_h // 2, cy + box_h - box_h // 2], 0, height)
    left, right = np.clip([cx - box_w // 2, cx + box_w - box_w // 2], 0, width)
    return int(top), int(bottom), int(left), int(right)


def cutout(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Zeroes a size x size square of a normalised image (zero is mid-grey here)."""
    top, bottom, left, right = _random_box(*image.shape[:2], size, size, rng)
    image = image.copy()
    image[top:bottom, left:right] = 0.0
    return image


# ---------------------------------------------------------------------------
# Batch mixing: every example is mixed with its mirror in the batch (the
# reversed batch), as in timm; the mixing weight is shared by the batch.


def _cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator):
    """A box covering about (1 - lam) of the image, centred uniformly, clipped."""
    h, w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
    return _random_box(height, width, h, w, rng)


def mix_batch(batch: dict, num_classes: int, cfg: AugmentConfig,
              rng: np.random.Generator) -> dict:
    """Mixup or CutMix on a batch; adds 'soft_label' (rows sum to 1)."""
    images, labels = batch["image"], batch["label"]
    one_hot = np.eye(num_classes, dtype=np.float32)[labels]
    use_cutmix = cfg.cutmix_alpha > 0 and (cfg.mixup_alpha == 0 or rng.random() < 0.5)
    if use_cutmix:
        lam = rng.beta(cfg.cutmix_alpha, cfg.cutmix_alpha)
        top, bottom, left, right = _cutmix_box(*images.shape[1:3], lam, rng)
        images = images.copy()
        images[:, top:bottom, left:right] = images[::-1, top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / (images.shape[1] * images.shape[2])
    else:
        lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha)
        images = lam * images + (1 - lam) * images[::-1]
    soft = lam * one_hot + (1 - lam) * one_hot[::-1]
    return {**batch, "image": images.astype(np.float32), "soft_label": soft.astype(np.float32)}


# ---------------------------------------------------------------------------
# Views for self-supervised learning (SimCLR; Chen et al. 2020, "A Simple
# Framework for Contrastive Learning of Visual Representations", appendix A).
#
# Two halves, so that each example's randomness stays per example and the
# pixel work is one call per batch:
#   - per example, in numpy (`random_views`): the crop and flip of every view,
#     and the draw of its photometric parameters (`VIEW_PARAMS`), all from the
#     example's own generator (seeded by (seed, position in the stream));
#   - per batch (`photometric`): colour jitter, grayscale and blur applied with
#     those parameters by dm-pix, jitted once and vmapped over the views.

#: Columns of the per-view photometric parameters that `random_views` draws.
VIEW_PARAMS = ("jitter", "brightness", "contrast", "saturation", "hue", "grayscale", "blur_sigma")


@dataclasses.dataclass(frozen=True)
class ViewsConfig:
    """SimCLR's augmentation, as a config section (`ssl.views`).

    num_views: views per example (2 for SimCLR).
    min_crop_area: random resized crop's minimum area fraction (0.08 in the
      paper on ImageNet; small images want more).
    flip: horizontal flip with probability 1/2.
    jitter_p, jitter_strength: with probability jitter_p, brightness,
      contrast and saturation factors from [1 - 0.8 s, 1 + 0.8 s] and a hue
      shift from [-0.2 s, 0.2 s] (of a full turn), s = jitter_strength
      (the paper: p = 0.8, s = 1 on ImageNet, s = 0.5 on CIFAR-10). Applied
      in a fixed order (torchvision's ColorJitter shuffles it).
    grayscale_p: probability of converting to grayscale (0.2).
    blur_p, blur_sigma: with probability blur_p a Gaussian blur of sigma
      drawn uniformly from blur_sigma, kernel side 10% of the image (odd, at
      least 3): the paper's ImageNet recipe (it drops blur on CIFAR-10).
    """

    num_views: int = 2
    min_crop_area: float = 0.08
    flip: bool = True
    jitter_p: float = 0.8
    jitter_strength: float = 0.5
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)

    def __post_init__(self):
        checks = {
            "num_views": isinstance(self.num_views, int) and self.num_views >= 1,
            "min_crop_area": 0 < self.min_crop_area <= 1,
            "jitter_p": 0 <= self.jitter_p <= 1,
            "jitter_strength": 0 <= self.jitter_strength <= 1.25,  # factors stay >= 0
            "grayscale_p": 0 <= self.grayscale_p <= 1,
            "blur_p": 0 <= self.blur_p <= 1,
            "blur_sigma": (len(self.blur_sigma) == 2
                           and 0 < self.blur_sigma[0] <= self.blur_sigma[1]),
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"ssl.views.{key}={getattr(self, key)!r} is out of range; "
                                 f"see vision_jax.data.augment.ViewsConfig")

    @classmethod
    def from_mapping(cls, cfg: Mapping | None) -> "ViewsConfig":
        cfg = _known_keys(cls, cfg, "ssl.views")
        if "blur_sigma" in cfg:
            cfg["blur_sigma"] = tuple(float(s) for s in cfg["blur_sigma"])
        return cls(**cfg)


def view_params(cfg: ViewsConfig, rng: np.random.Generator) -> np.ndarray:
    """One view's photometric parameters, float32 [len(VIEW_PARAMS)]."""
    s = cfg.jitter_strength
    jitter = rng.random() < cfg.jitter_p
    brightness, contrast, saturation = rng.uniform(1 - 0.8 * s, 1 + 0.8 * s, size=3)
    hue = rng.uniform(-0.2 * s, 0.2 * s)
    grayscale = rng.random() < cfg.grayscale_p
    sigma = rng.uniform(*cfg.blur_sigma) if rng.random() < cfg.blur_p else 0.0
    return np.array([jitter, brightness, contrast, saturation, hue, grayscale, sigma],
                    np.float32)


def random_views(image: np.ndarray, size: int, cfg: ViewsConfig,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [H, W, C] -> (views uint8 [V, size, size, C], parameters float32 [V, P]).

    The geometric half of the SimCLR augmentation (crop, flip) and the draw
    of the photometric half, which `photometric` applies to whole batches.
    """
    views, params = [], []
    for _ in range(cfg.num_views):
        view = random_resized_crop(image, size, cfg.min_crop_area, rng)
        if cfg.flip:
            view = random_flip(view, rng)
        views.append(np.ascontiguousarray(view))
        params.append(view_params(cfg, rng))
    return np.stack(views), np.stack(params)


def blur_kernel_size(size: int) -> int:
    """SimCLR's blur kernel: 10% of the image side, odd, at least 3."""
    return max(3, int(0.1 * size) // 2 * 2 + 1)


def _photometric_one(image, params, kernel_size: int):
    """One view, float [H, W, C] in [0, 1], with its parameters [P] (JAX, dm-pix)."""
    import dm_pix
    import jax.numpy as jnp

    p = dict(zip(VIEW_PARAMS, params))
    colour = image.shape[-1] == 3
    jittered = jnp.clip(image * p["brightness"], 0, 1)
    jittered = jnp.clip(dm_pix.adjust_contrast(jittered, p["contrast"]), 0, 1)
    if colour:
        jittered = jnp.clip(dm_pix.adjust_saturation(jittered, p["saturation"]), 0, 1)
        jittered = dm_pix.adjust_hue(jittered, p["hue"])
    image = jnp.where(p["jitter"] > 0, jittered, image)
    if colour:
        grey = dm_pix.rgb_to_grayscale(image, keep_dims=True)
        image = jnp.where(p["grayscale"] > 0, jnp.broadcast_to(grey, image.shape), image)
    blurred = dm_pix.gaussian_blur(image, jnp.maximum(p["blur_sigma"], 1e-3), kernel_size)
    return jnp.clip(jnp.where(p["blur_sigma"] > 0, blurred, image), 0, 1)


_PHOTOMETRIC_CACHE: dict = {}


def photometric(views: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The photometric half of the SimCLR augmentation on a batch of views.

    views uint8 or float [..., H, W, C] in [0, 255], params float32 [..., P]
    -> normalised float32 views in [-1, 1]. One jitted dm-pix call per batch
    shape, run on the host's CPU (the pipeline's side of the transfer).
    """
    import jax

    lead, shape = views.shape[:-3], views.shape[-3:]
    kernel = blur_kernel_size(shape[0])
    key = (shape, kernel)
    if key not in _PHOTOMETRIC_CACHE:
        one = lambda v, p: _photometric_one(v, p, kernel)  # noqa: E731
        _PHOTOMETRIC_CACHE[key] = jax.jit(jax.vmap(one))
    flat = np.asarray(views, np.float32).reshape(-1, *shape) / 255.0
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        out = np.asarray(_PHOTOMETRIC_CACHE[key](flat, params.reshape(len(flat), -1)))
    return (out * 2.0 - 1.0).astype(np.float32).reshape(*lead, *shape)
