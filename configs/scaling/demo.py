"""The demo scaling sweep: CNN width x depth x data size on `shapes`, 12 trials on a laptop CPU.

    vision-jax sweep --config=configs/scaling/demo.py --sweepdir=workdirs/sweeps/demo

configs/default.py's CNN with its channels scaled to (c, 2c, 4c), c in {4, 8, 16},
one or two convolutions per stage, on the first 2,000 or all 8,000 scenes of
an 8k/2k `shapes` variant of single shapes at 16x16 pixels (a quarter of the
default's FLOPs per example, so twelve models fit in minutes); every trial
sees the same 19,200 examples (300 steps of 64), so the data axis is dataset
size at fixed compute per model.
After the sweep, a power law L = (N/N_c)^-alpha of final test loss against
total parameters N is fitted per data size (log-log least squares, 95%
bootstrap CIs, R^2 on log L; vision_jax.scaling.fit), also against training
compute, and <sweepdir>/plots gets log-log loss vs params and vs compute with
the fits, and loss vs data size (two sizes: no fit).

Arguments: runlocal (2 x 2 trials of 40 steps on a 512-scene set: a smoke test).

Result (2 CPU cores shared with other jobs, load average ~15; 12m47s wall for
the whole sweep, of which 6 min inside the trainers' loops, the rest compiles
and evals under that load): params 1.7k to 72.6k, test loss 2.02 to 1.09
(accuracy 20% to 56%; ln 8 = 2.08 is chance: these are short runs, far from
convergence). Power law of final test loss vs total params, per data size:

    2,000 scenes: alpha = 0.128 (95% CI [0.069, 0.183]), R^2 = 0.86 on log L
    8,000 scenes: alpha = 0.148 (95% CI [0.072, 0.216]), R^2 = 0.84
    vs compute:   alpha = 0.138 / 0.161, R^2 = 0.90 / 0.88

Deeper models sit below the line at equal parameters (convs_per_stage=2 at
4.8k beats c=8 at 6.3k), and the data axis barely matters at this budget:
at 300 steps even 2,000 scenes are seen under 10 times.
"""

from ml_collections import ConfigDict

from vision_jax.config import parse_arg

WIDTHS = (4, 8, 16)


def get_config(arg=None):
    a = parse_arg(arg, runlocal=False)
    c = ConfigDict()
    c.base = "configs/default.py"
    c.overrides = [
        "data.shapes.resolution=16", "data.image_size=16", "data.shapes.max_objects=1",
        "data.shapes.train_size=8000", "data.shapes.test_size=2000",
        "total_examples=19200", "batch_size=64", "schedule.warmup_steps=30",
        "log_every_steps=25", "eval_every_steps=100", "checkpoint.every_steps=100",
        "progress_bar=False",
    ]
    c.axes = (
        ("model.channels", [(w, 2 * w, 4 * w) for w in WIDTHS]),
        ("model.convs_per_stage", [1, 2]),
        ("data.num_train_examples", [2000, 8000]),
    )
    c.mode = "grid"
    c.fit = dict(x="params", y="final_eval_loss", form="power",
                 groupby="data.num_train_examples", plots=("compute_flops",))
    c.plots = [dict(kind="versus", x="data.num_train_examples", y=("final_eval_loss",),
                    hue="model.channels", name="final_eval_loss_vs_data")]
    if a.runlocal:
        c.overrides = [
            "data.shapes.train_size=512", "data.shapes.test_size=128", "total_steps=40",
            "batch_size=64", "schedule.warmup_steps=5", "log_every_steps=10",
            "eval_every_steps=20", "checkpoint.every_steps=20", "progress_bar=False"]
        c.axes = (("model.channels", [(4, 8, 16), (8, 16, 32)]),
                  ("model.convs_per_stage", [1, 2]))
        c.fit = dict(x="params", y="final_eval_loss", form="power")
        c.plots = []
    return c
