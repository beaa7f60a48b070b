"""Model-wise double descent (Nakkiran et al. 2020, "Deep double descent"):
test error against CNN width, with label noise.

    vision-jax sweep --config=configs/scaling/double_descent.py --sweepdir=workdirs/sweeps/double_descent

configs/default.py's CNN with channels (k, 2k, 4k), k from 1 to 16 (Nakkiran et
al.'s 5-layer CNN family, one stage shorter), no weight decay and no
augmentation (both damp the peak), on 1,000 single-shape 16x16 `shapes` scenes
of which 20% have their label redrawn at random, trained for 60 epochs.
Expected: test error falls, rises near the width at which the model can just
fit the noisy training set (the interpolation threshold, where train error
reaches ~0), then falls again. <sweepdir>/plots/error_vs_width.png draws
train and test error against k.

Arguments: runlocal (three 20-step trials on 128 scenes: a smoke test).

Result (2 CPU cores shared with other jobs, load average ~15; 11m13s wall for
the 7 trials): NO peak in this run. Test error falls monotonically with width,
k = 1, 2, 3, 4, 6, 8, 16: 87.5%, 81.1%, 80.9%, 78.3%, 76.9%, 70.7%, 67.3%,
while the last training batch's accuracy only reaches 97% at k = 16 (63% at
k = 8): in 60 epochs no width got past the interpolation threshold, so the
sweep shows only the first descent. Seeing the peak needs the models to
interpolate the noisy set: Nakkiran et al. train for 4k epochs; here, more
epochs (total_epochs=500, ~1.5 h on this machine) or wider k (24, 32, 64).
The test loss, unlike the error, already rises at k = 16 (2.20 vs 1.84 at
k = 8): the model starts fitting the noisy labels.
"""

from ml_collections import ConfigDict

from vision_jax.config import parse_arg

WIDTHS = (1, 2, 3, 4, 6, 8, 16)


def get_config(arg=None):
    a = parse_arg(arg, runlocal=False)
    c = ConfigDict()
    c.base = "configs/default.py"
    c.overrides = [
        "data.shapes.resolution=16", "data.image_size=16", "data.shapes.max_objects=1",
        "data.shapes.train_size=8000", "data.shapes.test_size=2000",
        "data.num_train_examples=1000", "data.label_noise=0.2",
        "optimizer.weight_decay=0.0", "total_epochs=60.0", "batch_size=64",
        "schedule.warmup_steps=30", "log_every_steps=20", "eval_every_steps=200",
        "checkpoint.every_steps=200", "progress_bar=False",
    ]
    c.axes = (("model.channels", [(k, 2 * k, 4 * k) for k in WIDTHS]),)
    c.mode = "grid"
    c.plots = [dict(kind="versus", x="model.channels", xlabel="CNN width k (channels k, 2k, 4k)",
                    y=("final_eval_error", "final_train_error"), name="error_vs_width")]
    if a.runlocal:
        c.overrides = [o for o in c.overrides if not o.startswith(("data.shapes.train_size",
                                                                   "data.shapes.test_size",
                                                                   "data.num_train_examples",
                                                                   "total_epochs"))]
        c.overrides += ["data.shapes.train_size=256", "data.shapes.test_size=64",
                        "data.num_train_examples=128", "total_steps=20"]
        c.axes = (("model.channels", [(1, 2, 4), (4, 8, 16), (16, 32, 64)]),)
    return c
