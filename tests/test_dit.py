"""DiT (vision_jax/models/dit.py) as the denoiser of the diffusion and flow tasks: real
steps on the 8-device data+FSDP mesh, adaLN-Zero's identity at initialisation and
what it implies for the first steps' gradients, the paper's parameter count,
patches, and every config and sweep trial building abstractly. A 2-block DiT of
width 32 keeps the one compile short."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import config as config_lib, data, flops, sharding, train
from vision_jax.models import dit, layers
from vision_jax.scaling import sweep

from helpers import DATA_AND_FSDP, config_path, one_train_step

INFO = data.DatasetInfo(name="synthetic", num_classes=8, image_shape=(16, 16, 3),
                        split_sizes={"train": 160})
TINY = ["model.width=32", "model.depth=2", "model.num_heads=2"]


def tiny(*overrides):
    """configs/dit.py (DDPM) with a 2-block DiT of width 32."""
    c = config_lib.load_config(config_path("dit.py"))
    # p_uncond 0.5: the null class is all but sure to be drawn in a batch of 16.
    # No warm-up: its first learning rate is 0.
    config_lib.apply_overrides(c, [*TINY, "batch_size=16", "diffusion.p_uncond=0.5",
                                   "schedule.warmup_steps=0", *overrides])
    return c


def changed(a, b) -> set[str]:
    """The parameter paths whose arrays differ between two parameter trees."""
    diff = jax.tree.map(lambda x, y: bool(jnp.any(x != y)), a, b)
    return {jax.tree_util.keystr(p) for p, d in jax.tree_util.tree_leaves_with_path(diff) if d}


@pytest.fixture(scope="module")
def three_steps():
    """Three train steps of the tiny class-conditional DiT under diffusion on the
    data+FSDP mesh (one compile; the later calls hit the persistent cache)."""
    c = tiny()
    states, metrics = [], []
    before, after, m, _ = one_train_step(c, DATA_AND_FSDP, num_classes=8,
                                         image_shape=(16, 16, 3))
    states += [before, after]
    metrics.append(m)
    for _ in range(2):
        _, after, m, _ = one_train_step(c, DATA_AND_FSDP, num_classes=8,
                                        image_shape=(16, 16, 3), state=states[-1])
        states.append(after)
        metrics.append(m)
    return states, metrics


def test_dit_trains_on_data_and_fsdp_mesh(three_steps):
    states, metrics = three_steps
    for m in metrics:
        assert np.isfinite(m["loss"]) and 0 < m["grad_norm"] < np.inf
    assert [int(s.step) for s in states] == [0, 1, 2, 3]
    # The zero output makes the first loss E[eps^2] over the batch: about 1.
    assert 0.8 < metrics[0]["loss"] < 1.2
    assert metrics[0]["uncond_fraction"] > 0
    # adaLN-Zero: at the first step only the output layer has a gradient ...
    names = {jax.tree_util.keystr(p) for p, _ in
             jax.tree_util.tree_leaves_with_path(states[0].params)}
    assert changed(states[0].params, states[1].params) == {
        "['final']['kernel']", "['final']['bias']"}
    # ... and by the third every parameter has moved, the null class's row included.
    assert changed(states[0].params, states[3].params) == names
    table = lambda s: np.asarray(s.params["class_embed"]["embedding"])
    assert table(states[0]).shape[0] == 8 + 1
    assert np.any(table(states[0])[8] != table(states[3])[8])
    specs = [str(leaf.sharding.spec) for leaf in jax.tree.leaves(states[3].params)]
    assert any("fsdp" in s for s in specs)


def _model(**kw):
    return dit.DiT(**{"variant": "T/2", "width": 32, "depth": 2, "num_heads": 2,
                      "num_classes": 8, **kw})


def test_adaln_zero_output_and_blocks_start_as_identity():
    k = jax.random.split(jax.random.key(0), 4)
    x = jax.random.normal(k[0], (3, 16, 16, 3))
    t, y = jnp.array([0.0, 421.0, 999.0]), jnp.array([0, 5, 8])  # 8: the null class
    model = _model()
    variables = jax.jit(functools.partial(model.init, train=False))(k[1], x, t, y)
    out = jax.jit(functools.partial(model.apply, train=False))(variables, x, t, y)
    assert out.shape == x.shape and out.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out), 0.0)

    block = dit.DiTBlock(num_heads=2, mlp_dim=128)
    h, c = jax.random.normal(k[2], (3, 64, 32)), jax.random.normal(k[3], (3, 32))
    params = jax.jit(block.init)(k[1], h, c)
    apply = jax.jit(block.apply)
    np.testing.assert_array_equal(np.asarray(apply(params, h, c)), np.asarray(h))
    # Not vacuous: once adaLN's Dense is non-zero the block changes its input.
    opened = jax.tree_util.tree_map_with_path(
        lambda p, v: jnp.full_like(v, 0.1) if "adaln" in jax.tree_util.keystr(p) else v, params)
    assert float(jnp.abs(apply(opened, h, c) - h).max()) > 1e-3


def test_parameters_carry_logical_names_and_attention_is_the_vits():
    model = _model()
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)),
                                                 jnp.zeros(1), jnp.zeros(1, jnp.int32),
                                                 train=False))["params"]
    vocabulary = {name for name, _ in sharding.DEFAULT_RULES} | {None}
    leaves = jax.tree.leaves(abstract, is_leaf=lambda v: isinstance(v, nn.LogicallyPartitioned))
    for leaf in leaves:
        assert isinstance(leaf, nn.LogicallyPartitioned), leaf
        assert len(leaf.names) == leaf.value.ndim and set(leaf.names) <= vocabulary
    block = abstract["block_0"]
    assert set(block) == {"adaln", "attention", "mlp"}  # no LayerNorm parameters: adaLN's
    assert block["attention"]["query"]["kernel"].names == ("embed", "heads", "kv")
    assert block["mlp"]["fc1"]["kernel"].names == ("embed", "mlp")
    assert block["adaln"]["dense"]["kernel"].value.shape == (32, 6 * 32)


def test_paper_parameter_count():
    """DiT-XL/2 on 32x32x4 latents, 1000 classes, learned variance (8 output channels):
    the paper's code prints 675,129,632 parameters, of which 256 x 1152 are its frozen
    position table (a constant here)."""
    model = dit.DiT(variant="XL/2", out_channels=8, num_classes=1000)
    abstract = jax.eval_shape(lambda: model.init(
        jax.random.key(0), jnp.zeros((1, 32, 32, 4)), jnp.zeros(1), jnp.zeros(1, jnp.int32),
        train=False))
    assert flops.count_params(abstract["params"]) == 675_129_632 - 256 * 1152


@pytest.mark.parametrize("patch", [1, 2, 4])
def test_patchify_round_trips_in_the_position_tables_order(patch):
    x = jax.random.normal(jax.random.key(0), (2, 16, 12, 3))
    tokens = layers.patchify(x, patch)
    assert tokens.shape == (2, 16 * 12 // patch**2, patch * patch * 3)
    np.testing.assert_array_equal(np.asarray(layers.unpatchify(tokens, 16, patch)),
                                  np.asarray(x))
    # Token i is the patch at row i // (W/p), column i % (W/p): posemb_sincos_2d's order.
    i = 5
    r, col = divmod(i, 12 // patch)
    np.testing.assert_array_equal(
        np.asarray(tokens[:, i]),
        np.asarray(x[:, r * patch:(r + 1) * patch, col * patch:(col + 1) * patch].reshape(2, -1)))


@pytest.mark.parametrize("arg", ["", "objective=flow", "unconditional", "variant=S/4",
                                 "objective=flow,runlocal"])
def test_configs_build(arg):
    c = config_lib.load_config(config_path("dit.py") + (":" + arg if arg else ""))
    config_lib.validate(c, num_devices=8)
    params = train.setup(c, info=INFO).abstract.params
    assert params["final"]["kernel"].shape[-1] == (16 if "S/4" in arg else 4) * 3
    assert ("class_embed" in params) == ("unconditional" not in arg)
    assert c.task == ("flow" if "flow" in arg else "diffusion")


def test_bad_options_name_the_valid_choices():
    with pytest.raises(ValueError, match=r"model.name='vit'.*\['unet', 'dit'\]"):
        train.setup(tiny("model.name=vit"), info=INFO)
    with pytest.raises(ValueError, match="variant='Z/2'"):
        dit.decode_variant("Z/2")
    with pytest.raises(ValueError, match="width=30 must be divisible by num_heads=4"):
        dit.decode_variant("T/2", width=30)
    with pytest.raises(ValueError, match="not divisible by the patch size 4"):
        _model(variant="T/4").init(jax.random.key(0), jnp.zeros((1, 10, 10, 3)), jnp.zeros(1),
                                   jnp.zeros(1, jnp.int32), train=False)


@pytest.mark.parametrize("arg", ["", ":smoke"])
def test_scaling_sweep_trials_build(arg):
    """Every trial of configs/scaling/dit.py validates and its DiT initialises abstractly;
    the full sweep crosses >= 3 widths with 2 depths."""
    spec = sweep.load_sweep(config_path("scaling/dit.py") + arg)
    trials = sweep.expand(spec)
    shapes = set()
    for trial in trials:
        c = sweep.trial_config(spec, trial)
        config_lib.validate(c, num_devices=8)
        shapes.add((c.model.width, c.model.depth, c.model.num_heads, c.model.variant))
    for width, depth, heads, variant in shapes:
        model = dit.DiT(variant=variant, width=width, depth=depth, num_heads=heads,
                        num_classes=8)
        jax.eval_shape(lambda m=model: m.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)),
                                              jnp.zeros(1), jnp.zeros(1, jnp.int32),
                                              train=False))
    widths, depths = {s[0] for s in shapes}, {s[1] for s in shapes}
    assert len(depths) == 2 and len(widths) >= (2 if arg else 3)


def test_store_rows_of_a_task_without_accuracy(tmp_path):
    """A diffusion trial's summary has a loss but no accuracy: its row says None, not KeyError."""
    import json

    from vision_jax.scaling import store
    (tmp_path / "trial.json").write_text(json.dumps(
        {"name": "w", "index": 0, "values": {"model.width": 32}}))
    (tmp_path / "summary.json").write_text(json.dumps(
        {"model": "dit", "dataset": "shapes", "params": 10, "forward_flops_per_example": 2.0,
         "train_flops_per_example": 6.0, "train_loss": 0.1, "eval_loss": 0.2,
         "wall_seconds": 1.0, "examples_per_second": 5.0, "mfu": None}))
    (tmp_path / "metrics.jsonl").write_text(json.dumps(
        {"step": 5, "split": "train", "loss": 0.1, "examples_seen": 320}) + "\n")
    r = store.row(str(tmp_path))
    assert r["final_eval_loss"] == 0.2 and r["compute_flops"] == 320 * 6.0
    assert r["final_eval_error"] is None and r["train_curve"] == [[5, 0.1, None]]


