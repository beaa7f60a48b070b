"""`vision-jax tables`: exact parameter and FLOP counts of the published models.

Every preset of `vision_jax.scaling.presets` is instantiated abstractly with
`jax.eval_shape` (shapes only: PaLM 540B is counted on a laptop in seconds) and
its parameters summed; beside that count sit the analytic count (which the
tests hold equal to it), the published count and their relative difference,
and FLOPs:

  * per token for language models, at the preset's context length;
  * per image for ViTs (224px) and CNNs (at their native resolution: 224px,
    EfficientNet's own, LeNet-5's 32x32x1), with the published figure beside;
  * forward = 2 x multiply-accumulates, training = 3 x forward;
  * with and without the attention term (the part that grows with context,
    which the 6ND rule leaves out).

CNN FLOPs are counted on the traced model (`traced_counts`): every convolution
and matrix product of the forward pass, output size x kernel taps x input
channels per group, read off the jaxpr that abstract instantiation builds
anyway, so the count costs no compile and follows the model's code. It
counts every kernel tap, those on zero padding included, as torchvision's
GFLOPS (and the papers) do, and equals them to the digits they print. XLA's
cost analysis, even of the lowered and uncompiled program, follows no
published convention: it skips taps that fall on padding (-7% for ResNet-18
at 224px) and adds the elementwise work (+5% for EfficientNet-B0). The
published CNN figures count multiply-accumulates (torchvision's "GFLOPS"
column is GMACs); the CNN table prints both MACs and 2 x MACs.

The traced counts (instantiated parameters of every model; MACs, layers and
width of the CNNs) are stored in `traced_counts.json` beside this file, each
under a fingerprint of what produced it: the instantiated module's repr (every
field of its config), the input shape, the source of the vision_jax modules
the model's module uses, the counting code, and the jax and flax versions. A
row whose fingerprint matches is read (the whole command then takes ~2 s
instead of ~30 s of tracing); one that does not is traced again, so the
output is always what tracing the current code gives. `--write-counts`
stores what was traced; a test holds the stored fingerprints current and
re-traces one model per architecture file against the stored counts.

    vision-jax tables                       # text tables + notes
    vision-jax tables --format json         # one JSON object per row
    vision-jax tables --only lm|vision|cnn  # vision = ViTs and CNNs
    vision-jax tables --recount             # trace every model, ignore the stored counts
    vision-jax tables --write-counts        # store traced counts (after a model change)
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import inspect
import json
import math
import pathlib
import sys
import types
from typing import Any, Callable, Iterable, Mapping

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.extend import core as jex_core

from vision_jax.flops import count_params
from vision_jax.models import transformer as tfm
from vision_jax.scaling import presets as P


# ----------------------------------------------------------------------------- language models

def instantiated_lm_params(cfg: tfm.TransformerConfig) -> int:
    """Parameters of `Transformer(cfg)`, from abstract shapes (nothing is allocated)."""
    tokens = jax.ShapeDtypeStruct((1, min(8, cfg.max_len)), jnp.int32)
    args = (tokens, tokens) if cfg.kind == "encoder_decoder" else (tokens,)
    # Scanned layers trace once instead of num_layers times; the count is the same.
    variables = jax.eval_shape(tfm.Transformer(cfg.replace(scan_layers=True)).init,
                               jax.random.key(0), *args)
    return count_params(variables["params"])


def lm_row(preset: P.LMPreset, store: CountStore | None = None) -> dict[str, Any]:
    cfg = preset.config
    counts = tfm.param_counts(cfg)
    flops = tfm.flops_per_token(cfg, preset.seq_len)
    layers = (f"{cfg.encoder_layers}+{cfg.decoder_layers}" if cfg.kind == "encoder_decoder"
              else cfg.num_layers)
    traced = _store(store).get(preset.name, f"lm {cfg!r}", tfm.__name__,
                               lambda: {"params": instantiated_lm_params(cfg)})
    row = _row(preset, family="lm", layers=layers, width=cfg.d_model, heads=cfg.num_heads,
               params=traced["params"], analytic=counts["total"],
               non_embedding=counts["non_embedding"], flops=flops, unit="token",
               context=preset.seq_len)
    row["kv_heads"] = cfg.kv_heads   # < heads: multi-query (1) or grouped-query attention
    return row


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


def _vit_model(preset: P.VisionPreset) -> nn.Module:
    from vision_jax.models import build_model
    # Scanned blocks trace one block instead of depth; the parameter count is the same.
    return build_model({**preset.model, "scan": True}, num_classes=preset.num_classes)


def instantiated_vision_params(model: nn.Module, image_shape: tuple[int, int, int]) -> int:
    """Parameters of `model` on one image of `image_shape`, from abstract shapes."""
    images = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)
    variables = jax.eval_shape(lambda k, x: model.init(k, x, train=False), jax.random.key(0), images)
    return count_params(variables["params"])


def vision_row(preset: P.VisionPreset, store: CountStore | None = None) -> dict[str, Any]:
    """A ViT row: analytic parameters and FLOPs beside the instantiated count."""
    counts = vit_counts(preset.model["variant"], preset.image_size, preset.num_classes)
    flops = {"forward": counts["forward"], "forward_no_attention": counts["forward_no_attention"],
             "train": 3.0 * counts["forward"], "train_no_attention": 3.0 * counts["forward_no_attention"]}
    model, shape = _vit_model(preset), (preset.image_size, preset.image_size, 3)
    traced = _store(store).get(preset.name, f"{model!r} {shape}", type(model).__module__,
                               lambda: {"params": instantiated_vision_params(model, shape)})
    row = _row(preset, family="vision", layers=counts["layers"], width=counts["width"],
               heads=counts["heads"], params=traced["params"],
               analytic=counts["params"], non_embedding=None, flops=flops, unit="image",
               context=None)
    row["published_flops"] = preset.published_flops
    return row


# ----------------------------------------------------------------------------- CNNs

def _sub_jaxprs(eqn) -> Iterable[tuple[Any, int]]:
    """The jaxprs nested in an equation (jit, custom derivatives, scan bodies), each with
    how many times it runs: a scan body `length` times, anything else once. (A cond's
    branches would all be counted; these models have none.)"""
    repeat = int(eqn.params.get("length", 1)) if eqn.primitive.name == "scan" else 1
    for value in eqn.params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, jex_core.ClosedJaxpr):
                yield item.jaxpr, repeat
            elif isinstance(item, jex_core.Jaxpr):
                yield item, repeat


def _walk_macs(jaxpr, counts: dict[str, Any], repeat: int = 1) -> None:
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        out = eqn.outvars[0].aval if eqn.outvars else None
        if name == "conv_general_dilated":
            rhs = eqn.invars[1].aval
            numbers = eqn.params["dimension_numbers"]
            taps = math.prod(rhs.shape[d] for d in numbers.rhs_spec[2:])
            # rhs_spec[1] is the kernel's input-feature axis: one group's channels.
            counts["macs"] += repeat * math.prod(out.shape) * taps * rhs.shape[numbers.rhs_spec[1]]
            counts["layers"] += repeat
            if counts["width"] is None:
                counts["width"] = out.shape[numbers.out_spec[1]]
        elif name == "dot_general":
            (contracting, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval
            depth = math.prod(lhs.shape[d] for d in contracting)
            counts["macs"] += repeat * math.prod(out.shape) * depth
            counts["layers"] += repeat
        for sub, times in _sub_jaxprs(eqn):
            _walk_macs(sub, counts, repeat * times)


def traced_counts(model: nn.Module, image_shape: tuple[int, int, int]) -> dict[str, Any]:
    """Parameters and forward multiply-accumulates of one image through `model`.

    One abstract trace of `model.init_with_output` (nothing is allocated or
    compiled) gives both: the parameter shapes, and the forward pass as a
    jaxpr whose convolutions and matrix products are counted as output
    elements x kernel taps x input channels per group (1 MAC each; batch norm,
    activations and pooling are left out, as in torchvision's and the papers'
    counts). `layers` is the number of those convolutions and dense layers
    (projection shortcuts and squeeze-excitation included), `width` the
    output channels of the first convolution (the stem).
    """
    images = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)
    closed, (_, variables) = jax.make_jaxpr(
        lambda key, x: model.init_with_output(key, x, train=False),
        return_shape=True)(jax.random.key(0), images)
    counts: dict[str, Any] = {"macs": 0, "layers": 0, "width": None}
    _walk_macs(closed.jaxpr, counts)
    return {"params": count_params(variables["params"]), **counts}


def _cnn_spec(model: nn.Module, image_shape: Iterable[int]) -> str:
    return f"{model!r} {tuple(image_shape)}"


def cnn_counts(model: nn.Module, image_shape: tuple[int, int, int],
               store: CountStore | None = None) -> dict[str, Any]:
    """`traced_counts(model, image_shape)`, read from the stored counts where one has this
    model's fingerprint (a CNN preset: the same class, config and input shape, unchanged
    code), traced otherwise."""
    key = fingerprint(_cnn_spec(model, image_shape), type(model).__module__)
    for entry in _store(store).stored.values():
        if entry["key"] == key:
            return dict(entry["counts"])
    return traced_counts(model, tuple(image_shape))


def cnn_row(preset: P.VisionPreset, store: CountStore | None = None) -> dict[str, Any]:
    """A CNN row: traced parameters and MACs at the preset's resolution, published beside."""
    from vision_jax.models import build_model
    model = build_model(preset.model, num_classes=preset.num_classes)
    shape = (preset.image_size, preset.image_size, preset.channels)
    counts = _store(store).get(preset.name, _cnn_spec(model, shape), type(model).__module__,
                               lambda: traced_counts(model, shape))
    forward = 2.0 * counts["macs"]
    analytic = None
    if preset.model["name"] == "resnet" and set(preset.model) == {"name", "depth"}:
        # The plain ResNets also have a hand-written count; the tests hold the two equal.
        analytic = resnet_counts(preset.model["depth"], preset.image_size, preset.num_classes)
    flops = {"forward": forward, "forward_no_attention": forward,
             "train": 3.0 * forward, "train_no_attention": 3.0 * forward}
    row = _row(preset, family="cnn", layers=counts["layers"], width=counts["width"], heads=None,
               params=counts["params"], analytic=None if analytic is None else analytic["params"],
               non_embedding=None, flops=flops, unit="image", context=None)
    published = preset.published_flops
    row.update({
        "image_size": preset.image_size,
        "macs": counts["macs"],
        "flops_analytic": None if analytic is None else analytic["forward"],
        "published_macs": preset.published_macs,
        "published_flops": published,
        "flops_rel_diff": None if published is None else forward / published - 1.0,
        "flops_tolerance": preset.flops_tolerance,
        "flops_source": preset.flops_source,
    })
    return row


