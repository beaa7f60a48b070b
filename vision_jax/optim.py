"""The optax chain a config asks for: clipping, optimizer, schedule, decay mask."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import optax
from ml_collections import ConfigDict


def make_schedule(sched: ConfigDict, base_lr: float, total_steps: int) -> optax.Schedule:
    """Warmup (linear from 0) then the named decay over the remaining steps.

    'step' boundaries are fractions of the decay phase, each multiplying the
    rate by `step_factor`; 'cosine' and 'linear' decay to `end_factor * lr`.
    """
    warmup = min(int(sched.warmup_steps), max(total_steps - 1, 0))
    decay_steps = max(total_steps - warmup, 1)
    end = base_lr * sched.end_factor
    if sched.name == "constant":
        decay = optax.constant_schedule(base_lr)
    elif sched.name == "cosine":
        decay = optax.cosine_decay_schedule(base_lr, decay_steps, alpha=sched.end_factor)
    elif sched.name == "linear":
        decay = optax.linear_schedule(base_lr, end, decay_steps)
    elif sched.name == "step":
        bounds = {int(f * decay_steps): sched.step_factor for f in sched.boundaries}
        decay = optax.piecewise_constant_schedule(base_lr, bounds)
    else:
        raise ValueError(f"config.schedule.name={sched.name!r} is not a known schedule")
    if not warmup:
        return decay
    return optax.join_schedules([optax.linear_schedule(0.0, base_lr, warmup), decay], [warmup])


def decay_mask(params) -> dict:
    """True on the kernels of dense and convolutional layers (leaves named
    'kernel'); False on everything else: biases, norm scales, embedding tables,
    and ViT's position embedding and class token.

    Decaying norms and biases hurts (they set scale, not capacity), and decay
    pulls a learned position embedding or class token towards zero, which
    carries no regularising meaning: big_vision's default decays only
    '.*/kernel$', and timm exempts `pos_embed` and `cls_token`. A parameter's
    rank does not tell these apart (the position embedding is [1, T, D]).
    Boxed leaves (`nn.Partitioned`) get one flag each.
    """
    return jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) == "kernel", params,
        is_leaf=lambda x: isinstance(x, nn.meta.AxisMetadata))


def make_optimizer(opt: ConfigDict, sched: ConfigDict, total_steps: int, *,
                   model_config=None) -> tuple[optax.GradientTransformation, Callable]:
    lr = make_schedule(sched, opt.learning_rate, total_steps)
    # decay_norms_and_biases=True decays every parameter (no mask).
    mask = None if opt.decay_norms_and_biases else decay_mask
    wd = opt.weight_decay
    name = opt.name
    if name in ("sgd", "momentum", "nesterov"):
        core = optax.sgd(lr, momentum=None if name == "sgd" else opt.momentum,
                         nesterov=name == "nesterov")
    elif name == "adagrad":
        core = optax.adagrad(lr, eps=opt.eps)
    elif name == "rmsprop":
        core = optax.rmsprop(lr, decay=opt.b2, eps=opt.eps, momentum=opt.momentum or None)
    elif name == "adam":
        core = optax.adam(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps)
    elif name == "adamw":
        core = optax.adamw(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=wd, mask=mask)
    elif name == "lamb":
        core = optax.lamb(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=wd, mask=mask)
    else:
        raise ValueError(f"config.optimizer.name={name!r} is not a known optimizer")
    parts = []
    if opt.grad_clip_norm > 0:
        parts.append(optax.clip_by_global_norm(opt.grad_clip_norm))
    # Coupled L2 decay for the optimizers that have no decoupled form.
    if wd > 0 and name not in ("adamw", "lamb"):
        parts.append(optax.add_decayed_weights(wd, mask))
    parts.append(core)
    # muP's per-layer learning rates (Yang et al. 2022, Table 3): vision_jax/mup.py.
    if model_config is not None and model_config.get("parametrization", "sp") == "mup":
        from vision_jax import mup
        parts.append(mup.scale_lr_by_width(model_config, name))
    return optax.chain(*parts), lr
