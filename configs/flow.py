"""Rectified flow / flow matching (Liu et al. 2022; Lipman et al. 2023) on 16x16 `shapes`
scenes (one shape each), class-conditional with classifier-free guidance.

Arguments (after the colon): resolution=16|32, variant=T|S|M|B (vision_jax/models/unet.py),
sampler=euler|heun, unconditional, reflow=TEACHER_WORKDIR (train on a flow run's
(noise, sample) couplings: a reflow round), runlocal (a 20-step smoke run).

    vision-jax train --config=configs/flow.py --workdir=workdirs/flow
    vision-jax sample --workdir=workdirs/flow --num 64               # Euler, 8 steps, w = 1
    vision-jax sample --workdir=workdirs/flow --num 64 --steps 1 --guidance 0
    # a reflow round: 4096 (noise, sample) pairs from the run above (Heun, 8 steps,
    # its EMA weights), then a student initialised from it, fine-tuned on them
    vision-jax train --config=configs/flow.py:reflow=workdirs/flow --workdir=workdirs/flow_reflow

Recipe: the U-Net, batch, budget and optimizer of configs/ddpm.py (the "T"
U-Net, 2000 steps of 64, Adam 1e-3, cosine decay, EMA 0.998, p_uncond 0.1);
x_t = (1 - t) noise + t data, t ~ U[0, 1], velocity target data - noise.
Reflow: 1000 steps from the teacher's weights, EMA 0.99 (the trainer's
average starts from the fresh init, not from init_from's weights).

Result (2026-12-03, jax 0.10.2, 2-core x86 CPU, 1 CPU device):
  flow, the first command (machine shared: load 11-20, 0.43 cores for this
  job; it ran beside configs/ddpm.py): 36.6 min wall (155 s compile, 30.4 min
  of steps at ~65 examples/s), 16 CPU-minutes. Train loss (velocity MSE) 1.18
  at step 50, 0.28-0.38 from step 1000 on; final eval loss (EMA, 10k test
  scenes) 0.302. Samples: `vision-jax sample --num 64` (Euler 8, w = 1) in 18 s
  -> workdirs/flow/samples/samples_2000.{png,npz}: coloured blobs on plausible
  backgrounds, shapes not yet recognisable (undertrained, as the DDPM run).
  reflow, the last command (machine quiet, load ~2): 10.3 min wall in all:
  ~3 min for the 4096 teacher pairs, 27 s compile, 1000 steps in 395 s at 175
  examples/s. Train loss on the couplings 0.020 at step 50, 0.008 at the end;
  eval loss on independent (noise, test scene) pairs 0.342 (the teacher's:
  0.302; the student fits its couplings, not these).
  Straightness, mean squared pixel distance from k Euler steps to the same
  model's 32 Heun steps (64 samples, same noise and labels, w = 1):
             k =  1      2      4      8     (Heun 8)
    flow       0.128  0.058  0.020  0.0061  0.00048
    reflow     0.017  0.0071 0.0032 0.0014  0.00054
  so one reflow round makes 1 Euler step as close to the converged sample as
  4 steps were before; one-step samples go from a blurred mean (pixel std
  0.28) to images like the many-step ones (0.49; the data's is 0.59).
  FID: pending (a colleague's evaluation module will read the .npz files).
"""

import os

from vision_jax.config import denoising_config, parse_arg, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, resolution=16, variant="T", sampler="euler", unconditional=False,
                  reflow="", runlocal=False)
    c = denoising_config("flow", resolution=a.resolution, variant=a.variant)
    c.flow = {
        "conditional": not a.unconditional, "p_uncond": 0.1,
        "sample": {"sampler": a.sampler, "steps": 8, "guidance": 1.0},
        # A reflow round: `teacher` is a trained flow run's workdir ('' trains on data).
        "reflow": {"teacher": a.reflow, "num_pairs": 4096, "sampler": "heun", "steps": 8,
                   "guidance": 0.0, "seed": 1}}
    if a.reflow:
        # A reflow round starts from the teacher's weights (to save CPU time) and
        # fine-tunes on its couplings. The trainer's EMA starts from the fresh init,
        # not from init_from's weights, so a short horizon (100 steps) forgets it.
        c.init_from = os.path.join(a.reflow, "checkpoints")
        c.total_steps = 1000
        c.ema.decay = 0.99
    if a.runlocal:
        shrink_for_local(c)
        c.schedule.warmup_steps = 0
        c.flow.reflow.num_pairs = 256
    return c
