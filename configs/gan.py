"""DCGAN on 16x16 `shapes` scenes (one shape each), class-conditional.

Arguments (after the colon): loss=non_saturating|minimax|hinge,
spectral_norm, unconditional, resolution=16|32, runlocal (a 20-step smoke run).

    vision-jax train --config=configs/gan.py --workdir=workdirs/gan
    vision-jax sample --workdir=workdirs/gan --num 64

The generator and the discriminator are two models with two Adam chains
(Radford et al.'s lr 2e-4, beta1 0.5) in one jitted step; the generator's
parameters are also averaged (EMA 0.999), and sampling uses the average.

Result (2026-12-03, 2-core AMD EPYC shared with other jobs, jax 0.10.2):
a 1,500-step run (`--config.total_steps=1500`, 1,147 s) COLLAPSED. The EMA
generator draws near-constant grey images (in-house FID 795 on 2,000 vs
2,000 samples, worse than the Gaussian baseline's 254; recall 0; every
sample judged one class). The raw generator draws one noisy pattern for every z
(FID 823). Not tuned yet: the EMA decay (0.999 over a short run) and the
learning rates are the first suspects. The full 3,000-step config has not
been run. The smoke run (`:runlocal`, 20 steps) trains and samples in ~40 s.
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, loss="non_saturating", spectral_norm=False, unconditional=False,
                  resolution=16, runlocal=False)
    c = base_config()
    c.task = "gan"
    c.data.name = "shapes"
    c.data.shapes.resolution = a.resolution
    c.data.image_size = a.resolution
    c.data.shapes.max_objects = 1
    c.model = dict(name="dcgan")
    c.gan = dict(loss=a.loss, spectral_norm=a.spectral_norm, conditional=not a.unconditional,
                 latent_dim=64, g_width=32, d_width=32)
    c.batch_size = 64
    c.total_steps = 3000
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 2e-4
    c.optimizer.b1 = 0.5
    c.optimizer.weight_decay = 0.0
    c.optimizer.grad_clip_norm = 0.0
    # Per-group settings on top of c.optimizer (TTUR, Heusel et al. 2017, would
    # give the discriminator a larger rate; DCGAN uses one rate for both).
    c.optimizers = dict(generator=dict(learning_rate=2e-4), discriminator=dict(learning_rate=2e-4))
    c.schedule.name = "constant"
    c.ema.decay = 0.999
    c.log_every_steps = 50
    c.checkpoint.every_steps = 500
    return shrink_for_local(c) if a.runlocal else c