def test_dit_laws_fit_known_power_laws_and_read_cached_fids(tmp_path):
    """Loss = (1e9 / C)^0.1 and FID = 50 (1e6 / GFLOPs)^0.5 exactly: the analysis recovers
    both exponents, reads FIDs from each trial's cache instead of sampling, and writes
    its figure and table."""
    import json

    import pandas as pd

    from vision_jax.scaling import dit_laws
    protocol = {"num": 8, "steps": 2, "guidance": 0.0, "seed": 0}
    rows = []
    for i, (w, d) in enumerate([(32, 2), (32, 4), (64, 2), (64, 4), (96, 4)]):
        gflops = 1e-3 * w * w * d / 1024
        compute = 3e9 * gflops * 64_000
        fid = 50 * (1e-3 / gflops) ** 0.5
        name = f"w{w}d{d}"
        trial = tmp_path / "trials" / name
        trial.mkdir(parents=True)
        key = json.dumps(protocol, sort_keys=True)
        (trial / dit_laws.FID_FILE).write_text(json.dumps({key: {
            "step": 1000, "fid": fid, "kid": 0.0, "class_accuracy": 0.5}}))
        rows.append({"trial": name, "model.width": w, "model.depth": d,
                     "forward_flops_per_example": 1e9 * gflops, "compute_flops": compute,
                     "final_eval_loss": (1e9 / compute) ** 0.1})
    out = tmp_path / "plots"
    paths, table = dit_laws.analyse(pd.DataFrame(rows), out=str(out), fid=protocol,
                                    bootstrap=10)
    assert table["fits"]["loss_vs_compute"]["params"]["alpha"] == pytest.approx(0.1, rel=1e-4)
    assert table["fits"]["fid_vs_compute"]["params"]["alpha"] == pytest.approx(0.5, rel=1e-4)
    assert table["log_fid_log_gflops_correlation"] == pytest.approx(-1.0, abs=1e-6)
    assert all(r["class_accuracy"] == 0.5 for r in table["runs"])
    assert {"dit_scaling.png", "dit_scaling.json"} <= {p.name for p in out.iterdir()}
