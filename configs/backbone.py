"""The default backbone of `vision-jax synthesize` and the Johnson style task
(vision_jax/backbone.py): a VGG-style CNN (two 3x3 convolutions per stage,
16/32/64 channels) trained on `shapes` at 32x32. Commands train it on first
use into ~/.cache/vision_jax/backbones/shapes_vgg_r32; by hand:

    vision-jax train --config=configs/backbone.py \\
        --workdir=~/.cache/vision_jax/backbones/shapes_vgg_r32.partial

Arguments: steps (default 500), width_mult (default 1.0), resolution
(default 32), runlocal (a 20-step smoke run). The tests shrink it
(width_mult=0.25, a few steps).

Lab note, 2026-12-03 (the default as committed): a 2-core AMD EPYC VM shared
with four other agents' trainings (load average 20-35 on 2 cores; wall times
are upper bounds), jax 0.10.2, float32, one CPU device, the cached 32x32
`shapes` (50,000 training scenes; a fresh machine first generates them).
500 steps of 64 (0.64 epochs), AdamW 3e-3, cosine: test accuracy 72.69% on
the 10,000 test scenes (loss 0.745; chance 12.5%), 72,600 parameters,
1.8e7 forward FLOPs per 32x32 image; 1,231 s of training at 29 examples/s,
1,295 s for the whole first call (compile and the 10,000-scene eval
included). The first attempt, 32/64/128 channels for 1,200 steps, ran at
1.5-3.8 s a step under the same load (30-75 min) and was cut to this size.
How much style its features carry: docs/SYNTHESIS.md.
"""

from vision_jax.backbone import backbone_config
from vision_jax.config import parse_arg


def get_config(arg=None):
    a = parse_arg(arg, steps=500, width_mult=1.0, resolution=32, runlocal=False)
    return backbone_config(steps=a.steps, width_mult=a.width_mult, resolution=a.resolution,
                           runlocal=a.runlocal)
