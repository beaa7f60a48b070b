"""Attribution maps of a trained classifier, and checks that they show something real.

    vision-jax explain --workdir=DIR [--methods gradient,smoothgrad,ig,guided,gradcam,occlusion]
                       [--num 64] [--figure 8] [--cascade] [--deletion-steps 16]
                       [--smooth-n 16] [--ig-steps 32] [--occlusion-size PX]
                       [--occlusion-stride PX] [--out DIR/explain]

The maps (each a non-negative [B, H, W] heat map of "where the evidence for
the label is"):

  gradient    vanilla saliency (Simonyan et al. 2014): max over channels of
              |d logit_y / d x|
  smoothgrad  Smilkov et al. 2017: the gradient map averaged over `n` copies of
              the image with Gaussian noise of std `sigma` x the pixel range
  ig          integrated gradients (Sundararajan et al. 2017) from the black
              image (-1), trapezoid rule in `steps` steps; the map sums |IG|
              over channels. Completeness, sum(IG) = f(x) - f(baseline), holds
              up to the quadrature error, which `integrated_gradients` returns
  guided      guided backprop (Springenberg et al. 2015): the gradient map of
              the same network with every ReLU replaced by layers.guided_relu
  gradcam     Grad-CAM (Selvaraju et al. 2017) on the last convolution's
              activation, upsampled bilinearly to the image
  occlusion   occlusion sensitivity (Zeiler & Fergus 2014): a `size` x `size`
              square of the baseline (-1) slid over the image in steps of
              `stride`; a pixel's value is the mean, over the squares that
              cover it, of the drop in the label's probability (negative drops,
              where hiding a region helps the label, count as 0). No gradients

Every map is a pure, jittable function of the model's logits function (or, for
guided backprop and Grad-CAM, of the model and its variables), the images
(NHWC in [-1, 1]) and the labels. The checks:

  mask share     on `shapes`, the share of the map's mass inside the
                 ground-truth mask of the labelled class, against the share of
                 the image that mask covers (what a uniform map scores)
  deletion / insertion AUC   Petsiuk et al. 2018 (RISE): pixels are set to the
                 baseline (deletion) or restored from it (insertion) in order of
                 decreasing saliency in `k` steps; the area under the label's
                 softmax probability. Good maps: low deletion, high insertion
  randomisation  Adebayo et al. 2018: Spearman rank correlation between the
                 maps of the trained model and of the same architecture with
                 re-initialised parameters (all at once; with --cascade also
                 cascading from the top layer). A map that explains the model
                 must change when its weights do: low correlation passes

What the network has learned beyond these maps (first-layer filters,
feature-space neighbours, t-SNE, maximally activating patches) is
`vision-jax inspect` (vision_jax/inspect_features.py).

The command restores a classification run's newest checkpoint (its EMA
parameters when it evaluates with them), computes the maps on the first
`--num` eval examples and writes, under --out:

  explain.png   rows = the first `--figure` images; columns = the input, then
                each method's map (inferno colour map, each map scaled to its max)
  explain.json  per method: mask_share and chance (shapes only), deletion_auc,
                insertion_auc, randomisation correlation and whether it passes;
                `random_order`: the AUCs of a uniformly random map, the reference
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vision_jax import checkpoint as ckpt_lib
from vision_jax import config as config_lib
from vision_jax import data

METHODS = ("gradient", "smoothgrad", "ig", "guided", "gradcam", "occlusion")
# Adebayo et al. give no threshold; below this rank correlation a method's maps
# are called "changed" by the randomisation check.
RANDOMISATION_PASS_BELOW = 0.5


# ---------------------------------------------------------------------------
# Attribution maps: pure functions of (logits_fn, images, labels).


def _label_logit_grad(logits_fn, images, labels):
    """d logit_y / d x for every image (the batch's logits are independent in eval)."""
    def total(x):
        return jnp.take_along_axis(logits_fn(x), labels[:, None], axis=-1).sum()
    return jax.grad(total)(images)


def _channel_max_abs(grads):
    return jnp.abs(grads).max(axis=-1)


def gradient(logits_fn, images, labels):
    """Vanilla saliency: [B, H, W] max over channels of |d logit_y / d x|."""
    return _channel_max_abs(_label_logit_grad(logits_fn, images, labels))


def smoothgrad(logits_fn, images, labels, rng, *, n: int = 16, sigma: float = 0.15):
    """SmoothGrad: the gradient map averaged over `n` noisy copies; noise std
    `sigma` times the pixel range (2 in [-1, 1]; Smilkov et al. find 10-20% best)."""
    noise = jax.random.normal(rng, (n, *images.shape), images.dtype) * (2.0 * sigma)
    noisy = (images[None] + noise).reshape(n * images.shape[0], *images.shape[1:])
    maps = gradient(logits_fn, noisy, jnp.tile(labels, n))
    return maps.reshape(n, *images.shape[:3]).mean(axis=0)


def integrated_gradients(logits_fn, images, labels, *, steps: int = 32,
                         baseline: float = -1.0):
    """(IG [B, H, W, C], completeness gap [B]) from a constant `baseline` image.

    IG_i = (x_i - x'_i) * mean over the path x' + a (x - x') of d logit_y / d x_i,
    the mean by the trapezoid rule on steps + 1 points a = 0, 1/steps, ..., 1.
    The gap is sum(IG) - (logit_y(x) - logit_y(x')): zero for the exact
    integral, so it measures the quadrature error.
    """
    base = jnp.full_like(images, baseline)
    alphas = jnp.linspace(0.0, 1.0, steps + 1, dtype=images.dtype)
    path = base[None] + alphas[:, None, None, None, None] * (images - base)[None]
    b = images.shape[0]
    grads = _label_logit_grad(logits_fn, path.reshape(-1, *images.shape[1:]),
                              jnp.tile(labels, steps + 1)).reshape(path.shape)
    weights = jnp.ones(steps + 1, images.dtype).at[jnp.array([0, steps])].set(0.5) / steps
    ig = (images - base) * jnp.tensordot(weights, grads, axes=1)
    logits = logits_fn(jnp.concatenate([images, base]))
    f = jnp.take_along_axis(logits, jnp.tile(labels, 2)[:, None], axis=-1)[:, 0]
    gap = ig.reshape(b, -1).sum(-1) - (f[:b] - f[b:])
    return ig, gap


def integrated_gradients_map(logits_fn, images, labels, *, steps: int = 32):
    """[B, H, W]: |IG| summed over channels."""
    return jnp.abs(integrated_gradients(logits_fn, images, labels, steps=steps)[0]).sum(-1)


def guided_model(model):
    """The same network with its ReLUs guided (same parameters, same logits).

    Needs a model built from an `activation` name (the CNN, MLP, LeNet)."""
    if getattr(model, "activation", None) != "relu":
        raise config_lib.ConfigError(
            f"guided backprop needs a model with activation='relu'; "
            f"{type(model).__name__} has activation={getattr(model, 'activation', None)!r}")
    return model.clone(activation="guided_relu")


def guided_backprop(guided_logits_fn, images, labels):
    """Guided backprop: the gradient map of the guided-ReLU network (`guided_model`)."""
    return gradient(guided_logits_fn, images, labels)


def grad_cam(cam_fn, zeros, images, labels):
    """Grad-CAM: [B, H, W] = upsampled ReLU(sum_k alpha_k A_k), alpha_k the spatial
    mean of d logit_y / d A_k, A the last convolution's activation [B, h, w, K].

    `cam_fn(images, delta) -> (logits, A)` computes the logits with `delta`
    added to A (so that d logits / d delta at 0 is d logits / d A); `zeros` is a
    zero delta of A's shape.
    """
    def total(delta):
        logits, features = cam_fn(images, delta)
        return jnp.take_along_axis(logits, labels[:, None], axis=-1).sum(), features

    grads, features = jax.grad(total, has_aux=True)(zeros)
    alpha = grads.mean(axis=(1, 2), keepdims=True)
    cam = jax.nn.relu((alpha * features).sum(-1))
    return jax.image.resize(cam, images.shape[:3], method="bilinear")


def occlusion_starts(length: int, size: int, stride: int) -> list[int]:
    """Offsets of the occluding square along one side: every `stride` pixels, plus
    the last one flush with the border so that every pixel is covered."""
    if not 1 <= size <= length or stride < 1:
        raise ValueError(f"occlusion square {size} px with stride {stride} does not fit "
                         f"an image of {length} px")
    return sorted(set(range(0, length - size + 1, stride)) | {length - size})


def occlusion(prob_fn, images, labels, *, size: int, stride: int, baseline: float = -1.0):
    """Occlusion sensitivity: [B, H, W], each pixel the mean over the squares that
    cover it of max(0, p_y(x) - p_y(x with the square set to `baseline`)).

    `prob_fn(images, labels) -> [B]` is the label's probability
    (`label_probability`). One batch of B occluded images per square position,
    in a `lax.map`, so memory stays that of one forward pass.
    """
    h, w = images.shape[1:3]
    corners = jnp.array([(r, c) for r in occlusion_starts(h, size, stride)
                         for c in occlusion_starts(w, size, stride)], jnp.int32)
    rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    full = prob_fn(images, labels)

    def one(corner):
        square = ((rows >= corner[0]) & (rows < corner[0] + size)
                  & (cols >= corner[1]) & (cols < corner[1] + size))  # [H, W]
        hidden = jnp.where(square[None, :, :, None], baseline, images)
        drop = jax.nn.relu(full - prob_fn(hidden, labels))  # [B]
        return drop[:, None, None] * square[None], square

    drops, squares = jax.lax.map(one, corners)
    return drops.sum(0) / squares.sum(0)[None]


def occlusion_square(image_size: int, size: int | None = None,
                     stride: int | None = None) -> tuple[int, int]:
    """(size, stride) of the occluding square; by default an eighth of the image
    (at least 2 px), moved by half its side."""
    size = size or max(2, image_size // 8)
    return size, stride or max(1, size // 2)


# ---------------------------------------------------------------------------
# A flax classifier's maps, as functions of its variables (so that a trained
# and a randomised model share one compiled function per method).


def last_feature_layer(model, variables, images) -> str:
    """Name of the model's last perturbable activation (the CNN's last conv)."""
    _, pert = jax.eval_shape(functools.partial(model.apply, train=False,
                                               mutable=["perturbations"]), variables, images)
    names = list(pert.get("perturbations", {}))
    if not names:
        raise config_lib.ConfigError(
            f"Grad-CAM needs a model that exposes its feature maps through `perturb` "
            f"(the CNN does); {type(model).__name__} does not")
    return names[-1]


def attribution(method: str, model, variables, images, labels, rng, *,
                smooth_n: int = 16, smooth_sigma: float = 0.15, ig_steps: int = 32,
                layer: str | None = None, occlusion_size: int | None = None,
                occlusion_stride: int | None = None):
    """`method`'s [B, H, W] map of a flax classifier `model` with `variables`
    (occlusion's square: `occlusion_square` of the image height)."""
    def logits_fn(x, m=model):
        return m.apply(variables, x, train=False)

    if method == "gradient":
        return gradient(logits_fn, images, labels)
    if method == "smoothgrad":
        return smoothgrad(logits_fn, images, labels, rng, n=smooth_n, sigma=smooth_sigma)
    if method == "ig":
        return integrated_gradients_map(logits_fn, images, labels, steps=ig_steps)
    if method == "guided":
        return guided_backprop(functools.partial(logits_fn, m=guided_model(model)), images,
                               labels)
    if method == "gradcam":
        _, pert = jax.eval_shape(functools.partial(model.apply, train=False,
                                                   mutable=["perturbations"]), variables, images)
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), pert["perturbations"])
        layer = layer or list(zeros)[-1]

        def cam_fn(x, delta):
            logits, state = model.apply({**variables, "perturbations": {**zeros, layer: delta}},
                                        x, train=False, mutable=["intermediates"])
            return logits, state["intermediates"][layer][0]

        return grad_cam(cam_fn, zeros[layer], images, labels)
    if method == "occlusion":
        size, stride = occlusion_square(images.shape[1], occlusion_size, occlusion_stride)
        return occlusion(label_probability(logits_fn), images, labels, size=size, stride=stride)
    raise ValueError(f"unknown attribution method {method!r}; choose from {list(METHODS)}")


# ---------------------------------------------------------------------------
# Checks: numbers that say whether a map shows something real.


def mask_share(maps, masks):
    """Per image, the share of a non-negative map's mass inside a boolean mask [B, H, W]
    (0 for an all-zero map)."""
    maps = jnp.asarray(maps, jnp.float32)
    inside = (maps * masks).sum(axis=(1, 2))
    total = maps.sum(axis=(1, 2))
    return jnp.where(total > 0, inside / jnp.where(total > 0, total, 1.0), 0.0)


def deletion_insertion(prob_fn, images, labels, maps, *, k: int = 16, baseline: float = -1.0):
    """(deletion AUC [B], insertion AUC [B]) of Petsiuk et al. 2018.

    Step t = 0..k sets the t/k most salient pixels (all channels; ties broken
    by position) to `baseline` (deletion) or starts from the baseline image
    and restores them (insertion); `prob_fn(images) -> [B]` is the label's
    probability. The AUC is the trapezoid mean over the k + 1 points.
    """
    b, h, w = maps.shape
    order = jnp.argsort(-maps.reshape(b, -1), axis=-1, stable=True)
    rank = jnp.argsort(order, axis=-1).reshape(b, h, w)  # 0 = most salient pixel
    counts = jnp.round(jnp.linspace(0.0, h * w, k + 1)).astype(jnp.int32)
    chosen = rank[None] < counts[:, None, None, None]  # [k+1, B, H, W]
    base = jnp.full_like(images, baseline)
    deleted = jnp.where(chosen[..., None], base[None], images[None])
    inserted = jnp.where(chosen[..., None], images[None], base[None])
    both = jnp.concatenate([deleted, inserted]).reshape(-1, *images.shape[1:])
    probs = prob_fn(both, jnp.tile(labels, 2 * (k + 1))).reshape(2, k + 1, b)
    weights = jnp.ones(k + 1).at[jnp.array([0, k])].set(0.5) / k
    auc = jnp.tensordot(weights, probs, axes=([0], [1]))  # [2, B]
    return auc[0], auc[1]


def label_probability(logits_fn):
    """prob_fn for `deletion_insertion`: softmax probability of each image's label."""
    def prob_fn(images, labels):
        p = jax.nn.softmax(logits_fn(images), axis=-1)
        return jnp.take_along_axis(p, labels[:, None], axis=-1)[:, 0]
    return prob_fn


def rank_correlation(maps_a, maps_b) -> float:
    """Mean over images of the Spearman rank correlation of two maps [B, H, W].

    An image whose map is constant in either model (e.g. an all-zero Grad-CAM)
    has no ranking; it counts as uncorrelated (0)."""
    from scipy import stats
    a = np.asarray(maps_a, np.float64).reshape(len(maps_a), -1)
    b = np.asarray(maps_b, np.float64).reshape(len(maps_b), -1)
    rhos = [0.0 if np.ptp(x) == 0 or np.ptp(y) == 0 else stats.spearmanr(x, y).statistic
            for x, y in zip(a, b)]
    return float(np.mean(rhos))


def randomised_params(params, fresh, layers) -> dict:
    """`params` with the top-level entries `layers` taken from `fresh` (a re-init)."""
    return {name: fresh[name] if name in layers else value for name, value in params.items()}


def cascade_layers(params) -> list[str]:
    """Top-level parameter names from the output layer down (definition order reversed)."""
    return list(params)[::-1]


# ---------------------------------------------------------------------------
# The command.


def eval_examples(config, num: int, *, split: str | None = None, masks: bool = True):
    """(images [N, H, W, C], labels [N], segmentation masks of the label [N, H, W] bool
    or None) of the first `num` examples of `split` (default the eval split; fewer
    if the split is smaller); masks only on `shapes` and with `masks`."""
    from PIL import Image

    from vision_jax.data import pipeline
    split = split or config.data.eval_split
    images, labels = [], []
    for batch in data.make_eval_batches(config.data, split=split,
                                        global_batch_size=config.batch_size,
                                        process_index=0, process_count=1):
        keep = batch["mask"].astype(bool)
        images += list(batch["image"][keep]); labels += list(batch["label"][keep])
        if len(images) >= num:
            break
    images, labels = np.stack(images[:num]), np.asarray(labels[:num], np.int32)
    if config.data.name != "shapes" or not masks:
        return images, labels, None
    # Eval batches use the name 'mask' for padding, so the segmentation mask
    # (class + 1 per pixel) is read from the split itself, in the same order.
    _, source, _ = pipeline._open(config.data, split)
    size = images.shape[1]
    masks = []
    for i, label in enumerate(labels):
        seg = np.asarray(source[i]["mask"])
        if seg.shape != (size, size):
            seg = np.asarray(Image.fromarray(seg).resize((size, size), Image.NEAREST))
        masks.append(seg == label + 1)
    return images, labels, np.stack(masks)


def heat(maps) -> np.ndarray:
    """[B, H, W] non-negative maps -> uint8 RGB [B, H, W, 3], each scaled to its max."""
    from matplotlib import colormaps
    maps = np.asarray(maps, np.float32)
    top = maps.reshape(len(maps), -1).max(-1)[:, None, None]
    scaled = np.where(top > 0, maps / np.where(top > 0, top, 1.0), 0.0)
    return (colormaps["inferno"](scaled)[..., :3] * 255).round().astype(np.uint8)


def figure(images, maps: dict) -> np.ndarray:
    """One uint8 image: rows = images, columns = input then each method's heat map."""
    from vision_jax.sample import image_grid, to_uint8
    inputs = to_uint8(images)
    if inputs.shape[-1] == 1:
        inputs = np.repeat(inputs, 3, -1)
    columns = [inputs] + [heat(m) for m in maps.values()]
    tiles = np.stack(columns, axis=1).reshape(-1, *inputs.shape[1:])
    return image_grid(tiles, len(columns), scale=max(1, 96 // inputs.shape[1]))


def restore_task(config, workdir: str, *, why: str):
    """(classification task, params, other variables, step) of a classification
    run's newest checkpoint, on the host: its EMA parameters when the run
    evaluates with them. `why` names what needs the classifier, for the error
    on another task."""
    from vision_jax import train
    if config.task != "classification":
        raise config_lib.ConfigError(f"task {config.task!r}: {why} need a classifier")
    run, step, state = train.restore_workdir(config, workdir)
    params = state.ema if (config.ema.decay and config.ema.evaluate and state.ema) \
        else state.params
    params, model_state = jax.device_get((params, state.model_state))
    return run.task, params, model_state, step


def restore_classifier(config, workdir: str, *, why: str):
    """(flax model, params, other variables, step): `restore_task`'s model."""
    task, params, model_state, step = restore_task(config, workdir, why=why)
    return task.model, params, model_state, step


def explain(config, workdir: str, *, methods=METHODS, num: int = 64, figure_rows: int = 8,
            cascade: bool = False, deletion_steps: int = 16, smooth_n: int = 16,
            ig_steps: int = 32, occlusion_size: int | None = None,
            occlusion_stride: int | None = None, seed: int = 0,
            progress: bool = True) -> tuple[dict, np.ndarray]:
    """(explain.json's content, the figure) for a classification run."""
    from tqdm.auto import tqdm

    model, params, model_state, step = restore_classifier(config, workdir,
                                                          why="attribution maps")
    images, labels, masks = eval_examples(config, num)
    rng_maps, rng_init = jax.random.split(jax.random.key(seed))
    fresh = model.init({"params": rng_init, "dropout": rng_init}, images[:1], train=False)
    fresh = jax.device_get(nn.unbox(fresh["params"]))

    @functools.partial(jax.jit, static_argnums=0)
    def maps_of(method, params, images, labels):
        return attribution(method, model, {"params": params, **model_state}, images, labels,
                           rng_maps, smooth_n=smooth_n, ig_steps=ig_steps,
                           occlusion_size=occlusion_size, occlusion_stride=occlusion_stride)

    @jax.jit
    def aucs(images, labels, maps):
        logits_fn = lambda x: model.apply({"params": params, **model_state}, x, train=False)
        return deletion_insertion(label_probability(logits_fn), images, labels, maps,
                                  k=deletion_steps)

    logits = jax.jit(lambda x: model.apply({"params": params, **model_state}, x,
                                           train=False))(images)
    result = {"workdir": workdir, "step": step, "examples": len(images),
              "accuracy": float((np.argmax(logits, -1) == labels).mean()),
              "deletion_steps": deletion_steps, "smooth_n": smooth_n, "ig_steps": ig_steps,
              "methods": {}}
    if "occlusion" in methods:
        size, stride = occlusion_square(images.shape[1], occlusion_size, occlusion_stride)
        if size > images.shape[1]:
            raise config_lib.ConfigError(f"--occlusion-size={size} is larger than the "
                                         f"{images.shape[1]} px images")
        result["occlusion_size"], result["occlusion_stride"] = size, stride
    if masks is not None:
        result["chance"] = float(masks.mean())
    # The reference a map must beat: pixels deleted/inserted in random order.
    noise = jax.random.uniform(jax.random.fold_in(rng_maps, 1), images.shape[:3])
    result["random_order"] = dict(zip(("deletion_auc", "insertion_auc"), (
        float(a.mean()) for a in aucs(images, labels, noise))))
    shown = {}
    for method in tqdm(methods, desc="explain", unit="method", disable=not progress):
        start = time.time()
        maps = maps_of(method, params, images, labels)
        deletion, insertion = aucs(images, labels, maps)
        row = {"deletion_auc": float(deletion.mean()), "insertion_auc": float(insertion.mean())}
        if masks is not None:
            row["mask_share"] = float(mask_share(maps, masks).mean())
            row["chance"] = result["chance"]
        rho = rank_correlation(maps, maps_of(method, randomised_params(params, fresh, fresh),
                                             images, labels))
        row["randomisation"] = {"all": rho}
        if cascade:
            layers = cascade_layers(fresh)  # init's order; a restore may sort the keys
            row["randomisation"]["cascade"] = {
                name: rank_correlation(maps, maps_of(method, randomised_params(
                    params, fresh, layers[:i + 1]), images, labels))
                for i, name in enumerate(layers)}
        row["passes_randomisation"] = rho < RANDOMISATION_PASS_BELOW
        row["seconds"] = round(time.time() - start, 2)
        result["methods"][method] = row
        shown[method] = np.asarray(maps[:figure_rows])
    return result, figure(images[:figure_rows], shown)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax explain", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a classification run's directory")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, from {','.join(METHODS)}")
    parser.add_argument("--num", type=int, default=64, help="eval examples for the metrics")
    parser.add_argument("--figure", type=int, default=8, help="images (rows) in the figure")
    parser.add_argument("--cascade", action="store_true",
                        help="also the cascading randomisation, layer by layer from the top")
    parser.add_argument("--deletion-steps", type=int, default=16,
                        help="steps of the deletion/insertion curves (default 16)")
    parser.add_argument("--smooth-n", type=int, default=16,
                        help="SmoothGrad's noisy copies per image (default 16)")
    parser.add_argument("--ig-steps", type=int, default=32,
                        help="integrated gradients' trapezoid steps (default 32)")
    parser.add_argument("--occlusion-size", type=int,
                        help="side of occlusion's square in pixels (default 1/8 of the image)")
    parser.add_argument("--occlusion-stride", type=int,
                        help="occlusion's step in pixels (default half the square)")
    parser.add_argument("--out", help="output directory (default WORKDIR/explain)")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or any(m not in METHODS for m in methods):
        parser.error(f"--methods={args.methods!r}: choose from {','.join(METHODS)}")
    if min(args.num, args.figure, args.deletion_steps, args.smooth_n, args.ig_steps) <= 0:
        parser.error("--num, --figure, --deletion-steps, --smooth-n and --ig-steps "
                     "must be positive")
    if min(args.occlusion_size or 1, args.occlusion_stride or 1) <= 0:
        parser.error("--occlusion-size and --occlusion-stride must be positive")
    from vision_jax.sample import load_run_config
    out = args.out or os.path.join(args.workdir, "explain")
    try:
        config = load_run_config(args.workdir)
        result, grid = explain(config, args.workdir, methods=methods, num=args.num,
                               figure_rows=min(args.figure, args.num), cascade=args.cascade,
                               deletion_steps=args.deletion_steps, smooth_n=args.smooth_n,
                               ig_steps=args.ig_steps, occlusion_size=args.occlusion_size,
                               occlusion_stride=args.occlusion_stride)
    except (config_lib.ConfigError, ckpt_lib.CheckpointError, data.DatasetNotFoundError) as e:
        print(f"vision-jax explain: error: {e}", file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "explain.json"), "w") as f:
        json.dump(result, f, indent=1)
    from PIL import Image
    Image.fromarray(grid).save(os.path.join(out, "explain.png"))
    print(f"{result['examples']} examples, accuracy {100 * result['accuracy']:.1f}% "
          f"(step {result['step']})" + (f"; mask covers {100 * result['chance']:.1f}% "
                                         "of the image" if "chance" in result else ""))
    print(f"  {'random':>10}: deletion {result['random_order']['deletion_auc']:.3f}  "
          f"insertion {result['random_order']['insertion_auc']:.3f}")
    for method, row in result["methods"].items():
        share = f"mask share {100 * row['mask_share']:.1f}%  " if "mask_share" in row else ""
        print(f"  {method:>10}: {share}deletion {row['deletion_auc']:.3f}  insertion "
              f"{row['insertion_auc']:.3f}  randomisation rho {row['randomisation']['all']:.2f}"
              f" ({'passes' if row['passes_randomisation'] else 'fails'})")
    print(f"wrote {out}")
    return 0
