"""The in-house feature network of FID/KID (vision_jax/evaluate/features.py).

A CNN with three heads on `shapes` (task `attributes`): the main object's
shape, its colour, the number of objects; its 128-d penultimate features
replace Inception's for FID, KID and precision/recall. Arguments:
resolution=16|32, runlocal (a 20-step smoke run).

    vision-jax train --config=configs/feature_net.py:resolution=16 \
        --workdir=~/.cache/vision_jax/feature_nets/shapes_r16

`vision-jax evaluate-samples` trains it there by itself when it is missing.

Result (2026-12-03, 2-core AMD EPYC VM shared with other jobs, jax 0.10.2,
float32, one CPU device), resolution=16: test accuracy on the 10,000 test
scenes 91.03% shape, 99.73% colour, 82.12% count after 3,000 steps of 64
(3.84 epochs), 297 s of training (~650 examples/s), 95,828 parameters; 8 min
52 s for the whole first call including generating the 60,000 scenes.
resolution=32: not yet measured. Evaluation numbers: docs/GENERATIVE.md.
"""

from vision_jax.config import parse_arg
from vision_jax.evaluate.features import feature_net_config


def get_config(arg=None):
    a = parse_arg(arg, resolution=16, runlocal=False)
    return feature_net_config(a.resolution, runlocal=a.runlocal)
