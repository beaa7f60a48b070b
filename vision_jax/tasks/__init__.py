"""Objectives as data: `config.task` names one of these, and the one trainer runs it.

Each task is a file; see `vision_jax/tasks/base.py` for the interface.
"""

from __future__ import annotations

import importlib

from vision_jax.tasks.base import Task, group_params, with_group

# name -> "module:class", imported when asked for.
REGISTRY = {
    "classification": "vision_jax.tasks.classification:Classification",
    "gan": "vision_jax.tasks.gan:GAN",
    "diffusion": "vision_jax.tasks.diffusion:Diffusion",
    "flow": "vision_jax.tasks.flow:Flow",
    "ffjord": "vision_jax.tasks.ffjord:FFJORD",  # a 2-D continuous normalising flow (diffrax)
    "attributes": "vision_jax.tasks.attributes:Attributes",
    "lm": "vision_jax.tasks.lm:LanguageModel",
    "pixelcnn": "vision_jax.tasks.likelihood:PixelCNN",
    "vae": "vision_jax.tasks.likelihood:VAE",
    "realnvp": "vision_jax.tasks.likelihood:RealNVP",
    "segmentation": "vision_jax.tasks.segmentation:Segmentation",
    "style_transfer": "vision_jax.tasks.style:JohnsonStyle",
    "simclr": "vision_jax.tasks.ssl:SimCLR", "rotation": "vision_jax.tasks.ssl:Rotation",
    "nerf": "vision_jax.tasks.three_d:NeRF", "pointnet": "vision_jax.tasks.three_d:PointNetTask",
    "voxels": "vision_jax.tasks.three_d:VoxelTask",
}


def get_class(name: str) -> type[Task]:
    if name not in REGISTRY:
        raise KeyError(name)
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def build(config, info, **dtypes) -> Task:
    """The task `config.task` names, for a dataset described by `info`."""
    return get_class(config.task)(config, info, **dtypes)


__all__ = ["REGISTRY", "Task", "build", "get_class", "group_params", "with_group"]
