"""A multi-layer perceptron on pixels.

Arguments (after the colon): hidden sizes joined by 'x' (default 512x512),
dataset=NAME (default shapes), runlocal (a 20-step smoke run).

    vision-jax train --config=configs/mlp.py --workdir=workdirs/mlp
    vision-jax train --config=configs/mlp.py:1024x1024,dataset=digits --workdir=workdirs/mlp_digits

Result (2026-11-23, 2-core x86 CPU shared with other jobs, load average
5-15, data already generated): 63.80% eval accuracy on the 10,000 test
scenes (eval loss 0.927), 1,954 steps of 256 (10 epochs) in 1,210 s,
1,840,136 parameters. Between the linear baseline (17.0%) and the default
CNN (98.75%): without translation equivariance, an MLP must learn each
shape at each position.
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
