"""muP (vision_jax/mup.py): the table against the paper, SP unchanged, the coordinate check."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import config_path
from ml_collections import ConfigDict

from vision_jax import models, mup, optim
from vision_jax.models import transformer as tfm
from vision_jax.scaling import sweep

# Yang et al. 2022 (arXiv:2203.03466), Table 3, as exponents of the width
# (fan_in of hidden and output weights, fan_out of input weights and biases):
# (init variance, SGD LR, Adam LR), the purple muP entries.
PAPER_TABLE_3 = {
    "input": (0, 1, 0),      # 1/fan_in with fan_in fixed; fan_out; 1
    "vector": (0, 1, 0),     # "input weights & all biases" is one column
    "hidden": (-1, 0, -1),   # 1/fan_in; 1; 1/fan_in
    "output": (-2, -1, -1),  # 1/fan_in^2; 1/fan_in; 1/fan_in
}
# The exponent of SP's own init variance in the width (1/fan_in where fan_in is the width).
SP_INIT_VAR = {"input": 0, "vector": 0, "hidden": -1, "output": -1}

OPT = dict(name="adam", learning_rate=1e-2, b1=0.9, b2=0.999, eps=1e-8, momentum=0.9,
           weight_decay=0.0, decay_norms_and_biases=False, grad_clip_norm=0.0)
SCHED = dict(name="constant", warmup_steps=0, end_factor=0.0, boundaries=(0.5,), step_factor=0.1)


@pytest.mark.parametrize("kind", mup.KINDS)
def test_table_is_table_3_of_the_paper(kind):
    """The multiplier form (init std, LR, output multiplier; Table 8 / the mup
    package) reproduces Table 3 for the effective weight W = output * W'."""
    r = mup.TABLE[kind]
    init_var, sgd, adam = PAPER_TABLE_3[kind]
    assert SP_INIT_VAR[kind] + 2 * r.init_std + 2 * r.output == init_var
    # Adam moves W' by lr (entrywise normalised), so W by lr * output.
    assert r.adam_lr + r.output == adam
    # SGD: dL/dW' = output * dL/dW, and W moves by output * (that step).
    assert r.sgd_lr + 2 * r.output == sgd


def test_multipliers_at_width_mult_4():
    got = {k: mup.multipliers(k, 4.0) for k in mup.KINDS}
    assert got["input"] == mup.Multipliers(init_std=1.0, adam_lr=1.0, sgd_lr=4.0, output=1.0)
    assert got["vector"] == mup.Multipliers(init_std=1.0, adam_lr=1.0, sgd_lr=4.0, output=1.0)
    assert got["hidden"] == mup.Multipliers(init_std=1.0, adam_lr=0.25, sgd_lr=1.0, output=1.0)
    assert got["output"] == mup.Multipliers(init_std=2.0, adam_lr=1.0, sgd_lr=4.0, output=0.25)
    assert all(m == mup.Multipliers(1.0, 1.0, 1.0, 1.0)
               for m in (mup.multipliers(k, 1.0) for k in mup.KINDS))


def _params(cfg, size=8):
    """Abstract parameters: the rules need paths and shapes only (nothing compiles)."""
    model = models.build_model(cfg, num_classes=10)
    return nn.unbox(jax.eval_shape(lambda: model.init(
        jax.random.PRNGKey(0), jnp.zeros((2, size, size, 3)), train=False))["params"])


