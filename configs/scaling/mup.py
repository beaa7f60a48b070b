"""muP learning-rate transfer (Yang et al. 2022, "Tensor Programs V", arXiv:2203.03466, Fig. 1):
the MLP's Adam learning rate swept at three widths, under SP and under muP.

configs/mlp.py's two-hidden-layer MLP (hidden=(w, w), ReLU) at w in {32, 128,
512}, on `digits` (scikit-learn's 8x8 handwritten digits: 1,500 train / 297
test), 150 Adam steps of 64 (6.4 epochs; no weight decay, no clipping, 15
warmup steps, cosine decay), learning rate 2^-14 .. 2^-2 in steps of 4x, under
model.parametrization='sp' at the three widths and 'mup' at 128 and 512, with
mup_base_width=32: at the base width muP is SP exactly (tested), so that width
runs once and the analysis draws it in both panels (--base-width 32): 35
trials. vision_jax/mup.py's `transfer` command reads the sweep's trials and
draws <sweepdir>/plots/mup_transfer.png: training loss (the mean of the last
five logged batches, steps 130-150; Yang et al. plot training loss) vs log2
learning rate, one curve per width, SP | muP side by side, and writes
mup_transfer.json with the best rate of each width.

    vision-jax sweep --config=configs/scaling/mup.py --processes 2 --sweepdir=workdirs/sweeps/mup
    python -m vision_jax.mup transfer --sweepdir=workdirs/sweeps/mup --base-width 32

Arguments: runlocal (2 widths x 2 rates x 2 parametrizations of 20 steps: a
smoke test).

Result, 2026-12-03 (2 x86 CPU cores shared with an LM sweep and three
training jobs, load average 15-20): 35 trials in 16m51s wall (1,011 s in the
sweep); the first version of this sweep, 42 trials with w = 32 run twice,
took 19m01s at load 12-18. Neither was timed on an idle machine, where the
15-minute target should hold. The losses below are identical, to every digit,
in both runs (the runs are deterministic). Training loss (mean of steps 130-150) at log2 lr = -14 -12 -10 -8 -6 -4 -2:

    SP   w=32   2.159 1.645 0.467 0.117 0.026 0.042 0.573   best 2^-6
         w=128  1.984 0.880 0.158 0.036 0.011 0.021 2.298   best 2^-6
         w=512  0.878 0.154 0.026 0.007 0.008 0.040 2.294   best 2^-8
    muP  w=32   (= SP at the base width)                    best 2^-6
         w=128  2.189 1.715 0.457 0.102 0.021 0.005 0.260   best 2^-4
         w=512  2.131 1.571 0.364 0.090 0.017 0.004 0.023   best 2^-4

Under SP the curves slide left as width grows (at 2^-14 the loss falls from
2.16 to 0.88; at 2^-2 the two wider models diverge to chance, ln 10 = 2.30,
while w=32 does not), the best rate moves from 2^-6 to 2^-8, and at 2^-4
the widest model is no better than the narrowest (0.040 vs 0.042).
Under muP the left flanks coincide (2.16/2.19/2.13 at 2^-14, 0.47/0.46/0.36
at 2^-10) and wider is better at every rate from 2^-10 up, as Yang et al.
find. The best rate is not exactly fixed: it is 2^-6 at the base width and
2^-4 at 128 and 512, one grid step (4x) to the right, though the base
width's losses at 2^-6 and 2^-4 are close (0.026 vs 0.042); from 128 to 512
it stays put. So at this scale muP keeps the curve's shape and its left edge
in place and removes SP's divergence at high rates, but the argmin moves by
one 4x step between the base width and 4x it. Final eval loss (297 test
digits) is best at 2^-6 for every width under both (SP 0.063/0.034/0.036,
muP 0.063/0.042/0.033): six epochs of 1,500 digits overfit, so test loss
does not separate the two. `python -m vision_jax.mup transfer --sweepdir
DIR --metric final_eval_loss` draws that view.
"""

from ml_collections import ConfigDict

from vision_jax.config import parse_arg

WIDTHS = (32, 128, 512)
BASE_WIDTH = 32
# 2^-14 .. 2^-2: seven rates, a factor of 4 apart.
LEARNING_RATES = tuple(2.0 ** k for k in range(-14, -1, 2))


def get_config(arg=None):
    a = parse_arg(arg, runlocal=False)
    c = ConfigDict()
    c.base = "configs/mlp.py:dataset=digits"
    c.overrides = [
        "data.image_size=8", "optimizer.name=adam", "optimizer.weight_decay=0.0",
        "optimizer.grad_clip_norm=0.0", "total_steps=150", "batch_size=64",
        "schedule.name=cosine", "schedule.warmup_steps=15", "log_every_steps=5",
        "eval_every_steps=0", "checkpoint.every_steps=1000", "progress_bar=False",
        f"model.mup_base_width={BASE_WIDTH}",
    ]
    # At the base width muP is SP exactly (every multiplier is 1), so that width runs
    # once, under SP, and the analysis (mup.transfer_table) draws it in both panels.
    arms = [{"model.parametrization": p, "model.hidden": (w, w)}
            for p in ("sp", "mup") for w in WIDTHS if p == "sp" or w != BASE_WIDTH]
    c.axes = (
        ("arm", arms),
        ("optimizer.learning_rate", list(LEARNING_RATES)),
    )
    c.mode = "grid"
    if a.runlocal:
        c.overrides = [o for o in c.overrides if not o.startswith(("total_steps",
                                                                   "schedule.warmup_steps"))]
        c.overrides += ["total_steps=20", "schedule.warmup_steps=2"]
        c.axes = (("model.parametrization", ["sp", "mup"]),
                  ("model.hidden", [(16, 16), (64, 64)]),
                  ("optimizer.learning_rate", [2.0 ** -10, 2.0 ** -6]))
    return c
