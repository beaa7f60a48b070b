"""Shortcut learning on `shapes` (the cow-on-grass / Waterbirds setting) and
three mitigations: group-balanced reweighting, group DRO (Sagawa et al.
2020) and JTT (Liu et al. 2021). See vision_jax/shortcuts.py and
docs/OPEN_PROBLEMS.md.

In training, the background kind is the label's own kind (classes i and i+4
share kind i) with probability `strength`, another kind otherwise
(`data.shapes.spurious`); test backgrounds are uniform and independent of
the label. Groups are (label, background): 32.

    vision-jax train --config=configs/shortcuts.py:strength=0.9,method=group_dro \\
        --workdir=workdirs/shortcuts/group_dro_0.9
    vision-jax shortcuts jtt --config=configs/shortcuts.py:strength=0.9,method=jtt \\
        --workdir=workdirs/shortcuts/jtt_0.9
    vision-jax shortcuts sweep --workdir=workdirs/shortcuts \\
        --strengths 0.5,0.9,0.99 --figure docs/figures/shortcut_sweep.png

Arguments: strength (train P(background = label's kind); 0.25 = none),
method=erm|reweight|group_dro|jtt, runlocal.

CPU size: 6,000 training and 2,000 test scenes drawn at 32x32 and resized
to 16x16, a 3-stage CNN (16/32/64 channels), 500 steps of 64 (5.3 epochs);
JTT's first stage is 100 steps (about one epoch), its upweight 20. Group
DRO's step size is 0.1, not the paper's 0.01: these runs take 500 steps,
not hundreds of epochs. Every run's summary carries the subgroup metrics (accuracy per
background, per background x colour and per (label, background) group, the
worst group and the gap).

## Lab note

(filled in below by the sweep)
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, strength=0.9, method="erm", runlocal=False)
    c = base_config()
    c.data.name = "shapes"
    c.data.shapes.train_size = 6_000
    c.data.shapes.test_size = 2_000
    c.data.shapes.spurious = float(a.strength)
    c.data.image_size = 16  # scenes drawn at 32x32, resized: a quarter of the compute
    c.model = dict(name="cnn", channels=(16, 32, 64), convs_per_stage=1, norm="none",
                   activation="relu", dropout=0.0)
    c.batch_size = 64
    c.total_steps = 500
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.warmup_steps = 50
    c.shortcut = dict(method=a.method, dro_step_size=0.1, jtt_upweight=20.0,
                      jtt_errors="", jtt_steps=100)
    c.log_every_steps = 50
    c.eval_every_steps = 0
    c.checkpoint.every_steps = 500
    if a.runlocal:
        c = shrink_for_local(c)
        c.shortcut.jtt_steps = 10
    return c
