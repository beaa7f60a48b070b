"""ResNet-18/34/50/101/152.

Arguments: depth (default 50), width=N (default 64), dataset=NAME (default
imagenet2012 for the ImageNet recipe; shapes/digits/cifar10 use the CIFAR
stem at 32x32), runlocal.

ImageNet recipe (Goyal et al. 2017, "Accurate, Large Minibatch SGD": batch
1024, lr 0.1 x batch/256 with 5 warm-up epochs, momentum 0.9, wd 1e-4, 90
epochs, step decay at epochs 30/60/80; we use cosine decay instead):

    vision-jax train --config=configs/resnet.py:50 --workdir=workdirs/r50 \\
        --config.data.data_dir=/path/to/tensorflow_datasets

Result on ImageNet: not run here (needs an accelerator and the prepared
imagenet2012 dataset). On `shapes`:

not run to completion here. A partial run (2026-11-23, 2-core x86 CPU
shared with other jobs) of

    vision-jax train --config=configs/resnet.py:18,width=16,dataset=shapes \
        --workdir=workdirs/r18w16 --config.total_epochs=3.0 --config.optimizer.learning_rate=0.05

reached 34.7% eval accuracy at step 400 of 1,172 (701,208 parameters, about
130 images/s) before it was stopped to free the machine. For a model that
finishes on a CPU see configs/default.py.
"""

from vision_jax.config import (
    base_config, imagenet_recipe, parse_arg, shrink_for_local, small_image_recipe)


def get_config(arg=None):
    a = parse_arg(arg, depth=50, width=64, dataset="imagenet2012", runlocal=False)
    c = base_config()
    imagenet = a.dataset == "imagenet2012"
    c.model = dict(name="resnet", depth=a.depth, width=a.width,
                   stem="imagenet" if imagenet else "cifar", zero_init_residual=True)
    c.optimizer.name = "nesterov"
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 1e-4 if imagenet else 5e-4
    c.optimizer.grad_clip_norm = 0.0
    c.label_smoothing = 0.1 if imagenet else 0.0
    if imagenet:
        imagenet_recipe(c)
        c.optimizer.learning_rate = 0.1 * c.batch_size / 256
        c.schedule.warmup_steps = 5 * 1251  # 5 epochs of 1,281,167 / 1024
    else:
        small_image_recipe(c, a.dataset)
        c.optimizer.learning_rate = 0.1
        c.schedule.warmup_steps = 200
    if a.runlocal:
        shrink_for_local(c)
        c.model.stem = "cifar"
    return c
