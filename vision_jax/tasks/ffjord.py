"""FFJORD (Grathwohl et al. 2019, arXiv:1810.01367): a continuous normalising flow on 2-D toys.

A vector field f(t, z) (models/ode.py's MLPField) carries data x at t = 0 to
z(1), scored under N(0, I). By the instantaneous change of variables (Chen et
al. 2018, Thm. 1), d log p(z(t)) / dt = -tr(df/dz), so

    log p(x) = log N(z(1); 0, I) + integral_0^1 tr(df/dz(t)) dt,

one diffrax solve of the augmented state (z, integral). The trace is
`divergence(f, z, probes)` = sum over probes v of (v^T df/dz) . v, each term one
vector-Jacobian product:
  training   one random probe per example (Hutchinson 1989; Rademacher or
             Gaussian, `ffjord.noise`), fixed for the whole solve as in FFJORD:
             an unbiased estimate at the cost of one VJP, whatever the dimension
  eval       the D basis vectors: the exact trace (D = 2 VJPs here)
The loss is the mean negative log-likelihood in nats per point; eval reports
the exact `nll` and the solver's `nfe` (vision_jax/models/ode.py).

Data: `ffjord.density` from vision_jax/data/toy2d.py, an endless stream of
fresh points in training (batch k drawn from (seed, k, process): resumable
exactly) and a fixed test set of `ffjord.test_size` points.

    python -m vision_jax.tasks.ffjord plot --workdir=DIR --out=docs/figures/ffjord_density.png
draws the learned density (exact log p on a grid) beside the data.
"""

from __future__ import annotations

import argparse
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.data import toy2d
from vision_jax.models import ode
from vision_jax.models.layers import check_choice
from vision_jax.tasks.base import Task

NOISES = ("rademacher", "gaussian")
TEST_SEED = 10_000  # the test set's seed, apart from any training seed's stream


def divergence(f, z, probes):
    """(f(z), sum_k (v_k^T df/dz) . v_k) for probes [K, B, D]: per-example [B] traces.

    With the D basis vectors as probes this is the exact trace of the Jacobian;
    with one random probe of zero mean and identity covariance, Hutchinson's
    unbiased estimate of it."""
    fz, vjp = jax.vjp(f, z)
    return fz, sum(jnp.sum(vjp(v)[0] * v, axis=-1) for v in probes)


def basis_probes(z):
    """The D basis vectors, each broadcast over the batch: [D, B, D]."""
    d = z.shape[-1]
    return jnp.broadcast_to(jnp.eye(d, dtype=z.dtype)[:, None, :], (d, *z.shape))


def random_probes(rng, z, noise: str):
    """One Hutchinson probe per example, [1, B, D]: Rademacher +-1 or standard Gaussian."""
    check_choice("ffjord", "noise", noise, NOISES)
    if noise == "rademacher":
        return jax.random.rademacher(rng, (1, *z.shape), z.dtype)
    return jax.random.normal(rng, (1, *z.shape), z.dtype)


def standard_normal_log_prob(z):
    return -0.5 * jnp.sum(z * z, axis=-1) - 0.5 * z.shape[-1] * math.log(2.0 * math.pi)


def log_prob(field, params, x, probes, **solve_options):
    """(log p(x) [B], solver steps) of the flow dz/dt = field(t, z, params) from x at t = 0
    to the standard normal at t = 1 (`solve_options`: models/ode.py's `solve`)."""
    def dynamics(t, state, args):
        p, v = args
        fz, div = divergence(lambda z: field(t, z, p), state[0], v)
        return fz, div

    (z, integral), steps = ode.solve(dynamics, (x, jnp.zeros(x.shape[:1], x.dtype)),
                                     (params, probes), **solve_options)
    return standard_normal_log_prob(z) + integral, steps