# ----------------------------------------------------------------------------- stored counts

COUNTS_FILE = pathlib.Path(__file__).with_name("traced_counts.json")
WRITE_COMMAND = "vision-jax tables --write-counts"
# The code that turns a model into counts: a change to it re-traces every model.
_COUNTING_CODE = (count_params, instantiated_lm_params, instantiated_vision_params, traced_counts,
                  _walk_macs, _sub_jaxprs)


@functools.cache
def _module_digest(module_name: str) -> str:
    """sha256 of the source of `module_name` and of every vision_jax module it uses through
    its globals (imported modules, classes, functions), transitively."""
    seen, todo = set(), [module_name]
    while todo:
        name = todo.pop()
        if name in seen or name not in sys.modules:
            continue
        seen.add(name)
        for value in vars(sys.modules[name]).values():
            used = (value.__name__ if isinstance(value, types.ModuleType)
                    else getattr(value, "__module__", None))
            if isinstance(used, str) and used.split(".")[0] == "vision_jax":
                todo.append(used)
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + pathlib.Path(sys.modules[name].__file__).read_bytes())
    return digest.hexdigest()


@functools.cache
def _code_digest() -> str:
    parts = (jax.__version__, flax.__version__, *map(inspect.getsource, _COUNTING_CODE))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def fingerprint(spec: str, module_name: str) -> str:
    """What a stored count depends on: `spec` (the instantiated module's repr and input
    shape), the source of the model's module and of what it uses, the counting code, jax
    and flax."""
    text = f"{spec}\0{_module_digest(module_name)}\0{_code_digest()}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class CountStore:
    """Traced counts by preset name: read from `path` where the fingerprint matches, traced
    otherwise (always, with `recount`). `traced` holds what was traced this time."""

    def __init__(self, path: pathlib.Path | str = COUNTS_FILE, recount: bool = False):
        self.path, self.recount = pathlib.Path(path), recount
        self.stored = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.traced: dict[str, dict[str, Any]] = {}

    def get(self, name: str, spec: str, module_name: str,
            trace: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        key = fingerprint(spec, module_name)
        entry = self.stored.get(name)
        if self.recount or entry is None or entry["key"] != key:
            entry = self.traced[name] = {"key": key, "counts": trace()}
        return dict(entry["counts"])

    def stale(self) -> list[str]:
        """Names traced because their stored count was missing or out of date."""
        return [n for n, e in self.traced.items()
                if n not in self.stored or self.stored[n]["key"] != e["key"]]

    def write(self) -> None:
        """Store what was traced beside what was read, for the presets that exist."""
        names = [p.name for p in (*P.LANGUAGE_MODELS, *P.VISION_MODELS)]
        merged = {**self.stored, **self.traced}
        data = {n: merged[n] for n in sorted(names) if n in merged}
        lines = [f" {json.dumps(n)}: {json.dumps(e, sort_keys=True)}" for n, e in data.items()]
        self.path.write_text("{\n" + ",\n".join(lines) + "\n}\n")   # one line per model
        self.stored = data


_SHIPPED: CountStore | None = None


def _store(store: CountStore | None) -> CountStore:
    """`store`, or the counts shipped with the package (read once)."""
    global _SHIPPED
    if store is not None:
        return store
    if _SHIPPED is None:
        _SHIPPED = CountStore()
    return _SHIPPED



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
        "params_analytic": None if analytic is None else int(analytic),
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


ONLY = ("lm", "vision", "cnn")


def rows(only: str | None = None, store: CountStore | None = None) -> Iterable[dict[str, Any]]:
    """Table rows: every preset, or one group of ONLY ('vision' = ViTs and CNNs). Traced
    counts come from `store` (default: the stored counts, traced where out of date)."""
    if only is not None and only not in ONLY:
        raise ValueError(f"tables: only={only!r}; valid choices: {list(ONLY)} or None (all)")
    if only in (None, "lm"):
        yield from (lm_row(p, store) for p in P.LANGUAGE_MODELS)
    if only in (None, "vision"):
        yield from (vision_row(p, store) for p in P.VIT_MODELS)
    if only in (None, "vision", "cnn"):
        yield from (cnn_row(p, store) for p in P.CNN_MODELS)


def _si(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.{digits}g}{unit}"
    return f"{x:.{digits}g}"


def _align(header: tuple[str, ...], body: list[tuple[str, ...]]) -> list[str]:
    """Header, rule and rows as aligned columns (the first left-aligned, the rest right)."""
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    return [fmt(header), "  ".join("-" * w for w in widths), *(fmt(b) for b in body)]


def _name(r: Mapping[str, Any], notes: list[str]) -> str:
    """The row's name with its note's number; notes are numbered once across all tables."""
    if not r["note"]:
        return r["name"]
    if r["note"] not in notes:
        notes.append(r["note"])
    return f"{r['name']} [{notes.index(r['note']) + 1}]"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.2f}%"


