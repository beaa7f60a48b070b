"""Vision Transformer, any variant of vision_jax.models.vit.VARIANTS.

Arguments: variant (default B/16), dataset=NAME (default imagenet2012),
pool (tok|gap, default tok), posemb (learn|sincos2d), scan, runlocal.

ImageNet-1k from scratch, following big_vision's "better plain ViT
baselines" recipe (Beyer et al. 2022: global average pooling, sin-cos 2-D
position embedding, batch 1024, Adam lr 1e-3 with 10k warm-up steps and
cosine decay, decoupled weight decay 1e-4, RandAugment(2, 10), mixup 0.2, 90
epochs; the paper reports 76.5% top-1 for ViT-S/16 after 90 epochs):

    vision-jax train --config=configs/vit.py:S/16,pool=gap,posemb=sincos2d \\
        --workdir=workdirs/vit_s16 --config.data.data_dir=/path/to/tensorflow_datasets

Result on ImageNet: not run here (needs an accelerator and the prepared
dataset). Throughput: see `vision-jax bench --config=configs/vit.py:B/16` in
the README. On `shapes` (32x32, patch 4):

not run to completion here. A narrowed ViT-Ti/4 (width 64, depth 4, 4 heads,
mlp 256, gap pooling, sin-cos positions; 203,720 parameters) learns more
slowly than a CNN on `shapes`: 23% training accuracy after 300 steps of 128
(2026-11-23, 2-core CPU shared with other jobs, ~180 images/s), when the run
was stopped; in notebooks/course_walkthrough.ipynb's short setting (400 steps
of 32 on 4,000 scenes) it reaches 17.0% against the CNN's 32.8%.
"""

import ml_collections

from vision_jax.config import (
    base_config, imagenet_recipe, parse_arg, shrink_for_local, small_image_recipe)


def _optional(kind):
    return ml_collections.FieldReference(None, field_type=kind)


def get_config(arg=None):
    a = parse_arg(arg, variant="B/16", dataset="imagenet2012", pool="tok", posemb="learn",
                  scan=False, runlocal=False)
    c = base_config()
    c.model = dict(name="vit", variant=a.variant, pool=a.pool, posemb=a.posemb, scan=a.scan,
                   remat_policy="none", attention_impl=_optional(str), dropout=0.0,
                   # Overrides of the variant's table row, for sweeps (None: the table's).
                   width=_optional(int), depth=_optional(int), mlp_dim=_optional(int),
                   num_heads=_optional(int))
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.weight_decay = 1e-4
    c.optimizer.grad_clip_norm = 1.0
    if a.dataset == "imagenet2012":
        imagenet_recipe(c)
        c.data.augment.randaugment_layers = 2
        c.data.augment.randaugment_magnitude = 10
        c.data.augment.mixup_alpha = 0.2
        c.schedule.warmup_steps = 10_000
    else:
        small_image_recipe(c, a.dataset)
        c.schedule.warmup_steps = 500
    return shrink_for_local(c) if a.runlocal else c
