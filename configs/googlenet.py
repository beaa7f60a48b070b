"""GoogLeNet / Inception v1 (Szegedy et al. 2015; torchvision's layout with batch norm).

Arguments: width_mult=X (default 1.0), aux (the two auxiliary heads;
their logits are sown, the trainer's loss uses the main head only),
dataset=NAME (default imagenet2012; the same network runs at 32x32, where its
ceil-mode pools end on a 1x1 map), runlocal.

ImageNet recipe: the paper trained with asynchronous SGD (momentum 0.9, lr
decreased 4% every 8 epochs) and heavy photometric/scale augmentation; here
the synchronous equivalent with cosine decay, not tuned:

    vision-jax train --config=configs/googlenet.py --workdir=workdirs/googlenet \\
        --config.data.data_dir=/path/to/tensorflow_datasets

Result on ImageNet: not run here (needs an accelerator and imagenet2012).
On `shapes`:

smoke run only (20 steps, batch 64, 1,024 training scenes), which checks that it
trains end to end, not what it reaches:

    vision-jax train --config=configs/googlenet.py:width_mult=0.25,dataset=shapes,runlocal --workdir=workdirs/googlenet_local

356,544 params; train loss 2.41, eval loss 35.4 (BN running statistics after 20 steps), eval accuracy 13.3%; 455 s wall (210 s compile); 2 shared CPU cores, XLA CPU backend. A full run: not run here.
"""

from vision_jax.config import (
    base_config, imagenet_recipe, parse_arg, shrink_for_local, small_image_recipe)


def get_config(arg=None):
    a = parse_arg(arg, width_mult=1.0, aux=False, dataset="imagenet2012",
                  runlocal=False)
    c = base_config()
    c.data.name = a.dataset
    imagenet = a.dataset == "imagenet2012"
    c.model = dict(name="googlenet", width_mult=a.width_mult, aux_logits=a.aux)
    c.optimizer.name = "nesterov"
    c.optimizer.momentum = 0.9
    c.optimizer.grad_clip_norm = 0.0
    if imagenet:
        imagenet_recipe(c, batch_size=256, epochs=90.0)
        c.optimizer.learning_rate = 0.1 * c.batch_size / 256
        c.optimizer.weight_decay = 1e-4
        c.schedule.warmup_steps = 5 * 5005
        c.label_smoothing = 0.1
        c.eval_every_steps = 10_000
    else:
        small_image_recipe(c, a.dataset, epochs=10.0)
        c.optimizer.learning_rate = 0.1
        c.optimizer.weight_decay = 5e-4
        c.schedule.warmup_steps = 200
        c.eval_every_steps = 1000
    return shrink_for_local(c) if a.runlocal else c