def _main_table(table: list[Mapping[str, Any]], notes: list[str]) -> list[str]:
    header = ("model", "layers", "width", "heads", "params", "non-emb", "published", "diff",
              "fwd/unit", "fwd no-attn", "train", "train no-attn", "ctx")

    def heads(r):
        kv = r.get("kv_heads")
        return str(r["heads"] or "-") + (f"/{kv}kv" if kv is not None and kv != r["heads"] else "")

    body = [(
        _name(r, notes), str(r["layers"]), str(r["width"]), heads(r),
        f"{r['params']:,}", "-" if r["non_embedding_params"] is None else f"{r['non_embedding_params']:,}",
        _si(r["published_params"]), _pct(r["rel_diff"]),
        f"{r['flops_per_token_or_image']:.3e}/{'tok' if r['flops_unit'] == 'token' else 'img'}",
        f"{r['flops_forward_no_attention']:.3e}", f"{r['flops_train']:.3e}",
        f"{r['flops_train_no_attention']:.3e}", str(r["context"] or "-")) for r in table]
    lines = _align(header, body)
    lines += ["", "FLOPs: 2 x multiply-accumulates; training = 3 x forward; 'no-attn' drops the "
              "context-dependent attention term. Non-embedding parameters as Kaplan et al. 2020. "
              "heads: query heads, '/Nkv' where fewer key/value heads are shared (multi-query, "
              "grouped-query attention).",
              "", "Sources (architecture followed; published count):"]
    lines += [f"  {r['name']}: {r['source']}; {r['params_source']}" for r in table
              if r["family"] == "lm" or r["published_params"] is not None]
    return lines


