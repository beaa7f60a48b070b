"""muP: the Maximal Update Parametrization, whose hyperparameters transfer across width.

Yang et al. 2022, "Tensor Programs V: Tuning Large Neural Networks via
Zero-Shot Hyperparameter Transfer" (arXiv:2203.03466). With `model.parametrization
= 'mup'` a model's initialisation, output multiplier, attention scale and
per-layer learning rates depend on its width so that every layer's activations
move by Theta(1) per step at any width: a learning rate tuned on a narrow model
is (near) optimal for a wide one. At `model.mup_base_width` muP *is* the
standard parametrization (SP); 'sp' (the default) leaves every model as it was.

The table (Yang et al. 2022, Table 3, "muP and SP for general neural networks";
fan_in/fan_out counted in widths, "input weights & all biases" one column):

                          init variance     SGD LR           Adam LR
    input weights, biases 1/fan_in          fan_out  (SP 1)  1
    hidden weights        1/fan_in          1                1/fan_in (SP 1)
    output weights        1/fan_in^2 (SP 1/fan_in)  1/fan_in (SP 1)  1/fan_in (SP 1)

implemented in its equivalent multiplier form (the paper's appendix, Table 8,
and the authors' `mup` package: MuReadout's 1/width_mult on the readout's
input and sqrt(width_mult) init rescale, MuAdam, MuSGD), relative to a base
width: with width multiplier m = width / mup_base_width, each factor below
multiplies what SP does. `TABLE` holds the exponents e of m^e:

    kind     init std   Adam LR   SGD LR   output multiplier
    input    1          1         m        1
    hidden   1          1/m       1        1
    output   m^(1/2)    1         m        1/m
    vector   1          1         m        1

The output row is Table 3's through W = W'/m: the readout W' has variance
(1/fan_in) * m, constant in width, so W has variance proportional to 1/fan_in^2;
Adam moves W' by Theta(lr), hence W by lr/m (Table 3: 1/fan_in); SGD's gradient
on W' is that on W over m, times the LR m, so W moves by lr * grad/m
(Table 3: 1/fan_in). The 1/m multiplier scales the readout's *input* (as
MuReadout does), so the readout bias is not scaled. Where the model's readout
starts at zero (ViT's `head_zeroinit`, the default: the zero-init readout
Yang et al. recommend) the init factor multiplies zeros; the 1/m multiplier
is applied either way.

"input" is a weight whose fan_in is fixed (the MLP's first layer, the ViT
patch embedding, token/position embeddings), "hidden" one with both fans
width-like, "output" one whose fan_out is fixed (classifier head, LM
unembedding), "vector" a bias, norm scale or a learned token: Table 3's
"all biases" column. A vector's m is that of its width-like dimension, and 1
for one of fixed size (the head's bias). Tied LM embeddings are "input"
(same multipliers as "output" except the init, which the embedding sets);
the logits still get the 1/m multiplier, as MuSharedReadout does.

Other choices, each Yang et al.'s:
  - attention logits scale as 1/d_head instead of 1/sqrt(d_head); to equal
    SP at the base width the scale is
    sqrt(d_base)/d_head with d_base = d_head/m, i.e. widths are scaled at a
    fixed number of heads;
  - the SP initialisers must already have variance proportional to 1/fan_in
    (LeCun, He, Xavier: all of the zoo's are; `small_normal` is not and is
    refused);
  - "Adam" covers Adam-like optimizers (AdamW, Adagrad, RMSProp: App. B.3),
    "SGD" the SGD-like ones (momentum, Nesterov). LAMB, whose trust ratio
    rescales each layer's update, is refused.

`scale_lr_by_width(model_config, optimizer)` is the optax transformation that
multiplies each update by its LR factor; `optim.make_optimizer` appends it
when `model_config.parametrization == 'mup'`. It comes after the whole core
update, so AdamW's decoupled decay is scaled with the LR (lr * wd / m on hidden
weights); MuAdamW instead keeps lr * wd fixed. The sweeps here use wd = 0.

Widths: the ViT's and Transformer's width multiplier is one number,
width / mup_base_width (d_model for the Transformer), with mlp_dim, d_ff and
d_head scaling in proportion; the MLP's is per layer, hidden[i] / mup_base_width.

The coordinate check (Yang et al. Fig. 5) and the learning-rate transfer
analysis are commands:

    python -m vision_jax.mup coordcheck --model mlp --widths 64,128,256,512,1024 \\
        --steps 5 --out workdirs/coordcheck_mlp
    python -m vision_jax.mup transfer --sweepdir workdirs/sweeps/mup
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

PARAMETRIZATIONS = ("sp", "mup")
KINDS = ("input", "hidden", "output", "vector")
MODELS = ("mlp", "vit", "transformer")


@dataclasses.dataclass(frozen=True)
class Rule:
    """Exponents e of the width multiplier m: each factor is m**e (0: as in SP)."""

    init_std: float
    adam_lr: float
    sgd_lr: float
    output: float


# Yang et al. 2022 (arXiv:2203.03466), Table 3 in the multiplier form of their
# Table 8 / the `mup` package; see the module docstring for the derivation.
TABLE: dict[str, Rule] = {
    "input": Rule(init_std=0.0, adam_lr=0.0, sgd_lr=1.0, output=0.0),
    "hidden": Rule(init_std=0.0, adam_lr=-1.0, sgd_lr=0.0, output=0.0),
    "output": Rule(init_std=0.5, adam_lr=0.0, sgd_lr=1.0, output=-1.0),
    "vector": Rule(init_std=0.0, adam_lr=0.0, sgd_lr=1.0, output=0.0),
}


@dataclasses.dataclass(frozen=True)
class Multipliers:
    init_std: float
    adam_lr: float
    sgd_lr: float
    output: float


def multipliers(kind: str, width_mult: float) -> Multipliers:
    """The factors of `kind` at width multiplier m = width / base width."""
    if kind not in TABLE:
        raise ValueError(f"mup: kind={kind!r} is not one of {list(TABLE)}")
    rule = TABLE[kind]
    return Multipliers(*(float(width_mult) ** e if e else 1.0
                         for e in dataclasses.astuple(rule)))


# ---------------------------------------------------------------------------
# Model side: checks, initialiser scaling, attention scale.

def check(owner: str, parametrization: str, base_width: Any) -> None:
    """Raises ValueError for an unknown parametrization or a muP without a base width."""
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"{owner}: parametrization={parametrization!r} is not supported; "
                         f"valid choices: {list(PARAMETRIZATIONS)}")
    if parametrization == "mup" and (isinstance(base_width, bool)
                                     or not isinstance(base_width, int) or base_width <= 0):
        raise ValueError(f"{owner}: parametrization='mup' needs mup_base_width, a positive "
                         f"integer (the width at which muP equals SP, e.g. the width the "
                         f"hyperparameters were tuned at); got {base_width!r}")


def scale_init(init: Callable, factor: float) -> Callable:
    """`init` times `factor` (`init` itself when the factor is 1: bit-identical)."""
    if factor == 1.0:
        return init

    def scaled(key, shape, dtype=jnp.float32):
        return init(key, shape, dtype) * jnp.asarray(factor, dtype)

    return scaled


def attention_scale(d_head: int, width_mult: float) -> float:
    """muP's attention-logit scale sqrt(d_base)/d_head, d_base = d_head/m: 1/d_head
    up to the constant that makes it SP's 1/sqrt(d_head) at the base width."""
    return 1.0 / math.sqrt(d_head * width_mult)  # = sqrt(d_head/m)/d_head


