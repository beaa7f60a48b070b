"""ODE-Net (Chen et al. 2018, arXiv:1806.07366) on the 8x8 scikit-learn `digits`.

A 3x3 conv stem (32 channels), one ODE block dh/dt = f(t, h) on [0, 1] whose
vector field is [concat t -> 3x3 conv -> tanh -> concat t -> 3x3 conv], an
adaptive diffrax solve (Tsit5, PID controller rtol = atol = tol), mean pool and
a linear head (vision_jax/models/ode.py); 96k... see the lab note for counts.
The classification task reports the solver's steps and function evaluations
(`ode_steps`, `nfe`) beside loss and accuracy, in training and eval.

Arguments (after the colon): tol (rtol = atol, default 1e-3), solver=tsit5|dopri5,
adjoint=checkpoint|backsolve, width, runlocal (a 20-step smoke run on `shapes`).

    vision-jax train --config=configs/ode/odenet.py --workdir=workdirs/odenet
    vision-jax train --config=configs/ode/odenet.py:tol=0.1 --workdir=workdirs/odenet_tol0.1
    # the same weights solved at another tolerance
    vision-jax eval --config=configs/ode/odenet.py:tol=0.01 --workdir=workdirs/odenet

Lab note: see docs/ODE.md (filled in below once measured).
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, tol=1e-3, solver="tsit5", adjoint="checkpoint", dim=64,
                  runlocal=False)
    c = base_config()
    c.data.name = "digits"
    c.data.image_size = 8
    c.model = dict(name="odenet", width=16, dim=a.dim, hidden=a.dim, solver=a.solver,
                   rtol=a.tol, atol=a.tol, adjoint=a.adjoint, max_steps=256)
    c.batch_size = 64
    c.total_examples = 24_000  # 16 epochs of the 1,500 training digits
    c.optimizer.learning_rate = 3e-3
    c.schedule.warmup_steps = 20
    c.log_every_steps = 25
    c.eval_every_steps = 0
    c.checkpoint.every_steps = 375
    return shrink_for_local(c) if a.runlocal else c
