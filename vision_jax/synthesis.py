"""Images optimised by gradient: what a trained classifier's features ask for.

    vision-jax synthesize --workdir=DIR --what class|invert|dream|style
                          [--steps N] [--lr LR] [--num 4] [--size PX] [--layer NAME]
                          [--styles stripes,checker,blobs] [--seed 0] [--out DIR/synthesis]

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
          or Adam, unconstrained; the image is clipped to [-1, 1] at the end

Layers are named by their module path in the flax `intermediates` collection
(`layer_features`): the CNN's activations are `conv{stage}_{i}_act` (sown by
the model), a submodule's output its path (`conv0_0`, the convolution before
its ReLU), the logits `logits`.

Every optimisation runs a jitted step in a Python loop: the loop gives the
progress bar, and at XLA's lowest optimisation level (the tests') a rolled
`fori_loop` whose body holds a convolution's backward pass was measured 18x
slower than the same steps dispatched one by one.

The command restores a classification run's newest checkpoint (its EMA
parameters when it evaluates with them) and writes, under --out:

  class.png  class.json     one image per class; each target's logit and
                            probability before and after, and the arg max
  invert.png invert.json    rows = the first --num eval images, columns = the
                            image and its inversion from every activation layer;
                            the mean PSNR per layer, in depth order
  dream.png  dream.json     the eval images (resized to --size) and their
                            dreams; the layer's activation norm before/after
  style.png  style.json     rows = (content, style, L-BFGS, Adam) per procedural
                            style texture; per optimiser the losses before/after,
                            function evaluations and wall time
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

WHAT = ("class", "invert", "dream", "style")
TEXTURES = ("stripes", "checker", "blobs")
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
    return 10.0 * jnp.log10(value_range ** 2 / jnp.maximum(mse, 1e-12))


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


def style_losses(features_fn, content, style, *, content_layer: str, style_layers,
                 weights=(1.0, 10.0, 0.1)):
    """loss_fn(x) -> (total, {"content", "style", "tv"}): Gatys et al.'s objective with
    relative errors; `weights` = (content, style, TV). `features_fn(x)` returns a dict
    by layer name (`layer_features`)."""
    content_w, style_w, tv_w = weights
    target_c = jax.lax.stop_gradient(features_fn(content)[content_layer])
    style_feats = features_fn(style)
    target_g = {name: jax.lax.stop_gradient(gram(style_feats[name])) for name in style_layers}

    def loss_fn(x):
        feats = features_fn(x)
        parts = {"content": _rel(feats[content_layer], target_c).mean(),
                 "style": jnp.mean(jnp.stack([
                     _rel(gram(feats[n]), jnp.broadcast_to(target_g[n], (len(x),
                          *target_g[n].shape[1:]))).mean() for n in style_layers])),
                 "tv": total_variation(x).mean()}
        return content_w * parts["content"] + style_w * parts["style"] + tv_w * parts["tv"], parts
    return loss_fn


def style_transfer(features_fn, content, style, *, content_layer: str, style_layers,
                   weights=(1.0, 10.0, 0.1), optimizer: str = "lbfgs", steps: int = 50,
                   lr: float = 0.02, progress: bool = False):
    """(image [B, H, W, C] in [-1, 1], losses): Gatys et al. style transfer from the
    content image. `losses` holds lists over steps + 1 iterates (the start first) of
    "total", "content", "style", "tv", and "evaluations": the objective's
    evaluations so far (L-BFGS's line search evaluates it more than once a step)."""
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
    history = {k: [] for k in ("total", "content", "style", "tv", "evaluations")}

    def record(x, count):
        total, parts = losses_of(x)
        for k, v in {"total": total, **parts}.items():
            history[k].append(float(v))
        history["evaluations"].append(count)

    def after(carry):
        # Adam: one gradient a step; L-BFGS: one plus its line-search trials.
        count = history["evaluations"][-1] + 1 + (evaluations(carry[1]) if evaluations else 0)
        record(carry[0], count)

    x = jnp.asarray(content)
    record(x, 0)
    x = _loop(step, (x, tx.init(x)), steps, progress, f"style {optimizer}", after)[0]
    return jnp.clip(x, -1.0, 1.0), history


# ---------------------------------------------------------------------------
# Procedural style images (no photographs: scikit-image is not a dependency).


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


# ---------------------------------------------------------------------------
# The command.


def _grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Rows of [H, W, C] images in [-1, 1] -> one uint8 grid image."""
    from vision_jax.sample import image_grid, to_uint8
    tiles = to_uint8(np.stack([t for row in rows for t in row]))
    return image_grid(tiles, len(rows[0]), scale=max(1, 96 // tiles.shape[1]))


def _resize(images, size: int):
    return jax.image.resize(images, (len(images), size, size, images.shape[-1]), "linear")


def layer_names(features_fn, shape) -> list[str]:
    """`features_fn`'s layer names in the order of the forward pass (a pytree's
    dict keys come back sorted, so they are read while tracing)."""
    names = []
    jax.eval_shape(lambda x: names.extend(features_fn(x)),
                   jax.ShapeDtypeStruct(shape, jnp.float32))
    return names


def activation_layers(features_fn, shape) -> list[str]:
    """Layers that follow a nonlinearity, in depth order: the CNN's sown `*_act`."""
    return [n for n in layer_names(features_fn, shape) if n.endswith("_act")]