# ---------------------------------------------------------------------------
# Parameter classification and the learning-rate transformation.

_HIDDEN = {
    "vit": ("query", "key", "value", "out", "fc1", "fc2"),
    "transformer": ("query", "key", "value", "out", "relative", "wi", "wi_gate", "wo", "pooler"),
}


def _is_box(x: Any) -> bool:
    return isinstance(x, nn.meta.AxisMetadata)


def path_names(path: Sequence[Any]) -> tuple[str, ...]:
    """A jax key path as its string names ('hidden_0', 'kernel')."""
    names = []
    for k in path:
        name = getattr(k, "key", getattr(k, "name", getattr(k, "idx", None)))
        names.append(str(name))
    return tuple(names)


def classify(names: Sequence[str], model: str) -> str:
    """'input', 'hidden', 'output' or 'vector' for the parameter at path `names`
    (e.g. ('block_0', 'attention', 'query', 'kernel')) of model 'mlp', 'vit' or
    'transformer'. Raises ValueError for a parameter muP has no rule for here."""
    names = tuple(str(n) for n in names)
    leaf = names[-1] if names else ""
    owner = names[-2] if len(names) > 1 else ""
    if model not in MODELS:
        raise ValueError(f"mup: model {model!r} has no muP rules; valid: {list(MODELS)}")
    if leaf in ("bias", "scale"):
        return "vector"
    if model == "mlp" and leaf == "kernel":
        if owner == "head":
            return "output"
        if owner == "hidden_0":
            return "input"
        if re.fullmatch(r"hidden_[0-9]+", owner):
            return "hidden"
    elif model == "vit":
        if leaf == "kernel" and owner == "head":
            return "output"
        if leaf == "kernel" and owner == "embedding":
            return "input"
        if leaf == "kernel" and owner in _HIDDEN["vit"]:
            return "hidden"
        if leaf == "pos_embedding":
            return "input"
        if leaf == "cls":
            return "vector"
    elif model == "transformer":
        if leaf == "kernel" and owner == "unembed":
            return "output"
        if leaf == "kernel" and owner in _HIDDEN["transformer"]:
            return "hidden"
        if (leaf == "embedding" and owner == "embed") or leaf in (
                "position_embedding", "segment_embedding"):
            return "input"
        if leaf in ("content_bias", "position_bias"):
            return "vector"
    raise ValueError(f"mup: no muP rule for parameter {'/'.join(names)!r} of model {model!r}")


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    if isinstance(cfg, Mapping) or (hasattr(cfg, "get") and not dataclasses.is_dataclass(cfg)):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the LR rules need to know about a model config."""

    name: str
    parametrization: str
    base_width: int
    width: int | None  # one width for vit/transformer; None: per layer (mlp)


def model_spec(model_config: Any) -> ModelSpec:
    """From a model ConfigDict/mapping ({'name': 'mlp'|'vit'|'transformer', ...})
    or a `transformer.TransformerConfig`."""
    if dataclasses.is_dataclass(model_config) and hasattr(model_config, "d_model"):
        name = "transformer"
    else:
        name = _get(model_config, "name")
    parametrization = _get(model_config, "parametrization", "sp") or "sp"
    base = _get(model_config, "mup_base_width", 0)
    check(f"model {name!r}", parametrization, base)
    width = None
    if name == "vit":
        from vision_jax.models import vit
        defaults = {f.name: f.default for f in dataclasses.fields(vit.ViT)}
        size, _ = vit.decode_variant(
            _get(model_config, "variant", defaults["variant"]),
            **{k: _get(model_config, k) for k in ("width", "depth", "mlp_dim", "num_heads")})
        width = size.width
    elif name == "transformer":
        width = int(_get(model_config, "d_model"))
    elif name != "mlp":
        raise ValueError(f"mup: model {name!r} has no muP rules; valid: {list(MODELS)}")
    return ModelSpec(name, parametrization, int(base), width)


def leaf_width_mult(spec: ModelSpec, names: Sequence[str], shape: Sequence[int],
                    kind: str) -> float:
    """m of one parameter: its width-like dimension over the base width."""
    owner = names[-2] if len(names) > 1 else ""
    if kind == "vector" and owner == "head":
        return 1.0  # the readout's bias: fixed size (num_classes)
    if spec.width is not None:
        return spec.width / spec.base_width
    # MLP, per layer: kernels are [fan_in, fan_out], vectors [features].
    if kind == "input":
        return shape[-1] / spec.base_width
    if kind in ("hidden", "output"):
        return shape[-2] / spec.base_width
    return shape[-1] / spec.base_width


def optimizer_column(optimizer: str) -> str:
    """'adam' or 'sgd': which LR column of the table an optimizer name uses."""
    if optimizer in ("sgd", "momentum", "nesterov"):
        return "sgd"
    if optimizer in ("adam", "adamw", "adagrad", "rmsprop"):
        return "adam"
    raise ValueError(f"mup: no muP learning-rate rule for optimizer {optimizer!r}: Table 3 "
                     "covers SGD-like (sgd, momentum, nesterov) and Adam-like (adam, adamw, "
                     "adagrad, rmsprop) optimizers; LAMB's trust ratio rescales every layer")


def _shape(leaf: Any) -> tuple[int, ...]:
    """Of an array, a box, or a jax.ShapeDtypeStruct (abstract parameters)."""
    leaf = leaf.unbox() if _is_box(leaf) else leaf
    return tuple(getattr(leaf, "shape", None) or jnp.shape(leaf))


def lr_multipliers(params: Any, model_config: Any, optimizer: str = "adam") -> Any:
    """A tree like `params` (boxed leaves become floats) of each leaf's LR factor."""
    spec = model_spec(model_config)
    column = optimizer_column(optimizer)

    def one(path, leaf):
        if spec.parametrization == "sp":
            return 1.0
        names = path_names(path)
        kind = classify(names, spec.name)
        m = multipliers(kind, leaf_width_mult(spec, names, _shape(leaf), kind))
        return m.adam_lr if column == "adam" else m.sgd_lr

    return jax.tree_util.tree_map_with_path(one, params, is_leaf=_is_box)


