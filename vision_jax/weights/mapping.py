"""Foreign parameter names -> this repo's Flax parameter trees, per model family.

A mapping is a list of `Tensor` rules, one per foreign key, built from the
*model's* tree (its module names and shapes), so one list serves import and
export. A rule names the foreign key, the paths of our tree it fills (fused qkv
fills three) and a transform between the two layouts:

  conv       torch OIHW kernel <-> Flax HWIO. A depthwise kernel (O, 1, H, W)
             becomes (H, W, 1, O), the grouped layout of nn.Conv with
             feature_group_count = channels: the same transpose.
  dense      torch Linear (out, in) <-> nn.Dense (in, out).
  conv_dense a 1x1 conv with bias used as a dense layer (squeeze-excitation):
             (out, in, 1, 1) <-> (in, out).
  vgg_fc1    torchvision flattens the 7x7 pooled map channel-major (C, H, W),
             ours row-major (H, W, C): the first classifier kernel's input axis
             is permuted.
  qkv        timm's fused attn.qkv (3D, D), rows [q; k; v], heads major within
             each, <-> our query/key/value DenseGeneral kernels (D, heads, head_dim);
             qkv_bias the same for the (3D,) bias and our (heads, head_dim) biases.
  heads_in   attn.proj (D, D) <-> our attention out kernel (heads, head_dim, D).
  posemb_cls big_vision adds the position embedding before it prepends the
             class token, so its table has no row for it: we prepend a zero row
             (the class token then gets no position, exactly as there).
  copy       same layout (layer norms, biases, big_vision's Flax kernels).

Batch norm: weight/bias -> params scale/bias, running_mean/var -> batch_stats
mean/var; `num_batches_tracked` is accepted and ignored (an `optional` rule,
counted as used). Flax's `momentum` is torch's 1 - momentum (0.1 -> 0.9); it
only matters when training continues.

Families and names: ResNet (torchvision == timm), VGG(-BN) (torchvision),
ViT (timm; big_vision / vision_transformer .npz), EfficientNet (timm).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from vision_jax.weights.formats import WeightsError

Path = tuple[str, ...]  # ('params' | 'batch_stats', module, ..., leaf)

FAMILIES = ("resnet", "vgg", "vit", "efficientnet")
NAMINGS = ("torch", "big_vision")  # torch: timm and torchvision state-dict names
# The naming `export_safetensors` writes for each family.
EXPORT_NAMING = {family: "torch" for family in FAMILIES}


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One foreign tensor `key` <-> our leaves `ours` through `transform`."""

    key: str
    ours: tuple[Path, ...]
    transform: str = "copy"
    optional: bool = False  # accepted and ignored when present, not required


def _qkv_to_ours(w: np.ndarray, shapes) -> list[np.ndarray]:
    return [part.T.reshape(shape) for part, shape in zip(np.split(w, 3, axis=0), shapes)]


def _qkv_bias_to_ours(b: np.ndarray, shapes) -> list[np.ndarray]:
    return [part.reshape(shape) for part, shape in zip(np.split(b, 3), shapes)]


def _vgg_fc1_to_ours(w: np.ndarray, shapes) -> list[np.ndarray]:
    out, features = w.shape
    channels = features // 49
    return [w.reshape(out, channels, 7, 7).transpose(2, 3, 1, 0).reshape(-1, out)]


