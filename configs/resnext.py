"""ResNeXt (Xie et al. 2017): the `resnet` model with grouped bottleneck convolutions.

Arguments: variant (default 50_32x4d; one of resnet.RESNEXTS: 50_32x4d,
101_32x8d, 101_64x4d), width=N (default 64), dataset=NAME (default
imagenet2012; shapes/digits/cifar10 use the CIFAR stem at 32x32), runlocal.

ImageNet recipe (Xie et al. 2017 Sec. 5.1 follows the ResNet one: SGD
momentum 0.9, batch 256, lr 0.1 divided by 10 three times, wd 1e-4; here the
Goyal et al. 2017 scaling with cosine decay, as in configs/resnet.py):

    vision-jax train --config=configs/resnext.py:50_32x4d --workdir=workdirs/rx50 \\
        --config.data.data_dir=/path/to/tensorflow_datasets

Result on ImageNet: not run here (needs an accelerator and imagenet2012).
On `shapes`:

not run here (a runlocal smoke run was stopped for lack of time; the
train step is covered by tests/test_cnn_zoo.py).
"""

from vision_jax.config import (
    ConfigError, base_config, imagenet_recipe, parse_arg, shrink_for_local, small_image_recipe)
from vision_jax.models.resnet import RESNEXTS


def get_config(arg=None):
    a = parse_arg(arg, variant="50_32x4d", width=64, dataset="imagenet2012", runlocal=False)
    if a.variant not in RESNEXTS:
        raise ConfigError(f"config argument variant={a.variant!r} is not a ResNeXt; "
                          f"valid choices: {list(RESNEXTS)}")
    depth, groups, width_per_group = RESNEXTS[a.variant]
    c = base_config()
    c.data.name = a.dataset
    imagenet = a.dataset == "imagenet2012"
    c.model = dict(name="resnet", depth=depth, width=a.width, groups=groups,
                   width_per_group=width_per_group,
                   stem="imagenet" if imagenet else "cifar", zero_init_residual=True)
    c.optimizer.name = "nesterov"
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 1e-4 if imagenet else 5e-4
    c.optimizer.grad_clip_norm = 0.0
    c.label_smoothing = 0.1 if imagenet else 0.0
    if imagenet:
        imagenet_recipe(c, batch_size=1024, epochs=90.0)
        c.optimizer.learning_rate = 0.1 * c.batch_size / 256
        c.schedule.warmup_steps = 5 * 1251
    else:
        small_image_recipe(c, a.dataset, epochs=10.0)
        c.optimizer.learning_rate = 0.1
        c.schedule.warmup_steps = 200
        c.eval_every_steps = 1000
    if a.runlocal:
        shrink_for_local(c)
        c.model.stem = "cifar"
    return c
