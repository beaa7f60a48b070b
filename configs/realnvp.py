"""RealNVP (Dinh et al. 2017) on 16x16 `shapes` scenes (one shape each): the exact
density of uniformly dequantised pixels in bits/dim (vision_jax/tasks/likelihood.py).

Arguments (after the colon): variant=T|S|B (vision_jax/models/realnvp.py),
resolution=16|32, runlocal (a 20-step smoke run).

    vision-jax train --config=configs/realnvp.py --workdir=/work/runs/realnvp
    vision-jax sample --workdir=/work/runs/realnvp --num 64

Recipe: the "S" RealNVP (231,513 parameters, 4.8e7 forward FLOPs per 16x16
image; two scales: 3 checkerboard couplings, squeeze, 3 channel couplings,
half the channels out, 4 checkerboard couplings; one residual block of 32
features per coupling network); the shared recipe of likelihood.base_config:
batch 64, Adam 1e-3, 100 warm-up steps, cosine decay to 5%, gradients
clipped at 1, EMA 0.998 (eval and sampling use it). 1,500 steps = 1.9 epochs
of the 50k scenes, sized for ~15 min on an idle 2-core CPU (not measured
idle). bits/dim is of the uniformly dequantised pixels, one v per image:
in expectation an upper bound on the discrete NLL.

Result (2026-12-03, on the shared machine of docs/GENERATIVE.md, "Likelihood
models", whose protocol for shortened runs this follows). Default 1,500-step
run: FULL_RUN_REALNVP
Shortened to 400 steps (25.6k examples, half an epoch) with
`--config.total_steps=400 --config.schedule.warmup_steps=40
--config.ema.decay=0.98` in /work/runs/realnvp_short, it reaches 5.14 test
bits/dim (EMA weights, 10,000 test scenes; 2,736 nats per image) after 6.47
(step 50), 5.04 (250) and 5.13 (400) in training. 37.9 min of wall time,
29.9 of them in the trainer (156 s compiling), 4.5 CPU-minutes. Its 64
samples (`vision-jax sample --workdir=/work/runs/realnvp_short --num 64`,
63 s) are saturated, blotchy fields of colour (magenta, green, blue, white)
varying smoothly over a few pixels: no flat backgrounds, no edges, no
shapes; local colour correlations, which is what bits/dim rewards first.
The 20-step smoke (`:runlocal`) trains and samples end to end.

The flow beats the PixelCNN (7.01) and the VAE (<= 6.94) after these short
runs. A likely reason, untested here: the continuous models know that
neighbouring pixel values are close, while a 256-way softmax must learn the
order of its 256 classes from data (the argument of PixelCNN++, Salimans et
al. 2017, for its discretised logistic mixture); the PixelCNN also saw the
fewest examples.

Context, not a comparison: uniform is 8 bits/dim; independent per-position
histograms give 7.88 on these test scenes. Dinh et al. 2017 report 3.49
bits/dim on CIFAR-10 (arXiv:1605.08803, Table 1): 32x32 natural images, not
comparable with 16x16 synthetic scenes.
"""

from vision_jax.config import parse_arg
from vision_jax.tasks import likelihood


def get_config(arg=None):
    a = parse_arg(arg, variant="S", resolution=16, runlocal=False)
    # alpha: the logit's margin, y = alpha + (1 - 2 alpha) x / 256 (models/realnvp.py).
    return likelihood.base_config(
        "realnvp", variant=a.variant, resolution=a.resolution, total_steps=1500,
        runlocal=a.runlocal, alpha=0.05)
