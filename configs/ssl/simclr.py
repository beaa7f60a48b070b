"""SimCLR (Chen et al. 2020) on `shapes`: NT-Xent over the global batch, a CPU-sized run.

    vision-jax train --config=configs/ssl/simclr.py --workdir=workdirs/simclr
    vision-jax probe --workdir=workdirs/simclr
    vision-jax probe --workdir=workdirs/simclr --random-init   # the baseline

Arguments: batch=256 (examples; 2 x batch views), temperature=0.5,
steps=600, width=32 (the CNN's first stage; 2x, 4x after), runlocal.

The encoder is configs/default.py's CNN with batch norm; its 128-d global
average pool is the representation that `vision-jax probe` freezes. Its head
(128 -> 128) is the projection MLP's first layer, then ReLU and a linear map
to 64-d z. Views: random resized crop (area >= 0.2: a 32 px scene cropped to
8% leaves too little of the object), flip, colour jitter (p 0.8, s 0.5),
grayscale (p 0.2), Gaussian blur (p 0.5, sigma 0.1..2, 3 px kernel). LARS
and batch 4096 in the paper; AdamW and a small batch here.
"""

from vision_jax.config import parse_arg
from vision_jax.tasks.ssl import ssl_base_config


def get_config(arg=None):
    a = parse_arg(arg, batch=64, temperature=0.5, steps=300, width=16, size=16,
                  runlocal=False)
    c = ssl_base_config("simclr", width=a.width, size=a.size, batch=a.batch, steps=a.steps,
                        runlocal=a.runlocal)
    c.ssl.temperature = a.temperature
    c.ssl.projection_hidden = 4 * a.width
    c.ssl.views.min_crop_area = 0.2
    if a.runlocal:
        c.batch_size = 32
    return c