def _cnn_table(table: list[Mapping[str, Any]], notes: list[str]) -> list[str]:
    header = ("CNN", "px", "layers", "width", "params", "published", "diff", "MACs",
              "published", "diff", "fwd FLOPs", "train FLOPs")
    body = [(
        _name(r, notes), str(r["image_size"]), str(r["layers"]), str(r["width"]),
        f"{r['params']:,}", f"{r['published_params']:,.0f}", _pct(r["rel_diff"]),
        _si(r["macs"], 4), _si(r["published_macs"], 4), _pct(r["flops_rel_diff"]),
        f"{r['flops_per_token_or_image']:.3e}", f"{r['flops_train']:.3e}") for r in table]
    lines = _align(header, body)
    lines += ["", "CNNs at their native resolution (px). MACs = multiply-accumulates per image, the "
              "unit of the CNN papers and of torchvision's 'GFLOPS' column (which counts one "
              "multiply-add as one operation); FLOPs = 2 x MACs as in the tables above, training "
              "= 3 x forward. MACs are counted on the traced model: every convolution and dense "
              "layer, all kernel taps (padding included), no batch norm, activation or pooling "
              "work. layers = those convolutions and dense layers (shortcut projections and "
              "squeeze-excitation included); width = channels of the stem.",
              "", "Sources (architecture followed; published parameters; published MACs):"]
    groups: dict[tuple[str, str], list[str]] = {}
    for r in table:
        groups.setdefault((r["params_source"], r["flops_source"]), []).append(r["name"])
    for (params_source, flops_source), names in groups.items():
        sources = (params_source if params_source == flops_source
                   else f"{params_source}; {flops_source}")
        lines.append(f"  {', '.join(names)}: {sources}")
    lines.append("  architectures: " + "; ".join(dict.fromkeys(r["source"] for r in table)))
    return lines