def kinds(params: Any, model_config: Any) -> Any:
    """A tree like `params` of each leaf's kind ('input', 'hidden', ...)."""
    spec = model_spec(model_config)
    return jax.tree_util.tree_map_with_path(
        lambda path, _: classify(path_names(path), spec.name), params, is_leaf=_is_box)


def scale_lr_by_width(model_config: Any, optimizer: str = "adam") -> optax.GradientTransformation:
    """Multiplies each update leaf by its muP learning-rate factor (stateless).

    Append after the optimizer (whose update already includes -lr): the
    factors are constants, so this is the per-layer learning rate of Table 3
    for SGD, momentum and Adam alike. The factors are functions of the
    parameter paths and shapes only: `init` derives them once from the
    parameters, so that a parameter without a rule stops the run before any
    step, and `update` derives the same factors from the updates (identical
    paths and shapes; static under jit). Boxed (logically partitioned) leaves
    keep their boxes.
    """
    optimizer_column(optimizer)
    model_spec(model_config)

    def init_fn(params):
        lr_multipliers(params, model_config, optimizer)
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        factors = lr_multipliers(updates, model_config, optimizer)

        def scale(u, f):
            if f == 1.0:
                return u
            if _is_box(u):
                return u.replace_boxed(u.unbox() * jnp.asarray(f, u.unbox().dtype))
            return u * jnp.asarray(f, u.dtype)

        flat_u, treedef = jax.tree_util.tree_flatten(updates, is_leaf=_is_box)
        flat_f = jax.tree_util.tree_leaves(factors)
        return treedef.unflatten([scale(u, f) for u, f in zip(flat_u, flat_f)]), state

    return optax.GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------