def _vgg_fc1_to_theirs(k: np.ndarray) -> np.ndarray:
    features, out = k.shape
    return k.reshape(7, 7, features // 49, out).transpose(3, 2, 0, 1).reshape(out, -1)


def _posemb_cls_to_ours(p: np.ndarray, shapes) -> list[np.ndarray]:
    return [np.concatenate([np.zeros_like(p[:, :1]), p], axis=1)]


def _posemb_cls_to_theirs(p: np.ndarray) -> np.ndarray:
    return p[:, 1:]


# name -> (foreign array, our shapes -> our arrays; our arrays -> foreign array).
TRANSFORMS: dict[str, tuple[Callable[..., list[np.ndarray]], Callable[..., np.ndarray]]] = {
    "copy": (lambda a, shapes: [a], lambda a: a),
    "conv": (lambda w, shapes: [w.transpose(2, 3, 1, 0)], lambda k: k.transpose(3, 2, 0, 1)),
    "dense": (lambda w, shapes: [w.T], lambda k: k.T),
    "conv_dense": (lambda w, shapes: [w.reshape(w.shape[:2]).T], lambda k: k.T[:, :, None, None]),
    "vgg_fc1": (_vgg_fc1_to_ours, _vgg_fc1_to_theirs),
    "qkv": (_qkv_to_ours,
            lambda q, k, v: np.concatenate([x.reshape(x.shape[0], -1).T for x in (q, k, v)])),
    "qkv_bias": (_qkv_bias_to_ours, lambda q, k, v: np.concatenate([x.reshape(-1)
                                                                    for x in (q, k, v)])),
    "heads_in": (lambda w, shapes: [w.T.reshape(shapes[0])],
                 lambda k: k.reshape(-1, k.shape[-1]).T),
    "posemb_cls": (_posemb_cls_to_ours, _posemb_cls_to_theirs),
}


# ----------------------------------------------------------------------------- helpers

def _p(*names: str) -> Path:
    return ("params", *names)


def conv(key: str, ours: Path, bias: bool = False) -> list[Tensor]:
    rules = [Tensor(f"{key}.weight", (_p(*ours, "kernel"),), "conv")]
    return rules + ([Tensor(f"{key}.bias", (_p(*ours, "bias"),))] if bias else [])


def dense(key: str, ours: Path, transform: str = "dense") -> list[Tensor]:
    return [Tensor(f"{key}.weight", (_p(*ours, "kernel"),), transform),
            Tensor(f"{key}.bias", (_p(*ours, "bias"),))]


def batch_norm(key: str, ours: Path) -> list[Tensor]:
    return [Tensor(f"{key}.weight", (_p(*ours, "scale"),)),
            Tensor(f"{key}.bias", (_p(*ours, "bias"),)),
            Tensor(f"{key}.running_mean", (("batch_stats", *ours, "mean"),)),
            Tensor(f"{key}.running_var", (("batch_stats", *ours, "var"),)),
            Tensor(f"{key}.num_batches_tracked", (), optional=True)]


def layer_norm(key: str, ours: Path) -> list[Tensor]:
    return [Tensor(f"{key}.weight", (_p(*ours, "scale"),)),
            Tensor(f"{key}.bias", (_p(*ours, "bias"),))]


def flax_copy(prefix: str, ours: Path, leaves: Iterable[str]) -> list[Tensor]:
    """Same-layout leaves of a Flax module saved under '/'-joined `prefix`."""
    return [Tensor(f"{prefix}/{leaf}", (_p(*ours, leaf),)) for leaf in leaves]


def children(shapes: Mapping[Path, Any], *prefix: str) -> list[str]:
    """Names directly under `prefix` in our flat tree, in numeric-aware order."""
    n = len(prefix)
    names = {p[n] for p in shapes if p[:n] == prefix and len(p) > n + 1}
    return sorted(names, key=lambda s: [int(t) if t.isdigit() else t
                                        for t in re.split(r"(\d+)", s)])


def _indexed(names: Iterable[str], pattern: str) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for name in names:
        m = re.fullmatch(pattern, name)
        if m:
            out.append((name, tuple(int(g) for g in m.groups())))
    return sorted(out, key=lambda x: x[1])


# ----------------------------------------------------------------------------- families

def resnet_rules(shapes: Mapping[Path, Any]) -> list[Tensor]:
    """torchvision/timm ResNet (and ResNeXt): conv1, bn1, layerI.J.{conv,bn}K,
    layerI.J.downsample.{0,1}, fc."""
    rules = conv("conv1", ("stem_conv",)) + batch_norm("bn1", ("stem_bn",))
    for name, (i, j) in _indexed(children(shapes, "params"), r"stage(\d+)_block(\d+)"):
        prefix, sub = f"layer{i}.{j - 1}", children(shapes, "params", name)
        for k in (1, 2, 3):
            if f"conv{k}" in sub:
                rules += conv(f"{prefix}.conv{k}", (name, f"conv{k}"))
                rules += batch_norm(f"{prefix}.bn{k}", (name, f"bn{k}"))
        if "proj_conv" in sub:
            rules += conv(f"{prefix}.downsample.0", (name, "proj_conv"))
            rules += batch_norm(f"{prefix}.downsample.1", (name, "proj_bn"))
    return rules + dense("fc", ("head",))


def vgg_rules(shapes: Mapping[Path, Any]) -> list[Tensor]:
    """torchvision VGG(-BN): features.N counts every layer (conv, [bn], relu, and
    a max-pool per stage); classifier.{0,3,6} are the dense layers."""
    rules, index = [], 0
    top = children(shapes, "params")
    stages = sorted({s for _, (s, _) in _indexed(top, r"stage(\d+)_conv(\d+)")})
    for stage in stages:
        for name, (_, i) in _indexed(top, rf"stage({stage})_conv(\d+)"):
            rules += conv(f"features.{index}", (name,), bias=True)
            index += 1
            if f"stage{stage}_bn{i}" in top:
                rules += batch_norm(f"features.{index}", (f"stage{stage}_bn{i}",))
                index += 1
            index += 1  # ReLU
        index += 1  # max-pool
    return (rules + dense("classifier.0", ("fc1",), "vgg_fc1") + dense("classifier.3", ("fc2",))
            + dense("classifier.6", ("head",)))


def _vit_blocks(shapes: Mapping[Path, Any]) -> list[tuple[str, int]]:
    top = children(shapes, "params")
    if "blocks" in top:
        raise WeightsError("ViT with scan=True keeps its blocks stacked; import into the "
                           "same model with scan=False (model.scan=False)")
    return [(name, i) for name, (i,) in _indexed(top, r"block_(\d+)")]


def vit_timm_rules(shapes: Mapping[Path, Any]) -> list[Tensor]:
    """timm VisionTransformer: patch_embed.proj, cls_token, pos_embed, blocks.N.*, norm, head."""
    top = children(shapes, "params")
    rules = conv("patch_embed.proj", ("embedding",), bias=True)
    if _p("cls") in shapes:
        rules.append(Tensor("cls_token", (_p("cls"),)))
    if _p("pos_embedding") in shapes:
        rules.append(Tensor("pos_embed", (_p("pos_embedding"),)))
    for name, i in _vit_blocks(shapes):
        b, attn = f"blocks.{i}", (name, "attention")
        rules += layer_norm(f"{b}.norm1", (name, "norm1"))
        rules.append(Tensor(f"{b}.attn.qkv.weight",
                            tuple(_p(*attn, x, "kernel") for x in ("query", "key", "value")), "qkv"))
        rules.append(Tensor(f"{b}.attn.qkv.bias",
                            tuple(_p(*attn, x, "bias") for x in ("query", "key", "value")),
                            "qkv_bias"))
        rules += [Tensor(f"{b}.attn.proj.weight", (_p(*attn, "out", "kernel"),), "heads_in"),
                  Tensor(f"{b}.attn.proj.bias", (_p(*attn, "out", "bias"),))]
        rules += layer_norm(f"{b}.norm2", (name, "norm2"))
        rules += dense(f"{b}.mlp.fc1", (name, "mlp", "fc1")) + dense(f"{b}.mlp.fc2",
                                                                     (name, "mlp", "fc2"))
    rules += layer_norm("norm", ("encoder_norm",))
    if "pre_logits" in top:
        rules += dense("pre_logits.fc", ("pre_logits",))
    return rules + dense("head", ("head",))


def vit_big_vision_rules(shapes: Mapping[Path, Any], keys: Iterable[str]) -> list[Tensor]:
    """big_vision (MultiHeadDotProductAttention_0, LayerNorm_1, MlpBlock_0) and the
    original vision_transformer (..._1, LayerNorm_2, MlpBlock_3) .npz layouts,
    with or without a leading 'params/'."""
    keys = set(keys)
    root = "params/" if any(k.startswith("params/") for k in keys) else ""
    old = any("MultiHeadDotProductAttention_1" in k for k in keys)
    attn, ln2, mlp = (("MultiHeadDotProductAttention_1", "LayerNorm_2", "MlpBlock_3") if old
                      else ("MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0"))
    top = children(shapes, "params")
    rules = flax_copy(f"{root}embedding", ("embedding",), ("kernel", "bias"))
    if _p("cls") in shapes:
        rules.append(Tensor(f"{root}cls", (_p("cls"),)))
    if _p("pos_embedding") in shapes:
        # Where the table lived, newest first (big_vision's vit.fix_old_checkpoints).
        where = [f"{root}pos_embedding", f"{root}Transformer/pos_embedding",
                 f"{root}Transformer/posembed_input/pos_embedding"]
        key = next((k for k in where if k in keys), where[0])
        # The newest layout adds it before the class token exists.
        transform = "posemb_cls" if key == where[0] and _p("cls") in shapes else "copy"
        rules.append(Tensor(key, (_p("pos_embedding"),), transform))
    for name, i in _vit_blocks(shapes):
        b = f"{root}Transformer/encoderblock_{i}"
        rules += flax_copy(f"{b}/LayerNorm_0", (name, "norm1"), ("scale", "bias"))
        for x in ("query", "key", "value", "out"):
            rules += flax_copy(f"{b}/{attn}/{x}", (name, "attention", x), ("kernel", "bias"))
        rules += flax_copy(f"{b}/{ln2}", (name, "norm2"), ("scale", "bias"))
        for k, ours in (("Dense_0", "fc1"), ("Dense_1", "fc2")):
            rules += flax_copy(f"{b}/{mlp}/{k}", (name, "mlp", ours), ("kernel", "bias"))
    rules += flax_copy(f"{root}Transformer/encoder_norm", ("encoder_norm",), ("scale", "bias"))
    if "pre_logits" in top:
        rules += flax_copy(f"{root}pre_logits", ("pre_logits",), ("kernel", "bias"))
    return rules + flax_copy(f"{root}head", ("head",), ("kernel", "bias"))


def _conv_bn(key_conv: str, key_bn: str, ours: Path) -> list[Tensor]:
    return conv(key_conv, (*ours, "conv")) + batch_norm(key_bn, (*ours, "bn"))


def efficientnet_rules(shapes: Mapping[Path, Any]) -> list[Tensor]:
    """timm EfficientNet: conv_stem/bn1, blocks.I.J (DepthwiseSeparableConv where
    there is no expansion: conv_dw, bn1, se, conv_pw, bn2; InvertedResidual:
    conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3), conv_head/bn2, classifier."""
    rules = _conv_bn("conv_stem", "bn1", ("stem",))
    for name, (i, j) in _indexed(children(shapes, "params"), r"stage(\d+)_block(\d+)"):
        b, sub = f"blocks.{i - 1}.{j - 1}", children(shapes, "params", name)
        if "expand" in sub:
            rules += _conv_bn(f"{b}.conv_pw", f"{b}.bn1", (name, "expand"))
            rules += _conv_bn(f"{b}.conv_dw", f"{b}.bn2", (name, "depthwise"))
            project = _conv_bn(f"{b}.conv_pwl", f"{b}.bn3", (name, "project"))
        else:
            rules += _conv_bn(f"{b}.conv_dw", f"{b}.bn1", (name, "depthwise"))
            project = _conv_bn(f"{b}.conv_pw", f"{b}.bn2", (name, "project"))
        if "se" in sub:
            rules += dense(f"{b}.se.conv_reduce", (name, "se", "reduce"), "conv_dense")
            rules += dense(f"{b}.se.conv_expand", (name, "se", "expand"), "conv_dense")
        rules += project
    rules += _conv_bn("conv_head", "bn2", ("last_conv",))
    return rules + dense("classifier", ("classifier", "head"))


def rules_for(family: str, naming: str, shapes: Mapping[Path, Any],
              keys: Iterable[str] = ()) -> list[Tensor]:
    """The rules of `family` in `naming` for a model whose flat tree is `shapes`."""
    if family == "vit":
        return (vit_big_vision_rules(shapes, keys) if naming == "big_vision"
                else vit_timm_rules(shapes))
    if naming != "torch":
        raise WeightsError(f"{family}: only timm/torchvision names are mapped, not {naming}")
    return {"resnet": resnet_rules, "vgg": vgg_rules,
            "efficientnet": efficientnet_rules}[family](shapes)


def detect_naming(family: str, keys: Iterable[str]) -> str:
    keys = list(keys)
    if family == "vit" and any(k.endswith("embedding/kernel") for k in keys):
        return "big_vision"
    return "torch"


# ----------------------------------------------------------------------------- applying

def _fmt(path: Path) -> str:
    return "/".join(path)


def to_ours(rules: list[Tensor], tensors: Mapping[str, np.ndarray],
            shapes: Mapping[Path, Any]) -> dict[Path, np.ndarray]:
    """Our flat tree from the foreign `tensors`; every foreign key used exactly once.

    `shapes` maps our paths to objects with .shape and .dtype. Raises one
    WeightsError listing every missing key, unused key, shape mismatch and
    model leaf no rule fills.
    """
    out: dict[Path, np.ndarray] = {}
    missing, mismatched, used = [], [], set()
    for rule in rules:
        if rule.key not in tensors:
            if not rule.optional:
                missing.append(f"{rule.key} (-> {', '.join(map(_fmt, rule.ours))})")
            continue
        used.add(rule.key)
        if not rule.ours:
            continue
        a = np.asarray(tensors[rule.key])
        want = [tuple(shapes[p].shape) if p in shapes else None for p in rule.ours]
        try:
            got = TRANSFORMS[rule.transform][0](a, want)
            ok = [tuple(g.shape) for g in got] == want
        except ValueError:
            ok = False
        if not ok:
            mismatched.append(f"{rule.key} {tuple(a.shape)} -> "
                              f"{', '.join(f'{_fmt(p)} {w}' for p, w in zip(rule.ours, want))}")
            continue
        for path, value in zip(rule.ours, got):
            out[path] = np.asarray(value, dtype=shapes[path].dtype)
    unused = sorted(set(tensors) - used)
    filled = {p for rule in rules for p in rule.ours}
    unfilled = sorted(_fmt(p) for p in set(shapes) - filled)
    problems = [(f"{len(missing)} missing key(s)", missing),
                (f"{len(unused)} unused key(s)", unused),
                (f"{len(mismatched)} shape mismatch(es), foreign -> model", mismatched),
                (f"{len(unfilled)} model leaf/leaves that no key maps to", unfilled)]
    problems = [(title, items) for title, items in problems if items]
    if problems:
        raise WeightsError("the weights do not fit the model:\n" + "\n".join(
            f"  {title}:\n" + "\n".join(f"    {item}" for item in items)
            for title, items in problems))
    return out


def to_theirs(rules: list[Tensor], ours: Mapping[Path, np.ndarray]) -> dict[str, np.ndarray]:
    """The foreign state dict of our flat tree (optional rules write torch's
    num_batches_tracked = 0, which torch's BatchNorm expects)."""
    out = {}
    for rule in rules:
        if not rule.ours:
            out[rule.key] = np.zeros((), np.int64)
            continue
        out[rule.key] = TRANSFORMS[rule.transform][1](*(np.asarray(ours[p]) for p in rule.ours))
    return out
