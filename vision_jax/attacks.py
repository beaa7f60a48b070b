"""Adversarial examples as pure, jittable functions: FGSM and PGD, L-inf and L2,
untargeted and targeted.

    adv = attacks.pgd(logits_fn, images, labels, rng, eps=to_model_units(8), steps=10)

`logits_fn(images) -> logits` is any classifier closed over its parameters
(batch norm in eval mode, so examples do not interact and every example's
gradient is its own). Images live in the trainer's range [-1, 1]; papers
quote budgets in units of 1/255 of the pixel range, and `to_model_units`
converts (8/255 of [0, 1] is 16/255 of [-1, 1]). Every iterate is projected
back onto the norm ball and clipped to the valid range, in that order:
clipping moves each coordinate toward the clean image, so it never leaves
the ball.

PGD (Madry et al. 2018) keeps, per example, the iterate with the highest
attack loss it has seen, so more steps never make the attack weaker and a
PGD started at the FGSM point (`start="fgsm"`) is at least as strong as
FGSM (Goodfellow et al. 2015). Untargeted attacks ascend the cross-entropy
of the true label; targeted ones descend that of the target.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

LOW, HIGH = -1.0, 1.0  # the trainer's image range
NORMS = ("linf", "l2")
STARTS = ("zero", "random", "fgsm")
# PGD loops up to this many steps are unrolled: measured on CPU (8 emulated
# devices, PGD-2 training step of the default CNN), the rolled loop ran 1.5x
# slower at XLA's default optimisation and 18x slower at level 0.
MAX_UNROLL = 16


def to_model_units(eps_255: float) -> float:
    """A budget in 1/255 of the pixel range -> the same budget in [-1, 1] units."""
    return 2.0 * float(eps_255) / 255.0


def _check(norm: str, eps: float) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r}: expected one of {NORMS}")
    if eps < 0:
        raise ValueError(f"eps={eps} must be >= 0")


def _per_example_norm(x, norm: str):
    flat = x.reshape(x.shape[0], -1)
    if norm == "linf":
        return jnp.abs(flat).max(-1)
    return jnp.sqrt(jnp.square(flat).sum(-1))


def _expand(v, like):
    return v.reshape(v.shape + (1,) * (like.ndim - v.ndim))


def project(delta, eps: float, norm: str):
    """The closest point of the eps-ball (L-inf: clip; L2: rescale) to `delta`."""
    if norm == "linf":
        return jnp.clip(delta, -eps, eps)
    n = _per_example_norm(delta, "l2")
    return delta * _expand(jnp.minimum(1.0, eps / jnp.maximum(n, 1e-12)), delta)


def _steepest(grad, norm: str):
    """The unit-norm ascent direction of the norm: sign(g) for L-inf, g/|g| for L2."""
    if norm == "linf":
        return jnp.sign(grad)
    return grad / _expand(jnp.maximum(_per_example_norm(grad, "l2"), 1e-12), grad)


def attack_losses(logits_fn: Callable, images, labels, targeted: bool):
    """Per-example loss the attacker ascends: CE of the label, negated when targeted."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits_fn(images), labels)
    return -ce if targeted else ce


def _loss_and_grad(logits_fn, images, labels, targeted):
    def total(x):
        losses = attack_losses(logits_fn, x, labels, targeted)
        return losses.sum(), losses
    (_, losses), grad = jax.value_and_grad(total, has_aux=True)(images)
    return losses, grad


def _clip(x):
    return jnp.clip(x, LOW, HIGH)


def fgsm(logits_fn: Callable, images, labels, *, eps: float, norm: str = "linf",
         targeted: bool = False):
    """One step of size eps along the loss gradient's steepest direction (for L2
    the "fast gradient method"), clipped to the image range."""
    _check(norm, eps)
    _, grad = _loss_and_grad(logits_fn, images, labels, targeted)
    return jax.lax.stop_gradient(_clip(images + eps * _steepest(grad, norm)))


def _random_start(rng, images, eps, norm):
    if norm == "linf":
        return jax.random.uniform(rng, images.shape, images.dtype, -eps, eps)
    # Uniform in the L2 ball: a Gaussian direction, radius eps * U^(1/d).
    k1, k2 = jax.random.split(rng)
    direction = jax.random.normal(k1, images.shape, images.dtype)
    direction = direction / _expand(_per_example_norm(direction, "l2"), images)
    d = images[0].size
    radius = eps * jax.random.uniform(k2, images.shape[:1], images.dtype) ** (1.0 / d)
    return direction * _expand(radius, images)


