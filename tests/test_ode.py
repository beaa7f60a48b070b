"""Neural ODEs (vision_jax/models/ode.py, vision_jax/tasks/ffjord.py): gradients against
finite differences, the NFE count, Hutchinson's estimator, the CNF's change of
variables against a linear flow's analytic density, one real trainer run per
task on the 8-device mesh, and the configs."""

import glob
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg


from helpers import ROOT, tiny_config
from vision_jax import config as config_lib
from vision_jax import data, train
from vision_jax.models import ode
from vision_jax.models.ode import ODENet
from vision_jax.tasks import ffjord


@pytest.mark.parametrize("adjoint", ["checkpoint", "backsolve"])
def test_odenet_gradients_equal_finite_differences(adjoint):
    """d loss / d params of a tiny ODE-Net, both adjoints, in float64 at tight
    tolerances, against central differences along a random direction (the
    solver's error over eps, ~1e-8 here, bounds the differences' accuracy)."""
    with jax.enable_x64(True):
        model = ODENet(num_classes=3, width=2, dim=3, hidden=4, rtol=1e-12, atol=1e-12,
                       adjoint=adjoint, dtype=jnp.float64, param_dtype=jnp.float64)
        images = jax.random.normal(jax.random.key(0), (2, 4, 4, 3), jnp.float64)
        # random parameters of the model's shapes, without compiling its init
        shapes = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(1), images,
                                                            train=False))["params"])
        leaves, tree = jax.tree.flatten(shapes)
        keys = jax.random.split(jax.random.key(2), 2 * len(leaves))
        params, direction = (tree.unflatten([0.5 * jax.random.normal(k, x.shape, x.dtype)
                                             for k, x in zip(ks, leaves)])
                             for ks in (keys[::2], keys[1::2]))
        weights = jax.random.normal(jax.random.key(3), (2, 3), jnp.float64)

        def loss(p):
            return jnp.sum(model.apply({"params": p}, images, train=False) * weights)

        def loss_along(s):
            return loss(jax.tree.map(lambda p, d: p + s * d, params, direction))

        eps = 1e-4
        # directional derivative by reverse mode, and by central differences
        analytic = jax.grad(loss_along)(0.0)
        plus, minus = jax.vmap(loss_along)(jnp.array([eps, -eps]))
        numeric = (plus - minus) / (2 * eps)
        assert abs(float(analytic)) > 1e-2  # a direction the loss really moves along
        np.testing.assert_allclose(float(analytic), float(numeric), rtol=1e-6)


@pytest.mark.parametrize("solver", sorted(ode.SOLVERS))
def test_nfe_counts_every_evaluation_of_the_field(solver):
    """ode.nfe(num_steps) equals the field's evaluations counted under jit."""
    calls = []

    def field(t, y, a):
        jax.debug.callback(lambda: calls.append(1))
        return -a * y + jnp.sin(4.0 * t)

    run = jax.jit(lambda tol: ode.solve(field, jnp.ones(3), 2.0, solver=solver, rtol=tol,
                                        atol=tol)[1])  # one compile: the tolerance is traced
    for tol in (1e-2, 1e-6):
        calls.clear()
        steps = run(tol)
        assert len(calls) == int(ode.nfe(steps)) > 7


def test_hutchinson_trace_is_unbiased_and_basis_probes_are_exact():
    a = jax.random.normal(jax.random.key(0), (3, 3))
    f = lambda z: z @ a.T  # noqa: E731  a linear field: df/dz = a everywhere
    z = jax.random.normal(jax.random.key(1), (40_000, 3))
    _, exact = ffjord.divergence(f, z[:4], ffjord.basis_probes(z[:4]))
    np.testing.assert_allclose(exact, jnp.trace(a), rtol=1e-5)
    for noise in ffjord.NOISES:
        _, estimates = ffjord.divergence(f, z, ffjord.random_probes(jax.random.key(2), z, noise))
        spread = float(jnp.std(estimates)) / np.sqrt(z.shape[0])
        assert spread > 0  # a real estimator, not the exact trace
        assert abs(float(jnp.mean(estimates) - jnp.trace(a))) < 4 * spread, noise