# The coordinate check (Yang et al. 2022, Fig. 5; the `mup` package's coord_check).

def _coord_model_config(model: str, width: int, parametrization: str, base: int,
                        depth: int) -> dict[str, Any]:
    if model == "mlp":
        return dict(name="mlp", hidden=(width,) * depth, parametrization=parametrization,
                    mup_base_width=base)
    if model == "vit":
        # Four heads at every width: d_head grows with width (see attention_scale).
        return dict(name="vit", variant="Ti/4", width=width, depth=depth, num_heads=4,
                    mlp_dim=4 * width, parametrization=parametrization, mup_base_width=base)
    raise ValueError(f"coordcheck: model {model!r} is not 'mlp' or 'vit'")


# Layers drawn in the plot (every module's output is in the JSON).
PLOT_LAYERS = {
    "mlp": lambda depth: ["hidden_0", *[f"hidden_{i}" for i in range(1, depth)], "head"],
    "vit": lambda depth: ["embedding", "block_0/attention", "block_0/mlp/fc1",
                          f"block_{depth - 1}", "encoder_norm", "head"],
}


def coord_check(model: str = "mlp", widths: Sequence[int] = (64, 128, 256, 512, 1024), *,
                steps: int = 5, learning_rate: float = 1e-2, optimizer: str = "adam",
                parametrizations: Sequence[str] = PARAMETRIZATIONS, base_width: int | None = None,
                depth: int | None = None, batch_size: int = 32, image_size: int | None = None,
                num_classes: int = 10, seed: int = 0) -> dict[str, Any]:
    """Trains each width for `steps` optimizer steps on one fixed random batch and
    records, after each step (and at init, step 0), the mean |x| of every
    module's output on that batch.

    Returns {'model', 'widths', 'steps', ..., 'l1': {parametrization: {layer:
    [[l1 at width w for w in widths] for step in 0..steps]}}}. Under muP the
    curves are flat in width; under SP (with Adam) the hidden and output
    layers' grow with it.
    """
    from ml_collections import ConfigDict

    from vision_jax import models, optim

    depth = depth or (3 if model == "mlp" else 2)
    base_width = base_width or min(widths)
    image_size = image_size or (8 if model == "mlp" else 16)
    key = jax.random.PRNGKey(seed)
    k_img, k_lbl, k_init = jax.random.split(key, 3)
    images = jax.random.normal(k_img, (batch_size, image_size, image_size, 3), jnp.float32)
    labels = jax.random.randint(k_lbl, (batch_size,), 0, num_classes)
    opt = ConfigDict(dict(name=optimizer, learning_rate=learning_rate, b1=0.9, b2=0.999,
                          eps=1e-8, momentum=0.9, weight_decay=0.0,
                          decay_norms_and_biases=False, grad_clip_norm=0.0))
    sched = ConfigDict(dict(name="constant", warmup_steps=0, end_factor=0.0,
                            boundaries=(0.5, 0.75), step_factor=0.1))
    out: dict[str, Any] = {"model": model, "widths": list(widths), "steps": steps,
                           "learning_rate": learning_rate, "optimizer": optimizer,
                           "base_width": base_width, "depth": depth, "batch_size": batch_size,
                           "image_size": image_size, "seed": seed, "l1": {}}
    for p in parametrizations:
        per_layer: dict[str, list[list[float]]] = {}
        for wi, width in enumerate(widths):
            model_cfg = _coord_model_config(model, width, p, base_width, depth)
            net = models.build_model(model_cfg, num_classes=num_classes)
            params = nn.unbox(net.init(k_init, images, train=False)["params"])
            tx, _ = optim.make_optimizer(opt, sched, steps, model_config=model_cfg)
            opt_state = tx.init(params)

            def loss_fn(params, net=net):
                logits = net.apply({"params": params}, images, train=False)
                return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

            @jax.jit
            def step(params, opt_state, tx=tx, loss_fn=loss_fn):
                grads = jax.grad(loss_fn)(params)
                updates, opt_state = tx.update(grads, opt_state, params)
                return optax.apply_updates(params, updates), opt_state

            @jax.jit
            def sizes(params, net=net):
                _, state = net.apply({"params": params}, images, train=False,
                                     capture_intermediates=True, mutable=["intermediates"])
                flat = jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]
                result = {}
                for path, x in flat:
                    names = [n for n in path_names(path) if n != "__call__"
                             and not n.isdigit()]
                    result["/".join(names) or "logits"] = jnp.mean(jnp.abs(x))
                return result

            for t in range(steps + 1):
                if t:
                    params, opt_state = step(params, opt_state)
                for layer, v in sizes(params).items():
                    rows = per_layer.setdefault(layer, [[math.nan] * len(widths)
                                                        for _ in range(steps + 1)])
                    rows[t][wi] = float(v)
        out["l1"][p] = per_layer
    return out