def synthesize(config, workdir: str, what: str, *, steps: int | None = None,
               lr: float | None = None, num: int = 4, size: int | None = None,
               layer: str | None = None, styles=None, seed: int = 0,
               progress: bool = True) -> tuple[dict, np.ndarray]:
    """(the JSON's content, the figure) of one method on a classification run."""
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
        base = _resize(images, size)
        one = lambda v: features_fn(v)[layer]
        x = deepdream(one, base, progress=progress, **opts)
        norm = layer_norm_of(one)
        out.update(layer=layer, size=size, norm_start=float(norm(base).mean()),
                   norm_end=float(norm(x).mean()))
        rows = [[a, b] for a, b in zip(np.asarray(base), np.asarray(x))]
    elif what == "style":
        size = size or max(32, res)
        layers = activation_layers(features_fn, images.shape)
        content = _resize(images[:1], size)
        out.update(size=size, content_layer=layers[-1], style_layers=layers, styles={})
        rows = []
        chosen = {k: v for k, v in textures(size, channels).items()
                  if styles is None or k in styles}
        for name, style in tqdm(chosen.items(), desc="style", unit="texture",
                                disable=not progress):
            row = [np.asarray(content[0]), style[0]]
            out["styles"][name] = {}
            for optimizer in ("lbfgs", "adam"):
                t0 = time.time()
                x, h = style_transfer(features_fn, content, jnp.asarray(style),
                                      content_layer=layers[-1], style_layers=layers,
                                      optimizer=optimizer, **opts)
                out["styles"][name][optimizer] = {
                    **{f"{k}_start": h[k][0] for k in ("total", "content", "style", "tv")},
                    **{k: h[k][-1] for k in ("total", "content", "style", "tv")},
                    "evaluations": h["evaluations"][-1], "seconds": round(time.time() - t0, 2)}
                row.append(np.asarray(x[0]))
            rows.append(row)
    else:
        raise ValueError(f"what={what!r}: choose from {list(WHAT)}")
    out["seconds"] = round(time.time() - start, 2)
    return out, _grid(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax synthesize",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a classification run's directory")
    parser.add_argument("--what", required=True, choices=WHAT)
    parser.add_argument("--steps", type=int, help="optimisation steps (per octave for dream)")
    parser.add_argument("--lr", type=float, help="step size (Adam's; dream's per-pixel step)")
    parser.add_argument("--num", type=int, default=4, help="eval images (invert, dream)")
    parser.add_argument("--size", type=int,
                        help="resize images to this side (dream, style; default max(32, data))")
    parser.add_argument("--layer", help="dream's layer (default the last activation)")
    parser.add_argument("--styles", default=",".join(TEXTURES),
                        help=f"style's textures, comma-separated from {','.join(TEXTURES)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="output directory (default WORKDIR/synthesis)")
    args = parser.parse_args(argv)
    if args.num <= 0 or (args.steps is not None and args.steps <= 0):
        parser.error("--num and --steps must be positive")
    styles = [t.strip() for t in args.styles.split(",") if t.strip()]
    if not styles or any(t not in TEXTURES for t in styles):
        parser.error(f"--styles={args.styles!r}: choose from {','.join(TEXTURES)}")
    from vision_jax.sample import load_run_config
    out = args.out or os.path.join(args.workdir, "synthesis")
    try:
        config = load_run_config(args.workdir)
        result, grid = synthesize(config, args.workdir, args.what, steps=args.steps,
                                  lr=args.lr, num=args.num, size=args.size, layer=args.layer,
                                  styles=styles, seed=args.seed)
    except (config_lib.ConfigError, ckpt_lib.CheckpointError, data.DatasetNotFoundError,
            KeyError) as e:
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