def format_table(table: list[Mapping[str, Any]]) -> str:
    notes: list[str] = []
    lines: list[str] = []
    main = [r for r in table if r["family"] != "cnn"]
    cnn = [r for r in table if r["family"] == "cnn"]
    if main:
        lines += _main_table(main, notes)
    if cnn:
        lines += ([""] if lines else []) + _cnn_table(cnn, notes)
    if notes:
        lines += ["", "Notes:", *(f"  [{i}] {n}" for i, n in enumerate(notes, 1))]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax tables", description=__doc__.split("\n")[0])
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--only", choices=ONLY, default=None,
                        help="only the language models, the vision models (ViTs and CNNs) "
                             "or the CNNs")
    parser.add_argument("--recount", action="store_true",
                        help="trace every model instead of reading the stored counts (~30 s)")
    parser.add_argument("--write-counts", action="store_true",
                        help=f"store the traced counts in {COUNTS_FILE.name} (after a model change)")
    args = parser.parse_args(argv)
    store = CountStore(recount=args.recount)
    table = list(rows(args.only, store))
    if args.format == "json":
        for r in table:
            print(json.dumps(r))
    else:
        print(format_table(table))
    if args.write_counts:
        store.write()
        print(f"tables: {len(store.traced)} traced counts written to {store.path}", file=sys.stderr)
    elif store.stale():
        print(f"tables: traced {len(store.stale())} models whose stored counts are out of date "
              f"({', '.join(store.stale())}); `{WRITE_COMMAND}` stores them", file=sys.stderr)
    return 0
