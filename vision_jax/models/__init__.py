"""The model zoo: one file per family, built by name from a config.

    model = build_model(config.model, num_classes=1000, dtype=jnp.bfloat16)
    variables = model.init(rngs, images, train=False)
    logits = model.apply(variables, images, train=True,
                         rngs={'dropout': key}, mutable=['batch_stats'])

Every model maps float images [B, H, W, C] to float32 logits [B, num_classes],
takes `train` as a keyword, draws dropout noise from the 'dropout' RNG stream,
keeps batch-norm statistics in 'batch_stats', and creates every parameter with
logical axis names (see vision_jax/sharding.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax.numpy as jnp

from vision_jax.models.alexnet import AlexNet
from vision_jax.models.cnn import CNN
from vision_jax.models.efficientnet import EfficientNet
from vision_jax.models.googlenet import GoogLeNet
from vision_jax.models.lenet import LeNet
from vision_jax.models.linear import Linear
from vision_jax.models.mlp import MLP
from vision_jax.models.mobilenet import MobileNetV1, MobileNetV2, MobileNetV3
from vision_jax.models.ode import ODENet
from vision_jax.models.regnet import RegNet
from vision_jax.models.resnet import ResNet
from vision_jax.models.segmentation import FCN, SegUNet
from vision_jax.models.supermask import Supermask
from vision_jax.models.vgg import VGG
from vision_jax.models.video import VIDEO_MODELS
from vision_jax.models.vit import ViT

MODELS: dict[str, type[nn.Module]] = {
    "linear": Linear,
    "mlp": MLP,
    "cnn": CNN,
    "lenet": LeNet,
    "alexnet": AlexNet,
    "vgg": VGG,
    "googlenet": GoogLeNet,
    "mobilenet_v1": MobileNetV1,
    "mobilenet_v2": MobileNetV2,
    "mobilenet_v3": MobileNetV3,
    "efficientnet": EfficientNet,
    "regnet": RegNet,
    "resnet": ResNet,
    "vit": ViT,
    "odenet": ODENet,  # an adaptive ODE solve as the network's depth (vision_jax/models/ode.py)
    **VIDEO_MODELS,  # clips [B, T, H, W, C] -> logits: single_frame ... timesformer
    "fcn": FCN, "seg_unet": SegUNet,  # per-pixel logits [B, H, W, K]: tasks/segmentation.py
    "supermask": Supermask,  # any classifier above, frozen at init, a mask learned (prune.py)
}

# Set by build_model's arguments, never by the model config.
_RESERVED = ("num_classes", "dtype", "param_dtype")


def model_options(name: str) -> tuple[str, ...]:
    """The config keys (besides 'name') that model `name` accepts; () for a name
    that is not a model (build_model reports those with the valid names)."""
    if name not in MODELS:
        return ()
    fields = dataclasses.fields(MODELS[name])
    return tuple(f.name for f in fields
                 if f.init and f.name not in ("parent", "name", *_RESERVED))


def build_model(model_cfg: Mapping[str, Any], *, num_classes: int,
                dtype: Any = jnp.float32, param_dtype: Any = jnp.float32) -> nn.Module:
    """Instantiates `MODELS[model_cfg['name']]` with the config's other keys.

    `dtype` is the compute dtype, `param_dtype` that of the parameters; logits
    are float32 regardless. Raises ValueError naming the offending key and the
    valid choices for an unknown model, an unknown key, or an invalid value.
    """
    options = dict(model_cfg.items())
    name = options.pop("name", None)
    if name not in MODELS:
        raise ValueError(f"model.name={name!r} is not a model; valid choices: {list(MODELS)}")
    valid = model_options(name)
    for key in options:
        if key in _RESERVED:
            raise ValueError(f"model.{key} is set by the trainer (build_model's {key} argument), "
                             f"not by the model config; valid keys for {name!r}: {list(valid)}")
        if key not in valid:
            raise ValueError(f"model.{key} is not an option of model {name!r}; "
                             f"valid keys: {list(valid)}")
    # Configs may hold lists (e.g. from the command line); module fields are hashable tuples.
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return MODELS[name](num_classes=num_classes, dtype=dtype, param_dtype=param_dtype, **options)


__all__ = ["MODELS", "build_model", "model_options", "AlexNet", "CNN", "EfficientNet", "GoogLeNet", "LeNet", "Linear", "MLP", "MobileNetV1", "MobileNetV2", "MobileNetV3", "RegNet", "VGG", "ResNet", "ViT"]
