"""The default backbone of `vision-jax synthesize` and the Johnson style task
(vision_jax/backbone.py): a VGG-style CNN (two 3x3 convolutions per stage,
16/32/64 channels) trained on `shapes` at 32x32. Commands train it on first
use into ~/.cache/vision_jax/backbones/shapes_vgg_r32; by hand:

    vision-jax train --config=configs/backbone.py \\
        --workdir=~/.cache/vision_jax/backbones/shapes_vgg_r32.partial

Arguments: steps (default 500), width_mult (default 1.0), resolution
(default 32), runlocal (a 20-step smoke run). The tests shrink it
(width_mult=0.25, a few steps).

Result: LAB NOTE PENDING
"""

from vision_jax.backbone import backbone_config
from vision_jax.config import parse_arg


def get_config(arg=None):
    a = parse_arg(arg, steps=500, width_mult=1.0, resolution=32, runlocal=False)
    return backbone_config(steps=a.steps, width_mult=a.width_mult, resolution=a.resolution,
                           runlocal=a.runlocal)
