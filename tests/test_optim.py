"""The optax chain a config asks for: optimizers, schedules, clipping, weight decay mask.

Everything runs eagerly on a few small arrays; the one model (a ViT) is only
traced (`jax.eval_shape`), so the file takes seconds.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vision_jax import config as config_lib
from vision_jax import optim
from vision_jax.models import build_model

TARGET = {"dense": {"kernel": jnp.ones((2, 3)), "bias": jnp.full((3,), -1.0)}}


def quadratic(params):
    return sum(jnp.sum((p - t) ** 2) for p, t in zip(jax.tree.leaves(params),
                                                       jax.tree.leaves(TARGET)))


def optimizer_config(**changes):
    c = config_lib.base_config()
    c.optimizer.update(changes)
    return c.optimizer


def constant_schedule(**changes):
    c = config_lib.base_config()
    c.schedule.update({"name": "constant", **changes})
    return c.schedule


@pytest.mark.parametrize("name", config_lib._OPTIMIZERS)
def test_every_optimizer_lowers_a_quadratic(name):
    # lr 0.01: RMSProp's first step is lr / sqrt(1 - b2) ~ 0.3 per coordinate.
    tx, lr = optim.make_optimizer(optimizer_config(name=name, learning_rate=0.01),
                                  constant_schedule(), total_steps=10)
    params = jax.tree.map(jnp.zeros_like, TARGET)
    state = tx.init(params)
    updates, state = tx.update(jax.grad(quadratic)(params), state, params)
    assert quadratic(optax.apply_updates(params, updates)) < quadratic(params), name
    assert float(lr(0)) == pytest.approx(0.01)


def test_unknown_optimizer_and_schedule_name_the_key():
    with pytest.raises(ValueError, match="config.optimizer.name='adamax'"):
        optim.make_optimizer(optimizer_config(name="adamax"), constant_schedule(), 10)
    with pytest.raises(ValueError, match="config.schedule.name='cyclic'"):
        optim.make_schedule(constant_schedule(name="cyclic"), 1.0, 10)


def schedule(name, total=110, warmup=10, **changes):
    return optim.make_schedule(constant_schedule(name=name, warmup_steps=warmup, **changes),
                               1.0, total)


@pytest.mark.parametrize("name", config_lib._SCHEDULES)
def test_every_schedule_warms_up_linearly_from_zero(name):
    s = schedule(name)
    assert [float(s(t)) for t in (0, 5, 10)] == pytest.approx([0.0, 0.5, 1.0])


def test_schedule_shapes_after_warmup():
    # 100 decay steps after 10 of warm-up.
    cosine, linear = schedule("cosine"), schedule("linear")
    assert float(cosine(60)) == pytest.approx(0.5)            # half-way: (1 + cos(pi/2)) / 2
    assert float(cosine(110)) == pytest.approx(0.0, abs=1e-7)
    assert float(schedule("cosine", end_factor=0.1)(110)) == pytest.approx(0.1)
    decay = [float(cosine(t)) for t in range(10, 111)]
    assert all(b <= a for a, b in zip(decay, decay[1:]))
    assert float(linear(60)) == pytest.approx(0.5) and float(linear(110)) == pytest.approx(0.0)
    assert float(schedule("constant")(110)) == 1.0
    # 'step': x0.1 at 50% and 75% of the decay phase.
    step = schedule("step", boundaries=(0.5, 0.75), step_factor=0.1)
    assert [float(step(t)) for t in (59, 60, 84, 85, 110)] == pytest.approx(
        [1.0, 0.1, 0.1, 0.01, 0.01])
    # No warm-up: the decay starts at the peak.
    assert float(schedule("cosine", warmup=0)(0)) == 1.0


def test_gradient_clipping_clips_the_global_norm():
    params = jax.tree.map(jnp.zeros_like, TARGET)
    grads = jax.tree.map(lambda p: jnp.full(p.shape, 10.0), params)
    norm = float(optax.tree.norm(grads))
    for clip, expected in ((1.0, 1.0), (0.0, norm), (2 * norm, norm)):
        tx, _ = optim.make_optimizer(
            optimizer_config(name="sgd", learning_rate=1.0, weight_decay=0.0,
                             grad_clip_norm=clip), constant_schedule(), 10)
        updates, _ = tx.update(grads, tx.init(params), params)
        assert float(optax.tree.norm(updates)) == pytest.approx(expected, rel=1e-6)


@functools.cache
def vit_params():
    model = build_model(dict(name="vit", variant="Ti/8", width=32, depth=2, mlp_dim=64,
                             num_heads=2, pool="tok", posemb="learn"), num_classes=10)
    variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0),
                               jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
    return variables["params"]


def flat(tree):
    return {"/".join(str(getattr(k, "key", k)) for k in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def test_weight_decay_mask_is_true_exactly_on_kernels():
    params = nn.unbox(vit_params())
    mask = flat(optim.decay_mask(params))
    assert set(mask) == set(flat(params))
    assert {k for k, v in mask.items() if v} == {k for k in mask if k.endswith("/kernel")}
    assert mask["embedding/kernel"] and mask["head/kernel"]  # patch-embedding conv, head
    for key in ("pos_embedding", "cls", "embedding/bias", "head/bias", "encoder_norm/scale",
                "encoder_norm/bias"):
        assert mask[key] is False, key
    # An embedding table (nn.Embed's 'embedding') is not a kernel either; boxed
    # leaves get one flag each.
    table = {"tok": {"embedding": jnp.zeros((5, 4))}, "out": {"kernel": jnp.zeros((4, 5))}}
    assert flat(optim.decay_mask(table)) == {"tok/embedding": False, "out/kernel": True}
    assert flat(optim.decay_mask(vit_params())) == mask


@pytest.mark.parametrize("name", ["adamw", "sgd"])  # decoupled, and coupled L2
@pytest.mark.parametrize("decay_everything", [False, True])
def test_weight_decay_moves_only_the_masked_parameters(name, decay_everything):
    params = jax.tree.map(lambda x: jnp.ones(x.shape, x.dtype), nn.unbox(vit_params()))
    tx, _ = optim.make_optimizer(
        optimizer_config(name=name, learning_rate=0.1, weight_decay=0.5, grad_clip_norm=0.0,
                         decay_norms_and_biases=decay_everything), constant_schedule(), 10)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    moved = {k: bool(np.any(np.asarray(u) != 0)) for k, u in flat(updates).items()}
    kernels = {k: v for k, v in flat(optim.decay_mask(params)).items()}
    assert moved == ({k: True for k in moved} if decay_everything else kernels)