def test_classification_and_lr_factors_of_the_three_models():
    mlp = dict(name="mlp", hidden=(64, 128), parametrization="mup", mup_base_width=32)
    params = _params(mlp)
    kinds = mup.kinds(params, mlp)
    assert kinds["hidden_0"] == {"kernel": "input", "bias": "vector"}
    assert kinds["hidden_1"] == {"kernel": "hidden", "bias": "vector"}
    assert kinds["head"] == {"kernel": "output", "bias": "vector"}
    adam = mup.lr_multipliers(params, mlp, "adam")
    sgd = mup.lr_multipliers(params, mlp, "sgd")
    assert adam["hidden_1"]["kernel"] == 0.5   # fan_in 64 over base 32
    assert adam["head"]["kernel"] == adam["hidden_0"]["kernel"] == 1.0
    assert sgd["hidden_0"]["kernel"] == 2.0 and sgd["hidden_1"]["bias"] == 4.0
    assert sgd["head"]["kernel"] == 4.0 and sgd["head"]["bias"] == 1.0  # num_classes: fixed
    assert sgd["hidden_1"]["kernel"] == 1.0

    vit = dict(name="vit", variant="Ti/4", width=64, depth=1, num_heads=2, mlp_dim=128,
               parametrization="mup", mup_base_width=16)
    kinds = mup.kinds(_params(vit), vit)
    block = kinds["block_0"]
    assert {block["attention"][n]["kernel"] for n in ("query", "key", "value", "out")} == {
        "hidden"}
    assert block["mlp"]["fc1"]["kernel"] == block["mlp"]["fc2"]["kernel"] == "hidden"
    assert kinds["embedding"]["kernel"] == kinds["pos_embedding"] == "input"
    assert kinds["head"]["kernel"] == "output" and kinds["cls"] == "vector"
    assert block["norm1"] == {"scale": "vector", "bias": "vector"}
    adam = mup.lr_multipliers(_params(vit), vit)
    assert adam["block_0"]["mlp"]["fc2"]["kernel"] == 0.25 and adam["head"]["kernel"] == 1.0

    cfg = tfm.TransformerConfig(vocab_size=32, d_model=32, num_heads=2, d_ff=64, num_layers=1,
                                max_len=8, tie_embeddings=False, mlp="swiglu",
                                parametrization="mup", mup_base_width=8)
    params = jax.eval_shape(lambda: tfm.Transformer(cfg).init(jax.random.PRNGKey(0),
                                                              jnp.zeros((1, 8), jnp.int32)))
    kinds = mup.kinds(nn.unbox(params["params"]), cfg)
    assert kinds["embed"]["embedding"] == "input" and kinds["unembed"]["kernel"] == "output"
    assert kinds["decoder_0"]["mlp"]["wi_gate"]["kernel"] == "hidden"
    assert kinds["decoder_0"]["self_attention"]["query"]["kernel"] == "hidden"
    assert mup.lr_multipliers(nn.unbox(params["params"]), cfg)["decoder_0"]["mlp"]["wo"][
        "kernel"] == 0.25

    with pytest.raises(ValueError, match="no muP rule for parameter 'extra/kernel'"):
        mup.classify(("extra", "kernel"), "mlp")
    with pytest.raises(ValueError, match="mup_base_width"):
        models.build_model(dict(name="mlp", parametrization="mup"), num_classes=10)
    with pytest.raises(ValueError, match="LAMB"):
        optim.make_optimizer(ConfigDict({**OPT, "name": "lamb"}), ConfigDict(SCHED), 10,
                             model_config=ConfigDict(mlp))


@pytest.mark.parametrize("cfg", [
    dict(name="mlp", hidden=(32, 32)),
    dict(name="vit", variant="Ti/4", width=32, depth=1, num_heads=2, mlp_dim=64,
         head_zeroinit=False),
])
def test_sp_is_bit_identical_and_mup_equals_sp_at_the_base_width(cfg):
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 3))
    base = cfg.get("width", cfg.get("hidden", (0,))[-1])
    outs, grads = [], []
    for extra in ({}, {"parametrization": "sp"},
                  {"parametrization": "mup", "mup_base_width": base}):
        model = models.build_model({**cfg, **extra}, num_classes=10)
        params = nn.unbox(model.init(jax.random.PRNGKey(0), x, train=False)["params"])
        outs.append(np.asarray(model.apply({"params": params}, x, train=False)))
        tx, _ = optim.make_optimizer(ConfigDict(OPT), ConfigDict(SCHED), 10,
                                     model_config=ConfigDict({**cfg, **extra}))
        g = jax.tree.map(jnp.ones_like, params)
        grads.append(tx.update(g, tx.init(params), params)[0])
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[2])):
        np.testing.assert_array_equal(a, b)


