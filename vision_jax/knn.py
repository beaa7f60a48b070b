"""k-nearest-neighbour classification on raw pixels, jitted and chunked in JAX.

The first classifier of the course: no training, just memorise the training
set and let the k closest training images vote. It is also the classic
lesson in choosing a hyperparameter by cross-validation (the plot of
validation accuracy against k).

    x, y = load_arrays(data_cfg, "train")           # [N, D] float32, [N] int32
    cv = cross_validate(x, y, ks=(1, 3, 5, 7), folds=5, metric="l2")
    k = best_k(cv)
    labels = fit_predict(x, y, x_test, k=k, metric="l2")

or from the shell (the CV table, the chosen k and the test accuracy):

    python -m vision_jax.knn --dataset digits --metric l2 --ks 1,3,5,7 --folds 5

Memory. The [queries x train] distance matrix is never materialised: queries
are processed in blocks of `query_chunk`, and for each block a `lax.scan`
walks the training set in chunks of `train_chunk` rows, merging each chunk's
distances into a running top-k with `lax.top_k`. Peak memory is the training
set itself plus one [query_chunk, train_chunk] block (times D for L1, whose
|q - t| cannot be written as a matrix product), so CIFAR-10 (50,000 x 3,072)
fits on a laptop. Every block has the same shape, so each (k, metric) pair
compiles once.

Determinism. Distances that tie are ordered by training index (the running
top-k keeps earlier chunks first, and `lax.top_k` is stable), and a vote that
ties between classes goes to the tied class whose closest member is nearest
to the query, i.e. to the 1-NN answer restricted to the tied classes. Both
rules are independent of chunk sizes and of the number of devices.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

METRICS = ("l1", "l2")

# The L1 block is [query_chunk, train_chunk, D] floats; keep it near this size.
_L1_BLOCK_BYTES = 64 * 2**20


# ---------------------------------------------------------------------------
# Distances and the chunked top-k.


def pairwise_distances(queries: jax.Array, train: jax.Array, metric: str) -> jax.Array:
    """Distances [Q, T] between rows of `queries` [Q, D] and `train` [T, D].

    L2 is returned squared (same ranking, one square root fewer) and computed
    as |q|^2 - 2 q.t + |t|^2 so that it is one matrix product; it is clamped
    at 0 because that expansion can round slightly below zero.
    """
    _check_metric(metric)
    if metric == "l1":
        return jnp.sum(jnp.abs(queries[:, None, :] - train[None, :, :]), axis=-1)
    q2 = jnp.sum(queries * queries, axis=-1, keepdims=True)
    t2 = jnp.sum(train * train, axis=-1)[None, :]
    cross = jnp.matmul(queries, train.T, precision=jax.lax.Precision.HIGHEST)
    return jnp.maximum(q2 - 2.0 * cross + t2, 0.0)


@functools.partial(jax.jit, static_argnames=("k", "metric"))
def _block_top_k(queries: jax.Array, train_chunks: jax.Array, valid: jax.Array, *,
                 k: int, metric: str) -> tuple[jax.Array, jax.Array]:
    """The k nearest training rows of each query: (distances, indices), both [Q, k].

    `train_chunks` is the training set padded and reshaped to [C, chunk, D];
    `valid` [C, chunk] is False on padding rows, which get distance +inf.
    """
    n_chunks, chunk, _ = train_chunks.shape
    init = (jnp.full((queries.shape[0], k), jnp.inf, jnp.float32),
            jnp.zeros((queries.shape[0], k), jnp.int32))

    def merge(best, inputs):
        best_d, best_i = best
        rows, ok, c = inputs
        d = jnp.where(ok[None, :], pairwise_distances(queries, rows, metric), jnp.inf)
        i = jnp.broadcast_to(c * chunk + jnp.arange(chunk, dtype=jnp.int32), d.shape)
        # Candidates: the running best first (earlier indices), then this
        # chunk in index order, so the stable top_k breaks ties by index.
        neg, pos = jax.lax.top_k(-jnp.concatenate([best_d, d], axis=1), k)
        return (-neg, jnp.take_along_axis(jnp.concatenate([best_i, i], axis=1), pos, 1)), None

    (dist, idx), _ = jax.lax.scan(
        merge, init, (train_chunks, valid, jnp.arange(n_chunks, dtype=jnp.int32)))
    return dist, idx


def nearest_neighbors(train_x, test_x, k: int, metric: str = "l2", *,
                      query_chunk: int = 256, train_chunk: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Distances and training indices of the k nearest neighbours of each test row.

    Returns float32 [M, k] distances (L1, or squared L2) in increasing order
    and int32 [M, k] indices into `train_x`. `train_chunk` defaults to 4,096
    rows for L2 and to what keeps the L1 block near 64 MiB.
    """
    train_x, test_x = _as_matrix(train_x, "train_x"), _as_matrix(test_x, "test_x")
    _check_metric(metric)
    n, dim = train_x.shape
    if test_x.shape[1] != dim:
        raise ValueError(f"test_x has {test_x.shape[1]} features but train_x has {dim}")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the number of training rows ({n})")
    if query_chunk < 1:
        raise ValueError(f"query_chunk={query_chunk} must be positive")
    if train_chunk is None:
        train_chunk = 4096 if metric == "l2" else max(
            1, _L1_BLOCK_BYTES // (4 * query_chunk * dim))
    train_chunk = min(train_chunk, n)

    n_chunks = math.ceil(n / train_chunk)
    padded = np.zeros((n_chunks * train_chunk, dim), np.float32)
    padded[:n] = train_x
    chunks = jnp.asarray(padded.reshape(n_chunks, train_chunk, dim))
    valid = jnp.asarray((np.arange(n_chunks * train_chunk) < n).reshape(n_chunks, train_chunk))

    m = test_x.shape[0]
    block = min(query_chunk, max(m, 1))
    results = []  # device arrays: every block is dispatched before any is read back
    for start in range(0, m, block):
        q = test_x[start:start + block]
        if len(q) < block:  # pad the last block: one shape, one compilation
            q = np.concatenate([q, np.zeros((block - len(q), dim), np.float32)])
        results.append(_block_top_k(jnp.asarray(q), chunks, valid, k=k, metric=metric))
    if not results:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int32)
    dists, idxs = zip(*jax.device_get(results))
    return np.concatenate(dists)[:m], np.concatenate(idxs)[:m]


