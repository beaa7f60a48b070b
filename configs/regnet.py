"""RegNetX/Y (Radosavovic et al. 2020), generated from their design-space parameters.

Arguments: variant (default Y-400MF; see vision_jax.models.regnet.VARIANTS),
dataset=NAME (default imagenet2012 at 224px; shapes/digits/cifar10 train at
32x32), runlocal.

ImageNet recipe in the style of pycls's RegNet configs (SGD with momentum
0.9, cosine decay, 5 warm-up epochs, weight decay 5e-5, 100 epochs; the
learning rate 0.8 at batch 1024 was not checked against pycls here):

    vision-jax train --config=configs/regnet.py:Y-400MF --workdir=workdirs/regnety_400mf \\
        --config.data.data_dir=/path/to/tensorflow_datasets

On `shapes`:

    vision-jax train --config=configs/regnet.py:Y-400MF,dataset=shapes --workdir=workdirs/rny_shapes

Result: not run here (ImageNet needs an accelerator and the prepared
imagenet2012 dataset; the shapes run was not timed in this session). The
architecture is checked instead: parameter counts equal torchvision's for
every variant, and one sharded train step runs in tests/test_cnn_zoo_efficient.py.
"""

from vision_jax.config import (
    base_config, imagenet_recipe, parse_arg, shrink_for_local, small_image_recipe)


def get_config(arg=None):
    a = parse_arg(arg, variant="Y-400MF", dataset="imagenet2012", runlocal=False)
    c = base_config()
    c.data.name = a.dataset
    imagenet = a.dataset == "imagenet2012"
    c.model = dict(name="regnet", variant=a.variant)
    c.optimizer.name = "nesterov"
    c.optimizer.momentum = 0.9
    c.optimizer.grad_clip_norm = 0.0
    if imagenet:
        imagenet_recipe(c, batch_size=1024, epochs=100.0)
        c.optimizer.learning_rate = 0.8
        c.optimizer.weight_decay = 5e-5
        c.schedule.warmup_steps = 5 * 1251
    else:
        small_image_recipe(c, a.dataset, epochs=30.0)
        c.optimizer.learning_rate = 0.1
        c.optimizer.weight_decay = 5e-4
        c.schedule.warmup_steps = 200
    return shrink_for_local(c) if a.runlocal else c