def test_transformer_sp_unchanged_and_mup_equal_at_base():
    cfg = tfm.TransformerConfig(vocab_size=32, d_model=32, num_heads=2, d_ff=64, num_layers=1,
                                max_len=8, tie_embeddings=False)
    tokens = jnp.arange(8, dtype=jnp.int32)[None] % 32
    logits = []
    for c in (cfg, cfg.replace(parametrization="mup", mup_base_width=32)):
        model = tfm.Transformer(c)
        logits.append(np.asarray(model.apply(model.init(jax.random.PRNGKey(0), tokens),
                                             tokens)["logits"]))
    np.testing.assert_array_equal(logits[0], logits[1])
    assert tfm.param_counts(cfg) == tfm.param_counts(cfg.replace(parametrization="mup",
                                                                 mup_base_width=8))


def test_lr_factors_scale_updates_through_make_optimizer_and_keep_boxes():
    cfg = ConfigDict(dict(name="mlp", hidden=(64, 64), parametrization="mup",
                          mup_base_width=16))
    model = models.build_model(cfg, num_classes=10)
    boxed = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 4, 4, 3)), train=False)["params"]
    sgd, _ = optim.make_optimizer(ConfigDict({**OPT, "name": "sgd"}), ConfigDict(SCHED), 10,
                                  model_config=cfg)
    sgd.init(boxed)  # boxed leaves (the trainer's init) are fine
    params = nn.unbox(boxed)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = jax.jit(sgd.update)(grads, sgd.init(params), params)
    lr = OPT["learning_rate"]
    np.testing.assert_allclose(updates["hidden_1"]["kernel"], -lr * 1.0)
    np.testing.assert_allclose(updates["hidden_0"]["kernel"], -lr * 4.0)
    np.testing.assert_allclose(updates["head"]["bias"], -lr * 1.0)
    scaled, _ = mup.scale_lr_by_width(cfg, "adam").update(boxed, optax.EmptyState())
    assert isinstance(scaled["hidden_1"]["kernel"], nn.meta.AxisMetadata)
    np.testing.assert_allclose(scaled["hidden_1"]["kernel"].unbox(),
                               boxed["hidden_1"]["kernel"].unbox() / 4.0)


def test_coord_check_is_flat_under_mup_and_grows_under_sp():
    """Yang et al. Fig. 5 in miniature: logits' mean |x| after 3 Adam steps at
    width 256 over width 32 (measured: muP 0.95, SP 5.8; at init both 0.31, since
    muP's readout starts at variance 1/fan_in^2)."""
    result = mup.coord_check("mlp", (32, 256), steps=3, learning_rate=3e-2, depth=2,
                             batch_size=16, image_size=8)
    mup_growth = mup.growth(result, "mup", "head", 3)
    sp_growth = mup.growth(result, "sp", "head", 3)
    assert 0.5 <= mup_growth <= 2.0, result["l1"]["mup"]["head"]
    assert sp_growth > 2.0 * mup_growth, (sp_growth, mup_growth)


def test_mup_sweep_config_builds():
    for arg, n in (("", 35), (":runlocal", 8)):
        s = sweep.load_sweep(config_path("scaling/mup.py") + arg)
        trials = sweep.expand(s)  # applies every trial's overrides to the base config
        assert len(trials) == n
        config = sweep.trial_config(s, trials[-1])
        assert config.model.parametrization == "mup" and config.model.mup_base_width == 32
    assert math.log2(trials[1].values["optimizer.learning_rate"]) == -6


def test_transfer_table_shares_the_base_width_runs():
    rows = [{"trial": f"{p}{w}{lr}", "model.parametrization": p, "model.hidden": [w, w],
             "optimizer.learning_rate": lr, "final_eval_loss": loss}
            for p, w, lr, loss in (("sp", 32, 0.1, 1.0), ("sp", 32, 0.01, 0.5),
                                   ("sp", 128, 0.1, 2.0), ("sp", 128, 0.01, 0.4),
                                   ("mup", 128, 0.1, 0.3), ("mup", 128, 0.01, 0.6))]
    report = mup.transfer_from_rows(rows, metric="final_eval_loss", base_width=32)
    assert report["loss"]["mup"]["32"] == report["loss"]["sp"]["32"] == {"0.01": 0.5, "0.1": 1.0}
    assert report["best_lr"]["mup"] == {"32": 0.01, "128": 0.1}
    assert "32" not in mup.transfer_from_rows(rows, metric="final_eval_loss")["loss"]["mup"]
