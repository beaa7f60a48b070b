"""The default job: a small CNN on the built-in `shapes` dataset, on a laptop CPU.

This is the README's first command. Arguments: runlocal (a 20-step smoke run).

    vision-jax train --config=configs/default.py --workdir=workdirs/default

Result: RESULT_PENDING
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, runlocal=False)
    c = base_config()
    c.data.name = "shapes"
    c.model = dict(name="cnn", channels=(32, 64, 128), convs_per_stage=1, norm="none",
                   activation="relu", dropout=0.0)
    c.batch_size = 64
    c.total_examples = 160_000  # 3.2 epochs of the 50k training scenes
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.warmup_steps = 250
    c.log_every_steps = 50
    c.eval_every_steps = 1000
    c.checkpoint.every_steps = 1000
    return shrink_for_local(c) if a.runlocal else c
