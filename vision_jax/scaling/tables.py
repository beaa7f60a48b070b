"""`vision-jax tables`: exact parameter and FLOP counts of the published models.

Every preset of `vision_jax.scaling.presets` is instantiated abstractly with
`jax.eval_shape` (shapes only: PaLM 540B is counted on a laptop in seconds) and
its parameters summed; beside that count sit the analytic count (which the
tests hold equal to it), the published count and their relative difference,
and analytic FLOPs:

  * per token for language models, at the preset's context length;
  * per image for ViTs and ResNets (224px);
  * forward = 2 x multiply-accumulates, training = 3 x forward;
  * with and without the attention term (the part that grows with context,
    which the 6ND rule leaves out).

    vision-jax tables                       # text table + notes
    vision-jax tables --format json         # one JSON object per row
    vision-jax tables --only lm|vision
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any, Iterable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models import transformer as tfm
from vision_jax.scaling import presets as P


def _count(tree: Any) -> int:
    return sum(math.prod(x.shape) for x in jax.tree.leaves(nn.unbox(tree)))


# ----------------------------------------------------------------------------- language models

def instantiated_lm_params(cfg: tfm.TransformerConfig) -> int:
    """Parameters of `Transformer(cfg)`, from abstract shapes (nothing is allocated)."""
    tokens = jax.ShapeDtypeStruct((1, min(8, cfg.max_len)), jnp.int32)
    args = (tokens, tokens) if cfg.kind == "encoder_decoder" else (tokens,)
    # Scanned layers trace once instead of num_layers times; the count is the same.
    variables = jax.eval_shape(tfm.Transformer(cfg.replace(scan_layers=True)).init,
                               jax.random.key(0), *args)
    return _count(variables["params"])


def lm_row(preset: P.LMPreset) -> dict[str, Any]:
    cfg = preset.config
    counts = tfm.param_counts(cfg)
    flops = tfm.flops_per_token(cfg, preset.seq_len)
    layers = (f"{cfg.encoder_layers}+{cfg.decoder_layers}" if cfg.kind == "encoder_decoder"
              else cfg.num_layers)
    return _row(preset, family="lm", layers=layers, width=cfg.d_model, heads=cfg.num_heads,
                params=instantiated_lm_params(cfg), analytic=counts["total"],
                non_embedding=counts["non_embedding"], flops=flops, unit="token",
                context=preset.seq_len)


# ----------------------------------------------------------------------------- vision models

def resnet_counts(depth: int, image_size: int = 224, num_classes: int = 1000,
                  width: int = 64) -> dict[str, float]:
    """Parameters and forward FLOPs (2 x MACs) of vision_jax's ImageNet ResNet.

    Mirrors vision_jax.models.resnet: 7x7/2 stem + 3x3/2 max-pool, stride in
    the first block of stages 2-4, on the 3x3 convolution of a bottleneck
    (ResNet v1.5), projection shortcuts (1x1 conv + BN) where shapes change,
    BatchNorm scale+bias as parameters (running statistics are not).
    """
    from vision_jax.models.resnet import DEPTHS
    stages, bottleneck = DEPTHS[depth]

    def out(s, k, stride, pad):
        return (s + 2 * pad - k) // stride + 1

    params = macs = 0

    def conv(s_out, k, cin, cout):
        nonlocal params, macs
        params += k * k * cin * cout + 2 * cout          # kernel + BatchNorm scale/bias
        macs += s_out * s_out * k * k * cin * cout

    s = out(image_size, 7, 2, 3)
    conv(s, 7, 3, width)
    s = out(s, 3, 2, 1)
    cin = width
    for i, blocks in enumerate(stages):
        f = width * 2 ** i
        for j in range(blocks):
            stride = 2 if i > 0 and j == 0 else 1
            s_out = out(s, 3, stride, 1)
            cout = 4 * f if bottleneck else f
            if bottleneck:
                conv(s, 1, cin, f)
                conv(s_out, 3, f, f)
                conv(s_out, 1, f, cout)
            else:
                conv(s_out, 3, cin, f)
                conv(s_out, 3, f, f)
            if stride != 1 or cin != cout:
                conv(s_out, 1, cin, cout)
            cin, s = cout, s_out
    params += cin * num_classes + num_classes
    head = cin * num_classes
    forward = 2.0 * (macs + head)
    return {"params": params, "forward": forward, "forward_no_attention": forward}


def vit_counts(variant: str, image_size: int = 224, num_classes: int = 1000) -> dict[str, float]:
    """Parameters and forward FLOPs of vision_jax's ViT (pool='tok', learned positions)."""
    from vision_jax.flops import vit_flops
    from vision_jax.models.vit import decode_variant
    size, patch = decode_variant(variant)
    d, m = size.width, size.mlp_dim
    tokens = (image_size // patch) ** 2 + 1
    block = 4 * d * d + 4 * d + 2 * d * m + m + d + 4 * d   # attention, MLP, two LayerNorms
    params = (patch * patch * 3 * d + d                     # patch embedding
              + d + tokens * d                              # class token, positions
              + size.depth * block + 2 * d                  # blocks, final norm
              + d * num_classes + num_classes)              # head
    flops = vit_flops(variant, image_size, num_classes)
    return {"params": params, "layers": size.depth, "width": d, "heads": size.num_heads, **flops}


def instantiated_vision_params(preset: P.VisionPreset) -> int:
    from vision_jax.models import build_model
    config = dict(preset.model)
    if config["name"] == "vit":
        config["scan"] = True  # traces one block instead of depth; same parameter count
    model = build_model(config, num_classes=preset.num_classes)
    images = jax.ShapeDtypeStruct((1, preset.image_size, preset.image_size, 3), jnp.float32)
    variables = jax.eval_shape(lambda k, x: model.init(k, x, train=False), jax.random.key(0), images)
    return _count(variables["params"])


def vision_row(preset: P.VisionPreset) -> dict[str, Any]:
    if preset.model["name"] == "vit":
        counts = vit_counts(preset.model["variant"], preset.image_size, preset.num_classes)
        layers, width, heads = counts["layers"], counts["width"], counts["heads"]
    else:
        counts = resnet_counts(preset.model["depth"], preset.image_size, preset.num_classes)
        layers, width, heads = preset.model["depth"], 64, None
    flops = {"forward": counts["forward"], "forward_no_attention": counts["forward_no_attention"],
             "train": 3.0 * counts["forward"], "train_no_attention": 3.0 * counts["forward_no_attention"]}
    row = _row(preset, family="vision", layers=layers, width=width, heads=heads,
               params=instantiated_vision_params(preset), analytic=counts["params"],
               non_embedding=None, flops=flops, unit="image", context=None)
    row["published_flops"] = preset.published_flops
    return row


# ----------------------------------------------------------------------------- rows and output

def _row(preset, *, family, layers, width, heads, params, analytic, non_embedding, flops, unit,
         context) -> dict[str, Any]:
    published = preset.published.params
    return {
        "name": preset.name,
        "family": family,
        "layers": layers,
        "width": width,
        "heads": heads,
        "params": int(params),
        "params_analytic": int(analytic),
        "non_embedding_params": None if non_embedding is None else int(non_embedding),
        "published_params": published,
        "rel_diff": None if published is None else params / published - 1.0,
        "tolerance": preset.published.tolerance,
        "flops_unit": unit,
        "context": context,
        "flops_per_token_or_image": flops["forward"],
        "flops_forward_no_attention": flops["forward_no_attention"],
        "flops_train": flops["train"],
        "flops_train_no_attention": flops["train_no_attention"],
        "source": preset.source,
        "params_source": preset.published.params_source,
        "lecture": dict(preset.published.lecture),
        "note": preset.note,
    }


def rows(only: str | None = None) -> Iterable[dict[str, Any]]:
    if only in (None, "lm"):
        yield from (lm_row(p) for p in P.LANGUAGE_MODELS)
    if only in (None, "vision"):
        yield from (vision_row(p) for p in P.VISION_MODELS)


def _si(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.{digits}g}{unit}"
    return f"{x:.{digits}g}"


def format_table(table: list[Mapping[str, Any]]) -> str:
    header = ("model", "layers", "width", "heads", "params", "non-emb", "published", "diff",
              "fwd/unit", "fwd no-attn", "train", "train no-attn", "ctx")
    lines, notes = [], []
    body = []
    for r in table:
        mark = ""
        if r["note"]:
            if r["note"] not in notes:
                notes.append(r["note"])
            mark = f" [{notes.index(r['note']) + 1}]"
        body.append((
            r["name"] + mark, str(r["layers"]), str(r["width"]), str(r["heads"] or "-"),
            f"{r['params']:,}", "-" if r["non_embedding_params"] is None else f"{r['non_embedding_params']:,}",
            _si(r["published_params"]), "-" if r["rel_diff"] is None else f"{100 * r['rel_diff']:+.2f}%",
            f"{r['flops_per_token_or_image']:.3e}/{'tok' if r['flops_unit'] == 'token' else 'img'}",
            f"{r['flops_forward_no_attention']:.3e}", f"{r['flops_train']:.3e}",
            f"{r['flops_train_no_attention']:.3e}", str(r["context"] or "-")))
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    lines.append(fmt(header))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(fmt(b) for b in body)
    lines.append("")
    lines.append("FLOPs: 2 x multiply-accumulates; training = 3 x forward; 'no-attn' drops the "
                 "context-dependent attention term. Non-embedding parameters as Kaplan et al. 2020.")
    lines.append("")
    lines.append("Sources (architecture followed; published count):")
    for r in table:
        if r["family"] == "lm" or r["published_params"] is not None:
            lines.append(f"  {r['name']}: {r['source']}; {r['params_source']}")
    published_flops = [r for r in table if r.get("published_flops")]
    if published_flops:
        lines.append("")
        lines.append("Published forward FLOPs per image (2 x the papers' multiply-adds) vs ours:")
        lines.extend(f"  {r['name']}: {r['published_flops']:.3e} vs {r['flops_per_token_or_image']:.3e}"
                     for r in published_flops)
    if notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  [{i}] {n}" for i, n in enumerate(notes, 1))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax tables", description=__doc__.split("\n")[0])
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--only", choices=("lm", "vision"), default=None,
                        help="only the language-model or only the vision rows")
    args = parser.parse_args(argv)
    table = list(rows(args.only))
    if args.format == "json":
        for r in table:
            print(json.dumps(r))
    else:
        print(format_table(table))
    return 0
