"""The evaluation protocol of self-supervised encoders: probes on frozen features.

    vision-jax probe --workdir=workdirs/simclr                  # the trained encoder
    vision-jax probe --workdir=workdirs/simclr --random-init    # same architecture, untrained

restores a run's encoder (any task with a `features(params, variables,
images)` method: the SSL tasks of vision_jax/tasks/ssl.py, and any zoo model
with a `head` through them), extracts frozen features of the train and test
splits and fits two read-outs per target:

  linear  multinomial logistic regression (scikit-learn's L-BFGS) on the
          standardised features, fit on train, scored on test;
  knn     DINO's weighted kNN (Caron et al. 2021, "Emerging Properties in
          Self-Supervised Vision Transformers", sec. 4.1 and appendix):
          cosine similarity of L2-normalised features, the k = 20 nearest
          training features vote with weight exp(similarity / T), T = 0.07.
          The search is vision_jax/knn.py's chunked top-k.

Targets on `shapes`: the main object's class (`label`), its colour (`color`)
and the number of objects (`count`): what each method keeps and throws away.
Results go to `<workdir>/probe.json` (`probe_random_init.json` for the
baseline) and a table on stdout; `chance` is the majority class's test share.

The baseline is the run's own encoder before training: `task.init` with the
run's seed, so it is the very network the run started from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import flax.linen as nn
import jax
import numpy as np

from vision_jax import checkpoint as ckpt_lib
from vision_jax import config as config_lib
from vision_jax import data as data_lib

TARGETS = ("label", "color", "count")
DINO_K = 20
DINO_TEMPERATURE = 0.07


# ---------------------------------------------------------------------------
# The two read-outs.


def linear_probe(train_x, train_y, test_x, test_y, *, c: float = 1.0,
                 max_iter: int = 1000) -> float:
    """Test accuracy of logistic regression (L-BFGS, L2 strength 1/c) fit on train.

    Features are standardised with the training set's mean and std, so one
    `c` suits encoders whose feature scales differ by orders of magnitude
    (a random init against a trained one).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_x, test_x = _matrix(train_x, "train_x"), _matrix(test_x, "test_x")
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    if len(np.unique(train_y)) < 2:
        return float(np.mean(test_y == train_y[0]))  # one class: nothing to fit
    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(C=c, max_iter=max_iter)
    clf.fit(scaler.transform(train_x), train_y)
    return float(np.mean(clf.predict(scaler.transform(test_x)) == test_y))


def weighted_vote(similarities, neighbor_labels, num_classes: int,
                  temperature: float = DINO_TEMPERATURE) -> np.ndarray:
    """DINO's vote: class c scores sum over neighbours of class c of
    exp(similarity / temperature); int32 [M] argmax labels."""
    sims, labels = np.asarray(similarities, np.float64), np.asarray(neighbor_labels, np.int64)
    weights = np.exp((sims - sims.max(axis=1, keepdims=True)) / temperature)  # stable, same argmax
    scores = np.zeros((len(labels), num_classes))
    np.add.at(scores, (np.arange(len(labels))[:, None], labels), weights)
    return scores.argmax(axis=1).astype(np.int32)


