"""LeNet-5 (LeCun et al. 1998) on 32x32 images: the course's historical baseline.

Arguments: activation=NAME (default tanh, the paper's), pool=avg|max,
dataset=NAME (default shapes; any dataset of at least 32x32 images), runlocal.

    vision-jax train --config=configs/lenet.py --workdir=workdirs/lenet

Result: smoke run only (20 steps, batch 64, 1,024 training scenes), which checks that it
trains end to end, not what it reaches:

    vision-jax train --config=configs/lenet.py:runlocal --workdir=workdirs/lenet_local

61,836 params; loss 2.09 (train) / eval accuracy 14.1%; 40 s wall; 2 shared CPU cores, XLA CPU backend. A full run: not run here.
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, activation="tanh", pool="avg", dataset="shapes", runlocal=False)
    c = base_config()
    c.data.name = a.dataset
    c.model = dict(name="lenet", activation=a.activation, pool=a.pool)
    c.batch_size = 128
    c.total_epochs = 10.0
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.warmup_steps = 200
    c.eval_every_steps = 1000
    return shrink_for_local(c) if a.runlocal else c
