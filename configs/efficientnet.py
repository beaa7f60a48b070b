"""EfficientNet-B0..B7 (Tan & Le 2019).

Arguments: variant (default B0; B0..B7), width_mult=X / depth_mult=X (override
the variant's coefficients, e.g. with efficientnet.compound_scale(phi)),
dataset=NAME (default imagenet2012 at the variant's published resolution;
shapes/digits/cifar10 train at 32x32), runlocal.

ImageNet recipe, adapted from the paper's Sec. 5.2 (RMSProp, decay 0.9,
momentum 0.9, lr 0.256 per 4096 examples, weight decay 1e-5, 350 epochs,
stochastic depth 0.2, AutoAugment); here with cosine decay and RandAugment:

    vision-jax train --config=configs/efficientnet.py:B0 --workdir=workdirs/effnet_b0 \\
        --config.data.data_dir=/path/to/tensorflow_datasets

On `shapes`:

    vision-jax train --config=configs/efficientnet.py:B0,dataset=shapes --workdir=workdirs/b0_shapes

Result: not run here (ImageNet needs an accelerator and the prepared
imagenet2012 dataset; the shapes run was not timed in this session). The
architecture is checked instead: parameter counts equal torchvision's for
B0..B7, and one sharded train step runs in tests/test_cnn_zoo_efficient.py.
"""

from vision_jax.config import (
    base_config, imagenet_recipe, parse_arg, shrink_for_local, small_image_recipe)
from vision_jax.models.efficientnet import VARIANTS


def get_config(arg=None):
    a = parse_arg(arg, variant="B0", width_mult=-1.0, depth_mult=-1.0,
                  dataset="imagenet2012", runlocal=False)
    c = base_config()
    c.data.name = a.dataset
    imagenet = a.dataset == "imagenet2012"
    c.model = dict(name="efficientnet", variant=a.variant, stochastic_depth=0.2)
    # -1 keeps the variant's published coefficient.
    if a.width_mult > 0:
        c.model.width_mult = a.width_mult
    if a.depth_mult > 0:
        c.model.depth_mult = a.depth_mult
    c.label_smoothing = 0.1
    c.optimizer.grad_clip_norm = 0.0
    if imagenet:
        imagenet_recipe(c, batch_size=4096, epochs=350.0)
        c.data.image_size = VARIANTS[a.variant][2]
        c.data.augment.randaugment_layers = 2
        c.optimizer.name = "rmsprop"
        c.optimizer.momentum = 0.9
        c.optimizer.learning_rate = 0.256
        c.optimizer.weight_decay = 1e-5
        c.schedule.warmup_steps = 5 * 313
    else:
        small_image_recipe(c, a.dataset, epochs=30.0)
        c.optimizer.name = "adamw"
        c.optimizer.learning_rate = 2e-3
        c.optimizer.weight_decay = 5e-2
        c.schedule.warmup_steps = 200
    return shrink_for_local(c) if a.runlocal else c
