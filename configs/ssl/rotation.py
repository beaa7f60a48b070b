"""Rotation prediction (Gidaris et al. 2018, "Unsupervised Representation
Learning by Predicting Image Rotations") on `shapes`, a CPU-sized run.

    vision-jax train --config=configs/ssl/rotation.py --workdir=workdirs/rotation
    vision-jax probe --workdir=workdirs/rotation

Arguments: batch=32 (images; 4 x batch rotated copies), steps=300,
width=16, size=16, runlocal.

Every image is shown at 0, 90, 180 and 270 degrees in the same batch (as
the paper does) and the encoder's head is the 4-way rotation classifier. The
encoder is the CNN of configs/ssl/simclr.py (and its random init is the very
same network below the head), so the probes compare objectives, not
architectures. Light augmentation: flip and a 2 px random shift.

## Lab note, 2026-12-03

Same machine and load as configs/ssl/simclr.py's note (2 shared cores, load
22-36, nice 10; wall times are upper bounds).

    vision-jax train --config=configs/ssl/rotation.py --workdir=/tmp/sslruns/rotation
    300 steps of 32 images (9,600 images, 38,400 rotated copies): 239 s in the
    loop, 7 min 25 s wall with start-up and a 79 s compile, 59 s of user CPU
    time. Eval rotation accuracy 28.8% on the 10,000 test scenes (chance 25%),
    train loss 1.37 (ln 4 = 1.386).

Probes (10,000 train / 10,000 test scenes, 64-d features), against the
same random-init encoder as SimCLR's:

    encoder               shape lin/kNN   colour lin/kNN   count lin/kNN
    rotation, 300 steps   25.2 / 23.0     78.5 / 71.8      47.6 / 44.2
    random init           22.5 / 23.5     83.1 / 80.3      46.2 / 42.6

+2.7 points on the shape linear probe, -4.6 on colour: the pretext task
needs orientation, not colour, and it barely learnt it. On `shapes` rotation
is partly ill-posed: circle, square, diamond and cross look the same after a
quarter turn (objects are only slightly rotated, but five of eight classes
are symmetric under 90 or 180 degrees), so the task's ceiling is well below
100% and the signal is weak at this budget.
"""

from vision_jax.config import parse_arg
from vision_jax.tasks.ssl import ssl_base_config


def get_config(arg=None):
    a = parse_arg(arg, batch=32, steps=300, width=16, size=16, runlocal=False)
    c = ssl_base_config("rotation", width=a.width, size=a.size, batch=a.batch, steps=a.steps,
                        runlocal=a.runlocal)
    c.data.augment.flip = True
    c.data.augment.crop_padding = 2
    return c
