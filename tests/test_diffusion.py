"""Diffusion (DDPM/DDIM) and flow matching: one real step each on the 8-device
data+FSDP mesh, and the maths the samplers rest on, checked exactly or
statistically. A tiny U-Net ("T") keeps the compiles short."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import config as config_lib, data, train
from vision_jax.data import captions
from vision_jax.tasks import diffusion, flow

from helpers import DATA_AND_FSDP, check_one_train_step, config_path, one_train_step

INFO = data.DatasetInfo(name="synthetic", num_classes=8, image_shape=(16, 16, 3),
                        split_sizes={"train": 160})


def tiny(name, *overrides):
    c = config_lib.load_config(config_path(name) + ":variant=T")
    # p_uncond 0.5: the null class is all but sure (1 - 2^-16) to be drawn in a batch of 16.
    section = "diffusion" if name == "ddpm.py" else "flow"
    # No warm-up: its first learning rate is 0, and the step must move every parameter.
    config_lib.apply_overrides(c, ["batch_size=16", f"{section}.p_uncond=0.5",
                                   "schedule.warmup_steps=0", *overrides])
    return c


def check_step(before, after, metrics, shardings, task):
    check_one_train_step(before, after, metrics, shardings)
    # check_one_train_step asks that each parameter *array* moves; the class table's
    # null row (the unconditional model of guidance) moves only when some label was
    # dropped, which the step reports.
    assert metrics["uncond_fraction"] > 0
    table = lambda s: np.asarray(s.params["class_embed"]["embedding"])
    assert table(before).shape[0] == 8 + 1
    assert np.any(table(before)[task.null_class] != table(after)[task.null_class])


@pytest.fixture(scope="module")
def diffusion_step():
    return one_train_step(tiny("ddpm.py"), DATA_AND_FSDP, num_classes=8,
                          image_shape=(16, 16, 3))


@pytest.fixture(scope="module")
def tiny_diffusion(diffusion_step):
    """The tiny conditional DDPM task (v prediction) and the step's parameters, on the host."""
    task = train.setup(tiny("ddpm.py", "diffusion.prediction=v"), info=INFO).task
    state = jax.device_get(diffusion_step[1])
    return task, state.params, state.model_state


def test_diffusion_step_on_data_and_fsdp_mesh(diffusion_step):
    before, after, metrics, shardings = diffusion_step
    task = train.setup(tiny("ddpm.py"), info=INFO).task
    check_step(before, after, metrics, shardings, task)
    # The loss of eps prediction starts near the variance of eps (1).
    assert 0.3 < metrics["loss"] < 5.0


@pytest.mark.parametrize("schedule", diffusion.SCHEDULES)
def test_forward_process_has_its_closed_form_marginals(schedule):
    """Simulating the Markov chain x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z step by
    step gives mean sqrt(abar_t) x_0 and variance 1 - abar_t, which q_sample draws directly."""
    T = 1000
    betas = diffusion.betas(schedule, T)
    abar = diffusion.alpha_bars(schedule, T)
    assert np.all((betas > 0) & (betas <= 0.999)) and np.all(np.diff(abar) < 0)
    np.testing.assert_allclose(abar, np.cumprod(1 - betas), rtol=1e-12)
    if schedule == "linear":
        assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    else:  # Nichol & Dhariwal's f(t) / f(0) wherever the 0.999 clip is inactive
        f = lambda t: np.cos((t / T + 0.008) / 1.008 * np.pi / 2) ** 2
        np.testing.assert_allclose(abar[:900], f(np.arange(1, 901)) / f(0), rtol=1e-9)
    assert abar[-1] < 1e-4  # x_{T-1} is (nearly) pure noise: sampling may start from N(0, I)

    rng = np.random.default_rng(0)
    n, x0 = 40_000, 0.7
    x = np.full(n, x0)
    checks = {0: None, 99: None, 499: None, 999: None}
    for t in range(T):
        x = np.sqrt(1 - betas[t]) * x + np.sqrt(betas[t]) * rng.standard_normal(n)
        if t in checks:
            checks[t] = (x.mean(), x.var())
    eps = jax.random.normal(jax.random.key(1), (n, 1, 1, 1))
    for t, (mean, var) in checks.items():
        sd = np.sqrt(1 - abar[t])
        assert mean == pytest.approx(np.sqrt(abar[t]) * x0, abs=5 * sd / np.sqrt(n))
        assert var == pytest.approx(1 - abar[t], rel=5 * np.sqrt(2 / n))
        direct = np.asarray(diffusion.q_sample(jnp.full((n,), abar[t]), jnp.full((n, 1, 1, 1),
                                                                                  x0), eps))
        assert direct.mean() == pytest.approx(np.sqrt(abar[t]) * x0, abs=5 * sd / np.sqrt(n))
        assert direct.var() == pytest.approx(1 - abar[t], rel=5 * np.sqrt(2 / n))