def pgd(logits_fn: Callable, images, labels, rng=None, *, eps: float, steps: int = 10,
        step_size: float | None = None, norm: str = "linf", targeted: bool = False,
        start: str = "random"):
    """Projected gradient descent on the attack loss inside the eps-ball.

    step_size defaults to 2.5 eps / steps (Madry et al.'s rule of thumb:
    enough to cross the ball and come back). `start` is "random" (uniform in
    the ball; needs `rng`), "zero" or "fgsm". Returns the strongest iterate per
    example, gradients stopped.
    """
    _check(norm, eps)
    if start not in STARTS:
        raise ValueError(f"start={start!r}: expected one of {STARTS}")
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    step_size = 2.5 * eps / steps if step_size is None else step_size
    if start == "random":
        if rng is None:
            raise ValueError("start='random' needs an rng")
        x = _clip(images + _random_start(rng, images, eps, norm))
    elif start == "fgsm":
        x = fgsm(logits_fn, images, labels, eps=eps, norm=norm, targeted=targeted)
    else:
        x = images

    def body(_, carry):
        x, best, best_loss = carry
        losses, grad = _loss_and_grad(logits_fn, x, labels, targeted)
        better = losses > best_loss
        best = jnp.where(_expand(better, x), x, best)
        best_loss = jnp.where(better, losses, best_loss)
        x = _clip(images + project(x + step_size * _steepest(grad, norm) - images, eps, norm))
        return x, best, best_loss

    init = (x, x, jnp.full(images.shape[:1], -jnp.inf, images.dtype))
    x, best, best_loss = jax.lax.fori_loop(0, steps, body, init,
                                              unroll=steps <= MAX_UNROLL)
    last = attack_losses(logits_fn, x, labels, targeted)  # the final iterate counts too
    best = jnp.where(_expand(last > best_loss, x), x, best)
    return jax.lax.stop_gradient(best)


def attack(logits_fn: Callable, images, labels, rng=None, *, method: str = "pgd", **kwargs):
    """`fgsm` or `pgd` by name (the config's and the CLI's entry point)."""
    if method == "fgsm":
        kwargs = {k: v for k, v in kwargs.items() if k in ("eps", "norm", "targeted")}
        return fgsm(logits_fn, images, labels, **kwargs)
    if method == "pgd":
        return pgd(logits_fn, images, labels, rng, **kwargs)
    raise ValueError(f"method={method!r}: expected 'fgsm' or 'pgd'")


# ---------------------------------------------------------------------------
# Adversarial patch (Brown et al. 2017): one patch that turns any image into
# the target class wherever it is pasted.
# ---------------------------------------------------------------------------

def random_offsets(rng, num: int, image_size: int, patch_size: int):
    """[num, 2] top-left corners, uniform over the positions where the patch fits."""
    return jax.random.randint(rng, (num, 2), 0, image_size - patch_size + 1)


def apply_patch(images, patch, offsets):
    """Each image with `patch` [p, p, C] pasted at its own (row, column) offset."""
    def one(image, offset):
        return jax.lax.dynamic_update_slice(image, patch.astype(image.dtype),
                                            (offset[0], offset[1], 0))
    return jax.vmap(one)(images, offsets)


def patch_loss(logits_fn: Callable, patch, images, offsets, target: int):
    """Mean cross-entropy of the target class with the patch pasted."""
    logits = logits_fn(apply_patch(images, patch, offsets))
    labels = jnp.full(images.shape[:1], target, jnp.int32)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def patch_update(logits_fn: Callable, tx, patch, opt_state, images, rng, *, target: int):
    """One optimiser step on the patch over a batch at random places, then
    the patch is clipped back to the image range (a projected step)."""
    offsets = random_offsets(rng, images.shape[0], images.shape[1], patch.shape[0])
    loss, grad = jax.value_and_grad(
        lambda p: patch_loss(logits_fn, p, images, offsets, target))(patch)
    updates, opt_state = tx.update(grad, opt_state, patch)
    return _clip(optax.apply_updates(patch, updates)), opt_state, loss
