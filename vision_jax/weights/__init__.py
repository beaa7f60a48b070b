"""Pretrained weights in and out: timm/torchvision/big_vision files <-> our Flax trees.

    params, batch_stats, meta = import_weights("resnet50.safetensors", config.model)
    export_safetensors(params, batch_stats, "resnet", "out.safetensors")

No torch and no network: the user brings the file. formats.py reads it (the
.pth reader is a restricted unpickler), mapping.py renames and re-lays-out
every tensor, and every foreign key must be used exactly once. The model
config must describe the architecture the weights were trained in: options
where ours differs from the source by default (timm's exact GELU, torch's
batch-norm epsilon, ...) are checked, and the error names the overrides to
add. The CLI (`vision-jax import-weights`, `export-weights`) is in cli.py;
docs/WEIGHTS.md has the coverage table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from vision_jax.weights import formats, mapping
from vision_jax.weights.formats import UnsafePickleError, WeightsError

__all__ = ["PREPROCESSING", "UnsafePickleError", "WeightsError", "check_model",
           "export_safetensors", "family_of", "import_weights"]

# Model config name -> family of mapping.py.
FAMILY_OF_MODEL = {"resnet": "resnet", "vgg": "vgg", "vit": "vit", "efficientnet": "efficientnet"}

# Options the source's architecture fixes: (family, naming) -> {option: (value, why)}.
REQUIRED_OPTIONS: dict[tuple[str, str], dict[str, tuple[Any, str]]] = {
    ("resnet", "torch"): {
        "stem": ("imagenet", "torchvision's 7x7/2 conv and 3x3/2 max-pool"),
        "norm": ("batch", "the weights carry batch-norm statistics"),
        "weight_standardization": (False, "torchvision convolutions are plain"),
        "bn_epsilon": (1e-5, "torch BatchNorm2d's eps"),
    },
    ("vgg", "torch"): {"pool": ("max", "torchvision's 2x2 max-pool")},
    ("vit", "torch"): {
        "exact_gelu": (True, "timm's nn.GELU is the exact erf form"),
        "posemb": ("learn", "a learned pos_embed"),
        "pool": ("tok", "timm's classifier reads the class token"),
        "parametrization": ("sp", "standard parametrization"),
    },
    ("vit", "big_vision"): {
        "exact_gelu": (False, "Flax's nn.gelu, the tanh approximation"),
        "posemb": ("learn", "a learned pos_embedding"),
        "parametrization": ("sp", "standard parametrization"),
    },
    ("efficientnet", "torch"): {"bn_epsilon": (1e-5, "timm's BatchNorm2d eps (torch's)")},
}

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
# What each source's ImageNet models expect (inputs in [0, 1], then
# (x - mean) / std): torchvision's ImageClassification transform, timm's
# default pretrained_cfg, big_vision's value_range(-1, 1) after a plain resize.
# timm tags vary (e.g. resnet50.a1_in1k evaluates at 288 with crop 0.95): a
# config.json with a `pretrained_cfg` next to the file (as the hub ships it)
# replaces these values.
PREPROCESSING: dict[str, dict[str, Any]] = {
    "torchvision": dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=224, crop_pct=0.875,
                        interpolation="bilinear"),
    "timm": dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=224, crop_pct=0.875,
                 interpolation="bicubic"),
    "timm_vit": dict(mean=HALF, std=HALF, input_size=224, crop_pct=0.9,
                     interpolation="bicubic"),
    "big_vision": dict(mean=HALF, std=HALF, input_size=224, crop_pct=1.0,
                       interpolation="bilinear"),
}


def family_of(model_cfg: Mapping[str, Any]) -> str:
    name = model_cfg.get("name")
    if name not in FAMILY_OF_MODEL:
        raise WeightsError(f"model.name={name!r} has no weight mapping; valid choices: "
                           f"{list(FAMILY_OF_MODEL)}")
    return FAMILY_OF_MODEL[name]


def model_options(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config's model options over the model's own defaults."""
    from vision_jax import models
    fields = dataclasses.fields(models.MODELS[model_cfg["name"]])
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    return {**defaults, **dict(model_cfg)}


def check_model(family: str, naming: str, model_cfg: Mapping[str, Any]) -> None:
    """Raises WeightsError naming the overrides the config needs for these weights."""
    options = model_options(model_cfg)
    wrong = [(k, v, why) for k, (v, why) in REQUIRED_OPTIONS.get((family, naming), {}).items()
             if options.get(k) != v]
    if wrong:
        raise WeightsError(
            "the model config does not describe the architecture of these weights; add "
            + " ".join(f"--config.model.{k}={v}" for k, v, _ in wrong)
            + " (to the import and to training): "
            + "; ".join(f"{k} is {options.get(k)!r}, needs {v!r} ({why})" for k, v, why in wrong))


def _head(family: str, naming: str, tensors: Mapping[str, np.ndarray]) -> int:
    """Number of classes of the foreign classifier."""
    if naming == "big_vision":
        key = next((k for k in tensors if k.endswith("head/kernel")), None)
        axis = -1
    else:
        key = {"resnet": "fc.weight", "vgg": "classifier.6.weight", "vit": "head.weight",
               "efficientnet": "classifier.weight"}[family]
        axis = 0
    if key not in tensors:
        raise WeightsError(f"no classifier ({key or 'head/kernel'}) among the {len(tensors)} "
                           f"keys (first: {sorted(tensors)[:8]}); is this a {family}?")
    return int(tensors[key].shape[axis])