def growth(result: Mapping[str, Any], parametrization: str, layer: str, step: int) -> float:
    """l1 at the widest width over l1 at the narrowest, at `step`."""
    row = result["l1"][parametrization][layer][step]
    return row[-1] / row[0] if row[0] else math.nan  # a zero-init head at step 0


def slope(result: Mapping[str, Any], parametrization: str, layer: str, step: int) -> float:
    """Least-squares slope of log l1 against log width (0: flat; 1: grows like width)."""
    row = np.asarray(result["l1"][parametrization][layer][step], float)
    if not np.all(row > 0):
        return math.nan
    return float(np.polyfit(np.log(result["widths"]), np.log(row), 1)[0])


def plot_coord_check(result: Mapping[str, Any], stem: str,
                     layers: Sequence[str] | None = None) -> list[str]:
    """One row per layer, SP | muP side by side: mean |x| vs width, one line per step."""
    from vision_jax.scaling import plots  # sets the Agg backend
    import matplotlib.pyplot as plt

    layers = list(layers or [layer for layer in PLOT_LAYERS[result["model"]](result["depth"])
                             if layer in next(iter(result["l1"].values()))])
    params = list(result["l1"])
    steps = result["steps"]
    fig, axes = plt.subplots(len(layers), len(params), figsize=(4.2 * len(params),
                                                                2.6 * len(layers)),
                             squeeze=False, sharey="row")
    colors = plt.cm.viridis(np.linspace(0, 0.9, steps + 1))
    for r, layer in enumerate(layers):
        for c, p in enumerate(params):
            ax = axes[r][c]
            for t in range(steps + 1):
                ax.plot(result["widths"], result["l1"][p][layer][t], marker="o", ms=3,
                        color=colors[t], label=f"t={t}")
            ax.set(xscale="log", yscale="log")
            ax.set_xscale("log", base=2)
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{'muP' if p == 'mup' else 'SP'}: {layer}", fontsize=9)
            if c == 0:
                ax.set_ylabel("mean |x|")
            if r == len(layers) - 1:
                ax.set_xlabel("width")
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"coordinate check: {result['model']}, {result['optimizer']} "
                 f"lr={result['learning_rate']:g}, base width {result['base_width']}",
                 fontsize=10)
    fig.tight_layout()
    return plots._save(fig, stem)