def test_eps_and_v_predictions_round_trip():
    k = jax.random.split(jax.random.key(0), 3)
    x0 = jax.random.uniform(k[0], (5, 4, 4, 3), minval=-1, maxval=1)
    eps = jax.random.normal(k[1], x0.shape)
    a = jnp.asarray(diffusion.alpha_bars("cosine", 1000)[[0, 10, 300, 700, 990]], jnp.float32)
    x_t = diffusion.q_sample(a, x0, eps)
    v = diffusion.v_from_eps(a, x0, eps)
    for prediction, out in (("eps", eps), ("v", v)):
        eps_back, x0_back = diffusion.to_eps_x0(prediction, a, x_t, out)
        np.testing.assert_allclose(eps_back, eps, atol=2e-4)
        np.testing.assert_allclose(x0_back[1:], x0[1:], atol=1e-4)
    np.testing.assert_allclose(diffusion.eps_from_x0(a, x_t, x0), eps, atol=2e-4)
    # v is the velocity of x_t along the circle (cos phi, sin phi) = (sqrt(abar), sqrt(1-abar)).
    np.testing.assert_allclose(v, jnp.sqrt(a)[:, None, None, None] * eps
                               - jnp.sqrt(1 - a)[:, None, None, None] * x0, atol=1e-6)


def test_sampling_timesteps_are_evenly_spaced_and_start_at_pure_noise():
    assert diffusion.sampling_timesteps(1000, 1).tolist() == [999]
    assert diffusion.sampling_timesteps(1000, 4).tolist() == [249, 499, 749, 999]
    assert diffusion.sampling_timesteps(10, 10).tolist() == list(range(10))
    with pytest.raises(ValueError, match="steps=1001"):
        diffusion.sampling_timesteps(1000, 1001)


MU, SD = 0.3, 0.2  # data ~ N(MU, SD^2) per pixel: the exact denoiser is known in closed form


def gaussian_eps(alpha_bar, x):
    """E[eps | x_t] for x_0 ~ N(MU, SD^2): Cov(eps, x_t) / Var(x_t) (x_t - E x_t)."""
    return jnp.sqrt(1 - alpha_bar) * (x - jnp.sqrt(alpha_bar) * MU) / (
        alpha_bar * SD**2 + 1 - alpha_bar)


@pytest.mark.parametrize("prediction", diffusion.PREDICTIONS)
def test_samplers_with_the_exact_denoiser_reproduce_gaussian_data(prediction):
    """With the optimal network for Gaussian data plugged in, DDPM (1000 steps) and DDIM at
    eta = 0 (200 steps) draw samples with the data's mean and standard deviation; DDPM's
    posterior variance beta~ is the smaller of Ho et al.'s two choices, so it may under-
    disperse by a few percent. This checks the samplers' arithmetic, not a trained model."""
    task = train.setup(tiny("ddpm.py", f"diffusion.prediction={prediction}",
                            "diffusion.schedule=cosine"), info=INFO).task
    abar = jnp.asarray(task.alpha_bar, jnp.float32)

    def exact(params, variables, x, time, labels, **kw):
        a = diffusion.expand(abar[time.astype(jnp.int32)], x)
        eps = gaussian_eps(a, x)
        return eps if prediction == "eps" else diffusion.v_from_eps(
            a, diffusion.x0_from_eps(a, x, eps), eps)

    task.apply = exact
    for opts in ({"sampler": "ddpm", "steps": 1000}, {"sampler": "ddim", "steps": 200}):
        x = jax.jit(lambda r, opts=opts: task.sample({}, {}, r, num=16, guidance=0.0,
                                                     clip=False, **opts))(jax.random.key(0))
        assert float(x.mean()) == pytest.approx(MU, abs=0.01), opts
        assert float(x.std()) == pytest.approx(SD, rel=0.05), opts


