"""MobileNet v1 (Howard et al. 2017), v2 (Sandler et al. 2018), v3 (Howard et al. 2019).

Arguments: version (default v2; v1, v2, v3_large, v3_small), width_mult=X
(default 1.0), dataset=NAME (default imagenet2012 at 224px; shapes/digits/
cifar10 train at 32x32), runlocal.

ImageNet recipe, after torchvision's (SGD momentum 0.9, lr 0.045 per 256
examples, weight decay 4e-5, 300 epochs; we use cosine decay rather than
its step decay):

    vision-jax train --config=configs/mobilenet.py:v2 --workdir=workdirs/mnv2 \\
        --config.data.data_dir=/path/to/tensorflow_datasets

On `shapes`:

    vision-jax train --config=configs/mobilenet.py:v2,dataset=shapes --workdir=workdirs/mnv2_shapes

Result: not run here (ImageNet needs an accelerator and the prepared
imagenet2012 dataset; the shapes run was not timed in this session). The
architecture is checked instead: parameter counts equal torchvision's (v2,
v3) and the paper's 4.2M (v1), and one sharded train step runs in
tests/test_cnn_zoo_efficient.py.
"""

from vision_jax.config import (
    ConfigError, base_config, imagenet_recipe, parse_arg, shrink_for_local, small_image_recipe)

# version -> model config (without width_mult).
VERSIONS = {
    "v1": dict(name="mobilenet_v1"),
    "v2": dict(name="mobilenet_v2"),
    "v3_large": dict(name="mobilenet_v3", variant="large"),
    "v3_small": dict(name="mobilenet_v3", variant="small"),
}


def get_config(arg=None):
    a = parse_arg(arg, version="v2", width_mult=1.0, dataset="imagenet2012", runlocal=False)
    if a.version not in VERSIONS:
        raise ConfigError(f"config argument version={a.version!r}; valid: {list(VERSIONS)}")
    c = base_config()
    c.data.name = a.dataset
    imagenet = a.dataset == "imagenet2012"
    c.model = dict(VERSIONS[a.version], width_mult=a.width_mult)
    c.optimizer.grad_clip_norm = 0.0
    if imagenet:
        imagenet_recipe(c, batch_size=1024, epochs=300.0)
        c.optimizer.name = "momentum"
        c.optimizer.momentum = 0.9
        c.optimizer.learning_rate = 0.045 * c.batch_size / 256
        c.optimizer.weight_decay = 4e-5
        c.schedule.warmup_steps = 5 * 1251
        c.label_smoothing = 0.1
    else:
        small_image_recipe(c, a.dataset, epochs=30.0)
        c.optimizer.name = "adamw"
        c.optimizer.learning_rate = 2e-3
        c.optimizer.weight_decay = 5e-2
        c.schedule.warmup_steps = 200
    return shrink_for_local(c) if a.runlocal else c
