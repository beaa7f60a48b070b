"""A multi-layer perceptron on pixels.

Arguments (after the colon): hidden sizes joined by 'x' (default 512x512),
dataset=NAME (default shapes), runlocal (a 20-step smoke run).

    vision-jax train --config=configs/mlp.py --workdir=workdirs/mlp
    vision-jax train --config=configs/mlp.py:1024x1024,dataset=digits --workdir=workdirs/mlp_digits

Result: RESULT_PENDING
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, hidden="512x512", dataset="shapes", runlocal=False)
    c = base_config()
    c.data.name = a.dataset
    c.model = dict(name="mlp", hidden=tuple(int(h) for h in a.hidden.split("x")),
                   activation="relu", dropout=0.0)
    c.batch_size = 256
    c.total_epochs = 10.0
    c.optimizer.learning_rate = 1e-3
    c.schedule.warmup_steps = 100
    c.eval_every_steps = 1000
    return shrink_for_local(c) if a.runlocal else c