# ---------------------------------------------------------------------------
# Learning-rate transfer: analysis of a sweep (configs/scaling/mup.py).

def _width_of(value: Any) -> float:
    if isinstance(value, (list, tuple)):
        return float(value[0])
    return float(value)


def transfer_table(sweepdir: str, *, width_key: str = "model.hidden",
                   metric: str = "train_loss_tail", tail: int = 5,
                   base_width: float | None = None) -> dict[str, Any]:
    """Loss against learning rate per (parametrization, width) from a sweep's
    results.jsonl, and the best learning rate of each.

    metric 'train_loss_tail' is the mean training loss over each trial's last
    `tail` logged batches (Yang et al. plot training loss); any other column
    of the store (e.g. 'final_eval_loss') is read as is. Diverged trials (NaN
    or missing loss) count as +inf. muP's curve at the base width (`base_width`, or
    each row's model.mup_base_width where the store has it) is SP's when only SP ran there.
    """
    from vision_jax.scaling import store
    return transfer_from_rows(store.collect(sweepdir), width_key=width_key, metric=metric,
                              tail=tail, base_width=base_width)


def transfer_from_rows(rows: list[Mapping[str, Any]], *, width_key: str = "model.hidden",
                       metric: str = "train_loss_tail", tail: int = 5,
                       base_width: float | None = None) -> dict[str, Any]:
    """transfer_table of store rows (vision_jax.scaling.store.collect's)."""
    table: dict[str, dict[str, dict[float, float]]] = {}
    for row in rows:
        p = row.get("model.parametrization", "sp")
        w = _width_of(row[width_key])
        lr = float(row["optimizer.learning_rate"])
        if metric == "train_loss_tail":
            curve = row.get("train_curve") or []
            y = float(np.mean([c[1] for c in curve[-tail:]])) if curve else math.inf
        else:
            y = row.get(metric)
            y = math.inf if y is None else float(y)
        if not math.isfinite(y):
            y = math.inf
        table.setdefault(p, {}).setdefault(f"{w:g}", {})[lr] = y
    base = {_width_of(r["model.mup_base_width"]) for r in rows if "model.mup_base_width" in r}
    if base_width:
        base.add(float(base_width))
    for w in base:  # muP at its base width is SP exactly: a sweep may run it once
        sp_curve = table.get("sp", {}).get(f"{w:g}")
        if sp_curve and "mup" in table and f"{w:g}" not in table["mup"]:
            table["mup"][f"{w:g}"] = dict(sp_curve)
    best = {p: {w: min(curve, key=curve.get) for w, curve in by_w.items()}
            for p, by_w in table.items()}
    return {"metric": metric, "loss": {p: {w: {f"{lr:g}": y for lr, y in sorted(c.items())}
                                            for w, c in by_w.items()}
                                        for p, by_w in table.items()},
            "best_lr": best}


def plot_transfer(report: Mapping[str, Any], stem: str) -> list[str]:
    """Loss vs log2 learning rate, one curve per width, SP | muP side by side."""
    from vision_jax.scaling import plots
    import matplotlib.pyplot as plt

    params = [p for p in PARAMETRIZATIONS if p in report["loss"]]
    fig, axes = plt.subplots(1, len(params), figsize=(5 * len(params), 3.8), squeeze=False,
                             sharey=True)
    for ax, p in zip(axes[0], params):
        widths = sorted(report["loss"][p], key=float)
        colors = plt.cm.viridis(np.linspace(0, 0.9, len(widths)))
        for color, w in zip(colors, widths):
            curve = report["loss"][p][w]
            lrs = np.array([float(k) for k in curve])
            ys = np.array([curve[k] for k in curve], float)
            ys[~np.isfinite(ys)] = np.nan
            ax.plot(np.log2(lrs), ys, marker="o", ms=3, color=color, label=f"width {w}")
            b = report["best_lr"][p][w]
            ax.plot([math.log2(b)], [curve[f"{b:g}"]], marker="*", ms=10, color=color)
        ax.set_title("muP" if p == "mup" else "SP")
        ax.set_yscale("log")  # the valleys' floors differ by decades once a model fits
        ax.set_xlabel("log2 learning rate")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel(report["metric"])
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return plots._save(fig, stem)


