"""Lottery tickets: masked training in the one trainer, magnitude pruning, rewinding, the driver."""

import copy
import json
import os
import shutil

import flax.linen as nn
import jax
import numpy as np
import pandas as pd
import pytest

from vision_jax import checkpoint as ckpt_lib, data, models, prune, sharding, train
from vision_jax import config as config_lib
from vision_jax.config import ConfigError
from vision_jax.scaling import lottery, store, sweep

from helpers import ROOT, config_path, tiny_config

MLP = "mlp.py:32x16,dataset=digits"  # 192 -> 32 -> 16 -> 10 on 8x8 digits
DIGITS = ["data.image_size=8", "batch_size=32", "log_every_steps=1", "schedule.warmup_steps=0"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    data.prepare(dict(name="digits", data_dir=path))
    return path


def mlp_config(data_dir, *overrides):
    return tiny_config(MLP, data_dir, *DIGITS, *overrides)


def restore_state(config, workdir, step=None):
    """The saved TrainState of a run (its newest step unless `step`)."""
    mesh = sharding.make_mesh(dict(config.mesh))
    abstract = train.setup(config, mesh, sharding.rules_from_config(None)).abstract
    found = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints")).restore(abstract, step)
    return abstract, found[1]


def half_pruned_mask(config):
    """Half of every hidden kernel and a quarter of the head pruned, at random positions."""
    abstract = lottery._abstract_params(config)
    rng = np.random.default_rng(0)
    scores = jax.tree.map(lambda a: rng.normal(size=a.shape), abstract)
    return prune.magnitude_prune(scores, prune.full_mask(abstract), rate=0.5)


# ---------------------------------------------------------------------------
# The trainer with a mask.

@pytest.fixture(scope="module")
def masked_run(data_dir, tmp_path_factory):
    """SGD with momentum and coupled weight decay, FSDP over the 8 devices, masked."""
    root = tmp_path_factory.mktemp("masked")
    c = mlp_config(data_dir, "total_steps=6", "checkpoint.every_steps=3",
                   "checkpoint.async_save=False", "optimizer.name=momentum",
                   "optimizer.learning_rate=0.5", "optimizer.weight_decay=0.1",
                   "schedule.name=constant", "mesh.data=1", "mesh.fsdp=8")
    mask = half_pruned_mask(c)
    prune.save_mask(str(root / "mask.npz"), mask)
    c.prune.mask = str(root / "mask.npz")
    summary = train.train(c, str(root / "run"))
    return c, mask, str(root / "run"), summary


def test_masked_training_keeps_pruned_weights_exactly_zero(masked_run):
    c, mask, workdir, summary = masked_run
    abstract, state = restore_state(c, workdir)
    assert int(state.step) == 6
    params, kept = prune.flatten(state.params), prune.flatten(mask)
    momentum = prune.flatten(state.opt_state.inner)
    for name, p in params.items():
        p, m = np.asarray(p), kept[name]
        assert (p[~m] == 0).all(), name  # neither momentum nor weight decay revived them
        if prune.is_prunable(name, p):
            assert (p[m] != 0).all(), name  # the kept weights trained
            traces = [np.asarray(v) for k, v in momentum.items() if k.endswith(name)]
            assert traces and all((t[~m] == 0).all() for t in traces), name
    # The mask lives in the optimizer state, sharded like the parameters.
    for name, m in prune.flatten(state.opt_state.mask).items():
        np.testing.assert_array_equal(np.asarray(m), kept[name])
    spec = lambda t: prune.flatten(t)["hidden_0/kernel"].sharding.spec  # noqa: E731
    assert spec(abstract.opt_state.mask) == spec(abstract.params)
    assert spec(abstract.params)[0] == "fsdp"  # really split over the 8 devices
    assert summary["sparsity"] == pytest.approx(1 - prune.mask_density(mask)["all"], abs=1e-6)
    with open(os.path.join(workdir, "summary.json")) as f:
        assert json.load(f)["sparsity"] == summary["sparsity"]


def test_mask_survives_a_resume_without_its_file(masked_run, tmp_path):
    """A run interrupted after step 3 resumes masked from its checkpoint even when
    the mask file is gone, and ends bit for bit where the uninterrupted run did."""
    c, mask, workdir, _ = masked_run
    resumed = str(tmp_path / "resumed")
    shutil.copytree(workdir, resumed)
    shutil.rmtree(os.path.join(resumed, "checkpoints", "6"))
    os.remove(os.path.join(resumed, "summary.json"))
    c2 = copy.deepcopy(c)
    c2.prune.mask = str(tmp_path / "deleted.npz")  # never read on resume
    train.train(c2, resumed)
    _, straight = restore_state(c, workdir)
    _, again = restore_state(c, resumed)
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_rewinding_restores_theta_k_on_the_kept_weights(masked_run, tmp_path):
    """init_from one step's checkpoint of a run, with a new mask: the kept weights
    are exactly that step's and the pruned ones zero (a learning rate of 0 keeps them)."""
    c, _, workdir, _ = masked_run
    theta_k = os.path.join(workdir, "checkpoints", "3")
    abstract = lottery._abstract_params(c)
    at_k = prune.flatten(ckpt_lib.restore_params(theta_k, abstract))
    at_end = prune.flatten(lottery._trained_params(workdir, abstract))
    mask = prune.random_mask(half_pruned_mask(c), seed=1)
    prune.save_mask(str(tmp_path / "ticket.npz"), mask)
    ticket = copy.deepcopy(c)
    config_lib.apply_overrides(ticket, ["total_steps=1", "optimizer.learning_rate=0.0",
                                        f"init_from={theta_k}",
                                        f"prune.mask={tmp_path / 'ticket.npz'}"])
    summary = train.train(ticket, str(tmp_path / "ticket"))
    rewound = prune.flatten(lottery._trained_params(str(tmp_path / "ticket"), abstract))
    for name, m in prune.flatten(mask).items():
        np.testing.assert_array_equal(rewound[name], np.where(m, np.asarray(at_k[name]), 0))
        if prune.is_prunable(name, m):  # step 3, not the newest step 6, was restored
            assert not np.array_equal(np.asarray(at_k[name]), np.asarray(at_end[name]))
    assert summary["sparsity"] > 1 - prune.mask_density(mask)["all"]  # old zeros stay zero


def test_a_mask_for_another_model_is_a_clear_error(data_dir, tmp_path):
    c = mlp_config(data_dir, "total_steps=2")
    other = half_pruned_mask(mlp_config(data_dir, "model.hidden=(32, 8)"))
    prune.save_mask(str(tmp_path / "other.npz"), other)
    c.prune.mask = str(tmp_path / "other.npz")
    with pytest.raises(ConfigError, match=r"does not match the model: wrong shapes "
                                          r"\(head/kernel: mask \(8, 10\), parameter \(16, 10\)"):
        train.train(c, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run" / "checkpoints" / "1")

    abstract = lottery._abstract_params(c)
    flat = {k: np.ones(np.shape(v), bool) for k, v in prune.flatten(abstract).items()}
    flat["hidden_9/kernel"] = flat.pop("hidden_1/kernel")
    np.savez(tmp_path / "renamed.npz", **flat)
    with pytest.raises(ConfigError, match=r"no entry for parameters \['hidden_1/kernel'\].*"
                                          r"model does not have \['hidden_9/kernel'\]"):
        prune.load_mask(str(tmp_path / "renamed.npz"), abstract)
    with pytest.raises(ConfigError, match="does not exist"):
        prune.load_mask(str(tmp_path / "missing.npz"), abstract)


# ---------------------------------------------------------------------------
# Pruning.

def _layers():
    rng = np.random.default_rng(1)
    hidden = rng.permutation(np.arange(1, 101)).reshape(10, 10) * rng.choice([-1, 1], (10, 10))
    head = rng.permutation(np.arange(1, 41)).reshape(10, 4) * 1000.0
    return {"hidden_0": {"kernel": hidden.astype(np.float32), "bias": np.zeros(10, np.float32)},
            "head": {"kernel": head.astype(np.float32), "bias": np.zeros(4, np.float32)}}


def test_magnitude_pruning_removes_the_smallest_and_the_head_at_half_rate():
    params = _layers()
    hidden, head = np.abs(params["hidden_0"]["kernel"]), params["head"]["kernel"]
    one = prune.magnitude_prune(params, prune.full_mask(params), rate=0.2)
    np.testing.assert_array_equal(one["hidden_0"]["kernel"], hidden > 20)  # the 20 smallest
    np.testing.assert_array_equal(one["head"]["kernel"], head > 4000)      # 10% = 4 of 40
    assert one["hidden_0"]["bias"].all() and one["head"]["bias"].all()     # never pruned
    two = prune.magnitude_prune(params, one, rate=0.2)
    np.testing.assert_array_equal(two["hidden_0"]["kernel"], hidden > 36)  # 20% of the 80 left
    assert two["head"]["kernel"].sum() == 36 - round(0.1 * 36)
    assert prune.mask_density(two)["hidden_0/kernel"] == 0.64

    # Global: one ranking over the hidden kernels (the head still on its own).
    params["hidden_1"] = {"kernel": params["hidden_0"]["kernel"] * 1000.0}
    glob = prune.magnitude_prune(params, prune.full_mask(params), rate=0.2, scope="global")
    assert glob["hidden_0"]["kernel"].sum() == 60 and glob["hidden_1"]["kernel"].all()
    with pytest.raises(ValueError, match=r"scope='glob' is not valid; choose one of \['layer'"):
        prune.magnitude_prune(params, glob, rate=0.2, scope="glob")
    with pytest.raises(ValueError, match="rate=1.5 must be in"):
        prune.magnitude_prune(params, glob, rate=1.5)


def test_random_mask_keeps_each_layers_count():
    params = _layers()
    mask = prune.magnitude_prune(params, prune.full_mask(params), rate=0.5)
    shuffled = prune.random_mask(mask, seed=3)
    for name, m in prune.flatten(mask).items():
        r = prune.flatten(shuffled)[name]
        assert r.sum() == m.sum(), name
        if prune.is_prunable(name, m):
            assert not np.array_equal(r, m), name
    np.testing.assert_array_equal(prune.random_mask(mask, seed=3)["head"]["kernel"],
                                  shuffled["head"]["kernel"])


# ---------------------------------------------------------------------------
# The driver and the config.

def _write_lottery(tmp_path, data_dir, rate=0.2, rounds=2, controls=("reinit", "random_mask")
                   ) -> str:
    # max_to_keep=1: only the lottery's keep_period saves theta_k for the rewinds.
    overrides = [f"data.data_dir={data_dir}", *DIGITS, "total_steps=4", "log_every_steps=2",
                 "checkpoint.every_steps=4", "checkpoint.max_to_keep=1", "progress_bar=False"]
    path = tmp_path / f"tiny_lottery_{rate}_{'+'.join(controls)}.py"
    path.write_text(
        "from ml_collections import ConfigDict\n\n"
        "def get_config(arg=None):\n"
        "    c = ConfigDict()\n"
        f"    c.base = {config_path(MLP)!r}\n"
        f"    c.overrides = {overrides!r}\n"
        "    c.axes = (('seed', [0]),)\n"
        f"    c.lottery = dict(rounds={rounds}, rate={rate}, output_rate=0.1, rewind_step=2,\n"
        f"                     controls={tuple(controls)!r})\n"
        "    return c\n")
    return str(path)


def test_driver_end_to_end_then_skips_finished_runs(data_dir, tmp_path, capsys):
    spec, workdir = _write_lottery(tmp_path, data_dir), str(tmp_path / "lottery")
    args = [f"--config={spec}", f"--workdir={workdir}"]
    assert lottery.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("[lottery ") == 7 and "[lottery 7/7]" in out

    df = pd.read_json(os.path.join(workdir, store.RESULTS_JSONL), lines=True)
    assert list(zip(df["round"], df.kind)) == [
        (0, "dense"), (1, "rewind"), (1, "reinit"), (1, "random_mask"),
        (2, "rewind"), (2, "reinit"), (2, "random_mask")]
    for column in ("weights_remaining", "sparsity", "final_eval_accuracy", "seed", "params"):
        assert column in df.columns, column
    # The hidden kernels (192x32, 32x16) lose 20% per round, the 16x10 head 10%.
    kept = (6144 - round(0.2 * 6144)) + (512 - round(0.2 * 512)) + (160 - 16)
    assert df.weights_remaining[1] * (6144 + 512 + 160) == pytest.approx(kept)
    for r in (1, 2):  # the controls at the ticket's sparsity
        assert df[df["round"] == r].weights_remaining.nunique() == 1
    assert df.weights_remaining[4] < df.weights_remaining[1] < df.weights_remaining[0] == 1.0
    for _, row in df.iterrows():
        with open(os.path.join(store.trial_dir(workdir, row.trial), "summary.json")) as f:
            assert json.load(f)["sparsity"] == pytest.approx(row.sparsity, abs=1e-6)

    # The masks: round 2 prunes inside round 1; the random one keeps each layer's count.
    masks = os.path.join(workdir, "masks", "seed=0")
    config = sweep.load_sweep(spec)
    abstract = lottery._abstract_params(sweep.trial_config(config, sweep.expand(config)[0]))
    one, two, rnd = (prune.flatten(prune.load_mask(os.path.join(masks, f), abstract))
                     for f in ("round=1.npz", "round=2.npz", "round=2,random.npz"))
    assert all((~one[k] <= ~two[k]).all() and rnd[k].sum() == two[k].sum() for k in one)
    with open(os.path.join(store.trial_dir(workdir, "seed=0,round=2,kind=rewind"),
                           "trial.json")) as f:
        overrides = json.load(f)["overrides"]
    dense = store.trial_dir(workdir, "seed=0,round=0,kind=dense")
    assert f"init_from={os.path.join(dense, 'checkpoints', '2')}" in overrides  # theta_k
    for ext in ("png", "svg"):
        assert os.path.getsize(os.path.join(workdir, "plots", f"accuracy_vs_sparsity.{ext}")) > 0

    # Re-running trains nothing and rebuilds the same table.
    stamps = {n: os.stat(os.path.join(store.trial_dir(workdir, n), "metrics.jsonl")).st_mtime_ns
              for n in df.trial}
    assert lottery.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("finished earlier") == 7 and "0 run(s) trained, 7 already finished" in out
    assert stamps == {n: os.stat(os.path.join(store.trial_dir(workdir, n),
                                              "metrics.jsonl")).st_mtime_ns for n in df.trial}
    assert len(pd.read_json(os.path.join(workdir, store.RESULTS_JSONL), lines=True)) == 7

    # Other pruning settings in the same directory would silently reuse its masks.
    other = [f"--config={_write_lottery(tmp_path, data_dir, rate=0.5)}", f"--workdir={workdir}"]
    assert lottery.main(other) == 2
    assert "other pruning settings {'rate': 0.2}" in capsys.readouterr().err


@pytest.mark.parametrize("arg", ["", ":runlocal"])
def test_lottery_config_builds_abstractly(arg):
    spec = os.path.join(ROOT, "configs", "scaling", "lottery.py") + arg
    config = sweep.load_sweep(spec)
    s = lottery.settings(config)
    assert s.output_rate == s.rate / 2 and s.rounds >= 2
    for trial in sweep.expand(config):
        c = sweep.trial_config(config, trial)
        config_lib.validate(c, num_devices=8)
        model = models.build_model(c.model, num_classes=10)
        image = jax.numpy.zeros((1, c.data.image_size, c.data.image_size, 3))
        assert "params" in jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), image,
                                                             train=False))


