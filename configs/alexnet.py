"""AlexNet (Krizhevsky et al. 2012; torchvision's one-tower variant).

Arguments: width_mult=X (default 1.0), dataset=NAME (default
imagenet2012; other datasets are taken at 32x32 with the 3x3 'cifar' stem),
runlocal.

ImageNet recipe (paper Sec. 5: batch 128, SGD momentum 0.9, weight decay
5e-4, lr 0.01 divided by 10 on plateaus, ~90 epochs; torchvision's reference
uses batch 256 and lr 0.01; we use cosine decay):

    vision-jax train --config=configs/alexnet.py --workdir=workdirs/alexnet \\
        --config.data.data_dir=/path/to/tensorflow_datasets

Result on ImageNet: not run here (needs an accelerator and imagenet2012).
On `shapes`:

smoke run only (20 steps, batch 64, 1,024 training scenes), which checks that it
trains end to end, not what it reaches:

    vision-jax train --config=configs/alexnet.py:width_mult=0.25,dataset=shapes,runlocal --workdir=workdirs/alexnet_local

3,571,672 params; train loss 2.08, eval accuracy 13.3%; 110 s wall (40 s compile); 2 shared CPU cores, XLA CPU backend. A full run: not run here.
"""

from vision_jax.config import (
    base_config, imagenet_recipe, parse_arg, shrink_for_local, small_image_recipe)


def get_config(arg=None):
    a = parse_arg(arg, width_mult=1.0, dataset="imagenet2012", runlocal=False)
    c = base_config()
    c.data.name = a.dataset
    imagenet = a.dataset == "imagenet2012"
    c.model = dict(name="alexnet", stem="imagenet" if imagenet else "cifar",
                   width_mult=a.width_mult, dropout=0.5)
    if imagenet:
        imagenet_recipe(c, batch_size=256, epochs=90.0)
        c.optimizer.name = "momentum"
        c.optimizer.momentum = 0.9
        c.optimizer.learning_rate = 0.01 * c.batch_size / 256
        c.optimizer.weight_decay = 5e-4
        c.optimizer.grad_clip_norm = 0.0
        c.eval_every_steps = 10_000
    else:
        small_image_recipe(c, a.dataset, epochs=10.0)
        c.optimizer.name = "adamw"
        c.optimizer.learning_rate = 1e-3
        c.optimizer.weight_decay = 1e-4
        c.schedule.warmup_steps = 200
        c.eval_every_steps = 1000
    if a.runlocal:
        shrink_for_local(c)
        c.model.stem = "cifar"
    return c