def test_flow_samplers_with_the_exact_velocity_reproduce_gaussian_data():
    task = train.setup(tiny("flow.py"), info=INFO).task

    def exact(params, variables, x, time, labels, **kw):
        """E[x1 - x0 | x_t] for x1 ~ N(MU, SD^2), x0 ~ N(0, 1), x_t = (1 - t) x0 + t x1."""
        t = diffusion.expand(time / flow.TIME_SCALE, x)
        return MU + (t * SD**2 - (1 - t)) / ((1 - t) ** 2 + t**2 * SD**2) * (x - t * MU)

    task.apply = exact
    x = jax.jit(lambda r: task.sample({}, {}, r, num=64, guidance=0.0, steps=32,
                                      sampler="heun"))(jax.random.key(0))
    assert float(x.mean()) == pytest.approx(MU, abs=0.005)
    assert float(x.std()) == pytest.approx(SD, rel=0.02)
    # One Euler step lands on the mean: the velocity at t = 0 is MU - x0 for every x0.
    x = task.sample({}, {}, jax.random.key(0), num=4, guidance=0.0, steps=1, sampler="euler")
    np.testing.assert_allclose(x, MU, atol=1e-5)


def test_ddim_with_eta_zero_is_deterministic(tiny_diffusion):
    """Same initial noise, different RNGs: DDIM at eta = 0 gives the same images; at eta = 1
    (the DDPM posterior's variance) it does not. One compiled program (eta traced)."""
    task, params, variables = tiny_diffusion
    noise = jax.random.normal(jax.random.key(3), (2, 16, 16, 3))
    labels = jnp.array([1, 5])

    @jax.jit
    def ddim(rng, eta):
        return task.sample(params, variables, rng, num=2, labels=labels, steps=3, guidance=0.0,
                           sampler="ddim", eta=eta, noise=noise)

    a, b = ddim(jax.random.key(0), 0.0), ddim(jax.random.key(1), 0.0)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.all(np.abs(np.asarray(a)) <= 1.0)  # x_0 clipped
    c = ddim(jax.random.key(1), 1.0)
    assert np.abs(np.asarray(c) - np.asarray(a)).max() > 1e-3


def test_guidance_zero_is_the_conditional_model(tiny_diffusion):
    task, params, variables = tiny_diffusion
    x = jax.random.normal(jax.random.key(4), (2, 16, 16, 3))
    t, labels = jnp.array([10.0, 900.0]), jnp.array([2, 7])
    cond = np.asarray(task.apply(params, variables, x, t, labels))
    uncond = np.asarray(task.apply(params, variables, x, t, jnp.full((2,), task.null_class)))
    assert np.abs(cond - uncond).max() > 1e-4  # the classes matter, so the test means something
    # A concrete 0 skips the unconditional pass; an array 0 runs both and mixes them.
    for w in (0.0, jnp.asarray(0.0)):
        np.testing.assert_array_equal(
            np.asarray(task.guided(params, variables, x, t, labels, w)), cond)
    np.testing.assert_allclose(np.asarray(task.guided(params, variables, x, t, labels, 2.0)),
                               3 * cond - 2 * uncond, atol=1e-5)


def test_euler_on_a_straight_flow_lands_exactly():
    k0, k1 = jax.random.split(jax.random.key(0))
    x0 = jax.random.normal(k0, (3, 4, 4, 3))
    x1 = jax.random.uniform(k1, (3, 4, 4, 3), minval=-1, maxval=1)
    straight = lambda x, t: x1 - x0
    np.testing.assert_allclose(flow.integrate(straight, x0, 1, "euler"), x1, atol=1e-6)
    np.testing.assert_allclose(flow.integrate(straight, x0, 1, "heun"), x1, atol=1e-6)
    # The conditional field towards x1, (x1 - x) / (1 - t): every Euler step stays on the line.
    towards = lambda x, t: (x1 - x) / (1 - t)
    for steps in (1, 2, 4, 8):
        np.testing.assert_allclose(flow.integrate(towards, x0, steps, "euler"), x1, atol=1e-5)
    t = jnp.array([0.0, 0.25, 1.0])
    np.testing.assert_allclose(flow.interpolate(x0, x1, t)[0], x0[0])
    np.testing.assert_allclose(flow.interpolate(x0, x1, t)[2], x1[2])


@pytest.mark.parametrize("spec", ["ddpm.py", "ddpm.py:schedule=cosine,prediction=v",
                                  "ddpm.py:resolution=32,unconditional", "ddpm.py:runlocal",
                                  "flow.py", "flow.py:sampler=heun,resolution=32",
                                  "flow.py:runlocal", "flow.py:reflow=/tmp/teacher"])
def test_every_config_builds(spec):
    c = config_lib.load_config(config_path(spec))
    config_lib.validate(c, num_devices=8)
    size = c.data.image_size
    info = data.DatasetInfo(name="synthetic", num_classes=8, image_shape=(size, size, 3),
                            split_sizes={"train": 50_000})
    state = train.setup(c, info=info).abstract
    assert state.params["conv_out"]["kernel"].shape[-1] == 3
    assert ("class_embed" in state.params) == ("unconditional" not in spec)


