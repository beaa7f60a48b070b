"""`vision-jax evaluate-samples`: how good is a set of generated images?

    vision-jax evaluate-samples --samples=PATH.npz [--workdir=RUN]
        [--dataset-config=FILE[:ARG]] [--config.KEY=VALUE ...]
        [--num 2000] [--seed 0] [--memorization [--pool N]] [--out DIR]
    vision-jax evaluate-samples --references-only [--dataset-config=...] [--num 2000]

Reads an ADM-layout .npz (arr_0: uint8 [N, H, W, C], arr_1: labels; what
`vision-jax sample` writes) and compares `--num` generated images (default
2,000) with as many held-out real images of the dataset (the test split of
`--dataset-config`, else of the run's config.json under `--workdir`, else of
`shapes` at the samples' resolution), in the feature space of the in-house
feature net of that resolution (evaluate/features.py; trained once when
missing):

  fid, kid, kid_std      FID; KID (mean and std of the unbiased MMD^2 over
                         100 subsets of min(1000, num))
  precision, recall      kNN (k = 3) precision and recall
  class_accuracy         conditional samples (more than one distinct label):
                         the feature net's class head against the intended labels;
                         real_class_accuracy is the same on the real test images
  floor                  the same metrics between `num` real training and `num`
                         test images: what a perfect model would score
  gaussian_baseline      the same for samples of a Gaussian fitted to the
                         training images' pixel mean and covariance; every model
                         must beat it (beats_gaussian_baseline)
  memorization           with --memorization: evaluate/memorization.py's check
                         against the training split (or its first --pool images)

Prints the metrics as JSON; with --workdir also stores them in the run's
summary.json under "samples".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Mapping

import numpy as np

from vision_jax.evaluate import fid as fid_lib

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
PR_K = 3


# ---------------------------------------------------------------------------
# Samples on disk (ADM's layout).


def save_samples(path: str, images, labels=None) -> str:
    """Writes uint8 [N, H, W, C] images (and labels) as ADM's arr_0 (and arr_1)."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"samples must be uint8 [N, H, W, C]; got {images.dtype} {images.shape}")
    arrays = {"arr_0": images}
    if labels is not None:
        arrays["arr_1"] = np.asarray(labels)
    np.savez(path, **arrays)
    return path