def test_bad_lottery_settings_name_the_key():
    with pytest.raises(ValueError, match=r"lottery.scope='glob' is not valid"):
        lottery.Settings(scope="glob")
    with pytest.raises(ValueError, match=r"lottery.controls has \['shuffle'\]"):
        lottery.Settings(controls=("shuffle",))
    with pytest.raises(ValueError, match=r"unknown keys \['round'\]"):
        lottery.settings(config_lib.ConfigDict(dict(lottery=dict(round=3))))


# ---------------------------------------------------------------------------
# Supermasks: a mask learned over frozen random weights.

def test_top_k_mask_keeps_the_largest_scores_and_passes_gradients_through():
    scores = jax.random.normal(jax.random.key(0), (40, 30))
    mask = prune.top_k_mask(scores, 0.25)
    kept = np.asarray(mask) > 0.5
    assert kept.sum() == 300 and set(np.unique(np.asarray(mask))) == {0.0, 1.0}
    assert np.abs(scores)[kept].min() > np.abs(scores)[~kept].max()
    probe = jax.random.normal(jax.random.key(1), (40, 30))
    grad = jax.grad(lambda s: (prune.top_k_mask(s, 0.25) * probe).sum())(scores)
    np.testing.assert_allclose(grad, probe * np.sign(scores))  # straight through to |s|
    with pytest.raises(ValueError, match="density"):
        prune.top_k_mask(scores, 0.0)


