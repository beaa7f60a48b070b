"""The task interface: several models and optimizers in one step, EMA, the registry."""


import jax
import numpy as np
import pytest

from vision_jax import config as config_lib, tasks

from helpers import DATA_AND_FSDP, check_one_train_step, config_path, one_train_step


def gan_config(*overrides):
    c = config_lib.load_config(config_path("gan.py"))
    config_lib.apply_overrides(c, ["batch_size=16", *overrides])
    return c


@pytest.fixture(scope="module")
def gan_step():
    """One real GAN step (discriminator, then generator, then EMA) on a 2x4 data+FSDP mesh."""
    return one_train_step(gan_config(), DATA_AND_FSDP, num_classes=8, image_shape=(16, 16, 3))


def test_gan_step_updates_both_models_with_their_own_optimizers(gan_step):
    before, after, metrics, shardings = gan_step
    check_one_train_step(before, after, metrics, shardings)
    assert set(after.params) == set(after.opt_state) == {"generator", "discriminator"}
    for group in ("generator", "discriminator"):
        assert np.isfinite(metrics[f"loss_{group}"]) and metrics[f"grad_norm_{group}"] > 0
    assert metrics["loss"] == pytest.approx(
        metrics["loss_generator"] + metrics["loss_discriminator"], rel=1e-6)
    assert 0.0 < metrics["d_real"] < 1.0 and 0.0 < metrics["d_fake"] < 1.0
    # The generator's batch norm statistics move (its step runs in training mode).
    g_stats = jax.tree.leaves(before.model_state["generator"]["batch_stats"])
    g_stats_after = jax.tree.leaves(after.model_state["generator"]["batch_stats"])
    assert any(np.any(np.asarray(a) != np.asarray(b)) for a, b in zip(g_stats, g_stats_after))


def test_ema_is_the_exponential_average_of_the_parameters(gan_step):
    before, after, _, _ = gan_step
    decay = gan_config().ema.decay
    for e0, p1, e1 in zip(jax.tree.leaves(before.ema), jax.tree.leaves(after.params),
                          jax.tree.leaves(after.ema)):
        np.testing.assert_allclose(np.asarray(e1),
                                   decay * np.asarray(e0) + (1 - decay) * np.asarray(p1),
                                   rtol=1e-6, atol=1e-7)
    # At init the average is the parameters themselves.
    for e0, p0 in zip(jax.tree.leaves(before.ema), jax.tree.leaves(before.params)):
        np.testing.assert_array_equal(np.asarray(e0), np.asarray(p0))


def test_each_group_has_its_own_optimizer_settings():
    """config.optimizers.<group> overrides config.optimizer for that group only."""
    c = gan_config("optimizers.discriminator.learning_rate=0.0")
    before, after, metrics, _ = one_train_step(c, {"data": 8}, num_classes=8,
                                               image_shape=(16, 16, 3))
    frozen = jax.tree.map(lambda a, b: bool(np.all(np.asarray(a) == np.asarray(b))),
                          before.params["discriminator"], after.params["discriminator"])
    assert all(jax.tree.leaves(frozen))  # lr 0: the discriminator did not move
    moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                         before.params["generator"], after.params["generator"])
    assert all(jax.tree.leaves(moved))
    assert metrics["learning_rate_discriminator"] == 0.0


def test_unknown_task_and_bad_ema_are_config_errors():
    c = gan_config()
    with c.unlocked():
        c.task = "telepathy"
    with pytest.raises(config_lib.ConfigError, match="config.task='telepathy'"):
        config_lib.validate(c, num_devices=8)
    with pytest.raises(config_lib.ConfigError, match="ema.decay"):
        config_lib.validate(gan_config("ema.decay=1.5"), num_devices=8)
    with pytest.raises(config_lib.ConfigError, match="pruning needs a task with one optimizer"):
        config_lib.validate(gan_config("prune.mask=mask.npz"), num_devices=8)


def test_every_registered_task_imports():
    for name in tasks.REGISTRY:
        cls = tasks.get_class(name)
        assert issubclass(cls, tasks.Task)
        assert cls.groups == () or len(cls.groups) >= 2
