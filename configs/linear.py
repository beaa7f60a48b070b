"""A linear softmax classifier on pixels: the baseline every model must beat.

Arguments: dataset=NAME (default shapes), runlocal.

    vision-jax train --config=configs/linear.py --workdir=workdirs/linear

Result: RESULT_PENDING
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
