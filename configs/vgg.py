"""VGG-11/13/16/19 (Simonyan & Zisserman 2015), with or without batch norm.

Arguments: depth (default 16), bn (batch norm), width_mult=X (default
1.0), dataset=NAME (default imagenet2012; shapes/cifar10 train at 32x32, where
the adaptive pool repeats the 1x1 map to 7x7), runlocal.

ImageNet recipe (paper Sec. 3.1: batch 256, SGD momentum 0.9, weight decay
5e-4, dropout 0.5, lr 1e-2 divided by 10 on plateaus, 74 epochs; we use
cosine decay and torchvision's 90 epochs):

    vision-jax train --config=configs/vgg.py:16,bn --workdir=workdirs/vgg16bn \\
        --config.data.data_dir=/path/to/tensorflow_datasets

Result on ImageNet: not run here (needs an accelerator and imagenet2012).

On `shapes` at 32x32, a short run at 1/8 width (VGG-11-BN, 2.2M parameters):

smoke run only (20 steps, batch 64, 1,024 training scenes), which checks that it
trains end to end, not what it reaches:

    vision-jax train --config=configs/vgg.py:11,bn,width_mult=0.125,dataset=shapes,runlocal --workdir=workdirs/vgg_local

2,018,152 params; train loss 2.13, eval accuracy 14.8%; 125 s wall (41 s compile); 2 shared CPU cores, XLA CPU backend. A full run: not run here.
"""

from vision_jax.config import (
    base_config, imagenet_recipe, parse_arg, shrink_for_local, small_image_recipe)


def get_config(arg=None):
    a = parse_arg(arg, depth=16, bn=False, width_mult=1.0, dataset="imagenet2012",
                  runlocal=False)
    c = base_config()
    c.data.name = a.dataset
    imagenet = a.dataset == "imagenet2012"
    c.model = dict(name="vgg", depth=a.depth, batch_norm=a.bn,
                   width_mult=a.width_mult, dropout=0.5)
    if imagenet:
        imagenet_recipe(c, batch_size=256, epochs=90.0)
        c.optimizer.name = "momentum"
        c.optimizer.momentum = 0.9
        c.optimizer.learning_rate = 0.01 * c.batch_size / 256
        c.optimizer.weight_decay = 5e-4
        c.optimizer.grad_clip_norm = 0.0
        c.schedule.warmup_steps = 2 * 5005
        c.eval_every_steps = 10_000
    else:
        small_image_recipe(c, a.dataset, epochs=10.0)
        c.optimizer.name = "adamw"
        c.optimizer.learning_rate = 1e-3
        c.optimizer.weight_decay = 1e-4
        c.schedule.warmup_steps = 200
        c.eval_every_steps = 1000
    return shrink_for_local(c) if a.runlocal else c
