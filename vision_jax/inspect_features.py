"""What a trained classifier has learned: its filters, its feature space, its units.

    vision-jax inspect --workdir=DIR [--views filters,neighbours,tsne,patches]
                       [--num 500] [--train-num 2000] [--k 8] [--figure 8]
                       [--metric cosine|l2] [--layer conv1_0_act] [--channels 8]
                       [--seed 0] [--out DIR/inspect]

The views (the course's "what has the network learned" lecture; occlusion
sensitivity, the fifth, is a method of `vision-jax explain`):

  filters     the first convolution's kernels (a ViT's patch embedding), each
              scaled to [0, 1] on its own (Krizhevsky et al. 2012, Fig. 3):
              RGB for 3 input channels, grey for 1, the channel mean otherwise;
              `filter_structure` measures how much of them is colour blob,
              oriented ramp and luminance, against random weights
  neighbours  the k nearest training images of eval images in the space of the
              penultimate features (the input of the `head` layer), by cosine
              similarity (default) or L2 distance; the share of neighbours with
              the query's label, against the same share for neighbours in pixel
              space (Krizhevsky et al. 2012, Fig. 4: feature neighbours share the
              class where pixel neighbours need not)
  tsne        t-SNE (van der Maaten & Hinton 2008; scikit-learn, PCA init) of the
              eval images' penultimate features, coloured by label
  patches     maximally activating patches (Zeiler & Fergus 2014; Girshick et
              al. 2014): for the `--channels` channels of a convolution's
              activation with the highest top activation, the training images'
              receptive-field crops around the `--k` strongest activations (one
              per image). Needs the receptive field: the CNN's (model 'cnn',
              2x2 max or average pooling) is computed by `receptive_field`

Features are read the way the rest of the codebase reads them: penultimate
features by intercepting the `head` layer's input
(`models.layers.apply_with_features`), activations from the values the CNN sows
into 'intermediates' (as Grad-CAM reads them in vision_jax/explain.py).
Nearest neighbours use the chunked exact search of vision_jax/knn.py; cosine
is L2 on unit vectors.

The command restores a classification run's newest checkpoint (its EMA
parameters when it evaluates with them) and writes, under --out, one PNG per
view (filters.png, neighbours.png, tsne.png, patches.png) and inspect.json:
the filters' layer and shape, the neighbour label shares, the patches' layer,
receptive field and channels with their top activations.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vision_jax import checkpoint as ckpt_lib
from vision_jax import config as config_lib
from vision_jax import data

VIEWS = ("filters", "neighbours", "tsne", "patches")
METRICS = ("cosine", "l2")
# Grey between the image grid's tiles and where a crop leaves the image.
_PAD_VALUE = 128


# ---------------------------------------------------------------------------
# Reading the network: first-layer kernels, penultimate features, activations.


def first_conv_kernel(model, params, image_shape) -> tuple[str, np.ndarray]:
    """(path, kernel [kh, kw, C, K]) of the first convolution applied to the image:
    the first 4-D `kernel` in the model's definition order whose input channels
    are the image's (a ViT's patch embedding is a strided convolution)."""
    abstract = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0),
                              jnp.zeros((1, *image_shape), jnp.float32))
    channels = image_shape[-1]
    for path, leaf in jax.tree_util.tree_flatten_with_path(nn.unbox(abstract["params"]))[0]:
        keys = [p.key for p in path]
        if keys[-1] == "kernel" and leaf.ndim == 4 and leaf.shape[2] == channels:
            kernel = params
            for key in keys:
                kernel = kernel[key]
            return "/".join(keys[:-1]), np.asarray(nn.unbox(kernel))
    raise config_lib.ConfigError(f"{type(model).__name__} has no convolution on the "
                                 f"{channels}-channel image: no first-layer filters to show")


def filter_structure(kernel) -> dict:
    """How smooth and how colourful first-layer filters are: the mean over filters of
    the share of each kernel's energy (sum of squares) in

      flat   each input channel's constant part (a colour blob);
      ramp   each channel's linear ramps along rows and columns (an oriented
             edge at this scale), orthogonal to the constant;
      grey   the part equal in every input channel (luminance; 3 channels only).

    For i.i.d. random weights (any initialisation), the expected shares are
    1 / (kh kw), 2 / (kh kw) and 1 / C; a learned filter that is a colour
    blob or an oriented edge puts much more in flat + ramp."""
    k = np.asarray(kernel, np.float64)  # [kh, kw, C, K]
    kh, kw = k.shape[:2]
    rows, cols = np.meshgrid(np.arange(kh) - (kh - 1) / 2, np.arange(kw) - (kw - 1) / 2,
                             indexing="ij")
    basis = [np.ones((kh, kw))] + [b for b in (rows, cols) if np.any(b)]
    basis = [b / np.linalg.norm(b) for b in basis]  # orthonormal: centred ramps
    coef = [np.einsum("hw,hwck->ck", b, k) ** 2 for b in basis]  # [C, K] each
    total = np.maximum(np.square(k).sum(axis=(0, 1, 2)), 1e-30)  # [K]
    out = {"flat": float((coef[0].sum(0) / total).mean()),
           "ramp": float((sum(coef[1:]).sum(0) / total).mean()),
           "chance": {"flat": 1 / (kh * kw), "ramp": (len(basis) - 1) / (kh * kw)}}
    if k.shape[2] == 3:
        grey = np.square(k.mean(2)).sum(axis=(0, 1)) * 3
        out["grey"], out["chance"]["grey"] = float((grey / total).mean()), 1 / 3
    return out


def penultimate_features(model, variables, images):
    """[B, D] float32: the input of the model's top-level `head` layer in eval mode
    (read by `models.layers.apply_with_features`)."""
    from vision_jax.models.layers import apply_with_features
    try:
        return apply_with_features(model, variables, images, train=False)[1]
    except ValueError as e:
        raise config_lib.ConfigError(str(e)) from e


def sown_activation(model, variables, images, layer: str):
    """The activation [B, h, w, K] that the model sows into 'intermediates' as `layer`."""
    _, state = model.apply(variables, images, train=False, mutable=["intermediates"])
    sown = state["intermediates"]
    if layer not in sown:
        raise config_lib.ConfigError(f"{type(model).__name__} sows no activation {layer!r}; "
                                     f"it sows {sorted(sown)}")
    return sown[layer][0]


def sown_layers(model, variables, image_shape) -> list[str]:
    """Names of the activations the model sows, in forward order."""
    _, state = jax.eval_shape(functools.partial(model.apply, train=False,
                                                mutable=["intermediates"]),
                              variables, jnp.zeros((1, *image_shape), jnp.float32))
    return list(state.get("intermediates", {}))


def batched(fn, x: np.ndarray, batch_size: int = 256, progress: bool = False, desc: str = ""):
    """`fn` (jitted, on [batch_size, ...]) over the rows of `x`, the last batch padded
    so that every call has one shape; the outputs (a tree) concatenated on the host."""
    from tqdm.auto import tqdm
    outs = []
    for s in tqdm(range(0, len(x), batch_size), desc=desc, unit="batch", leave=False,
                  disable=not progress):
        chunk = x[s:s + batch_size]
        n = len(chunk)
        if n < batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - n, *x.shape[1:]), x.dtype)])
        outs.append(jax.tree.map(lambda a, n=n: np.asarray(a)[:n], fn(jnp.asarray(chunk))))
    return jax.tree.map(lambda *a: np.concatenate(a), *outs)


# ---------------------------------------------------------------------------
# Nearest neighbours and their labels.


def nearest_neighbours(train_feats, query_feats, k: int, metric: str = "cosine"):
    """(distances [Q, k], training indices [Q, k]), nearest first, exact.

    'cosine' returns 1 - cosine similarity (rows scaled to unit length, where
    squared L2 = 2 - 2 cos); 'l2' the Euclidean distance. Ties go to the lower
    training index (vision_jax/knn.py)."""
    from vision_jax import knn
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: choose from {list(METRICS)}")
    a, b = np.asarray(train_feats, np.float32), np.asarray(query_feats, np.float32)
    if metric == "cosine":
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    dist, idx = knn.nearest_neighbors(a, b, k, "l2")
    return (dist / 2 if metric == "cosine" else np.sqrt(dist)), idx


def label_share(neighbour_idx, train_labels, query_labels) -> float:
    """Share of all neighbours [Q, k] whose training label is their query's."""
    return float((np.asarray(train_labels)[neighbour_idx]
                  == np.asarray(query_labels)[:, None]).mean())


