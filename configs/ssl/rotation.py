"""Rotation prediction (Gidaris et al. 2018, "Unsupervised Representation
Learning by Predicting Image Rotations") on `shapes`, a CPU-sized run.

    vision-jax train --config=configs/ssl/rotation.py --workdir=workdirs/rotation
    vision-jax probe --workdir=workdirs/rotation

Arguments: batch=128 (images; 4 x batch rotated copies), steps=600,
width=32, runlocal.

Every image is shown at 0, 90, 180 and 270 degrees in the same batch (as
the paper does) and the encoder's head is the 4-way rotation classifier. The
encoder is the CNN of configs/ssl/simclr.py, so the probes compare objectives,
not architectures. Light augmentation: flip and a 2 px random shift.
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