def test_a_supermask_learns_on_frozen_random_weights():
    """Only the scores train (optax on the params collection, as the trainer does);
    the frozen weights stay signed constants, and the mask alone lifts a
    separable 4-class problem far above chance."""
    import optax
    model = models.build_model({"name": "supermask", "base": {"name": "mlp", "hidden": (64,)},
                                "density": 0.5}, num_classes=4)
    x = jax.random.normal(jax.random.key(0), (256, 4, 4, 1))
    y = jax.numpy.argmax(x.reshape(256, -1)[:, :4], -1)  # the class: the largest of 4 pixels
    variables = jax.tree.map(np.asarray, jax.jit(
        lambda: nn.unbox(model.init(jax.random.key(1), x, train=False)))())
    frozen = variables["supermask"]
    kernels = {k: w for k, w in prune.flatten(frozen["weights"]).items()
               if prune.is_prunable(k, w)}
    assert set(kernels) == {f"{k}/kernel" for k in ("hidden_0", "head")}
    assert all(np.unique(np.abs(w)).size == 1 for w in kernels.values())  # signed constants
    assert set(prune.flatten(variables["params"])) == {f"scores/{k}" for k in kernels}
    tx = optax.adam(0.05)

    def loss(params):
        logits = model.apply({"params": params, "supermask": frozen}, x, train=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def fit(params):
        def step(carry, _):
            p, o = carry
            g = jax.grad(loss)(p)
            u, o = tx.update(g, o, p)
            return (optax.apply_updates(p, u), o), None
        return jax.lax.scan(step, (params, tx.init(params)), None, length=150)[0][0]

    def accuracy(params):
        logits = model.apply({"params": params, "supermask": frozen}, x, train=False)
        return float((logits.argmax(-1) == y).mean())

    before, trained = accuracy(variables["params"]), fit(variables["params"])
    assert accuracy(trained) > 0.75 and accuracy(trained) > before + 0.3
    mask = prune.supermask_of(frozen["weights"], trained["scores"], density=0.5)
    assert prune.mask_density(mask)["all"] == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError, match="density"):
        models.build_model({"name": "supermask", "base": {"name": "mlp"}, "density": 1.5},
                           num_classes=4)