# ---------------------------------------------------------------------------
# Receptive fields and maximally activating patches.


def receptive_field(model, layer: str) -> tuple[int, int, float]:
    """(size, jump, offset) of the CNN activation `layer` ('conv{stage}_{i}_act'):
    unit u along an axis sees the input pixels [c - (size - 1) / 2, c + (size - 1) / 2]
    with centre c = jump * u + offset. 3x3 stride-1 'SAME' convolutions widen it by
    2 jumps, each 2x2 stride-2 pooling by 1 jump and doubles the jump."""
    from vision_jax.models.cnn import CNN
    match = re.fullmatch(r"conv(\d+)_(\d+)_act", layer)
    if not isinstance(model, CNN) or model.pool not in ("max", "avg") or match is None:
        raise config_lib.ConfigError(
            f"maximally activating patches need the layer's receptive field, known here for "
            f"the CNN (model 'cnn', pool 'max' or 'avg') and its layers conv{{stage}}_{{i}}_act; "
            f"got {type(model).__name__} layer {layer!r}")
    stage, index = int(match[1]), int(match[2])
    if stage >= len(model.widths) or index >= model.depth:
        raise config_lib.ConfigError(f"the CNN has no layer {layer!r}")
    size, jump, offset = 1, 1, 0.0
    for _ in range(stage):  # whole stages, each ending in its pooling
        size += 2 * jump * model.depth + jump
        offset += jump / 2
        jump *= 2
    return size + 2 * jump * (index + 1), jump, offset


