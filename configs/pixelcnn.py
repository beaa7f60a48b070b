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

Result (2026-12-03; the machine, its load and the shortening protocol are in
docs/GENERATIVE.md, "Likelihood models"). The 1,200-step default run above:
FULL_RUN_PIXELCNN
What was run: 250 steps (16k examples, 0.32 epochs) of the same recipe,
`--config.total_steps=250 --config.schedule.warmup_steps=25
--config.ema.decay=0.98`, workdir /work/runs/pixelcnn_short.
  test bits/dim   7.01 (EMA weights, all 10,000 test scenes; NLL 3,731 nats
                  per image); train 7.75 at step 50, 7.39 at 100, 6.83 at 250
  wall            39.5 min (36.3 in the trainer, 77 s of that compiling) for
                  4.3 CPU-minutes: it got ~0.1 of a core (load average 13-25)
  samples         `vision-jax sample --workdir=/work/runs/pixelcnn_short
                  --num 64`, 101 s for the 768 network passes (load 7-12).
                  Textures, not scenes: about half are dark with speckled
                  red/green/blue noise, half light (white-pink) with coloured
                  speckle, a few with a smooth coloured region at an edge.
                  They copy the data's noise backgrounds and two brightness
                  modes; no recognisable shape. Undertrained.
The smoke (`:runlocal`, 20 steps on 1k scenes) trains, evaluates and samples
end to end.

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