def test_lottery_supermask_control_trains_masks_only(data_dir, tmp_path):
    spec = _write_lottery(tmp_path, data_dir, rounds=1, controls=("supermask",))
    workdir = str(tmp_path / "lottery")
    assert lottery.main([f"--config={spec}", f"--workdir={workdir}"]) == 0
    df = pd.read_json(os.path.join(workdir, store.RESULTS_JSONL), lines=True)
    assert list(zip(df["round"], df.kind)) == [(0, "dense"), (1, "rewind"), (1, "supermask")]
    assert df.weights_remaining[1] == df.weights_remaining[2] < 1.0
    # The run's trainable parameters are the scores, one per prunable weight, and
    # its frozen weights are still signed constants after training.
    run = store.trial_dir(workdir, "seed=0,round=1,kind=supermask")
    with open(os.path.join(run, "config.json")) as f:
        config = config_lib.ConfigDict(json.load(f))
    assert config.model.name == "supermask" and config.model.base.name == "mlp"
    assert config.model.density == pytest.approx(0.8, abs=1e-3)
    assert config.model.output_density == pytest.approx(0.9, abs=1e-2)
    assert df.params[2] == 192 * 32 + 32 * 16 + 16 * 10
    c = mlp_config(data_dir)
    c.model = config_lib.ConfigDict(config.model.to_dict())
    _, state = restore_state(c, run)
    weights = prune.flatten(jax.tree.map(np.asarray, state.model_state["supermask"]))
    assert all(np.unique(np.abs(w)).size == 1 for k, w in weights.items() if k.endswith("kernel"))
    mask = prune.supermask_of(state.model_state["supermask"]["weights"], state.params["scores"],
                              density=config.model.density,
                              output_density=config.model.output_density)
    assert prune.mask_density(mask)["all"] == pytest.approx(df.weights_remaining[2], abs=2e-3)