def top_units(activations, k: int):
    """For per-image maxima `activations` = (values [N, K], positions [N, K]) of K
    channels, the k images with the highest value per channel: (values [K, k],
    images [K, k], positions [K, k]), strongest first, ties to the lower index."""
    values, positions = (np.asarray(a) for a in activations)
    order = np.argsort(-values, axis=0, kind="stable")[:k].T  # [K, k]
    return (np.take_along_axis(values.T, order, 1), order,
            np.take_along_axis(positions.T, order, 1))


def crop(image, centre: tuple[float, float], size: int, fill: float = 0.0) -> np.ndarray:
    """The size x size window of `image` [H, W, C] whose centre is `centre` (row,
    column; half-integer for even sizes), `fill` outside the image."""
    h, w = image.shape[:2]
    top, left = (math.floor(c - (size - 1) / 2 + 0.5) for c in centre)
    out = np.full((size, size, image.shape[2]), fill, image.dtype)
    r0, c0, r1, c1 = max(top, 0), max(left, 0), min(top + size, h), min(left + size, w)
    if r0 < r1 and c0 < c1:
        out[r0 - top:r1 - top, c0 - left:c1 - left] = image[r0:r1, c0:c1]
    return out


# ---------------------------------------------------------------------------
# Figures (uint8 RGB).


def _rgb(images_uint8) -> np.ndarray:
    return np.repeat(images_uint8, 3, -1) if images_uint8.shape[-1] == 1 else images_uint8