def cosine_neighbors(train_x, test_x, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(cosine similarities, training indices), both [M, k], most similar first."""
    from vision_jax import knn

    train_x, test_x = _normalise(_matrix(train_x, "train_x")), _normalise(_matrix(test_x, "test_x"))
    # On unit vectors the squared L2 distance is 2 - 2 cos: the same ranking.
    dist, idx = knn.nearest_neighbors(train_x, test_x, min(k, len(train_x)), "l2")
    return 1.0 - dist / 2.0, idx


def knn_probe(train_x, train_y, test_x, test_y, *, k: int = DINO_K,
              temperature: float = DINO_TEMPERATURE, neighbors=None) -> float:
    """Test accuracy of DINO's weighted kNN on cosine similarity (`neighbors`:
    `cosine_neighbors`' result, to share one search between targets)."""
    train_y, test_y = np.asarray(train_y, np.int32), np.asarray(test_y, np.int32)
    sims, idx = neighbors if neighbors is not None else cosine_neighbors(train_x, test_x, k)
    pred = weighted_vote(sims, train_y[idx], int(max(train_y.max(), test_y.max())) + 1,
                         temperature)
    return float(np.mean(pred == test_y))


def _matrix(x, name: str) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or not len(x):
        raise ValueError(f"{name} must be a non-empty [rows, features] matrix; got {x.shape}")
    return x


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def probe_all(train_feats, train_targets: dict, test_feats, test_targets: dict, *,
              k: int = DINO_K, temperature: float = DINO_TEMPERATURE, c: float = 1.0) -> dict:
    """{target: {"linear", "knn", "chance"}} for every target of both dicts."""
    out, neighbors = {}, cosine_neighbors(train_feats, test_feats, k)
    for name, ytr in train_targets.items():
        ytr, yte = np.asarray(ytr), np.asarray(test_targets[name])
        majority = np.bincount(ytr).argmax()
        out[name] = {"linear": linear_probe(train_feats, ytr, test_feats, yte, c=c),
                     "knn": knn_probe(train_feats, ytr, test_feats, yte, k=k,
                                      temperature=temperature, neighbors=neighbors),
                     "chance": float(np.mean(yte == majority))}
    return out


# ---------------------------------------------------------------------------
# Encoders and features.


def load_encoder(workdir: str, *, random_init: bool = False):
    """(config, task, params, variables, step) of a run's encoder, on the host.

    The newest checkpoint's parameters (the EMA when the run evaluates with
    it), or with `random_init` the run's own initialisation (step 0)."""
    from vision_jax import tasks, train
    from vision_jax.sample import load_run_config

    config = load_run_config(workdir)
    task_cls = tasks.get_class(config.task)
    if random_init:
        task = tasks.build(config, task_cls.dataset_info(config))
        # train.build's init: the first of three splits of PRNGKey(seed) seeds the task.
        init_rng = jax.random.split(jax.random.PRNGKey(config.seed), 3)[0]
        params, variables = nn.unbox(task.init(init_rng, task.example_batch()))
        step = 0
    else:
        run, step, state = train.restore_workdir(config, workdir)
        task = run.task
        use_ema = config.ema.decay and config.ema.evaluate and state.ema
        params, variables = jax.device_get((state.ema if use_ema else state.params,
                                            state.model_state))
    if not callable(getattr(task, "features", None)):
        raise config_lib.ConfigError(f"task {config.task!r} has no features() to probe")
    return config, task, params, variables, int(step)


def extract(task, params, variables, data_cfg, split: str, *, limit: int | None,
            batch_size: int = 256, progress: bool = True) -> tuple[np.ndarray, dict]:
    """(features float32 [N, D], {target: int [N]}) of a split's first `limit`
    examples, unaugmented (the pipeline's eval batches)."""
    from tqdm.auto import tqdm

    extra = tuple(t for t in TARGETS if t != "label") if data_cfg.name == "shapes" else ()
    batches = data_lib.make_eval_batches(data_cfg, split=split, global_batch_size=batch_size,
                                         process_index=0, process_count=1, extra_keys=extra)
    fn = jax.jit(task.features)
    feats, targets, have = [], {t: [] for t in ("label", *extra)}, 0
    bar = tqdm(desc=f"features {split}", unit="ex", disable=not progress,
               total=limit, dynamic_ncols=True)
    for batch in batches:
        keep = batch["mask"] > 0
        feats.append(np.asarray(fn(params, variables, batch["image"]))[keep])
        for t in targets:
            targets[t].append(np.asarray(batch[t])[keep])
        have += int(keep.sum())
        bar.update(int(keep.sum()))
        if limit is not None and have >= limit:
            break
    bar.close()
    n = have if limit is None else min(limit, have)
    return (np.concatenate(feats)[:n],
            {t: np.concatenate(v)[:n].astype(np.int32) for t, v in targets.items()})


def probe(workdir: str, *, random_init: bool = False, train_examples: int | None = 10_000,
          test_examples: int | None = None, k: int = DINO_K,
          temperature: float = DINO_TEMPERATURE, c: float = 1.0, batch_size: int = 256,
          progress: bool = True) -> dict:
    """probe.json's content for a run (see the module docstring)."""
    start = time.time()
    config, task, params, variables, step = load_encoder(workdir, random_init=random_init)
    data_lib.prepare(config.data)
    train_x, train_t = extract(task, params, variables, config.data, config.data.train_split,
                               limit=train_examples, batch_size=batch_size, progress=progress)
    test_x, test_t = extract(task, params, variables, config.data, config.data.eval_split,
                             limit=test_examples, batch_size=batch_size, progress=progress)
    results = probe_all(train_x, train_t, test_x, test_t, k=k, temperature=temperature, c=c)
    return {"workdir": workdir, "task": config.task, "model": config.model.name,
            "step": step, "random_init": random_init, "feature_dim": int(train_x.shape[1]),
            "train_examples": len(train_x), "test_examples": len(test_x),
            "knn": {"k": k, "temperature": temperature, "similarity": "cosine"},
            "linear": {"solver": "lbfgs", "C": c, "standardised": True},
            "results": results, "seconds": round(time.time() - start, 1)}


def table(result: dict) -> str:
    name = "random init" if result["random_init"] else f"step {result['step']}"
    lines = [f"{result['task']} ({result['model']}, {name}): {result['feature_dim']}-d features, "
             f"{result['train_examples']} train / {result['test_examples']} test",
             f"  {'target':<8} {'linear':>8} {'kNN':>8} {'chance':>8}"]
    for t, r in result["results"].items():
        lines.append(f"  {t:<8} {100 * r['linear']:>7.1f}% {100 * r['knn']:>7.1f}% "
                     f"{100 * r['chance']:>7.1f}%")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="vision-jax probe", description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="a run directory (an SSL task's)")
    p.add_argument("--random-init", action="store_true",
                   help="probe the run's encoder at its initialisation instead (the baseline)")
    p.add_argument("--train-examples", type=int, default=10_000,
                   help="training examples to fit on (default 10000; 0: the whole split)")
    p.add_argument("--test-examples", type=int, default=0,
                   help="test examples to score (default 0: the whole split)")
    p.add_argument("--k", type=int, default=DINO_K, help="kNN neighbours (default 20)")
    p.add_argument("--temperature", type=float, default=DINO_TEMPERATURE,
                   help="kNN vote temperature (default 0.07)")
    p.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the linear probe")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", help=("output JSON (default WORKDIR/probe.json, or "
                                  "probe_random_init.json with --random-init)"))
    args = p.parse_args(argv)
    if args.k < 1 or args.temperature <= 0 or args.c <= 0 or args.batch_size < 1 \
            or args.train_examples < 0 or args.test_examples < 0:
        p.error("--k, --temperature, --c and --batch-size must be positive; "
                "--train-examples and --test-examples non-negative")
    try:
        result = probe(args.workdir, random_init=args.random_init,
                       train_examples=args.train_examples or None,
                       test_examples=args.test_examples or None, k=args.k,
                       temperature=args.temperature, c=args.c, batch_size=args.batch_size)
    except (config_lib.ConfigError, ckpt_lib.CheckpointError, data_lib.DatasetNotFoundError) as e:
        print(f"vision-jax probe: error: {e}", file=sys.stderr)
        return 2
    out = args.out or os.path.join(
        args.workdir, "probe_random_init.json" if args.random_init else "probe.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(table(result))
    print(f"written to {out} ({result['seconds']} s)")
    return 0
