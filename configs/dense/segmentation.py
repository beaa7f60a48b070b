"""Semantic segmentation of `shapes` scenes (tasks/segmentation.py): FCN-8s on
a ResNet-18 (Long et al. 2015) or a U-Net (Ronneberger et al. 2015), trained
from scratch with per-pixel softmax cross-entropy on the 9 classes of the
semantic mask (background + 8 shapes).

    vision-jax train --config=configs/dense/segmentation.py:model=fcn --workdir=workdirs/seg_fcn
    vision-jax train --config=configs/dense/segmentation.py:model=unet --workdir=workdirs/seg_unet
    vision-jax segment --workdir=workdirs/seg_fcn --out docs/figures/segmentation.png

Arguments: model=fcn|unet, steps (training steps at batch 64), runlocal.

Models (models/segmentation.py), both at 32x32:
  fcn   FCN-8s: ResNet-18 at width 16 with the 'cifar' stem (stages at
        strides 1, 2, 4, 8), 1x1 score layers on the last three stages,
        bilinear upsampling; 0.70M parameters.
  unet  U-Net: 3 levels of two 3x3 conv + batch norm + ReLU, widths 16, 32,
        64, transposed-conv upsampling, skip concatenation; 0.12M parameters.
Training: AdamW 3e-3, weight decay 1e-4, 100 warmup steps then cosine,
batch 64, horizontal flips (the masks flip with the images).

Metrics are on the 10,000 test scenes at 32x32: mIoU over the 9 classes
(background included), mIoU over the 8 shape classes, pixel accuracy.

No lab-note run yet.
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local

MODELS = {
    "fcn": dict(name="fcn", variant="8s", depth=18, width=16, stem="cifar"),
    "unet": dict(name="seg_unet", width=16, levels=3, norm="batch"),
}


def get_config(arg=None):
    a = parse_arg(arg, model="fcn", steps=1500, runlocal=False)
    if a.model not in MODELS:
        raise ValueError(f"model={a.model!r}: expected one of {sorted(MODELS)}")
    c = base_config()
    c.task = "segmentation"
    c.data.name = "shapes"
    c.data.augment.flip = True
    c.model = dict(MODELS[a.model])
    c.batch_size = 64
    c.total_steps = a.steps
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.warmup_steps = 100
    c.log_every_steps = 50
    c.eval_every_steps = 0
    c.checkpoint.every_steps = 500
    if a.runlocal:
        shrink_for_local(c)
        c.schedule.warmup_steps = 5
    return c