def filters_figure(kernel, *, tile: int = 24) -> np.ndarray:
    """kernel [kh, kw, C, K] -> a grid of K tiles, each filter scaled to [0, 1] on its own."""
    from vision_jax.sample import image_grid
    f = np.moveaxis(np.asarray(kernel, np.float32), -1, 0)  # [K, kh, kw, C]
    if f.shape[-1] not in (1, 3):
        f = f.mean(-1, keepdims=True)
    lo = f.min(axis=(1, 2, 3), keepdims=True)
    span = f.max(axis=(1, 2, 3), keepdims=True) - lo
    f = np.where(span > 0, (f - lo) / np.where(span > 0, span, 1.0), 0.5)
    tiles = _rgb((f * 255).round().astype(np.uint8))
    return image_grid(tiles, columns=min(16, len(tiles)), scale=max(1, tile // f.shape[1]))


def rows_figure(rows: np.ndarray, *, target: int = 96) -> np.ndarray:
    """uint8 [R, C, h, w, ch] tiles -> one image, one row of C tiles per R."""
    from vision_jax.sample import image_grid
    r, c = rows.shape[:2]
    tiles = _rgb(rows.reshape(r * c, *rows.shape[2:]))
    return image_grid(tiles, columns=c, scale=max(1, target // rows.shape[2]))


def tsne_figure(points, labels, class_names) -> np.ndarray:
    """A scatter plot of 2-D `points` coloured by label, as uint8 RGB."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=100)
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for c, name in enumerate(class_names):
        sel = labels == c
        ax.scatter(points[sel, 0], points[sel, 1], s=5, color=cmap(c % cmap.N), label=name)
    ax.set_xticks([]), ax.set_yticks([])
    ax.legend(fontsize=6, markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5),
              frameon=False)
    fig.tight_layout()
    fig.canvas.draw()
    out = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return out


def tsne(features, seed: int = 0) -> np.ndarray:
    """[N, 2] t-SNE embedding (scikit-learn, PCA init, perplexity min(30, (N - 1) / 3)).

    On one OpenMP thread: beside JAX's busy threads, scikit-learn's OpenMP
    workers spin-wait; 300 points took 121 s on 2 loaded cores, 5.6 s on one thread."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits
    n = len(features)
    if n < 4:
        raise config_lib.ConfigError(f"t-SNE needs at least 4 images, got {n}")
    with threadpool_limits(1):
        return TSNE(2, perplexity=min(30.0, (n - 1) / 3), init="pca",
                    random_state=seed).fit_transform(np.asarray(features, np.float64))


# ---------------------------------------------------------------------------
# The command.


def split_images(config, split: str, num: int) -> tuple[np.ndarray, np.ndarray]:
    """(images [N, H, W, C] in [-1, 1], labels [N]) of the first `num` examples of `split`."""
    from vision_jax.explain import eval_examples
    images, labels, _ = eval_examples(config, num, split=split, masks=False)
    return images, labels


def class_names(config, num_classes: int) -> list[str]:
    if config.data.name == "shapes":
        from vision_jax.data.shapes import SHAPES
        return list(SHAPES)
    return [str(c) for c in range(num_classes)]


def inspect(config, workdir: str, *, views=VIEWS, num: int = 500, train_num: int = 2000,
            k: int = 8, figure_rows: int = 8, metric: str = "cosine", layer: str | None = None,
            channels: int = 8, seed: int = 0, progress: bool = True) -> tuple[dict, dict]:
    """(inspect.json's content, {view: uint8 figure}) for a classification run."""
    from vision_jax.explain import restore_task
    from vision_jax.sample import to_uint8

    task, params, model_state, step = restore_task(config, workdir, why="learned-feature views")
    model, image_shape = task.model, tuple(task.info.image_shape)
    variables = {"params": params, **model_state}
    result = {"workdir": workdir, "step": step}
    figures = {}
    need_eval = {"neighbours", "tsne"} & set(views)
    need_train = {"neighbours", "patches"} & set(views)
    if need_eval:
        images, labels = split_images(config, config.data.eval_split, num)
    if need_train:
        train_images, train_labels = split_images(config, config.data.train_split, train_num)
        if k > len(train_images):
            raise config_lib.ConfigError(f"--k={k} is more than the {len(train_images)} "
                                         "training images")
    features = jax.jit(lambda x: penultimate_features(model, variables, x))

    if "filters" in views:
        path, kernel = first_conv_kernel(model, params, image_shape)
        result["filters"] = {"layer": path, "shape": list(kernel.shape),
                             "structure": filter_structure(kernel)}
        figures["filters"] = filters_figure(kernel)
    if need_eval:
        eval_feats = batched(features, images, progress=progress, desc="eval features")
        result["eval_images"] = len(images)
    if "neighbours" in views:
        train_feats = batched(features, train_images, progress=progress, desc="train features")
        _, idx = nearest_neighbours(train_feats, eval_feats, k, metric)
        _, pixel_idx = nearest_neighbours(train_images.reshape(len(train_images), -1),
                                          images.reshape(len(images), -1), k, metric)
        result["neighbours"] = {
            "metric": metric, "k": k, "train_images": len(train_images),
            "feature_dim": int(eval_feats.shape[1]),
            "label_share": label_share(idx, train_labels, labels),
            "pixel_label_share": label_share(pixel_idx, train_labels, labels),
            "chance": float(np.mean([(train_labels == y).mean() for y in labels]))}
        rows = figure_rows
        grid = np.concatenate([images[:rows, None], train_images[idx[:rows]]], axis=1)
        figures["neighbours"] = rows_figure(to_uint8(grid))
    if "tsne" in views:
        start = time.time()
        points = tsne(eval_feats, seed)
        result["tsne"] = {"images": len(points), "seconds": round(time.time() - start, 1)}
        figures["tsne"] = tsne_figure(points, labels, class_names(config, task.info.num_classes))
    if "patches" in views:
        if layer is None:
            names = sown_layers(model, variables, image_shape)
            if not names:
                raise config_lib.ConfigError(f"{type(model).__name__} sows no activations: "
                                             "no layer for the patches")
            layer = names[min(1, len(names) - 1)]
        size, jump, offset = receptive_field(model, layer)

        @jax.jit
        def strongest(x):  # per image and channel: the top activation and its position
            a = sown_activation(model, variables, x, layer)
            flat = a.reshape(a.shape[0], -1, a.shape[-1])
            return flat.max(1), flat.argmax(1)

        values, positions = batched(strongest, train_images, progress=progress,
                                    desc=f"{layer} maxima")
        width = sown_activation(model, variables, train_images[:1], layer).shape[2]
        top, who, where = top_units((values, positions), k)
        chosen = np.argsort(-top[:, 0], kind="stable")[:channels]
        crops = np.stack([np.stack([
            crop(train_images[i], (jump * (p // width) + offset, jump * (p % width) + offset),
                 size, fill=0.0) for i, p in zip(who[c], where[c])]) for c in chosen])
        result["patches"] = {"layer": layer, "receptive_field": size, "jump": jump,
                             "channels": [int(c) for c in chosen],
                             "top_activation": [round(float(top[c, 0]), 4) for c in chosen],
                             "train_images": len(train_images)}
        figures["patches"] = rows_figure(to_uint8(crops))
    return result, figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax inspect", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a classification run's directory")
    parser.add_argument("--views", default=",".join(VIEWS),
                        help=f"comma-separated, from {','.join(VIEWS)}")
    parser.add_argument("--num", type=int, default=500,
                        help="eval images for the neighbour shares and t-SNE (default 500)")
    parser.add_argument("--train-num", type=int, default=2000,
                        help="training images searched for neighbours and patches (default 2000)")
    parser.add_argument("--k", type=int, default=8, help="neighbours / patches per row (default 8)")
    parser.add_argument("--figure", type=int, default=8, help="query rows in neighbours.png")
    parser.add_argument("--metric", default="cosine", choices=METRICS,
                        help="feature-space distance of the neighbours (default cosine)")
    parser.add_argument("--layer", help="activation for the patches (default the second sown)")
    parser.add_argument("--channels", type=int, default=8,
                        help="channels (rows) in patches.png (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="t-SNE's seed")
    parser.add_argument("--out", help="output directory (default WORKDIR/inspect)")
    args = parser.parse_args(argv)
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    if not views or any(v not in VIEWS for v in views):
        parser.error(f"--views={args.views!r}: choose from {','.join(VIEWS)}")
    if min(args.num, args.train_num, args.k, args.figure, args.channels) <= 0:
        parser.error("--num, --train-num, --k, --figure and --channels must be positive")
    from vision_jax.sample import load_run_config
    out = args.out or os.path.join(args.workdir, "inspect")
    try:
        config = load_run_config(args.workdir)
        result, figures = inspect(config, args.workdir, views=views, num=args.num,
                                  train_num=args.train_num, k=args.k,
                                  figure_rows=min(args.figure, args.num), metric=args.metric,
                                  layer=args.layer, channels=args.channels, seed=args.seed)
    except (config_lib.ConfigError, ckpt_lib.CheckpointError, data.DatasetNotFoundError) as e:
        print(f"vision-jax inspect: error: {e}", file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "inspect.json"), "w") as f:
        json.dump(result, f, indent=1)
    from PIL import Image
    for view, grid in figures.items():
        Image.fromarray(grid).save(os.path.join(out, f"{view}.png"))
    if "filters" in result:
        f = result["filters"]
        share = "  ".join(f"{name} {100 * f['structure'][name]:.0f}% (chance "
                          f"{100 * f['structure']['chance'][name]:.0f}%)"
                          for name in f["structure"]["chance"])
        print(f"filters: {f['layer']} {f['shape']}; energy shares: {share}")
    if "neighbours" in result:
        n = result["neighbours"]
        print(f"neighbours ({n['metric']}, k={n['k']}, {n['train_images']} training images): "
              f"{100 * n['label_share']:.1f}% share the query's label in feature space, "
              f"{100 * n['pixel_label_share']:.1f}% in pixel space, chance "
              f"{100 * n['chance']:.1f}%")
    if "patches" in result:
        p = result["patches"]
        print(f"patches: {p['layer']}, receptive field {p['receptive_field']} px, "
              f"channels {p['channels']}")
    print(f"wrote {out}")
    return 0
