"""Self-supervised learning: NT-Xent, the global-batch loss on a mesh, SimCLR's
views, one real SimCLR run through the trainer, and the probes."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from vision_jax import probe, sharding
from vision_jax.data import augment
from vision_jax.tasks import ssl

from helpers import DATA_AND_FSDP, tiny_config

# ---------------------------------------------------------------------------
# NT-Xent


def _nt_xent_by_hand(z, t):
    """SimCLR's eq. 1 with explicit loops: l(i, j) = -log(e^{s_ij} / sum_{k != i} e^{s_ik})."""
    n = len(z)
    rows = [np.asarray(v, np.float64) / np.linalg.norm(v) for pair in z for v in pair]
    per_example = []
    for e in range(n):
        total = 0.0
        for i, j in ((2 * e, 2 * e + 1), (2 * e + 1, 2 * e)):
            denom = sum(math.exp(rows[i] @ rows[k] / t) for k in range(2 * n) if k != i)
            total += -math.log(math.exp(rows[i] @ rows[j] / t) / denom)
        per_example.append(total / 2)
    return np.array(per_example)


nt_xent = jax.jit(ssl.nt_xent)  # one compile per shape, not one per eager op


def test_nt_xent_matches_the_hand_computed_value():
    # All views identical: every one of the 2N - 1 candidates scores 1/t, so
    # the loss is log(2N - 1) = log 3 for N = 2, at any temperature.
    same = jnp.ones((2, 2, 3))
    np.testing.assert_allclose(nt_xent(same, 0.1)[0], [math.log(3)] * 2, rtol=1e-6)
    # A small asymmetric case against the loops above (rows are normalised inside).
    z = np.array([[[1.0, 0.0], [0.8, 0.6]],
                  [[0.0, 2.0], [-0.6, 0.8]],
                  [[-1.0, 0.0], [-0.5, -0.5]]], np.float32)
    for t in (0.5, 1.0):
        losses, top1 = nt_xent(jnp.asarray(z), t)
        np.testing.assert_allclose(losses, _nt_xent_by_hand(z, t), rtol=1e-5)
    # Top-1: is the most similar other view the positive? (by brute force)
    sims = np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in z.reshape(-1, 2)]
                     for a in z.reshape(-1, 2)])
    np.fill_diagonal(sims, -np.inf)
    expected_top1 = (sims.argmax(1) // 2 == np.arange(6) // 2).reshape(3, 2).mean(1)
    np.testing.assert_array_equal(top1, expected_top1)
    # Padding (valid=False) is neither anchor nor negative: the loss of the two
    # real examples equals the loss of a batch that never had the third one.
    masked, _ = nt_xent(jnp.asarray(z), 0.5, valid=jnp.array([True, True, False]))
    np.testing.assert_allclose(masked[:2], _nt_xent_by_hand(z[:2], 0.5), rtol=1e-5)
    assert masked[2] == 0.0 and np.all(np.isfinite(masked))


def test_sharded_loss_and_gradients_equal_one_device_over_the_global_batch():
    """On a 2 x 4 data+FSDP mesh the loss sees all 2N views: same value and
    gradients as one device, and the compiled program all-gathers."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2, 8)).astype(np.float32)   # 16 examples, 2 per device
    w = rng.normal(size=(8, 5)).astype(np.float32)       # a linear "encoder"

    def loss(w, x):
        return ssl.nt_xent(jnp.einsum("nvd,de->nve", x, w), 0.5)[0].mean()

    single_loss, single_grad = jax.jit(jax.value_and_grad(loss))(jax.device_put(w, jax.devices()[0]),
                                   jax.device_put(x, jax.devices()[0]))

    mesh = sharding.make_mesh(DATA_AND_FSDP)
    batch = NamedSharding(mesh, P(("data", "fsdp")))
    params = NamedSharding(mesh, P("fsdp", None))  # FSDP: the weights are sharded too
    sharded = jax.jit(jax.value_and_grad(loss), in_shardings=(params, batch),
                      out_shardings=(NamedSharding(mesh, P()), params))
    xs, ws = jax.device_put(x, batch), jax.device_put(w, params)
    assert len(xs.sharding.device_set) == 8
    mesh_loss, mesh_grad = sharded(ws, xs)
    np.testing.assert_allclose(mesh_loss, single_loss, rtol=1e-5)
    np.testing.assert_allclose(mesh_grad, single_grad, rtol=1e-4, atol=1e-6)
    assert "all-gather" in sharded.lower(ws, xs).compile().as_text()

    # What a per-device loss (negatives from the device's own 2 examples only)
    # would give instead: clearly different, so the equality above is not luck.
    local = np.mean([jax.jit(loss)(w, part) for part in np.split(x, 8)])
    assert abs(local - float(single_loss)) > 0.5


# ---------------------------------------------------------------------------
# Views


def test_views_differ_and_are_deterministic_given_the_seed():
    image = np.random.default_rng(1).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    cfg = augment.ViewsConfig(jitter_p=1.0, blur_p=1.0)

    def views(seed):
        v, p = augment.random_views(image, 16, cfg, np.random.default_rng(seed))
        return augment.photometric(v, p)

    a, again, other = views(0), views(0), views(1)
    assert a.shape == (2, 16, 16, 3) and a.dtype == np.float32
    assert -1.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, again)
    assert np.abs(a[0] - a[1]).mean() > 0.02      # the two views of one example differ
    assert np.abs(a - other).mean() > 0.02        # another seed, other views
    # Grayscale (p = 1) makes the three channels equal; blur smooths.
    v, p = augment.random_views(image, 16, augment.ViewsConfig(grayscale_p=1.0, jitter_p=0.0,
                                                              blur_p=0.0),
                                np.random.default_rng(0))
    grey = augment.photometric(v, p)
    np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=1e-5)
    with pytest.raises(ValueError, match="ssl.views has unknown keys"):
        augment.ViewsConfig.from_mapping({"jiter_p": 0.5})


# ---------------------------------------------------------------------------
# One real run through the trainer, then the probe on it


@pytest.fixture(scope="module")
def simclr_run(tmp_path_factory):
    from vision_jax import train
    data_dir, workdir = tmp_path_factory.mktemp("tfds"), tmp_path_factory.mktemp("simclr")
    c = tiny_config("ssl/simclr.py:runlocal", str(data_dir), "model.channels=(8,8,16)",
                    "ssl.projection_hidden=16", "ssl.projection_dim=8",
                    "data.shapes.train_size=96", "data.shapes.test_size=40", "batch_size=16",
                    "total_steps=2", "checkpoint.every_steps=2", "eval_every_steps=0",
                    "mesh.data=2", "mesh.fsdp=4")
    summary = train.train(c, str(workdir))
    return c, str(workdir), summary


def test_simclr_trains_through_the_trainer_on_the_mesh(simclr_run):
    config, workdir, summary = simclr_run
    assert summary["task"] == "simclr" and summary["devices"] == 8
    # 2N = 32 views: the loss starts near log(2N - 1), the chance level.
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert train_rows and abs(train_rows[0]["loss"] - math.log(31)) < 1.0
    assert np.isfinite(summary["eval_loss"]) and summary["eval_examples"] == 40
    assert 0.0 <= summary["eval_contrastive_accuracy"] <= 1.0

    from vision_jax import data
    views = ssl.SimCLR(config, data.dataset_info(config.data)).views

    def first_batch():
        return next(data.make_train_iterator(config.data, global_batch_size=8, seed=3,
                                             process_index=0, process_count=1, views=views))

    batch, again = first_batch(), first_batch()
    assert batch["views"].shape == (8, 2, 16, 16, 3) and "image" not in batch
    np.testing.assert_array_equal(batch["views"], again["views"])
    assert np.abs(batch["views"][:, 0] - batch["views"][:, 1]).mean() > 0.02


def test_probe_restores_the_encoder_and_reports_every_target(simclr_run):
    _, workdir, _ = simclr_run
    result = probe.probe(workdir, train_examples=64, test_examples=None, k=5, batch_size=32,
                         progress=False)
    assert result["step"] == 2 and result["feature_dim"] == 16
    assert (result["train_examples"], result["test_examples"]) == (64, 40)
    assert set(result["results"]) == {"label", "color", "count"}
    for r in result["results"].values():
        assert 0.0 <= r["linear"] <= 1.0 and 0.0 <= r["knn"] <= 1.0 and r["chance"] > 0
    # The baseline is the run's own initialisation: same tree as the
    # checkpoint, other values (the two steps moved every parameter).
    from vision_jax import checkpoint
    _, _, fresh, _, step = probe.load_encoder(workdir, random_init=True)
    saved, _ = checkpoint.read_variables(os.path.join(workdir, "checkpoints"))
    assert step == 0
    assert jax.tree.structure(fresh) == jax.tree.structure(saved)
    assert all(np.any(np.asarray(a) != np.asarray(b))
               for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(saved)))


def test_probes_on_constructed_features():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    x = np.eye(4)[y] * 3.0 + rng.normal(scale=0.3, size=(400, 4))
    x = np.concatenate([x, rng.normal(size=(400, 8))], axis=1)   # plus 8 noise features
    noise_target = rng.integers(0, 4, 400)                      # independent of x
    out = probe.probe_all(x[:300], {"label": y[:300], "noise": noise_target[:300]},
                          x[300:], {"label": y[300:], "noise": noise_target[300:]})
    assert out["label"]["linear"] == 1.0 and out["label"]["knn"] == 1.0
    assert out["noise"]["linear"] < 0.45 and out["noise"]["knn"] < 0.45
    # DINO's vote weighs by exp(sim / T): one close neighbour beats two far ones
    # at T = 0.07, and loses to them by majority at a large T.
    sims, labels = np.array([[0.9, 0.8, 0.1]]), np.array([[0, 1, 1]])
    assert probe.weighted_vote(sims, labels, 2, 0.07)[0] == 0
    assert probe.weighted_vote(sims, labels, 2, 100.0)[0] == 1
