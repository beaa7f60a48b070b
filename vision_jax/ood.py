"""Out-of-distribution scores of a classifier, and AUROC.

Every score is "higher = more in-distribution":

* max-softmax probability (Hendrycks & Gimpel 2017, "A Baseline for Detecting
  Misclassified and Out-of-Distribution Examples");
* negative energy, T logsumexp(logits / T) (Liu et al. 2020, "Energy-based
  Out-of-distribution Detection");
* negative Mahalanobis distance to the closest class mean under one shared
  covariance, on penultimate features (Lee et al. 2018, "A Simple Unified
  Framework for Detecting Out-of-Distribution Samples and Adversarial
  Attacks"; without their input preprocessing and layer ensemble).

AUROC is the probability that a random in-distribution example scores above
a random OOD one (ties count half): the Mann-Whitney statistic, computed
exactly from ranks.
"""

from __future__ import annotations

import numpy as np
import scipy.special
import scipy.stats


def max_softmax(logits) -> np.ndarray:
    return scipy.special.softmax(np.asarray(logits, np.float64), axis=-1).max(-1)


def neg_energy(logits, temperature: float = 1.0) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    return temperature * scipy.special.logsumexp(logits / temperature, axis=-1)


def fit_gaussians(features, labels, classes) -> tuple[np.ndarray, np.ndarray]:
    """(class means [C, D], shared precision [D, D]) of the given classes:
    the tied-covariance Gaussian model of Lee et al. 2018."""
    features, labels = np.asarray(features, np.float64), np.asarray(labels)
    means = np.stack([features[labels == c].mean(0) for c in classes])
    centred = np.concatenate([features[labels == c] - m for c, m in zip(classes, means)])
    cov = centred.T @ centred / len(centred)
    return means, np.linalg.pinv(cov, hermitian=True)


def neg_mahalanobis(features, means, precision) -> np.ndarray:
    """-min_c (x - mu_c)^T P (x - mu_c)."""
    diff = np.asarray(features, np.float64)[:, None, :] - means[None]  # [N, C, D]
    dist = np.einsum("ncd,de,nce->nc", diff, precision, diff)
    return -dist.min(-1)


def auroc(in_scores, out_scores) -> float:
    """P(score_in > score_out) + P(tie) / 2 over all (in, out) pairs."""
    a, b = np.asarray(in_scores, np.float64), np.asarray(out_scores, np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("auroc needs in-distribution and OOD scores")
    ranks = scipy.stats.rankdata(np.concatenate([a, b]))  # ties get their mean rank
    u = ranks[:a.size].sum() - a.size * (a.size + 1) / 2
    return float(u / (a.size * b.size))


def noise_images(num: int, shape, seed: int = 0) -> np.ndarray:
    """Uniform noise in the pipeline's [-1, 1] pixel range."""
    return np.random.default_rng(seed).uniform(-1, 1, (num, *shape)).astype(np.float32)


SCORES = ("max_softmax", "energy", "mahalanobis")


def scores(logits, features, means, precision) -> dict[str, np.ndarray]:
    return {"max_softmax": max_softmax(logits), "energy": neg_energy(logits),
            "mahalanobis": neg_mahalanobis(features, means, precision)}
