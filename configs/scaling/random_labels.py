"""Random labels (Zhang et al. 2017, "Understanding deep learning requires rethinking
generalization"): the same CNN on true and on shuffled training labels.

    vision-jax sweep --config=configs/scaling/random_labels.py --sweepdir=workdirs/sweeps/random_labels

configs/default.py's CNN (32, 64, 128) without weight decay, on 500 single-shape
16x16 `shapes` scenes for 100 epochs, with none or all of the training labels
redrawn at random (`data.label_noise`; a pure function of the example's
index, so every epoch sees the same wrong labels and test labels stay true).
The paper's finding: the network drives training error towards zero on labels
that carry no information, while test error stays at chance (7/8 here), so
capacity alone cannot explain why it generalises on true labels.
<sweepdir>/plots/curves.png draws train (dashed) and test (solid) error against step.

Arguments: runlocal (two 30-step trials on 128 scenes: a smoke test).

Result (2 CPU cores shared with other jobs, load average ~15; 6m01s wall for
both trials), final batch train accuracy / test accuracy after 782 steps:

    true labels:    100% / 33.8%   (train error 0 from step ~280)
    random labels:  100% / 13.7%   (chance is 12.5%; train error 0 from step ~320)

The network memorises 500 random labels almost as fast as true ones, while
its test accuracy stays at chance: the paper's result, in six minutes. (On
500 scenes even the true-label model overfits: more data lifts its test
accuracy, see configs/scaling/demo.py.)
"""

from ml_collections import ConfigDict

from vision_jax.config import parse_arg


def get_config(arg=None):
    a = parse_arg(arg, runlocal=False)
    c = ConfigDict()
    c.base = "configs/default.py"
    c.overrides = [
        "data.shapes.resolution=16", "data.image_size=16", "data.shapes.max_objects=1",
        "data.shapes.train_size=8000", "data.shapes.test_size=2000",
        "data.num_train_examples=500", "model.channels=(32, 64, 128)",
        "optimizer.weight_decay=0.0", "total_epochs=100.0", "batch_size=64",
        "schedule.warmup_steps=30", "log_every_steps=20", "eval_every_steps=100",
        "checkpoint.every_steps=200", "progress_bar=False",
    ]
    c.axes = (("data.label_noise", [0.0, 1.0]),)
    c.mode = "grid"
    c.plots = [dict(kind="curves", hue="data.label_noise", name="curves")]
    if a.runlocal:
        c.overrides = [o for o in c.overrides if not o.startswith(("data.shapes.train_size",
                                                                   "data.shapes.test_size",
                                                                   "data.num_train_examples",
                                                                   "total_epochs"))]
        c.overrides += ["data.shapes.train_size=256", "data.shapes.test_size=64",
                        "data.num_train_examples=128", "total_steps=30"]
        c.axes = (("data.label_noise", [0.0, 1.0]),)
    return c
