"""Open-set training for calibration and out-of-distribution detection:
configs/default.py's CNN on `shapes`, with two shape classes held out
(`holdout_classes`: star and cross get no loss and leave eval), so that
`vision-jax calibrate` can score unseen classes as well as noise images.

    vision-jax train --config=configs/open_set.py --workdir=workdirs/open_set
    vision-jax calibrate --workdir=workdirs/open_set --figures=docs/figures

Arguments: holdout (classes to hold out, '-'-separated indices of
shapes.SHAPES; '' for none), runlocal.

The budget is the adversarial study's standard run (800 steps of 64, about
one epoch of the 50,000 scenes), so that the CPU variant stays within
minutes. The eval accuracy in the summary is over the six trained classes.
Results: docs/OPEN_PROBLEMS.md.
"""

import os

from vision_jax.config import load_config, parse_arg


def get_config(arg=None):
    a = parse_arg(arg, holdout="6-7", runlocal=False)
    # configs/default.py's data, model, optimiser and runlocal switch.
    c = load_config(os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.py")
                    + (":runlocal" if a.runlocal else ""))
    c.unlock()
    c.holdout_classes = tuple(int(k) for k in a.holdout.split("-") if k)
    if not a.runlocal:
        c.total_steps, c.total_examples = 800, -1
        c.schedule.warmup_steps = 100
        c.eval_every_steps = 0
        c.checkpoint.every_steps = 800
    return c
