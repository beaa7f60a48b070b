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
models"). The default run (the first command, beside the PixelCNN and VAE
runs, load average 4-13, mean 9) reaches 4.86 test bits/dim (EMA weights,
10,000 test scenes; 2,587 nats per image); in training 5.43 at step 250,
4.63 at 1,000, 4.52 at 1,500. The raw final weights score 4.51 on the first
2,048 test scenes (EMA: 4.86 on the same; 4.51 on 2,048 training scenes): the
0.998 average, which after 1,500 steps still holds 5% (0.998^1500) of the
initial weights, costs 0.35 bits/dim here; no overfitting. Not re-run without it.
45.8 min of wall time, 41.3 of them in the trainer (76 s compiling), 12.9
CPU-minutes (roughly 8-12 min on an idle 2-core CPU, estimated). Its 64
samples (`vision-jax sample --workdir=/work/runs/realnvp --num 64`, 35 s)
are saturated colour clouds (magenta, green, blue, white) varying smoothly
over a few pixels, with some 2x2-blocky patches (the squeeze); no flat
backgrounds, no edges, no shapes: local colour correlations, which is what
bits/dim rewards first.
A shortened run before it (400 steps, `--config.total_steps=400
--config.schedule.warmup_steps=40 --config.ema.decay=0.98`, load 13-25,
/work/runs/realnvp_short) reached 5.14 in 37.9 min (4.5 CPU-minutes). The
20-step smoke (`:runlocal`) trains and samples end to end.

The flow is ahead of the PixelCNN (6.03) and the VAE (<= 6.07), raw weights
or EMA. A likely reason, untested here: the continuous models know that
neighbouring pixel values are close, while a 256-way softmax must learn the
order of its 256 classes from data (the argument of PixelCNN++, Salimans et
al. 2017, for its discretised logistic mixture).

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
