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

from vision_jax.config import base_config, parse_arg, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, holdout="6-7", runlocal=False)
    c = base_config()
    c.data.name = "shapes"
    c.model = dict(name="cnn", channels=(32, 64, 128), convs_per_stage=1, norm="none",
                   activation="relu", dropout=0.0)
    c.holdout_classes = tuple(int(k) for k in a.holdout.split("-") if k)
    c.batch_size = 64
    c.total_steps = 800
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.warmup_steps = 100
    c.log_every_steps = 50
    c.eval_every_steps = 0
    c.checkpoint.every_steps = 800
    return shrink_for_local(c) if a.runlocal else c
