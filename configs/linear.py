"""A linear softmax classifier on pixels: the baseline every model must beat.

Arguments: dataset=NAME (default shapes), runlocal.

    vision-jax train --config=configs/linear.py --workdir=workdirs/linear

Result (2026-11-23, 2-core x86 CPU shared with other jobs, load average 5-12,
data already generated): 17.03% eval accuracy on the 10,000 test scenes
(chance: 12.5%), eval loss 2.088, 1,954 steps in 461 s, 24,584 parameters.
The default CNN (configs/default.py) reaches 98.75% on the same data: the
`shapes` task is not linearly separable in pixel space.
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, dataset="shapes", runlocal=False)
    c = base_config()
    c.data.name = a.dataset
    c.model = dict(name="linear")
    c.batch_size = 256
    c.total_epochs = 10.0
    c.optimizer.learning_rate = 1e-3
    c.optimizer.weight_decay = 0.0
    c.eval_every_steps = 1000
    return shrink_for_local(c) if a.runlocal else c
