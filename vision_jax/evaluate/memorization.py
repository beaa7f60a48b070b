"""Does a generative model copy its training set? Nearest training images of its samples.

For each generated image, the k nearest training images in pixel space (L2
on [-1, 1] pixels) and in the feature net's space. Alone a small distance
means little (shapes scenes resemble each other), so the same distance is
measured from held-out test images to the training set: a model that
generalises produces samples no closer to the training set than unseen real
images are. The summary per space:

  generated / test     quantiles (min, 1%, 5%, median) of the distance to the
                       nearest training image
  copy_rate            fraction of generated images closer to the training set
                       than 99% of test images are (about 0.01 when nothing is
                       copied; near 1 for a model that memorised)
  median_ratio         median generated distance / median test distance
                       (< 1: samples sit closer to the training set than new data)

`memorization_check` returns this and writes two figures: the generated
images nearest to the training set, each followed by its nearest neighbours
in pixels then in features, and the two distance distributions.
"""

from __future__ import annotations

import os

import numpy as np

from vision_jax import knn

QUANTILES = {"min": 0.0, "p1": 1.0, "p5": 5.0, "median": 50.0}


def _flat(images) -> np.ndarray:
    x = np.asarray(images)
    x = x.astype(np.float32) / 127.5 - 1.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return x.reshape(len(x), -1)


def nearest(queries, pool, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(Euclidean distances [Q, k] ascending, indices into `pool` [Q, k]) of rows."""
    d2, idx = knn.nearest_neighbors(np.asarray(pool, np.float32), np.asarray(queries, np.float32),
                                    k=min(k, len(pool)), metric="l2")
    return np.sqrt(np.maximum(d2, 0.0)), idx


def distance_summary(generated: np.ndarray, test: np.ndarray) -> dict:
    """Compares the nearest-training-image distances of generated and test images."""
    def q(d):
        return {name: float(np.percentile(d, p)) for name, p in QUANTILES.items()}

    threshold = float(np.percentile(test, 1.0))
    return {"generated": q(generated), "test": q(test),
            "copy_rate": float(np.mean(generated < threshold)),
            "median_ratio": float(np.median(generated) / max(np.median(test), 1e-12))}


def memorization_check(generated, train, test, *, generated_features=None, train_features=None,
                       test_features=None, k: int = 3, show: int = 8, out_dir: str | None = None,
                       tag: str = "samples") -> dict:
    """Nearest training images of `generated` (uint8 [N, H, W, C]) against the
    baseline of `test` images, in pixel space and, when the three feature
    arrays are given, in feature space. Writes `memorization_<tag>.png` (rows:
    generated | k pixel neighbours | k feature neighbours) and
    `memorization_hist_<tag>.png` under `out_dir` when given."""
    out = {"pool": len(train), "generated": len(generated), "test": len(test),
           "k": k}
    spaces = {"pixel": (_flat(generated), _flat(train), _flat(test))}
    if generated_features is not None:
        spaces["feature"] = (generated_features, train_features, test_features)
    neighbours, dists = {}, {}
    for name, (g, tr, te) in spaces.items():
        d_gen, i_gen = nearest(g, tr, k)
        d_test, _ = nearest(te, tr, 1)
        neighbours[name] = i_gen
        dists[name] = (d_gen[:, 0], d_test[:, 0])
        out[name] = distance_summary(d_gen[:, 0], d_test[:, 0])
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        out["figure"] = _neighbour_figure(generated, train, neighbours, dists["pixel"][0], show,
                                          os.path.join(out_dir, f"memorization_{tag}.png"))
        out["histogram"] = _histogram(dists, os.path.join(out_dir,
                                                          f"memorization_hist_{tag}.png"))
    return out


def _neighbour_figure(generated, train, neighbours: dict, d_pixel, show: int, path: str) -> str:
    """The `show` generated images nearest to the training set (pixel space),
    each row: generated | its pixel neighbours | its feature neighbours."""
    from PIL import Image

    from vision_jax.sample import image_grid
    rows = np.argsort(d_pixel)[:show]
    tiles = []
    for r in rows:
        row = [generated[r]] + [train[j] for j in neighbours["pixel"][r]]
        if "feature" in neighbours:
            row += [train[j] for j in neighbours["feature"][r]]
        tiles.append(np.stack(row))
    tiles = np.stack(tiles)  # [rows, columns, H, W, C]
    columns = tiles.shape[1]
    Image.fromarray(image_grid(tiles.reshape(-1, *tiles.shape[2:]), columns)).save(path)
    return path


def _histogram(dists: dict, path: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(dists), figsize=(5 * len(dists), 3.5), squeeze=False)
    for ax, (name, (d_gen, d_test)) in zip(axes[0], dists.items()):
        bins = np.linspace(0, max(d_gen.max(), d_test.max()) * 1.02 + 1e-9, 40)
        ax.hist(d_test, bins, alpha=0.6, label="test -> train")
        ax.hist(d_gen, bins, alpha=0.6, label="generated -> train")
        ax.set_xlabel(f"distance to nearest training image ({name})")
        ax.set_ylabel("images")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