# ---------------------------------------------------------------------------
# Voting, prediction and cross-validation.


def vote(neighbor_labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Majority label of each row of `neighbor_labels` [M, k] (nearest first).

    In numpy: an [M, k, C] count is tiny next to the distance search, and
    eager JAX would compile it anew for every (M, k) shape.

    A tie between classes goes to the tied class whose nearest member comes
    first in the row: score = count * (k + 1) + (k - first position), and the
    second term (at most k) can never outweigh one extra vote.
    """
    labels = np.asarray(neighbor_labels, np.int64)
    if labels.ndim != 2 or labels.shape[1] < 1:
        raise ValueError(f"neighbor_labels must be [rows, k >= 1]; got shape {labels.shape}")
    k = labels.shape[1]
    one_hot = labels[:, :, None] == np.arange(num_classes)                   # [M, k, C]
    counts = one_hot.sum(axis=1)
    first = np.where(one_hot, np.arange(k)[None, :, None], k).min(axis=1)  # k if absent
    return np.argmax(counts * (k + 1) + (k - first), axis=1).astype(np.int32)


def fit_predict(train_x, train_y, test_x, k: int, metric: str = "l2", *,
                num_classes: int | None = None, **chunks) -> np.ndarray:
    """Labels int32 [M] that the k nearest training rows vote for each test row."""
    train_y = np.asarray(train_y, np.int32)
    _, idx = nearest_neighbors(train_x, test_x, k, metric, **chunks)
    return vote(train_y[idx], num_classes or int(train_y.max()) + 1)


def cross_validate(x, y, ks: Sequence[int], folds: int = 5, metric: str = "l2", *,
                   seed: int = 0, **chunks) -> dict[int, dict]:
    """n-fold cross-validated accuracy of kNN for each k in `ks`.

    The rows are shuffled once with `seed` and cut into `folds` near-equal
    folds; each fold is predicted from the others. Neighbours are searched
    once per fold for max(ks) and every smaller k votes with a prefix of
    them, so trying many k costs one search. Returns
    {k: {"mean", "std", "folds": [accuracy per fold]}} in the order of `ks`.
    """
    x, y = _as_matrix(x, "x"), np.asarray(y, np.int32)
    ks = [int(k) for k in ks]
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)} labels")
    if not ks or min(ks) < 1:
        raise ValueError(f"ks={ks} must be a non-empty list of positive integers")
    if not 2 <= folds <= len(x):
        raise ValueError(f"folds={folds} must be between 2 and the number of rows ({len(x)})")
    num_classes = int(y.max()) + 1
    parts = np.array_split(np.random.default_rng(seed).permutation(len(x)), folds)
    if max(ks) > len(x) - max(map(len, parts)):
        raise ValueError(f"k={max(ks)} exceeds the training rows left by {folds}-fold CV")
    per_k = {k: [] for k in ks}
    for held_out in parts:
        rest = np.setdiff1d(np.arange(len(x)), held_out)
        _, idx = nearest_neighbors(x[rest], x[held_out], max(ks), metric, **chunks)
        neighbor_labels = y[rest][idx]
        for k in ks:
            pred = vote(neighbor_labels[:, :k], num_classes)
            per_k[k].append(float(np.mean(pred == y[held_out])))
    return {k: {"mean": float(np.mean(a)), "std": float(np.std(a)), "folds": a}
            for k, a in per_k.items()}


def best_k(cv: Mapping[int, Mapping]) -> int:
    """The k with the highest mean CV accuracy; the smallest such k on ties
    (the cheaper, and the less smoothed, of equally good choices)."""
    return min(cv, key=lambda k: (-cv[k]["mean"], k))


def plot_cv(cv: Mapping[int, Mapping], path: str | None = None, *, ax=None, title: str = ""):
    """The course's plot: mean CV accuracy against k, with +-1 std bars and
    the accuracy of every fold as dots. Saves a PNG when `path` is given;
    returns the axes."""
    import matplotlib.pyplot as plt  # lazily: the search itself needs no plotting

    ks = sorted(cv)
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for k in ks:
        ax.scatter([k] * len(cv[k]["folds"]), cv[k]["folds"], s=10, color="0.6")
    ax.errorbar(ks, [cv[k]["mean"] for k in ks], yerr=[cv[k]["std"] for k in ks],
                marker="o", capsize=3)
    ax.set_xlabel("k")
    ax.set_ylabel("cross-validation accuracy")
    ax.set_title(title or "kNN: accuracy vs k")
    ax.grid(alpha=0.3)
    if path is not None:
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=120)
        if own:
            plt.close(ax.figure)
    return ax


# ---------------------------------------------------------------------------
# Data.


def load_arrays(data_cfg: Mapping, split: str, limit: int | None = None,
                batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A split as flat pixels: x float32 [N, H*W*C] in [-1, 1] and y int32 [N].

    Reads the pipeline's eval batches (resized and normalised exactly as the
    trainer's models see them, never augmented or shuffled), so kNN and the
    trained models are compared on the same inputs. The train split honours
    `data_cfg.num_train_examples`; `limit` keeps only the first `limit` rows.
    Built-in datasets are generated first if needed.
    """
    from vision_jax import data as data_lib  # keeps the distance code import-light

    data_lib.prepare(data_cfg)
    xs, ys, have = [], [], 0
    for batch in data_lib.make_eval_batches(data_cfg, split=split, global_batch_size=batch_size,
                                            process_index=0, process_count=1):
        keep = batch["mask"] > 0
        image = batch["image"][keep]
        xs.append(image.reshape(len(image), -1).astype(np.float32))
        ys.append(batch["label"][keep].astype(np.int32))
        have += len(image)
        if limit is not None and have >= limit:
            break
    x, y = np.concatenate(xs), np.concatenate(ys)
    return (x, y) if limit is None else (x[:limit], y[:limit])


def _as_matrix(x, name: str) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be [rows, features]; got shape {x.shape} "
                         "(flatten images with x.reshape(len(x), -1))")
    return x


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not valid; choose one of {list(METRICS)}")


