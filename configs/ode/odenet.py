"""ODE-Net (Chen et al. 2018, arXiv:1806.07366) on the 8x8 scikit-learn `digits`.

A 3x3 conv stem (16 channels), flatten, Dense(64), one ODE block dh/dt = f(t, h)
on [0, 1] whose vector field is [concat t -> Dense(64) -> tanh -> concat t ->
Dense(64)], an adaptive diffrax solve (Tsit5, PID controller rtol = atol =
tol), a linear head (vision_jax/models/ode.py); 75,146 parameters. The
classification task reports the solver's steps and function evaluations
(`ode_steps`, `nfe` = 6 steps + 1) beside loss and accuracy, in training and eval.

Arguments (after the colon): tol (rtol = atol, default 1e-3), solver=tsit5|dopri5,
adjoint=checkpoint|backsolve, dim (state and hidden width), runlocal (20 steps on `shapes`).

    vision-jax train --config=configs/ode/odenet.py --workdir=workdirs/odenet_tol1e-3
    vision-jax train --config=configs/ode/odenet.py:tol=1e-7 --workdir=workdirs/odenet_tol1e-7
    # the same weights solved at another tolerance
    vision-jax eval --config=configs/ode/odenet.py:tol=1e-7 --workdir=workdirs/odenet_tol1e-3

Lab note (2026-12-04, 2-core AMD EPYC VM shared with three other jobs, load
8-14, jax 0.10.2, one CPU device, float32): 375 steps of 64 in 7-14 s of
steps, 38-87 s wall with start-up and a 12-32 s compile. Test accuracy 99.33%
(295/297) for every trained tolerance (1e-1, 1e-2, 1e-3, 1e-5, 1e-7), the
backsolve adjoint and Dopri5, at every eval tolerance. NFE is 19 (3 steps) for
tol >= 1e-3 (runs at 1e-1..1e-3 are bit-identical: the solver is never
error-limited), 31 at 1e-5, 55 at 1e-7, ~107 at 1e-8. Tables and the reason
the field is dense, not convolutional (conv gradients inside XLA:CPU loops
ran ~30x slower): docs/ODE.md.
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
