"""Adversarial training (Madry et al. 2018, "Towards Deep Learning Models
Resistant to Adversarial Attacks") against standard training, on `shapes` and
`digits`, both evaluated under the same PGD attack.

    vision-jax train --config=configs/adversarial.py:dataset=shapes --workdir=workdirs/at_shapes
    vision-jax train --config=configs/adversarial.py:dataset=shapes,adversarial=False \\
        --workdir=workdirs/std_shapes
    vision-jax attack --workdir=workdirs/at_shapes --eps 0,1,2,4,8,16 --fooling

Arguments: dataset=shapes|digits, adversarial=True (PGD-AT; False: the same
recipe trained on clean images), runlocal.

The model is configs/default.py's CNN (three conv stages, 94k parameters on
shapes), trained with AdamW. The attack is an L-inf PGD from a random start
in the ball: 7 steps of 2.5 eps / 7 in training and 10 in evaluation, with
eps = 8/255 on `shapes` (the CIFAR-10 convention) and 32/255 on `digits`
(whose 8x8 images have 17 grey levels, 16/255 apart: a budget under one
level would not change a digit). The eval summary reports `accuracy` (clean)
and `robust_accuracy` (under PGD-10) side by side for both recipes.

Cost: a PGD-7 step costs about 8 forward-backward passes, so the shapes
budget is 51,200 examples (800 steps of 64, about one epoch), not the
default job's 160,000.

## Lab note, 2026-12-03: digits

    vision-jax train --config=configs/adversarial.py:dataset=digits[,adversarial=False] \
        --workdir=...
    vision-jax attack --workdir=... --eps 0,4,8,16,32,64 --steps 20 --num 2000 \
        --fooling --fooling-eps 32

2-core AMD EPYC VM shared with a scaling sweep (load 5-12), jax 0.10.2,
float32, one CPU device; 750 steps of 64. On all 297 test digits:
standard training 100.0% clean, 22.2% under PGD-20 at 32/255 (training 98 s);
PGD-AT 100.0% clean, 81.8% under PGD-20 at 32/255 (training 318 s, 3.2x).
At 64/255 both fall (0.0% and 3.7%). Targeted fooling at 32/255 succeeds
for 31.9% of 72 (image, class) pairs on the standard model, 2.8% on the
robust one. Curves: docs/ADVERSARIAL.md.

## Lab note, 2026-12-03: shapes (a negative result)

Same commands with dataset=shapes, 800 steps of 64, both runs at nice 19
beside a sweep on the same 2 cores. Standard training: 81.0% clean, 0.9%
under PGD-10 at 8/255 on the 10,000 test scenes (609 s). PGD-AT at 8/255:
12.1% clean and robust, i.e. chance; its training loss stayed at ln 8 for
all 800 steps (2,909 s). From scratch, at the full budget and one epoch,
adversarial training does not start learning on shapes; a budget ramp or a
smaller eps is the next thing to try (docs/ADVERSARIAL.md).
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local

EPS = {"shapes": 8.0, "digits": 32.0}


def get_config(arg=None):
    a = parse_arg(arg, dataset="shapes", adversarial=True, runlocal=False)
    if a.dataset not in EPS:
        raise ValueError(f"dataset={a.dataset!r}: expected one of {sorted(EPS)}")
    c = base_config()
    c.data.name = a.dataset
    c.model = dict(name="cnn", channels=(32, 64, 128), convs_per_stage=1, norm="none",
                   activation="relu", dropout=0.0)
    c.batch_size = 64
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.warmup_steps = 100
    c.adversarial.train = a.adversarial
    c.adversarial.eval = True
    c.adversarial.eps = EPS[a.dataset]
    c.adversarial.steps = 7
    c.adversarial.eval_steps = 10
    if a.dataset == "digits":
        c.data.image_size = 8
        c.total_examples = 48_000  # 32 epochs of the 1,500 training digits
    else:
        c.total_examples = 51_200
    c.log_every_steps = 50
    c.eval_every_steps = 0
    c.checkpoint.every_steps = 400
    if a.runlocal:
        shrink_for_local(c)
        c.data.name = a.dataset
        c.adversarial.steps = c.adversarial.eval_steps = 2
        c.schedule.warmup_steps = 5
        if a.dataset == "digits":
            c.data.image_size = 8
    return c