def test_cnf_log_density_of_a_linear_flow_is_the_change_of_variables():
    """dz/dt = A z maps x to expm(A) x, so log p(x) = log N(expm(A) x) + tr(A)."""
    with jax.enable_x64(True):
        a = 0.5 * jax.random.normal(jax.random.key(0), (2, 2), jnp.float64)
        x = jax.random.normal(jax.random.key(1), (5, 2), jnp.float64)
        z = x @ jnp.asarray(scipy.linalg.expm(np.asarray(a))).T
        expected = ffjord.standard_normal_log_prob(z) + jnp.trace(a)
        field = lambda t, z, a: z @ a.T  # noqa: E731
        logp, _ = ffjord.log_prob(field, a, x, ffjord.basis_probes(x), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(logp, expected, rtol=1e-8)
        # one Hutchinson probe: v^T A v in place of tr(A), the same for the whole solve
        probes = ffjord.random_probes(jax.random.key(2), x, "rademacher")
        logp_h, _ = ffjord.log_prob(field, a, x, probes, rtol=1e-10, atol=1e-10)
        quad = jnp.einsum("bi,ij,bj->b", probes[0], a, probes[0])
        np.testing.assert_allclose(logp_h, ffjord.standard_normal_log_prob(z) + quad, rtol=1e-8)


def test_odenet_trains_on_digits_on_the_8_device_mesh(tmp_path):
    data_dir = str(tmp_path / "tfds")
    c = tiny_config("ode/odenet.py:dim=16", data_dir, "total_examples=-1", "total_steps=6",
                    "batch_size=32", "checkpoint.every_steps=6", "log_every_steps=3")
    summary = train.train(c, str(tmp_path / "run"))
    assert summary["devices"] == 8 and summary["steps"] == 6
    assert summary["eval_examples"] == 297 and summary["eval_accuracy"] > 0.15  # chance: 0.1
    # the solver's cost is reported, and is the one formula's
    assert summary["eval_nfe"] >= 7 and np.isfinite(summary["train_loss"])
    lines = [line for line in open(tmp_path / "run" / "metrics.jsonl") if '"eval"' in line]
    last = json.loads(lines[-1])
    assert last["nfe"] == pytest.approx(6 * last["ode_steps"] + 1)


def test_ffjord_trains_on_the_8_device_mesh(tmp_path):
    c = config_lib.load_config(os.path.join(ROOT, "configs", "ode", "ffjord.py:runlocal"))
    config_lib.apply_overrides(c, ["progress_bar=False", "total_steps=10", "ffjord.test_size=64",
                                   "eval_every_steps=10", "checkpoint.every_steps=10"])
    # the test NLL at the trainer's own initialisation (same seed, same init function)
    run = train.setup(c)
    start = train.init_state(run.init_fn, run.shardings, c.seed)
    test = run.task.eval_batches("test", global_batch_size=64, process_index=0,
                                 process_count=1)[0]
    nll_at_init = -float(jnp.mean(jax.jit(run.task.log_prob)(start.params, test["x"])[0]))
    summary = train.train(c, str(tmp_path))
    assert summary["devices"] == 8 and summary["steps"] == 10 and summary["eval_examples"] == 64
    assert summary["eval_nfe"] >= 7
    assert summary["eval_nll"] < nll_at_init - 0.05, (summary["eval_nll"], nll_at_init)


def test_ode_configs_build_abstractly():
    paths = sorted(glob.glob(os.path.join(ROOT, "configs", "ode", "*.py")))
    assert len(paths) == 2
    for path in paths:
        for arg in ("", ":runlocal", ":adjoint=backsolve,tol=0.01"):
            c = config_lib.load_config(path + arg)
            config_lib.validate(c, num_devices=8)
            info = (ffjord.FFJORD.dataset_info(c) if c.task == "ffjord" else
                    data.DatasetInfo(name="synthetic", num_classes=10, image_shape=(8, 8, 3),
                                     split_sizes={c.data.train_split: 1500}))
            state = train.setup(c, info=info).abstract
            assert jax.tree.leaves(state.params), path + arg
