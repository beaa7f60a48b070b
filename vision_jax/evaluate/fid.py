"""Distances between two sets of feature vectors: FID, KID, kNN precision/recall.

Pure numpy (float64); the features come from `evaluate/features.py`.

  frechet_distance   ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}), the Frechet
                     (2-Wasserstein) distance between two Gaussians (Heusel et al.
                     2017's FID when fitted to features). tr (S1 S2)^{1/2} is
                     computed from the eigenvalues of the symmetric PSD matrix
                     S1^{1/2} S2 S1^{1/2}, which has the same spectrum as S1 S2:
                     exact on known Gaussians, never complex, no sqrtm failures.
  kid                Binkowski et al. 2018's Kernel Inception Distance: the
                     unbiased estimator of MMD^2 with the cubic polynomial kernel
                     k(x, y) = (x.y / d + 1)^3, averaged over random subsets.
                     Unlike FID it has no bias in the number of samples.
  precision_recall   Kynkaanniemi et al. 2019: a sample is "covered" by a set when
                     it lies inside the k-NN ball (k = 3) of one of the set's
                     points. Precision = fraction of generated samples covered by
                     the real set (fidelity); recall = fraction of real samples
                     covered by the generated set (diversity).
"""

from __future__ import annotations

import numpy as np


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], covariance [D, D]) of [N, D] features, in float64 (N - 1 normalised)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"features must be [N >= 2, D]; got shape {x.shape}")
    return x.mean(0), np.cov(x, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    w, v = np.linalg.eigh((matrix + matrix.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma1, sigma2) -> float:
    """tr (S1 S2)^{1/2} for covariance matrices S1, S2."""
    root = _sqrt_psd(np.asarray(sigma1, np.float64))
    middle = root @ np.asarray(sigma2, np.float64) @ root
    w = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"shapes do not match: mu {mu1.shape}, {mu2.shape}; "
                         f"sigma {sigma1.shape}, {sigma2.shape}")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) \
        - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return float(max(value, 0.0))  # exact value is >= 0; rounding can dip below


def fid(features_a, features_b) -> float:
    """FID between two [N, D] feature sets (each summarised by its Gaussian)."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def polynomial_kernel(x, y, degree: int = 3, gamma: float | None = None, coef: float = 1.0):
    """(gamma x.y + coef)^degree with gamma = 1 / D (KID's kernel)."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef) ** degree


def _mmd2_from_kernels(kxx, kyy, kxy) -> float:
    m, n = len(kxx), len(kyy)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def mmd2_unbiased(x, y, **kernel) -> float:
    """The unbiased estimator of MMD^2 (Gretton et al. 2012, eq. 3): the
    within-set kernel sums leave out the diagonal, so its expectation is
    exactly 0 when x and y come from the same distribution."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("mmd2_unbiased needs at least 2 samples per set")
    return _mmd2_from_kernels(polynomial_kernel(x, x, **kernel), polynomial_kernel(y, y, **kernel),
                              polynomial_kernel(x, y, **kernel))


def kid(features_a, features_b, *, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """(mean, standard deviation) of the unbiased MMD^2 over `subsets` random
    subsets of `subset_size` rows of each set (Binkowski et al. 2018's
    protocol; the subset size is cut to the smaller set). The kernel matrices
    of the whole sets are computed once and indexed per subset when they fit."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    size = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    draws = [(rng.choice(len(a), size, replace=False), rng.choice(len(b), size, replace=False))
             for _ in range(subsets)]
    if max(len(a), len(b)) <= 8192:
        # Subset sums as quadratic forms of 0/1 indicator rows: u^T K u over
        # all subsets at once, minus the diagonal for the within-set terms.
        ua, ub = np.zeros((subsets, len(a))), np.zeros((subsets, len(b)))
        rows = np.arange(subsets)[:, None]
        ua[rows, [i for i, _ in draws]] = 1.0
        ub[rows, [j for _, j in draws]] = 1.0
        kaa, kbb, kab = polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(a, b)
        within_a = ((ua @ kaa) * ua).sum(1) - ua @ np.diag(kaa)
        within_b = ((ub @ kbb) * ub).sum(1) - ub @ np.diag(kbb)
        cross = ((ua @ kab) * ub).sum(1)
        values = (within_a + within_b) / (size * (size - 1)) - 2.0 * cross / (size * size)
    else:
        values = [mmd2_unbiased(a[i], b[j]) for i, j in draws]
    return float(np.mean(values)), float(np.std(values))


def _pairwise_sq(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Squared Euclidean distances [len(a), len(b)] (float64, clipped at 0)."""
    bb = (b * b).sum(1)
    out = np.empty((len(a), len(b)))
    for s in range(0, len(a), chunk):
        q = a[s:s + chunk]
        out[s:s + chunk] = np.maximum((q * q).sum(1)[:, None] + bb[None] - 2 * q @ b.T, 0.0)
    return out


def knn_radii(x, k: int = 3) -> np.ndarray:
    """Distance of each row of x to its k-th nearest other row."""
    x = np.asarray(x, np.float64)
    if not 1 <= k < len(x):
        raise ValueError(f"k={k} must be in [1, {len(x)})")
    d = _pairwise_sq(x, x)
    return np.sqrt(np.partition(d, k, axis=1)[:, k])  # column 0 is the row itself


def precision_recall(real, fake, k: int = 3) -> dict:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of `fake` w.r.t. `real`."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    d = np.sqrt(_pairwise_sq(fake, real))  # [fake, real]
    precision = (d <= r_real[None, :]).any(1).mean()
    recall = (d <= r_fake[:, None]).any(0).mean()
    return {"precision": float(precision), "recall": float(recall)}