def load_samples(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(uint8 images [N, H, W, C], labels [N] or None) from an ADM-layout .npz."""
    with np.load(path) as f:
        if "arr_0" not in f:
            raise ValueError(f"{path} has no arr_0 (ADM layout: arr_0 images, arr_1 labels); "
                             f"found {sorted(f.files)}")
        images, labels = f["arr_0"], f.get("arr_1")
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"{path}: arr_0 must be uint8 [N, H, W, C]; got {images.dtype} "
                         f"{images.shape}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{path}: {len(labels)} labels for {len(images)} images")
    return images, labels


# ---------------------------------------------------------------------------
# Real images and the reference sets.


def to_uint8(x) -> np.ndarray:
    """Floats in [-1, 1] -> uint8 (the inverse of the pipeline's normalisation)."""
    return np.clip(np.round((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def read_split(data_cfg: Mapping, split: str, num: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `num` images (all with None) of a split, as the pipeline
    decodes them for eval: uint8 [n, H, W, C] and labels [n]."""
    from vision_jax import data, knn
    with contextlib.redirect_stdout(sys.stderr):  # TFDS prints while generating: keep stdout JSON
        data.prepare(data_cfg)
    shape = data.dataset_info(data_cfg).image_shape
    x, y = knn.load_arrays(data_cfg, split, limit=num, batch_size=500)
    return to_uint8(x.reshape(len(x), *shape)), y


def gaussian_samples(train_images, num: int, seed: int = 0) -> np.ndarray:
    """`num` uint8 images from N(mean, covariance) of the training images' pixels
    (in [-1, 1], then clipped and rounded like any sample).

    With the n centred images as rows of X, mean + X^T z / sqrt(n - 1), z ~ N(0, I_n),
    has exactly the sample covariance X^T X / (n - 1): no decomposition of the
    D x D covariance (rank <= n - 1 anyway) is needed."""
    x = np.asarray(train_images, np.float64).reshape(len(train_images), -1) / 127.5 - 1.0
    if len(x) < 2:
        raise ValueError("a Gaussian needs at least 2 training images")
    mean = x.mean(0)
    z = np.random.default_rng(seed).standard_normal((num, len(x)))
    samples = mean + z @ (x - mean) / np.sqrt(len(x) - 1)
    return to_uint8(samples.reshape(num, *np.shape(train_images)[1:]))


def set_metrics(real_features, fake_features, *, seed: int = 0) -> dict:
    """FID, KID and precision/recall of one feature set against another."""
    kid_mean, kid_std = fid_lib.kid(real_features, fake_features, subsets=KID_SUBSETS,
                                    subset_size=KID_SUBSET_SIZE, seed=seed)
    return {"fid": fid_lib.fid(real_features, fake_features), "kid": kid_mean,
            "kid_std": kid_std, **fid_lib.precision_recall(real_features, fake_features, k=PR_K)}


def default_data_config(resolution: int):
    from vision_jax import config as config_lib
    c = config_lib.base_config()
    c.data.shapes.resolution = c.data.image_size = int(resolution)
    return c


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 [N, H, W, C]; got {images.dtype} {images.shape}")
    return images


def _describe(data_cfg: Mapping, n: int, net) -> dict:
    return {
        "dataset": {"name": data_cfg["name"], "image_size": int(data_cfg["image_size"]),
                    **({"shapes": dict(data_cfg["shapes"])} if data_cfg["name"] == "shapes"
                       else {}),
                    "reference": f"first {n} of {data_cfg['eval_split']!r}",
                    "floor": f"first {n} of {data_cfg['train_split']!r}"},
        "feature_net": {k: net.record.get(k) for k in ("variant", "test_accuracy",
                                                        "feature_dim", "steps")},
        "protocol": {"kid_subsets": KID_SUBSETS, "kid_subset_size": min(KID_SUBSET_SIZE, n),
                     "precision_recall_k": PR_K},
    }


class _References:
    """The real images and features every comparison needs, read once."""

    def __init__(self, data_cfg: Mapping, num: int, net, *, seed: int = 0,
                 whole_train: bool = False):
        self.test, self.test_labels = read_split(data_cfg, data_cfg["eval_split"], num)
        self.n = n = min(num, len(self.test))
        if n < 2 * PR_K:
            raise ValueError(f"{n} images are too few to compare sets (num={num})")
        self.train, _ = read_split(data_cfg, data_cfg["train_split"], None if whole_train else n)
        self.test, self.test_labels = self.test[:n], self.test_labels[:n]
        (self.f_test, self.l_test), (self.f_train, _) = net(self.test), net(self.train[:n])
        self.seed = seed
        self.baseline = gaussian_samples(self.train[:n], n, seed=seed)
        self.f_baseline = net(self.baseline)[0]

    def metrics(self) -> dict:
        """The floor (train vs test) and the Gaussian baseline, on n vs n images."""
        return {"floor": set_metrics(self.f_test, self.f_train, seed=self.seed),
                "gaussian_baseline": set_metrics(self.f_test, self.f_baseline, seed=self.seed),
                "real_class_accuracy": float(np.mean(self.l_test["label"].argmax(-1)
                                                     == self.test_labels))}


def reference_metrics(data_cfg: Mapping, *, num: int = 2000, seed: int = 0, net=None) -> dict:
    """The floor and the Gaussian baseline alone (no samples needed)."""
    from vision_jax.evaluate import features
    t0 = time.perf_counter()
    net = net if net is not None else features.load_feature_net(int(data_cfg["image_size"]))
    refs = _References(data_cfg, num, net, seed=seed)
    out = {"num": refs.n, **refs.metrics(), **_describe(data_cfg, refs.n, net)}
    out["protocol"]["seed"] = seed
    out["seconds"] = time.perf_counter() - t0
    return out


def evaluate_samples(images, labels=None, *, data_cfg: Mapping, num: int = 2000, seed: int = 0,
                     net=None, memorization: bool = False, pool: int | None = None,
                     out_dir: str | None = None, tag: str = "samples") -> dict:
    """Every metric of the module docstring for uint8 [N, H, W, C] `images`.

    `net` defaults to the feature net of the images' resolution (trained
    first when missing). Uses the first min(num, N, test split) images.
    """
    from vision_jax.evaluate import features
    t0 = time.perf_counter()
    images = _check_images(images)
    if int(data_cfg["image_size"]) != images.shape[1]:
        raise ValueError(f"the samples are {images.shape[1]}px but the dataset config reads "
                         f"{data_cfg['image_size']}px images (data.image_size)")
    net = net if net is not None else features.load_feature_net(images.shape[1])
    refs = _References(data_cfg, min(num, len(images)), net, seed=seed,
                       whole_train=memorization and pool is None)
    n = refs.n
    fake = images[:n]
    f_fake, l_fake = net(fake)
    out = {"num": n, **set_metrics(refs.f_test, f_fake, seed=seed), **refs.metrics()}
    out["beats_gaussian_baseline"] = bool(out["fid"] < out["gaussian_baseline"]["fid"])
    predicted = l_fake["label"].argmax(-1)
    out["predicted_class_histogram"] = np.bincount(
        predicted, minlength=l_fake["label"].shape[1]).tolist()
    labels = None if labels is None else np.asarray(labels)[:n]
    conditional = labels is not None and len(np.unique(labels)) > 1
    out["class_accuracy"] = float(np.mean(predicted == labels)) if conditional else None
    if memorization:
        from vision_jax.evaluate import memorization as mem
        if pool is not None and pool > n:
            refs.train, _ = read_split(data_cfg, data_cfg["train_split"], pool)
        pool_images = refs.train if pool is None else refs.train[:pool]
        f_pool = refs.f_train[:len(pool_images)] if len(pool_images) <= n \
            else net(pool_images)[0]
        out["memorization"] = mem.memorization_check(
            fake, pool_images, refs.test, generated_features=f_fake, train_features=f_pool,
            test_features=refs.f_test, out_dir=out_dir, tag=tag)
    out.update(_describe(data_cfg, n, net))
    out["protocol"]["seed"] = seed
    out["seconds"] = time.perf_counter() - t0
    return out


def write_summary(workdir: str, metrics: dict) -> str:
    """Stores `metrics` under "samples" in the run's summary.json (created if absent)."""
    path = os.path.join(workdir, "summary.json")
    summary = {}
    if os.path.isfile(path):
        with open(path) as f:
            summary = json.load(f)
    summary["samples"] = metrics
    with open(path, "w") as f:
        json.dump(summary, f, indent=2)
    return path


# ---------------------------------------------------------------------------
# Command line.


def main(argv: list[str]) -> int:
    from vision_jax import config as config_lib
    from vision_jax import data
    parser = argparse.ArgumentParser(prog="vision-jax evaluate-samples",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--samples", help="ADM-layout .npz (arr_0, arr_1)")
    parser.add_argument("--references-only", action="store_true",
                        help="no samples: only the floor and the Gaussian baseline")
    parser.add_argument("--dataset-config", metavar="FILE[:ARG]",
                        help="config whose `data` the samples imitate (default: the run's)")
    parser.add_argument("--workdir", help="the run: its config.json, and its summary.json "
                                          "receives the metrics under 'samples'")
    parser.add_argument("--num", type=int, default=2000,
                        help="generated and real images compared (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memorization", action="store_true",
                        help="nearest training images of the samples (figures under --out)")
    parser.add_argument("--pool", type=int, help="memorisation: first POOL training images "
                                                 "(default: the whole split)")
    parser.add_argument("--out", help="directory of the figures (default: next to --samples)")
    args, rest = parser.parse_known_args(argv)
    bad = [r for r in rest if not r.startswith("--config.")]
    if bad:
        parser.error(f"unrecognised arguments: {' '.join(bad)}")
    if args.num <= 0:
        parser.error(f"--num={args.num} must be positive")
    if bool(args.samples) == args.references_only:
        parser.error("give exactly one of --samples=PATH.npz and --references-only")
    try:
        images, labels = load_samples(args.samples) if args.samples else (None, None)
        if args.dataset_config:
            config = config_lib.load_config(args.dataset_config)
        elif args.workdir:
            from vision_jax.sample import load_run_config
            config = load_run_config(args.workdir)
        else:
            config = default_data_config(images.shape[1] if images is not None else 16)
        config_lib.apply_overrides(config, [r[len("--config."):] for r in rest])
        if args.references_only:
            print(json.dumps(reference_metrics(config.data, num=args.num, seed=args.seed),
                             indent=2))
            return 0
        tag = os.path.splitext(os.path.basename(args.samples))[0]
        metrics = evaluate_samples(images, labels, data_cfg=config.data, num=args.num,
                                   seed=args.seed, memorization=args.memorization,
                                   pool=args.pool, tag=tag,
                                   out_dir=args.out or os.path.dirname(
                                       os.path.abspath(args.samples)))
    except (config_lib.ConfigError, data.DatasetNotFoundError, ValueError, OSError) as e:
        print(f"vision-jax evaluate-samples: error: {e}", file=sys.stderr)
        return 2
    metrics = {"samples": os.path.abspath(args.samples), **metrics}
    if args.workdir:
        metrics["summary"] = write_summary(args.workdir, metrics)
    print(json.dumps(metrics, indent=2))
    return 0