class FFJORD(Task):
    """Maximum likelihood of a CNF on a 2-D toy density; loss and eval in nats per point."""

    score = "nll"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        o = self.opts = config.ffjord
        check_choice("ffjord", "density", o.density, toy2d.DENSITIES)
        check_choice("ffjord", "noise", o.noise, NOISES)
        ode.check_solver_options("ffjord", o.solver, o.adjoint, o.rtol, o.atol)
        self.field = ode.MLPField(int(o.hidden), depth=int(o.depth), dtype=self.dtype,
                                  param_dtype=self.param_dtype)

    # -- data: fresh points in training, a fixed test set ---------------------
    @classmethod
    def prepare_data(cls, config):
        pass  # generated on the fly

    @classmethod
    def dataset_info(cls, config):
        from vision_jax.data import DatasetInfo
        o = config.ffjord
        # "image_shape" is one point's shape; the training stream is endless, so its
        # size (which only turns epochs into steps) is nominally the test set's.
        return DatasetInfo(name=f"toy2d_{o.density}", num_classes=0, image_shape=(2,),
                           split_sizes={"train": int(o.test_size), "test": int(o.test_size)})

    def train_iterator(self, *, global_batch_size, seed, process_index, process_count):
        return Points(self.opts.density, global_batch_size // process_count, seed,
                      process_index)

    def eval_batches(self, split, *, global_batch_size, process_index, process_count):
        n = int(self.opts.test_size)
        points = toy2d.sample(self.opts.density, n, np.random.default_rng(TEST_SEED))
        padded = -(-n // global_batch_size) * global_batch_size
        points = np.concatenate([points, np.zeros((padded - n, 2), np.float32)])
        mask = (np.arange(padded) < n).astype(np.float32)
        local = global_batch_size // process_count
        return [{"x": points[s:s + local], "mask": mask[s:s + local]}
                for s in range(process_index * local, padded, global_batch_size)]

    def example_batch(self, batch_size=1):
        return {"x": jnp.zeros((batch_size, 2), jnp.float32)}

    def synthetic_batch(self, batch_size, seed=0):
        return {"x": toy2d.sample(self.opts.density, batch_size, np.random.default_rng(seed))}

    # -- objective -------------------------------------------------------------
    def init(self, rng, batch):
        return self.field.init(rng, 0.0, batch["x"])["params"], {}

    def _field(self, t, z, params):
        return self.field.apply({"params": params}, t, z)

    def _solve_options(self, **overrides):
        o = self.opts
        return {"solver": o.solver, "rtol": float(o.rtol), "atol": float(o.atol),
                "adjoint": o.adjoint, "max_steps": int(o.max_steps), **overrides}

    def log_prob(self, params, x, probes=None, **overrides):
        """(log p(x) [B], solver steps); exact trace unless `probes` are given."""
        probes = basis_probes(x) if probes is None else probes
        return log_prob(self._field, params, x, probes, **self._solve_options(**overrides))

    def loss(self, params, variables, batch, rng, group=None):
        x = batch["x"].astype(jnp.float32)
        logp, steps = self.log_prob(params, x, random_probes(rng, x, self.opts.noise))
        nll = -logp.mean()
        return nll, {"nfe": ode.nfe(steps).astype(jnp.float32)}, variables

    def eval_step(self, params, variables, batch, rng):
        logp, steps = self.log_prob(params, batch["x"].astype(jnp.float32))
        mask = batch["mask"]
        nll = (-logp * mask).sum()
        return {"loss_sum": nll, "nll_sum": nll, "count": mask.sum(),
                "nfe_sum": ode.nfe(steps).astype(jnp.float32) * mask.sum()}

    def sample_points(self, params, rng, num: int):
        """num points [num, 2]: standard normal noise carried from t = 1 back to t = 0."""
        z = jax.random.normal(rng, (num, 2), jnp.float32)
        return ode.solve(self._field, z, params, t0=1.0, t1=0.0,
                         **self._solve_options(adjoint="checkpoint"))[0]


class Points:
    """Endless process-local batches {'x': [B, 2]}; batch k is drawn from (seed, k, process)."""

    def __init__(self, density: str, batch_size: int, seed: int, process_index: int):
        self.density, self.batch_size = density, int(batch_size)
        self.seed, self.process_index, self.step = int(seed), int(process_index), 0

    def __iter__(self):
        return self

    def __next__(self):
        rng = np.random.default_rng([self.seed, self.step, self.process_index])
        self.step += 1
        return {"x": toy2d.sample(self.density, self.batch_size, rng)}

    def get_state(self):
        return {"step": self.step}

    def set_state(self, state):
        self.step = int(state["step"])


# ----------------------------------------------------------------------------- the figure

def plot_density(workdir: str, out: str, *, extent: float = 4.0, grid: int = 120,
                 num_data: int = 20_000) -> dict:
    """Data histogram | learned density exp(log p) on a grid | flow samples, as one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vision_jax import config as config_lib, train

    config = config_lib.from_json(f"{workdir}/config.json")
    run, step, state = train.restore_workdir(config, workdir)
    task = run.task
    axis = np.linspace(-extent, extent, grid, dtype=np.float32)
    xx, yy = np.meshgrid(axis, axis)
    points = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], -1))
    logp = jax.jit(lambda p, x: task.log_prob(p, x)[0])(state.params, points)
    density = np.exp(np.asarray(logp)).reshape(grid, grid)
    data = toy2d.sample(task.opts.density, num_data, np.random.default_rng(TEST_SEED))
    drawn = np.asarray(jax.jit(task.sample_points, static_argnums=2)(
        state.params, jax.random.key(0), num_data))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    span = [[-extent, extent], [-extent, extent]]
    axes[0].hist2d(data[:, 0], data[:, 1], bins=grid, range=span, cmap="magma")
    axes[0].set_title(f"data ({task.opts.density}, {num_data} points)")
    axes[1].imshow(density, origin="lower", extent=(-extent, extent, -extent, extent),
                   cmap="magma")
    axes[1].set_title(f"learned density (step {step})")
    axes[2].hist2d(drawn[:, 0], drawn[:, 1], bins=grid, range=span, cmap="magma")
    axes[2].set_title("samples of the flow")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    cell = (2.0 * extent / (grid - 1)) ** 2
    return {"step": int(step), "mass_on_grid": float(density.sum() * cell), "out": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vision_jax.tasks.ffjord")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plot", help="the learned density beside the data, as a PNG")
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--extent", type=float, default=4.0)
    args = parser.parse_args(argv)
    print(plot_density(args.workdir, args.out, extent=args.extent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