def test_bad_options_name_the_valid_choices():
    with pytest.raises(ValueError, match="schedule='quadratic'.*linear"):
        train.setup(tiny("ddpm.py", "diffusion.schedule=quadratic"), info=INFO)
    with pytest.raises(ValueError, match="variant='XL'"):
        train.setup(config_lib.load_config(config_path("flow.py:variant=XL")), info=INFO)
    task = train.setup(tiny("flow.py", "flow.conditional=False"), info=INFO).task
    with pytest.raises(ValueError, match="guidance=1.0 needs a class-conditional"):
        task.guided({}, {}, jnp.zeros((1, 16, 16, 3)), jnp.zeros(1), jnp.zeros(1, jnp.int32),
                    1.0)


def test_reflow_batches_carry_their_coupling(tmp_path):
    """A reflow run trains on cached (noise, image, label) triples, and its loss uses the
    batch's noise rather than fresh noise."""
    teacher = tmp_path / "teacher"
    c = tiny("flow.py", f"flow.reflow.teacher={teacher}", "flow.reflow.num_pairs=32")
    path = flow.reflow_pairs_path(c)
    rng = np.random.default_rng(0)
    import os
    os.makedirs(os.path.dirname(path))
    np.savez(path, noise=rng.standard_normal((32, 16, 16, 3)).astype(np.float32),
             image=rng.uniform(-1, 1, (32, 16, 16, 3)).astype(np.float32),
             label=(np.arange(32) % 8).astype(np.int32))
    task = train.setup(c, info=INFO).task
    assert flow.make_reflow_pairs(c) == path  # cached: no teacher needed
    it = task.train_iterator(global_batch_size=8, seed=0, process_index=0, process_count=1)
    batch = next(it)
    assert set(batch) == {"image", "noise", "label"} and batch["noise"].shape == (8, 16, 16, 3)
    saved = np.load(path)
    row = int(np.flatnonzero((saved["noise"] == batch["noise"][0]).all(axis=(1, 2, 3)))[0])
    np.testing.assert_array_equal(saved["image"][row], batch["image"][0])

    zero = lambda params, variables, x, time, labels, **kw: jnp.zeros_like(x)
    task.apply = zero  # a network that outputs 0: the loss is then |x1 - x0|^2
    jbatch = {k: jnp.asarray(v) for k, v in batch.items()}
    per, _ = task.per_example_loss({}, {}, jbatch, jax.random.key(0), train=False)
    np.testing.assert_allclose(
        per, np.mean((batch["image"] - batch["noise"]) ** 2, axis=(1, 2, 3)), rtol=1e-5)


def test_flow_step_with_captions_and_caption_guidance():
    """Flow matching's one real step on the mesh, conditioned on captions
    (configs/text_to_image.py; the class-conditional path is the diffusion step's): every
    parameter moves, the text encoder's and the null caption's included (p_uncond 0.5
    drops some captions), and guidance mixes the caption and null-caption outputs."""
    c = config_lib.load_config(config_path("text_to_image.py:variant=T"))
    config_lib.apply_overrides(c, ["batch_size=16", "flow.p_uncond=0.5",
                                   "schedule.warmup_steps=0"])
    before, after, metrics, shardings = one_train_step(c, DATA_AND_FSDP, num_classes=8,
                                                       image_shape=(16, 16, 3))
    check_one_train_step(before, after, metrics, shardings)
    assert 0 < metrics["uncond_fraction"] < 1
    assert "class_embed" not in after.params and "caption_embed" in after.params

    task = train.setup(c, info=INFO).task
    params, variables = jax.device_get(after.params), jax.device_get(after.model_state)
    x = jax.random.normal(jax.random.key(4), (2, 16, 16, 3))
    t = jnp.array([0.1, 0.9])
    tokens = jnp.asarray(captions.encode_batch(["a red circle", "a blue star left of a green square"]))
    cond = np.asarray(task.apply(params, variables, x, t, tokens))
    uncond = np.asarray(task.apply(params, variables, x, t, task.null_labels(tokens)))
    assert np.abs(cond - uncond).max() > 1e-5
    np.testing.assert_array_equal(np.asarray(task.guided(params, variables, x, t, tokens, 0.0)),
                                  cond)
    np.testing.assert_allclose(np.asarray(task.guided(params, variables, x, t, tokens, 2.0)),
                               3 * cond - 2 * uncond, atol=1e-5)
    # Dropping replaces whole captions by padding, nothing else.
    dropped, drop = task.train_labels(tokens, jax.random.key(0))
    for row, d in zip(np.asarray(dropped), np.asarray(drop)):
        assert (row == 0).all() if d else (row != 0).any()