def _vit_image_size(naming: str, tensors: Mapping[str, np.ndarray], patch: int) -> int:
    """Input side of the foreign ViT, from its position-embedding table."""
    if naming == "torch":
        rows, cls = tensors.get("pos_embed", np.zeros((1, 0, 0))).shape[1], "cls_token" in tensors
    else:
        key = next((k for k in tensors if k.endswith("pos_embedding")), "")
        rows = tensors[key].shape[1] if key else 0
        # The newest big_vision table has no class-token row.
        cls = any(k.endswith("cls") for k in tensors) and "Transformer/" in key
    side = math.isqrt(max(rows - cls, 0))
    if side == 0 or side * side != rows - cls:
        raise WeightsError(f"position embedding of {rows} rows is no square grid of patches")
    return side * patch


def abstract_variables(model_cfg: Mapping[str, Any], num_classes: int,
                       image_size: int = 64) -> dict[tuple[str, ...], jax.ShapeDtypeStruct]:
    """Our flat {(collection, ...path): ShapeDtypeStruct} of the config's model."""
    from flax import linen as nn

    from vision_jax import models
    model = models.build_model(model_cfg, num_classes=num_classes)
    images = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
    variables = nn.unbox(jax.eval_shape(
        lambda x: model.init(jax.random.PRNGKey(0), x, train=False), images))
    return traverse_util.flatten_dict(dict(variables))


def _preprocessing(source: str, path: str, image_size: int | None) -> dict[str, Any]:
    out = dict(PREPROCESSING[source])
    if image_size:
        out["input_size"] = image_size
    sidecar = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    cfg = {}
    if os.path.isfile(sidecar):
        with open(sidecar) as f:
            cfg = json.load(f).get("pretrained_cfg") or {}
    for key in ("mean", "std", "interpolation", "crop_pct"):
        if key in cfg:
            out[key] = tuple(cfg[key]) if isinstance(cfg[key], list) else cfg[key]
    if "input_size" in cfg:
        out["input_size"] = int(cfg["input_size"][-1])
    out["resize"] = math.floor(out["input_size"] / out["crop_pct"])
    out["from"] = "config.json pretrained_cfg" if cfg else f"{source} defaults"
    return out


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_weights(path: str, model_cfg: Mapping[str, Any]):
    """(params, batch_stats, meta) of the weights file `path` for `model_cfg`.

    `params` and `batch_stats` are nested dicts of float32 NumPy arrays shaped
    like the model's (batch_stats is {} for models without batch norm); the
    number of classes (and a ViT's input size) come from the file. `meta`
    records the file, its format, the source and the preprocessing it expects.
    """
    family = family_of(model_cfg)
    tensors, fmt = formats.read(path)
    naming = mapping.detect_naming(family, tensors)
    num_classes = _head(family, naming, tensors)
    check_model(family, naming, model_cfg)
    image_size = None
    if family == "vit":
        from vision_jax.models.vit import decode_variant
        image_size = _vit_image_size(naming, tensors, decode_variant(model_cfg["variant"])[1])
    shapes = abstract_variables(model_cfg, num_classes, image_size or 64)
    rules = mapping.rules_for(family, naming, shapes, tensors)
    flat = mapping.to_ours(rules, tensors, shapes)
    trees = traverse_util.unflatten_dict(flat)
    if naming == "big_vision":
        source = "big_vision"
    else:
        source = "torchvision" if fmt == "torch" and family in ("resnet", "vgg") else "timm"
    recipe = "timm_vit" if (family, source) == ("vit", "timm") else source
    meta = dict(file=os.path.abspath(path), sha256=sha256(path), format=fmt, family=family,
                naming=naming, source=source, num_classes=num_classes,
                num_tensors=len(tensors), preprocessing=_preprocessing(recipe, path, image_size),
                model={k: v for k, v in dict(model_cfg).items()})
    return trees.get("params", {}), trees.get("batch_stats", {}), meta


def export_safetensors(params, batch_stats, family: str, path: str,
                       metadata: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Writes our `params`/`batch_stats` to `path` under timm/torchvision names.

    Returns the written {name: array}. `metadata` (JSON-able) goes into the
    safetensors header next to the family.
    """
    if family not in mapping.FAMILIES:
        raise WeightsError(f"family={family!r}; valid choices: {list(mapping.FAMILIES)}")
    variables = {"params": params}
    if batch_stats:
        variables["batch_stats"] = batch_stats
    flat = {k: np.asarray(jax.device_get(v))
            for k, v in traverse_util.flatten_dict(variables).items()}
    rules = mapping.rules_for(family, mapping.EXPORT_NAMING[family], flat)
    missing = sorted("/".join(p) for p in set(flat) - {p for r in rules for p in r.ours})
    if missing:
        raise WeightsError(f"{family}: {len(missing)} leaves have no foreign name: {missing}")
    tensors = mapping.to_theirs(rules, flat)
    formats.write_safetensors(tensors, path, {"format": "pt", "vision_jax_family": family,
                                              **(metadata or {})})
    return tensors
