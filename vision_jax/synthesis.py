"""Images optimised by gradient: what a trained classifier's features ask for.

    vision-jax synthesize [--workdir=DIR] --what class|invert|dream|style|johnson
                          [--steps N] [--lr LR] [--num 4] [--size PX] [--layer NAME]
                          [--content astronaut|chelsea|coffee|FILE]
                          [--styles stripes,checker,blobs,astronaut,chelsea,coffee,FILE]
                          [--seed 0] [--out DIR/synthesis]

Without --workdir the network is the in-house default backbone
(vision_jax/backbone.py: a small VGG-style CNN trained on `shapes` on first
use, minutes, then cached). Demo images: scikit-image's bundled photographs
(astronaut, chelsea, coffee; shipped in its wheel, never downloaded), the
procedural textures, or any image file. Docs: docs/SYNTHESIS.md.

The methods (images NHWC in [-1, 1], the model's input range):

  class   class model visualisation (Simonyan et al. 2014, with the
          regularisers of Yosinski et al. 2015): from faint noise, Adam ascent
          on logit_target(x) - l2 ||x||^2, the image rolled by a random shift
          of up to `jitter` pixels before every forward pass and blurred
          (Gaussian, `blur_sigma`) every `blur_every` steps
  invert  feature inversion (Mahendran & Vedaldi 2015): from faint noise,
          minimise ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + tv_weight TV(x) over
          the box [-1, 1] (projected Adam); TV is the mean squared difference
          of neighbouring pixels (their beta = 2). The PSNR of x against x0
          says how much of the image layer phi keeps
  dream   DeepDream (Mordvintsev et al. 2015): ascent on the mean squared
          activation of one layer, steps of size `lr` along g / mean|g|,
          over `octaves` scales from the smallest up; each octave's added
          detail is resized onto the next
  style   Gatys et al. 2016: from the content image, minimise
          content_weight * ||F_c(x) - F_c(content)||^2 / ||F_c(content)||^2
          + style_weight * mean over style layers of ||G(x) - G(style)||^2 / ||G(style)||^2
          + tv_weight * TV(x),
          G the Gram matrix of a layer's features (`gram`). The relative
          errors (instead of Gatys's raw sums) keep the weights independent of
          the layers' widths. L-BFGS (optax.lbfgs with its zoom line search)
          and Adam, unconstrained; the image is clipped to [-1, 1] at the end.
          Adam gets as many steps as L-BFGS evaluated the objective and its
          gradient, so both cost the same number of evaluations
  johnson Johnson et al. 2016: a `style_transfer` run's transformation
          network (vision_jax/tasks/style.py) applied in one pass to the
          content image, beside Gatys et al. (both optimisers) on the same
          objective: same frozen features, layers, weights and style image

Layers are named by their module path in the flax `intermediates` collection
(`layer_features`): the CNN's activations are `conv{stage}_{i}_act` (sown by
the model), a submodule's output its path (`conv0_0`, the convolution before
its ReLU), the logits `logits`.

Every optimisation runs a jitted step in a Python loop: the loop gives the
progress bar, and at XLA's lowest optimisation level (the tests') a rolled
`fori_loop` whose body holds a convolution's backward pass was measured 18x
slower than the same steps dispatched one by one.

The command restores a classification run's newest checkpoint (its EMA
parameters when it evaluates with them) and writes, under --out (default
WORKDIR/synthesis, or ./synthesis on the default backbone):

  class.png  class.json     one image per class; each target's logit and
                            probability before and after, and the arg max
  invert.png invert.json    rows = the first --num eval images, columns = the
                            image and its inversion from every activation layer;
                            the mean PSNR per layer, in depth order
  dream.png  dream.json     the eval images (resized to --size) and their
                            dreams; the layer's activation norm before/after
  style.png  style.json     rows = (content, style, L-BFGS, Adam) per style image;
                            per optimiser the losses before/after, evaluations
                            of the objective and its gradient, and wall time
  johnson.png johnson.json  (content, style, Johnson, L-BFGS, Adam); the losses
                            of each, the one-pass and training wall times
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vision_jax import checkpoint as ckpt_lib
from vision_jax import config as config_lib
from vision_jax import data
from vision_jax import metrics

WHAT = ("class", "invert", "dream", "style")
TEXTURES = ("stripes", "checker", "blobs")
PHOTOS = ("astronaut", "chelsea", "coffee")
# Faint noise to start from: std 0.1 of the [-1, 1] range.
NOISE_STD = 0.1


# ---------------------------------------------------------------------------
# Pieces: features by module path, Gram matrices, total variation, PSNR, blur.


def _flatten(tree, prefix=()) -> dict:
    out = {}
    for key, value in tree.items():
        path = prefix if key == "__call__" else (*prefix, key)
        if isinstance(value, dict):
            out.update(_flatten(value, path))
        else:  # a sown or captured value is a tuple of one array
            out["/".join(path) or "logits"] = value[0] if isinstance(value, tuple) else value
    return out


def layer_features(model, variables):
    """features_fn(x) -> {layer name: activation} of a flax model in eval mode: every
    value it sows into 'intermediates' and every submodule's output (through
    `capture_intermediates`), named by module path, in the order of the forward pass."""
    def features_fn(x):
        _, state = model.apply(variables, x, train=False, capture_intermediates=True,
                               mutable=["intermediates"])
        return _flatten(state["intermediates"])
    return features_fn


def gram(features):
    """[B, H, W, C] -> [B, C, C]: G_cd = sum over positions of F_c F_d / (H W)."""
    b, h, w, c = features.shape
    f = features.reshape(b, h * w, c)
    return jnp.einsum("bpc,bpd->bcd", f, f) / (h * w)


def total_variation(images):
    """[B]: mean squared difference of vertically and horizontally adjacent pixels."""
    dy = jnp.square(images[:, 1:] - images[:, :-1]).mean(axis=(1, 2, 3))
    dx = jnp.square(images[:, :, 1:] - images[:, :, :-1]).mean(axis=(1, 2, 3))
    return dy + dx


def psnr(images, reference, *, value_range: float = 2.0):
    """[B] peak signal-to-noise ratio in dB, for pixels spanning `value_range`."""
    mse = jnp.square(images - reference).mean(axis=tuple(range(1, images.ndim)))
    return metrics.psnr_from_mse(mse, value_range)


def blur(images, sigma: float):
    """Gaussian blur (dm-pix) of NHWC images, kernel 2 * ceil(2 sigma) + 1 wide."""
    import dm_pix
    return dm_pix.gaussian_blur(images, sigma, 2 * int(np.ceil(2 * sigma)) + 1)


def noise_image(rng, shape):
    """The start of class visualisation and inversion: N(0, NOISE_STD^2) pixels."""
    return NOISE_STD * jax.random.normal(rng, shape)


def _rel(a, b):
    """||a - b||^2 / ||b||^2 per example, [B]."""
    axes = tuple(range(1, a.ndim))
    return jnp.square(a - b).sum(axes) / jnp.maximum(jnp.square(b).sum(axes), 1e-12)


def _strong(tree):
    """`tree` without weak types: optax.lbfgs's initial state holds Python-scalar
    (weak) entries that its update returns strong, and a jitted step would
    compile once for each."""
    return jax.tree.map(lambda a: jnp.asarray(a).astype(jnp.asarray(a).dtype), tree)


def _loop(step, carry, steps: int, progress, desc: str, after=None):
    """Runs the jitted `step(carry, i) -> carry` `steps` times; `after(carry)` after each."""
    from tqdm.auto import tqdm
    carry = _strong(carry)
    for i in tqdm(range(steps), desc=desc, unit="step", leave=False, disable=not progress):
        carry = step(carry, jnp.asarray(i))
        if after is not None:
            after(carry)
    return carry


# ---------------------------------------------------------------------------
# The methods: pure functions of a logits or features function.


def class_visualization(logits_fn, shape, target, *, steps: int = 200, lr: float = 0.05,
                        l2: float = 1e-3, jitter: int = 1, blur_every: int = 10,
                        blur_sigma: float = 0.5, rng, progress: bool = False):
    """Images [B, H, W, C] (`shape`) that maximise logit `target` ([B] ints) minus
    `l2` ||x||^2 (mean over pixels), with jitter and blur; clipped to [-1, 1]."""
    target = jnp.broadcast_to(jnp.asarray(target, jnp.int32), shape[:1])
    rng_init, rng_jitter = jax.random.split(rng)
    tx = optax.adam(lr)

    def objective(x, shift):
        logits = logits_fn(jnp.roll(x, shift, axis=(1, 2)))
        score = jnp.take_along_axis(logits, target[:, None], axis=-1)[:, 0]
        return (score - l2 * jnp.square(x).mean(axis=(1, 2, 3))).sum()

    @jax.jit
    def step(carry, i):
        x, opt_state = carry
        shift = jax.random.randint(jax.random.fold_in(rng_jitter, i), (2,), -jitter, jitter + 1)
        updates, opt_state = tx.update(-jax.grad(objective)(x, shift), opt_state, x)
        x = jnp.clip(optax.apply_updates(x, updates), -1.0, 1.0)
        if blur_every > 0:
            x = jax.lax.cond((i + 1) % blur_every == 0, lambda v: blur(v, blur_sigma),
                             lambda v: v, x)
        return x, opt_state

    x = noise_image(rng_init, shape)
    return _loop(step, (x, tx.init(x)), steps, progress, "class")[0]


def invert_features(features_fn, image, *, steps: int = 200, lr: float = 0.05,
                    tv_weight: float = 0.05, rng, progress: bool = False):
    """(x, PSNR [B] of x against `image`): the image whose features `features_fn(x)`
    (one array) match those of `image` [B, H, W, C], from `noise_image(rng, ...)`."""
    target = jax.lax.stop_gradient(features_fn(image))
    tx = optax.adam(lr)

    def loss(x):
        return (_rel(features_fn(x), target) + tv_weight * total_variation(x)).sum()

    @jax.jit
    def step(carry, i):
        x, opt_state = carry
        updates, opt_state = tx.update(jax.grad(loss)(x), opt_state, x)
        return jnp.clip(optax.apply_updates(x, updates), -1.0, 1.0), opt_state

    x = noise_image(rng, image.shape)
    x = _loop(step, (x, tx.init(x)), steps, progress, "invert")[0]
    return x, psnr(x, image)


def layer_norm_of(features_fn):
    """The DeepDream objective: per image, the mean squared activation [B]."""
    return lambda x: jnp.square(features_fn(x)).mean(axis=tuple(range(1, 4)))


def deepdream(features_fn, image, *, octaves: int = 3, octave_scale: float = 1.4,
              steps: int = 10, lr: float = 0.02, progress: bool = False):
    """`image` [B, H, W, C] dreamed at layer `features_fn` (x -> one activation)."""
    objective = layer_norm_of(features_fn)

    @jax.jit
    def step(x, i):
        g = jax.grad(lambda v: objective(v).sum())(x)
        g = g / (jnp.abs(g).mean(axis=(1, 2, 3), keepdims=True) + 1e-8)
        return jnp.clip(x + lr * g, -1.0, 1.0)

    b, h, w, c = image.shape
    sizes = [(max(1, round(h / octave_scale ** k)), max(1, round(w / octave_scale ** k)))
             for k in range(octaves)][::-1]
    detail = jnp.zeros((b, *sizes[0], c), image.dtype)
    for size in sizes:  # smallest first
        base = jax.image.resize(image, (b, *size, c), "linear")
        detail = jax.image.resize(detail, base.shape, "linear")
        x = _loop(step, base + detail, steps, progress, f"dream {size[0]}x{size[1]}")
        detail = x - base
    return x


def perceptual_loss(features_fn, x, target_content, target_grams: dict, *,
                    content_layer: str, weights=(1.0, 10.0, 0.1)):
    """(total, {"content", "style", "tv"}) of images x [B, H, W, C]: the objective of
    Gatys et al. and of Johnson et al.'s perceptual loss, with relative errors.
    `target_content` is the content layer's features of the content images ([B, ...]
    or [1, ...]); `target_grams` maps each style layer to its style Gram matrix
    [1, C, C] (the style image may have another size than x: Gram matrices are means
    over positions); `weights` = (content, style, TV)."""
    content_w, style_w, tv_w = weights
    feats = features_fn(x)
    b = len(x)
    parts = {"content": _rel(feats[content_layer],
                             jnp.broadcast_to(target_content, feats[content_layer].shape)).mean(),
             "style": jnp.mean(jnp.stack([
                 _rel(gram(feats[n]), jnp.broadcast_to(g, (b, *g.shape[1:]))).mean()
                 for n, g in target_grams.items()])),
             "tv": total_variation(x).mean()}
    return content_w * parts["content"] + style_w * parts["style"] + tv_w * parts["tv"], parts


def style_grams(features_fn, style, style_layers) -> dict:
    """{layer: Gram matrix [1, C, C]} of one style image [1, H, W, C], as constants."""
    feats = features_fn(style)
    return {n: jax.lax.stop_gradient(gram(feats[n])) for n in style_layers}


def style_losses(features_fn, content, style, *, content_layer: str, style_layers,
                 weights=(1.0, 10.0, 0.1)):
    """loss_fn(x) -> (total, {"content", "style", "tv"}): `perceptual_loss` against one
    content batch and one style image. `features_fn(x)` returns a dict by layer name
    (`layer_features`)."""
    target_c = jax.lax.stop_gradient(features_fn(content)[content_layer])
    target_g = style_grams(features_fn, style, style_layers)
    return lambda x: perceptual_loss(features_fn, x, target_c, target_g,
                                     content_layer=content_layer, weights=weights)


def style_transfer(features_fn, content, style, *, content_layer: str, style_layers,
                   weights=(1.0, 10.0, 0.1), optimizer: str = "lbfgs", steps: int = 50,
                   lr: float = 0.02, progress: bool = False):
    """(image [B, H, W, C] in [-1, 1], losses): Gatys et al. style transfer from the
    content image. `losses` holds lists over steps + 1 iterates (the start first) of
    "total", "content", "style", "tv", and "evaluations": the objective's
    evaluations so far (L-BFGS's line search evaluates it more than once a step), and
    "seconds": wall time since the start (the first step's includes compiling it)."""
    loss_fn = style_losses(features_fn, content, style, content_layer=content_layer,
                           style_layers=style_layers, weights=weights)
    value_fn = lambda x: loss_fn(x)[0]
    if optimizer == "lbfgs":
        tx = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(value_fn)

        @jax.jit
        def step(carry, i):
            x, opt_state = carry
            value, grad = value_and_grad(x, state=opt_state)
            updates, opt_state = tx.update(grad, opt_state, x, value=value, grad=grad,
                                           value_fn=value_fn)
            return _strong((optax.apply_updates(x, updates), opt_state))

        def evaluations(opt_state):
            return int(optax.tree_utils.tree_get(opt_state, "num_linesearch_steps"))
    elif optimizer == "adam":
        tx = optax.adam(lr)

        @jax.jit
        def step(carry, i):
            x, opt_state = carry
            updates, opt_state = tx.update(jax.grad(value_fn)(x), opt_state, x)
            return optax.apply_updates(x, updates), opt_state

        evaluations = None
    else:
        raise ValueError(f"optimizer={optimizer!r}: choose 'lbfgs' or 'adam'")

    losses_of = jax.jit(loss_fn)
    history = {k: [] for k in ("total", "content", "style", "tv", "evaluations", "seconds")}
    t0 = time.perf_counter()

    def record(x, count):
        total, parts = losses_of(x)
        for k, v in {"total": total, **parts}.items():
            history[k].append(float(v))
        history["evaluations"].append(count)
        history["seconds"].append(time.perf_counter() - t0)

    def after(carry):
        # Adam: one gradient a step. L-BFGS: its line search's trials, each a value
        # and a gradient; the step's own value and gradient are the last trial's,
        # kept in the state (optax.value_and_grad_from_state), except at the first
        # step, which evaluates the start. Checked against a counting callback.
        first = len(history["evaluations"]) == 1
        count = history["evaluations"][-1] + (
            evaluations(carry[1]) + first if evaluations else 1)
        record(carry[0], count)

    x = jnp.asarray(content)
    record(x, 0)
    x = _loop(step, (x, tx.init(x)), steps, progress, f"style {optimizer}", after)[0]
    return jnp.clip(x, -1.0, 1.0), history


# ---------------------------------------------------------------------------
# Demo images: procedural textures and scikit-image's bundled photographs.


def textures(size: int, channels: int) -> dict:
    """{name: [1, size, size, channels] in [-1, 1]}: diagonal stripes, a checkerboard
    and smoothed noise, periods scaled to the image."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    period = max(4, size // 4)
    stripes = np.sign(np.sin(2 * np.pi * (xx + yy) / period))
    checker = np.where((xx // (period // 2) + yy // (period // 2)) % 2 == 0, 1.0, -1.0)
    noise = np.asarray(blur(jax.random.normal(jax.random.key(0), (1, size, size, 1)),
                            max(1.0, size / 16)))[0, ..., 0]
    noise = np.sign(noise)
    out = {}
    for name, t in zip(TEXTURES, (stripes, checker, noise)):
        out[name] = np.repeat(t[None, ..., None], channels, -1).astype(np.float32)
    return out


def photo(name: str) -> np.ndarray:
    """uint8 [H, W, 3] of a photograph that ships inside scikit-image's wheel
    (`skimage.data`: astronaut, chelsea the cat, coffee): read from the package's
    data directory, never downloaded."""
    if name not in PHOTOS:
        raise ValueError(f"photo {name!r}: choose from {list(PHOTOS)}")
    import skimage.data
    return np.asarray(getattr(skimage.data, name)())


def load_image(spec: str, size: int, channels: int) -> np.ndarray:
    """[1, size, size, channels] float32 in [-1, 1] of a demo image: a texture name
    (TEXTURES), a photograph's name (PHOTOS) or an image file's path. Photographs
    and files are centre-cropped to a square and resized (bicubic); channels=1
    takes the luminance."""
    from PIL import Image
    if spec in TEXTURES:
        return textures(size, channels)[spec]
    if spec in PHOTOS:
        img = Image.fromarray(photo(spec))
    elif os.path.isfile(spec):
        img = Image.open(spec)
    else:
        raise ValueError(f"image {spec!r} is neither a file nor one of "
                         f"{list(TEXTURES) + list(PHOTOS)}")
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    side = min(w, h)
    img = img.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side,
                    (h - side) // 2 + side)).resize((size, size), Image.BICUBIC)
    x = np.asarray(img, np.float32).reshape(size, size, -1)
    if x.shape[-1] != channels:
        raise ValueError(f"image {spec!r}: {x.shape[-1]} channels, the network takes "
                         f"{channels}")
    return (x / 127.5 - 1.0)[None]


# ---------------------------------------------------------------------------
# The command.


def _grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Rows of [H, W, C] images in [-1, 1] -> one uint8 grid image."""
    from vision_jax.sample import image_grid, to_uint8
    tiles = to_uint8(np.stack([t for row in rows for t in row]))
    return image_grid(tiles, len(rows[0]), scale=max(1, 96 // tiles.shape[1]))


def _resize(images, size: int):
    return jax.image.resize(images, (len(images), size, size, images.shape[-1]), "linear")


def _trace(features_fn, shape) -> tuple[list[str], dict]:
    """(layer names in the order of the forward pass, {name: ShapeDtypeStruct}): a
    pytree's dict keys come back sorted, so the order is read while tracing."""
    names = []

    def features(x):
        out = features_fn(x)
        names.extend(out)
        return out
    shapes = jax.eval_shape(features, jax.ShapeDtypeStruct(shape, jnp.float32))
    return names, shapes


def layer_names(features_fn, shape) -> list[str]:
    """`features_fn`'s layer names in the order of the forward pass."""
    return _trace(features_fn, shape)[0]


def _activations(names, shapes) -> list[str]:
    acts = [n for n in names if n.endswith("_act")]
    return acts or [n for n in names
                    if "conv" in n.rsplit("/", 1)[-1] and len(shapes[n].shape) == 4]


def activation_layers(features_fn, shape) -> list[str]:
    """Layers that follow a nonlinearity, in depth order: the CNN's sown `*_act`. A
    network that sows none (the zoo's VGG and ResNet, e.g. imported ImageNet
    weights) gives its convolutions' feature maps instead (modules named `*conv*`
    with a 4-D output; before their ReLU)."""
    return _activations(*_trace(features_fn, shape))


def style_layers(features_fn, shape, *, content: str = "", style=()) -> tuple[str, list[str]]:
    """(content layer, style layers): the given names, checked, or by default the
    deepest of `activation_layers` for content and all of them for style."""
    names, shapes = _trace(features_fn, shape)
    acts = _activations(names, shapes)
    content, style = content or (acts[-1] if acts else ""), list(style) or acts
    unknown = [n for n in [content, *style] if n not in names]
    if not content or not style or unknown:
        raise config_lib.ConfigError(
            f"style layers: content {content!r}, style {style} (unknown: {unknown}); "
            f"this network's layers: {names}")
    return content, style


def synthesize(config, workdir: str, what: str, *, steps: int | None = None,
               lr: float | None = None, num: int = 4, size: int | None = None,
               layer: str | None = None, styles=None, content: str | None = None,
               seed: int = 0, progress: bool = True) -> tuple[dict, np.ndarray]:
    """(the JSON's content, the figure) of one method on a classification run
    (`johnson`: on a style_transfer run). `content` (dream, style, johnson): a
    photograph's name or an image file instead of the first eval image(s);
    `styles` (style): texture names, photograph names or image files."""
    if what == "johnson":
        return johnson(config, workdir, steps=steps, lr=lr, size=size, content=content,
                       progress=progress)
    from tqdm.auto import tqdm

    from vision_jax.explain import eval_examples, restore_classifier
    model, params, model_state, step_ = restore_classifier(
        config, workdir, why="images optimised through a network")
    variables = {"params": params, **model_state}
    logits_fn = lambda x: model.apply(variables, x, train=False)
    features_fn = layer_features(model, variables)
    images, _, _ = eval_examples(config, num)
    rng = jax.random.key(seed)
    res = images.shape[1]
    channels = images.shape[-1]
    out = {"workdir": workdir, "step": step_, "what": what}
    opts = {k: v for k, v in (("steps", steps), ("lr", lr)) if v is not None}
    start = time.time()
    if what == "class":
        k = int(jax.eval_shape(logits_fn, jax.ShapeDtypeStruct((1, res, res, channels),
                                                                jnp.float32)).shape[-1])
        targets = jnp.arange(k)
        shape = (k, res, res, channels)
        x = class_visualization(logits_fn, shape, targets, rng=rng, progress=progress, **opts)
        # The start, as class_visualization draws it.
        start_logits = logits_fn(noise_image(jax.random.split(rng)[0], shape))
        logits = logits_fn(x)
        out["classes"] = [{"target": int(t), "logit_start": float(start_logits[t, t]),
                           "probability_start": float(jax.nn.softmax(start_logits[t])[t]),
                           "logit": float(logits[t, t]),
                           "probability": float(jax.nn.softmax(logits[t])[t]),
                           "argmax": int(jnp.argmax(logits[t]))} for t in range(k)]
        out["argmax_is_target"] = float(np.mean([c["argmax"] == c["target"]
                                                 for c in out["classes"]]))
        rows = [list(np.asarray(x))]
    elif what == "invert":
        layers = activation_layers(features_fn, images.shape)
        out["layers"] = {}
        columns = [np.asarray(images)]
        init_psnr = psnr(noise_image(rng, images.shape), images)
        out["noise_psnr"] = float(init_psnr.mean())
        for name in tqdm(layers, desc="invert", unit="layer", disable=not progress):
            x, p = invert_features(lambda v, n=name: features_fn(v)[n], images, rng=rng,
                                   **opts)
            out["layers"][name] = float(p.mean())
            columns.append(np.asarray(x))
        rows = [list(col) for col in zip(*columns)]
    elif what == "dream":
        size = size or max(32, res)
        layer = layer or activation_layers(features_fn, images.shape)[-1]
        base = _resize(images, size) if content is None else jnp.asarray(
            load_image(content, size, channels))
        one = lambda v: features_fn(v)[layer]
        x = deepdream(one, base, progress=progress, **opts)
        norm = layer_norm_of(one)
        out.update(layer=layer, size=size, norm_start=float(norm(base).mean()),
                   norm_end=float(norm(x).mean()))
        rows = [[a, b] for a, b in zip(np.asarray(base), np.asarray(x))]
    elif what == "style":
        size = size or max(32, res)
        image = _resize(images[:1], size) if content is None else jnp.asarray(
            load_image(content, size, channels))
        content_layer, layers = style_layers(features_fn, image.shape)
        out.update(size=size, content=content or "eval image 0",
                   content_layer=content_layer, style_layers=layers, styles={})
        rows = []
        for name in tqdm(styles or TEXTURES, desc="style", unit="style",
                         disable=not progress):
            style = jnp.asarray(load_image(name, size, channels))
            results, images_ = gatys(features_fn, image, style, content_layer=content_layer,
                                     style_layers=layers, progress=progress, **opts)
            out["styles"][name] = results
            rows.append([np.asarray(image[0]), np.asarray(style[0]), *images_])
    else:
        raise ValueError(f"what={what!r}: choose from {list(WHAT)}")
    out["seconds"] = round(time.time() - start, 2)
    return out, _grid(rows)


def gatys(features_fn, content, style, *, content_layer: str, style_layers,
          weights=(1.0, 10.0, 0.1), optimizers=("lbfgs", "adam"), steps: int = 50, **opts):
    """({optimizer: losses at the start and the end, evaluations, seconds},
    [result [H, W, C] per optimizer]) of `style_transfer` with each optimizer.

    A fair comparison: L-BFGS runs `steps` iterations, and Adam (after it) as many
    steps as L-BFGS evaluated the objective and its gradient (its line search
    evaluates several times some steps), so both get the same number of
    evaluations, the unit of cost."""
    results, images = {}, []
    for optimizer in optimizers:
        n = results["lbfgs"]["evaluations"] if optimizer == "adam" and "lbfgs" in results \
            else steps
        t0 = time.time()
        x, h = style_transfer(features_fn, content, style, content_layer=content_layer,
                              style_layers=style_layers, weights=weights, optimizer=optimizer,
                              steps=n, **opts)
        results[optimizer] = {
            **{f"{k}_start": h[k][0] for k in ("total", "content", "style", "tv")},
            **{k: h[k][-1] for k in ("total", "content", "style", "tv")},
            "evaluations": h["evaluations"][-1], "seconds": round(time.time() - t0, 2),
            # Past the first step (whose time is mostly compiling): the running cost.
            "seconds_per_evaluation": round((h["seconds"][-1] - h["seconds"][1]) / max(
                1, h["evaluations"][-1] - h["evaluations"][1]), 4)}
        images.append(np.asarray(x[0]))
    return results, images


def johnson(config, workdir: str, *, steps: int | None = None, lr: float | None = None,
            size: int | None = None, content: str | None = None,
            progress: bool = True) -> tuple[dict, np.ndarray]:
    """A Johnson et al. transformation network (a `style_transfer` run) applied in one
    pass to one content image, beside Gatys et al.'s optimisation (L-BFGS and Adam,
    `steps` each; none for steps=0) of the same objective: the same frozen features, layers, weights
    and style image. Losses of every result, wall times, the run's training time."""
    from vision_jax import train
    from vision_jax.explain import eval_examples
    if config.task != "style_transfer":
        raise config_lib.ConfigError(f"task {config.task!r}: --what johnson needs a "
                                     f"style_transfer run (configs/style_johnson.py)")
    run, step_, state = train.restore_workdir(config, workdir)
    params = jax.device_get(state.ema if (config.ema.decay and config.ema.evaluate and state.ema)
                            else state.params)
    task = run.task
    f = task.frozen
    channels = task.info.image_shape[-1]
    size = size or max(32, task.info.image_shape[0])
    image = (_resize(jnp.asarray(eval_examples(config, 1)[0]), size) if content is None
             else jnp.asarray(load_image(content, size, channels)))
    common = dict(content_layer=f.content_layer, style_layers=f.style_layers,
                  weights=f.weights)
    losses_of = jax.jit(style_losses(f.features_fn, image, jnp.asarray(f.style), **common))
    apply = jax.jit(task.stylize)
    t0 = time.time()
    jax.block_until_ready(apply(params, image))
    first = time.time() - t0
    t0 = time.time()
    y = jax.block_until_ready(apply(params, image))
    one_pass = time.time() - t0

    def parts(x):
        total, p = losses_of(x)
        return {"total": float(total), **{k: float(v) for k, v in p.items()}}

    summary_path = os.path.join(workdir, "summary.json")
    summary = json.load(open(summary_path)) if os.path.isfile(summary_path) else {}
    out = {"workdir": workdir, "step": step_, "what": "johnson", "size": size,
           "content": content or "eval image 0", "style": config.style.image,
           "style_size": int(config.style.size), "backbone": f.workdir,
           "content_layer": f.content_layer, "style_layers": f.style_layers,
           "weights": list(f.weights), "content_image": parts(image),
           "johnson": {**parts(y), "seconds_one_pass": round(one_pass, 4),
                       "seconds_first_call": round(first, 2),
                       "train_seconds": summary.get("wall_seconds"),
                       "train_steps": summary.get("steps")}}
    start = time.time()
    opts = {k: v for k, v in (("steps", steps), ("lr", lr)) if v is not None}
    out["gatys"], images = ({}, []) if steps == 0 else gatys(
        f.features_fn, image, jnp.asarray(f.style), progress=progress, **common, **opts)
    out["seconds"] = round(time.time() - start + first + one_pass, 2)
    style_shown = np.asarray(_resize(jnp.asarray(f.style), size)[0])
    return out, _grid([[np.asarray(image[0]), style_shown, np.asarray(y[0]), *images]])


def _image_spec(spec: str) -> bool:
    return spec in TEXTURES or spec in PHOTOS or os.path.isfile(spec)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax synthesize",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--workdir",
                        help="a classification run's directory (default: the in-house "
                             "backbone, trained on first use); for johnson a "
                             "style_transfer run's")
    parser.add_argument("--what", required=True, choices=(*WHAT, "johnson"))
    parser.add_argument("--steps", type=int, help="optimisation steps (per octave for dream; "
                                                  "johnson: Gatys's, 0 for none)")
    parser.add_argument("--lr", type=float, help="step size (Adam's; dream's per-pixel step)")
    parser.add_argument("--num", type=int, default=4, help="eval images (invert, dream)")
    parser.add_argument("--size", type=int, help="resize images to this side (dream, style, "
                                                 "johnson; default max(32, data))")
    parser.add_argument("--layer", help="dream's layer (default the last activation)")
    parser.add_argument("--content", help=f"dream/style/johnson's image instead of the eval "
                                          f"images: {','.join(PHOTOS)} or a file")
    parser.add_argument("--styles", default=",".join(TEXTURES),
                        help=f"style's style images, comma-separated: textures "
                             f"({','.join(TEXTURES)}), photographs ({','.join(PHOTOS)}) or "
                             f"files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="output directory (default WORKDIR/synthesis, or "
                                      "./synthesis on the default backbone)")
    args = parser.parse_args(argv)
    if args.num <= 0 or (args.steps is not None and args.steps < (args.what != "johnson")):
        parser.error("--num and --steps must be positive (johnson: --steps 0 skips Gatys)")
    styles = [t.strip() for t in args.styles.split(",") if t.strip()]
    bad = [t for t in styles if not _image_spec(t)]
    if not styles or bad:
        parser.error(f"--styles={args.styles!r}: {bad} are neither files nor among "
                     f"{','.join(TEXTURES + PHOTOS)}")
    if args.content is not None and (args.content not in PHOTOS
                                     and not os.path.isfile(args.content)):
        parser.error(f"--content={args.content!r}: neither a file nor among {','.join(PHOTOS)}")
    if args.what == "johnson" and not args.workdir:
        parser.error("--what johnson needs --workdir, a style_transfer run "
                     "(vision-jax train --config=configs/style_johnson.py)")
    from vision_jax import backbone
    from vision_jax.sample import load_run_config
    out = args.out or (os.path.join(args.workdir, "synthesis") if args.workdir
                       else "synthesis")
    try:
        workdir = backbone.resolve_workdir(args.workdir)
        config = load_run_config(workdir)
        result, grid = synthesize(config, workdir, args.what, steps=args.steps,
                                  lr=args.lr, num=args.num, size=args.size, layer=args.layer,
                                  styles=styles, content=args.content, seed=args.seed)
    except (config_lib.ConfigError, ckpt_lib.CheckpointError, data.DatasetNotFoundError,
            KeyError, ValueError) as e:
        print(f"vision-jax synthesize: error: {e}", file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{args.what}.json"), "w") as f:
        json.dump(result, f, indent=1)
    from PIL import Image
    Image.fromarray(grid).save(os.path.join(out, f"{args.what}.png"))
    print(json.dumps({k: v for k, v in result.items() if k not in ("workdir",)}, indent=1))
    print(f"wrote {out} in {result['seconds']:.1f} s")
    return 0
