"""FFJORD (Grathwohl et al. 2019, arXiv:1810.01367): a 2-D continuous normalising flow.

Task 'ffjord' (vision_jax/tasks/ffjord.py): the vector field f(t, z) is an
MLP of (t, z) (3 layers, 64 hidden, tanh; time concatenated at every layer);
the augmented ODE of (z, log-det) is solved by diffrax (Tsit5, rtol = atol =
tol); training uses one Rademacher Hutchinson probe per point, eval the exact
2-D trace. Fresh points every step from the built-in toy density; the test
NLL (nats per point) is measured on 5,000 fixed points.

Arguments (after the colon): density=moons|rings|checkerboard, tol (default 1e-3),
adjoint=checkpoint|backsolve, noise=rademacher|gaussian, runlocal (20 steps).

    vision-jax train --config=configs/ode/ffjord.py:density=moons --workdir=workdirs/ffjord
    python -m vision_jax.tasks.ffjord plot --workdir=workdirs/ffjord \\
        --out=docs/figures/ffjord_density.png

Lab note (2026-12-04, 2-core AMD EPYC VM shared with three other jobs, load
8-14, jax 0.10.2, one CPU device, float32; tables and figure in docs/ODE.md):
  moons, the first command (2,000 steps of 256): 155 s of steps, 3 min 45 s
  wall; test NLL 2.388 nats at tol 1e-3 (2.392 at 1e-5), the true density's
  2.378; eval NFE 50.5.
  checkerboard, --config.total_steps=4000: 287 s of steps, 6 min 38 s wall;
  test NLL 3.668 (3.671 at 1e-5) against ln 32 = 3.466 for the true density;
  eval NFE 58.8. docs/figures/ffjord_density.png.
"""

from vision_jax.config import base_config, parse_arg


def get_config(arg=None):
    a = parse_arg(arg, density="moons", tol=1e-3, adjoint="checkpoint", noise="rademacher",
                  runlocal=False)
    c = base_config()
    c.task = "ffjord"
    c.data.name = "toy2d"
    c.data.train_split, c.data.eval_split = "train", "test"
    c.model.name = "cnf"  # a label: the task builds its vector field from `ffjord`
    c.ffjord = dict(density=a.density, hidden=64, depth=3, noise=a.noise, solver="tsit5",
                    rtol=a.tol, atol=a.tol, adjoint=a.adjoint, max_steps=256, test_size=5000)
    c.batch_size = 256
    c.total_steps = 2000
    c.optimizer.learning_rate = 3e-3
    c.optimizer.weight_decay = 0.0
    c.schedule.warmup_steps = 50
    c.log_every_steps = 100
    c.eval_every_steps = 1000
    c.checkpoint.every_steps = 1000
    if a.runlocal:
        c.total_steps, c.batch_size, c.ffjord.test_size = 20, 64, 256
        c.schedule.warmup_steps = 0
        c.log_every_steps = c.eval_every_steps = c.checkpoint.every_steps = 10
    return c