# ---------------------------------------------------------------------------
# Command line.

def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vision_jax.mup",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cc = sub.add_parser("coordcheck", help="activation size vs width after a few steps, SP "
                                           "vs muP (Yang et al. 2022, Fig. 5)")
    cc.add_argument("--model", choices=("mlp", "vit"), default="mlp")
    cc.add_argument("--widths", type=_ints, default=[64, 128, 256, 512, 1024])
    cc.add_argument("--steps", type=int, default=5)
    cc.add_argument("--lr", type=float, default=1e-2)
    cc.add_argument("--optimizer", default="adam", help="adam (default) or sgd, ...")
    cc.add_argument("--base-width", type=int, default=None,
                    help="mup_base_width (default: the narrowest width)")
    cc.add_argument("--depth", type=int, default=None,
                    help="hidden layers (mlp, default 3) or blocks (vit, default 2)")
    cc.add_argument("--batch-size", type=int, default=32)
    cc.add_argument("--seed", type=int, default=0)
    cc.add_argument("--out", required=True, help="directory for coordcheck.json/.png/.svg")
    tr = sub.add_parser("transfer", help="loss vs learning rate per width from a sweep")
    tr.add_argument("--sweepdir", required=True)
    tr.add_argument("--width-key", default="model.hidden")
    tr.add_argument("--metric", default="train_loss_tail")
    tr.add_argument("--base-width", type=float, default=None,
                    help="muP's base width, where a sweep ran only SP (muP is SP there)")
    tr.add_argument("--out", default=None, help="default: SWEEPDIR/plots")
    args = parser.parse_args(argv)

    if args.command == "coordcheck":
        start = time.perf_counter()
        result = coord_check(args.model, args.widths, steps=args.steps, learning_rate=args.lr,
                             optimizer=args.optimizer, base_width=args.base_width,
                             depth=args.depth, batch_size=args.batch_size, seed=args.seed)
        result["wall_seconds"] = time.perf_counter() - start
        layers = [layer for layer in PLOT_LAYERS[args.model](result["depth"])
                  if layer in result["l1"]["sp"]]
        result["summary"] = {  # per step 0..steps
            p: {layer: {"growth": [growth(result, p, layer, t) for t in range(args.steps + 1)],
                        "slope": [slope(result, p, layer, t) for t in range(args.steps + 1)]}
                for layer in layers}
            for p in result["l1"]}
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "coordcheck.json"), "w") as f:
            json.dump(result, f, indent=1)
        paths = plot_coord_check(result, os.path.join(args.out, "coordcheck"))
        print(f"mean |x| at width {args.widths[-1]} over width {args.widths[0]} "
              f"(log-log slope over all widths), after steps 1 and {args.steps}:")
        for layer in layers:
            print(f"  {layer:<20}" + "   ".join(
                f"{p}: " + ", ".join(f"{result['summary'][p][layer]['growth'][t]:6.2f} "
                                     f"({result['summary'][p][layer]['slope'][t]:+.2f})"
                                     for t in (1, args.steps))
                for p in result["l1"]))
        print(f"[coordcheck] {result['wall_seconds']:.0f}s; wrote "
              f"{os.path.join(args.out, 'coordcheck.json')}, {', '.join(paths)}")
        return 0
    report = transfer_table(args.sweepdir, width_key=args.width_key, metric=args.metric,
                            base_width=args.base_width)
    out = args.out or os.path.join(args.sweepdir, "plots")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "mup_transfer.json"), "w") as f:
        json.dump(report, f, indent=1)
    paths = plot_transfer(report, os.path.join(out, "mup_transfer"))
    for p, by_w in report["best_lr"].items():
        print(f"{p}: best lr per width " + ", ".join(
            f"{w}: {lr:g} ({report['loss'][p][w][f'{lr:g}']:.4f})"
            for w, lr in sorted(by_w.items(), key=lambda kv: float(kv[0]))))
    print(f"[transfer] wrote {', '.join(paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