# ---------------------------------------------------------------------------
# Command line.


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vision_jax.knn",
        description="k-nearest neighbours on pixels: k by cross-validation on the train "
                    "split, then accuracy on the test split.")
    p.add_argument("--dataset", default="digits", help="built-in name or prepared TFDS dataset")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default: the "
                   "pipeline's, $VISION_JAX_DATA_DIR or ~/.cache/vision_jax/tensorflow_datasets)")
    p.add_argument("--image-size", type=int, default=None,
                   help="resize to this size (default: 8 for digits, else 32)")
    p.add_argument("--metric", choices=METRICS, default="l2")
    p.add_argument("--ks", default="1,3,5,7,9", help="comma-separated k values to try")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N train rows")
    p.add_argument("--test-limit", type=int, default=None, help="use only the first N test rows")
    p.add_argument("--plot", default=None, help="save the accuracy-vs-k plot to this PNG")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from vision_jax.config import base_config

    data_cfg = base_config().data
    data_cfg.name = args.dataset
    data_cfg.data_dir = args.data_dir
    data_cfg.image_size = args.image_size or (8 if args.dataset == "digits" else 32)
    try:
        ks = [int(k) for k in args.ks.split(",") if k]
    except ValueError:
        raise SystemExit(f"--ks={args.ks!r} must be comma-separated integers, e.g. 1,3,5") from None

    t0 = time.perf_counter()
    x, y = load_arrays(data_cfg, data_cfg.train_split, args.train_limit)
    x_test, y_test = load_arrays(data_cfg, data_cfg.eval_split, args.test_limit)
    print(f"{args.dataset}: {len(x)} train, {len(x_test)} test rows of {x.shape[1]} features; "
          f"metric {args.metric}, {args.folds}-fold CV")
    cv = cross_validate(x, y, ks, args.folds, args.metric)
    print(f"{'k':>4}  {'cv accuracy':>12}  {'std':>6}")
    for k, r in cv.items():
        print(f"{k:>4}  {r['mean']:>12.4f}  {r['std']:>6.4f}")
    k = best_k(cv)
    pred = fit_predict(x, y, x_test, k, args.metric, num_classes=int(max(y.max(), y_test.max())) + 1)
    print(f"best k={k}: test accuracy {np.mean(pred == y_test):.4f} "
          f"({time.perf_counter() - t0:.1f}s)")
    if args.plot:
        plot_cv(cv, args.plot, title=f"kNN ({args.metric}) on {args.dataset}")
        print(f"plot saved to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
