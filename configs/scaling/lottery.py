"""Lottery tickets (Frankle & Carbin 2019, "The Lottery Ticket Hypothesis"): iterative
magnitude pruning with rewinding against random re-initialisation at the same sparsity.

    vision-jax lottery --config=configs/scaling/lottery.py --workdir=workdirs/lottery

The LeNet-300-100 of Frankle & Carbin's MNIST experiments, as an MLP 192-300-100-10
on the built-in 8x8 `digits` (configs/mlp.py: 89,010 parameters, of which 88,600
are kernel weights that can be pruned), AdamW 1e-3 with a 30-step warm-up and
cosine decay, batch 128, 300 steps (25.6 epochs) per run. Round 0 trains it
dense; each of 15 rounds removes 20% of the remaining weights of each hidden
kernel and 10% of the output kernel's (half the rate, as Frankle & Carbin do;
vision_jax/prune.py), by magnitude after the previous round's ticket trained,
and trains three networks on that mask for 300 steps (vision_jax/scaling/lottery.py):
the winning ticket rewound to step k = 10 (Frankle et al. 2020's rewinding,
3% into training), the same mask on a fresh random initialisation, and a
random mask with the same count per layer on the step-10 weights. 46 runs,
each an ordinary run of the one trainer; <workdir>/plots/accuracy_vs_sparsity.png
draws test accuracy against the weights remaining.

Arguments: rounds (15), rate (0.2 per round; the output layer at half), rewind_step
(10), steps (300), seeds (1: trials with seeds 0..n-1), scope ('layer' or 'global'),
controls ('reinit+random_mask'; '' for tickets only; 'supermask' adds or
runs the supermask control), runlocal (2 rounds of 8-step runs on the same
data: a smoke test).

Result (one seed; 2-core AMD EPYC CPU shared with other jobs, load average 12-22;
run as `:rounds=20`, whose first 46 runs are this config's: they took 17m08s,
all 61 21m13s). Test accuracy on the 297 test digits (one digit = 0.34 points):

    round  weights left   ticket   re-init   random mask   supermask
      0      100%          98.65%  (dense)
      3       51.4%        98.99%   97.98%    98.32%        98.32%
      6       26.5%        98.65%   98.32%    96.63%        96.30%
      8       17.1%        98.65%   96.30%    97.31%        94.28%
     10       11.0%        98.65%   94.95%    95.29%        85.19%
     12        7.11%       98.32%   95.29%    92.59%        78.45%
     13        5.72%       96.97%   92.59%    89.56%        75.76%
     14        4.61%       95.62%   92.59%    87.88%        75.42%
     15        3.71%       95.29%   86.20%    81.48%        68.01%
     -- rounds=20 only --
     17        2.42%       94.28%   82.49%    57.24%
     20        1.28%       91.92%   61.95%    29.63%

The lottery-ticket effect, clearly: the rewound tickets keep the dense accuracy
down to 7% of the weights and are still within 3.4 points at 3.7%, while the
same masks re-initialised fall below the dense network from ~20% on and are 9
points behind at 3.7% (30 at 1.3%). Keeping the weights but drawing the mask at
random does worse still below 7%: both the mask and the values the ticket
keeps matter, as Frankle & Carbin's re-initialised and randomly sparse
controls found. Differences
under ~1 point (above 20% of the weights) are within the noise of one seed on
297 test images. Deviations from the papers: every pruned run restarts the
optimizer and schedule and trains the full 300 steps (Frankle et al. 2020
continue from step k for T - k steps), and the re-initialised control also
draws a different data order (the trainer seeds both from `config.seed`).

Supermasks (Zhou et al. 2019; learned by edge-popup, Ramanujan et al. 2020),
lab note 2026-12-04:

    vision-jax lottery --config=configs/scaling/lottery.py:controls=supermask \
        --workdir=workdirs/lottery_supermask

No weight is ever trained: a fresh random MLP (the same 300-100 network,
its kernels frozen as signed constants: the sign of the init times the
layer's init scale) and, per round, only a mask over it, learned through
per-weight scores (top-k by |score| per layer, straight-through gradients;
vision_jax/models/supermask.py), keeping the round's ticket's fraction of the
hidden weights and of the output weights; same optimizer, schedule and 300
steps as every other run. The supermask column above is from this command
(31 runs: dense, tickets, supermasks; 9m00s on the same 2 CPU cores, load
average ~15), whose dense network and tickets reproduced the table's numbers
to the digit. All rounds, supermask test accuracy: 98.65, 98.32, 98.32, 97.31,
96.30, 96.30, 94.61, 94.28, 90.57, 85.19, 83.84, 78.45, 75.76, 75.42, 68.01%
for 80.1% down to 3.7% of the weights. A mask alone, on weights nobody
trained, reaches the dense network's accuracy down to half the weights
(98.32% at 51%) and stays far above chance (10%) at 3.7% (68.0%); unlike
the tickets, whose weights train, it falls off from ~30% of the weights on
(96.3% at 26.5%, 85.2% at 11%), below the random-mask and re-initialised
controls, which train their weights. This is the papers' qualitative
finding (a mask over random weights classifies far above chance) on digits;
Zhou et al. 2019, https://arxiv.org/abs/1905.01067; Ramanujan et al. 2020,
https://arxiv.org/abs/1911.13299. No published number is compared here.
"""

from ml_collections import ConfigDict

from vision_jax.config import parse_arg


def get_config(arg=None):
    a = parse_arg(arg, rounds=15, rate=0.2, rewind_step=10, steps=300, seeds=1, scope="layer",
                  controls="reinit+random_mask", runlocal=False)
    c = ConfigDict()
    c.base = "configs/mlp.py:300x100,dataset=digits"
    c.overrides = [
        "data.image_size=8", f"total_steps={a.steps}", "batch_size=128",
        "schedule.warmup_steps=30", "log_every_steps=50", "eval_every_steps=0",
        f"checkpoint.every_steps={a.steps}", "progress_bar=False",
    ]
    c.axes = (("seed", list(range(a.seeds))),)
    c.mode = "grid"
    c.lottery = dict(rounds=a.rounds, rate=a.rate, output_rate=a.rate / 2, scope=a.scope,
                     rewind_step=a.rewind_step,
                     controls=tuple(x for x in a.controls.split("+") if x))
    if a.runlocal:
        c.overrides += ["total_steps=8", "batch_size=64", "schedule.warmup_steps=2",
                        "log_every_steps=4", "checkpoint.every_steps=8"]
        c.lottery.update(rounds=2, rewind_step=2)
    return c
