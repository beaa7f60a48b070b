"""Zhang et al. 2017's randomisation tests on `digits`: true labels, random labels,
shuffled pixels, random pixels and Gaussian images, one CNN.

    vision-jax sweep --config=configs/scaling/randomization_tests.py --processes 2 \
        --sweepdir=workdirs/sweeps/randomization_tests

Zhang et al. 2017 ("Understanding deep learning requires rethinking
generalization", sec. 2) fit networks to data with the information destroyed
in five ways; configs/scaling/random_labels.py covers the labels on `shapes`,
this config all five on the built-in 8x8 `digits` (`data.image_randomization`,
vision_jax/data/pipeline.py): shuffled pixels (one random permutation of the
64 pixel positions, the same for every train and test image), random pixels
(a new permutation per image), Gaussian (every pixel drawn from a normal with
the training pixels' per-channel mean and standard deviation, 77.9 and 95.8,
then rounded and clipped to 0..255: the clip at 0 leaves the Gaussian images
at mean 87.9 and std 76.0, so the moments match before clipping, not after),
and random labels (`data.label_noise=1.0`). The image randomisations apply
to the test images too; labels stay true except in the random-labels trial. configs/default.py's CNN at width k = 24 (channels 24,
48, 96; 53,626 parameters), the first 500 training digits, 300 epochs of Adam
at a constant 1e-3 in batches of 100, no weight decay, clipping or
augmentation (Zhang et al. turn the regularisers off), tested on the 297 test
digits (chance 10%; one digit = 0.34 points, binomial SE at chance 1.7).
Train accuracy: the mean over the last epoch's five batches (all 500 examples;
the trainer evaluates only the test split). <sweepdir>/plots/curves.png draws
train and test error against step.

Arguments: epochs (300), width (24), runlocal (five 10-step trials: a smoke test).

Lab note, 2026-12-04: 2-core AMD EPYC VM shared with other agents (load
average 4-16), jax 0.10.2, float32, one CPU device, two trials at a time at
nice 10; each trial 99-124 s (7.5 min for the five, run in two invocations:
the first lost its Gaussian trial to an import cycle, since fixed, and the
re-run trained only that trial).

    test              train acc   test acc   test loss   train error 0 from step
    true labels         100.0%     98.32%      0.057          ~90  (18 epochs)
    random labels       100.0%      7.41%      6.92          ~311  (62 epochs)
    shuffled pixels     100.0%     95.96%      0.111         ~109  (22 epochs)
    random pixels       100.0%     11.78%      5.13          ~193  (39 epochs)
    Gaussian            100.0%      9.43%      5.12          ~177  (35 epochs)

("train error 0 from": the last step of the first epoch-long window of five
logged batches with no error.) The paper's findings, on digits: the same
network fits all five perfectly; the three with nothing to learn (random
labels, random pixels, Gaussian) sit at chance on the test set (within 1.5
binomial SE of 10%), and fitting them takes 2-3.5 times as many steps as the
true data, random labels the longest, random pixels and Gaussian images in
between, as in Zhang et al.'s Figure 1a. Shuffled pixels keep every image's
information under one fixed permutation, so the CNN still generalises
(95.96%, 2.4 points below the true images) though its 3x3 convolutions no
longer see neighbouring pixels as neighbours. One seed.
"""

from ml_collections import ConfigDict

from vision_jax.config import parse_arg

NUM_TRAIN = 500
BATCH = 100
# One trial per test (Zhang et al. 2017, sec. 2): what is randomised, as a
# grouped sweep axis. Labels stay true except in `random_labels`; the image
# randomisations apply to the train and the test images alike.
TESTS = {
    "true_labels": {"data.label_noise": 0.0, "data.image_randomization": "none"},
    "random_labels": {"data.label_noise": 1.0, "data.image_randomization": "none"},
    "shuffled_pixels": {"data.label_noise": 0.0, "data.image_randomization": "shuffled_pixels"},
    "random_pixels": {"data.label_noise": 0.0, "data.image_randomization": "random_pixels"},
    "gaussian": {"data.label_noise": 0.0, "data.image_randomization": "gaussian"},
}


def get_config(arg=None):
    a = parse_arg(arg, epochs=300.0, width=24, runlocal=False)
    c = ConfigDict()
    c.base = "configs/default.py"
    k = a.width
    c.overrides = [
        "data.name=digits", "data.image_size=8", f"data.num_train_examples={NUM_TRAIN}",
        f"model.channels=({k}, {2 * k}, {4 * k})",
        # Adam at a constant rate and nothing that regularises (Zhang et al.
        # turn off weight decay, dropout and augmentation for these tests).
        "optimizer.name=adam", "optimizer.learning_rate=0.001", "optimizer.weight_decay=0.0",
        "optimizer.grad_clip_norm=0.0", "schedule.name=constant", "schedule.warmup_steps=0",
        f"total_epochs={a.epochs}", f"batch_size={BATCH}",
        # Every batch logged: the last epoch's batches give the train error on all 500.
        "log_every_steps=1", "eval_every_steps=0", "checkpoint.every_steps=100000",
        "progress_bar=False",
    ]
    c.axes = (("test", list(TESTS.values())),)
    c.mode = "grid"
    c.plots = [dict(kind="curves", hue="trial", name="curves")]
    if a.runlocal:
        c.overrides = [o for o in c.overrides if not o.startswith("total_epochs")]
        c.overrides += ["total_steps=10"]
    return c
