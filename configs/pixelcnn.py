"""PixelCNN (van den Oord et al. 2016) on 16x16 `shapes` scenes (one shape each):
the exact discrete likelihood in bits/dim (vision_jax/tasks/likelihood.py).

Arguments (after the colon): variant=T|S|B (vision_jax/models/pixelcnn.py),
conditional (a per-class bias in every block), resolution=16|32, runlocal (a
20-step smoke run).

    vision-jax train --config=configs/pixelcnn.py --workdir=/work/runs/pixelcnn
    vision-jax sample --workdir=/work/runs/pixelcnn --num 64     # 768 network passes

Recipe: the "S" gated PixelCNN (128,896 parameters, 6.3e7 forward FLOPs per
16x16 image; raster order, R -> G -> B inside a pixel, a 256-way softmax per
subpixel), unconditional; the shared recipe of likelihood.base_config: batch
64, Adam 1e-3, 100 warm-up steps, cosine decay to 5%, gradients clipped at 1,
EMA 0.998 (eval and sampling use it). 1,200 steps = 1.5 epochs of the 50k
scenes, sized for ~15 min on an idle 2-core CPU (~90 examples/s expected
from the FLOPs; not measured idle).

Result (2026-12-03; the machine, its load and the shortened runs' protocol
are in docs/GENERATIVE.md, "Likelihood models"). The first command above,
run beside the VAE and RealNVP ones (load average 4-13, mean 9):
  test bits/dim   6.03 (EMA weights, all 10,000 test scenes; NLL 3,207 nats
                  per image). The raw final weights do better: 5.74 on the
                  first 2,048 test scenes (EMA: 6.03 on the same), 5.75 on
                  2,048 training scenes, so no overfitting; the 0.998
                  average still holds 9% (0.998^1200) of the initial
                  weights and spans a fast-moving stretch. A shorter average,
                  or none, looks better here (not re-run).
  train           bits/dim 6.89 at step 200, 6.13 at 400, 5.79 at 800,
                  5.69 at 1,200
  wall            53.0 min (50.9 in the trainer, 42 s of that compiling),
                  16.7 CPU-minutes; on an idle 2-core CPU that is roughly
                  10-15 min (estimated from the CPU time, not measured)
  samples         `vision-jax sample --workdir=/work/runs/pixelcnn --num 64`,
                  71 s for the 768 network passes (load 2-4). Saturated
                  colour noise in patches: magenta, blue, green, white and
                  dark regions a few pixels wide, speckled throughout; no
                  flat background and no recognisable shape. Undertrained.
Shortened first (250 steps, 16k examples, `--config.total_steps=250
--config.schedule.warmup_steps=25 --config.ema.decay=0.98`, workdir
/work/runs/pixelcnn_short, load 13-25): 7.01 test bits/dim in 39.5 min
(4.3 CPU-minutes). Its samples were speckle in two brightness modes (dark,
or white-pink). The smoke (`:runlocal`, 20 steps on 1k scenes) trains,
evaluates and samples end to end.

Context, not a comparison: uniform over 256 values is 8 bits/dim; one
histogram per subpixel position (independent subpixels, fitted on the 50k
training scenes) gives 7.88 bits/dim on these test scenes. Published
CIFAR-10 numbers: PixelCNN 3.14 bits/dim (van den Oord et al. 2016a,
arXiv:1601.06759, Table 5; the 3.00 of that table is the Diagonal BiLSTM
PixelRNN), Gated PixelCNN 3.03 (van den Oord et al. 2016b, arXiv:1606.05328,
Table 1). They do not compare with these: 32x32 natural images against 16x16
synthetic scenes, many of whose backgrounds are per-pixel noise.
"""

from vision_jax.config import parse_arg
from vision_jax.tasks import likelihood


def get_config(arg=None):
    a = parse_arg(arg, variant="S", conditional=False, resolution=16, runlocal=False)
    return likelihood.base_config(
        "pixelcnn", variant=a.variant, resolution=a.resolution, total_steps=1200,
        runlocal=a.runlocal, conditional=a.conditional)
