"""`vision-jax plan`: how long a training run takes and how much memory each chip needs.

Time. Training FLOPs are C = 6 N D (Kaplan et al. 2020: 2 FLOPs per parameter
per token forward, twice that backward) plus, when the architecture is known,
the attention term 3 x 2 x 2 x layers x context x d_attn per token; the
analytic count of `vision_jax.models.transformer.flops_per_token` is used for
presets. Wall-clock = C / (chips x peak x MFU).

Memory per chip, for Adam in fp32 (Rajbhandari et al. 2020, "ZeRO"):
parameters, gradients and the two moments take `param_bytes + grad_bytes + 8`
bytes per parameter (+4 for an fp32 master copy when parameters are 16-bit),
divided by the fsdp x tensor degree (data parallelism replicates them).
Activations follow Korthikanti et al. 2022 ("Reducing Activation
Recomputation", eq. 2 with tensor parallelism): per layer
s b h (10 + 24/t + 5 a s / (h t)) bytes with 16-bit activations; with full
rematerialisation only each layer's 16-bit input (2 s b h) is kept, plus one
layer's working set during recomputation. The fp32 logits add 4 s b V / t.

    vision-jax plan                                   # published runs vs estimates, with cost
    vision-jax plan --prices                          # $/chip-hour and peak GFLOP per $ by chip
    vision-jax plan --model "GPT-3 175B" --tokens 300e9 --chip H100 --chips 1024
    vision-jax plan --params 7e9 --tokens 1.4e12 --chip TPUv5p --chips 256 \\
        --layers 32 --width 4096 --heads 32 --seq-len 4096 --fsdp 256
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any

from vision_jax.models import transformer as tfm
from vision_jax.scaling import hardware, presets

DEFAULT_MFU = 0.4
DAY = 86_400.0


def training_flops_6nd(params: float, tokens: float) -> float:
    """Kaplan et al. (2020) C = 6 N D: the attention-free training FLOPs."""
    return 6.0 * params * tokens


def attention_training_flops(layers: int, context: int, d_attn: int, tokens: float) -> float:
    """The context-dependent term 6ND leaves out: QK^T and AV, forward and backward.

    Per token and layer the forward pass does 2 x context x d_attn MACs (4 x
    context x d_attn FLOPs); training triples it.
    """
    return 3.0 * 4.0 * layers * context * d_attn * tokens


def wall_clock_seconds(flops: float, chip: hardware.Chip, chips: int, mfu: float) -> float:
    if chips <= 0 or not 0.0 < mfu <= 1.0:
        raise ValueError(f"chips={chips} must be positive and mfu={mfu} in (0, 1]")
    return flops / (chips * chip.peak_flops * mfu)


def mfu_for(flops: float, chip: hardware.Chip, chips: int, seconds: float) -> float:
    """The MFU at which `flops` take `seconds` on `chips` chips."""
    return flops / (chips * chip.peak_flops * seconds)


@dataclasses.dataclass(frozen=True)
class Sharding:
    data: int = 1
    fsdp: int = 1
    tensor: int = 1

    @property
    def chips(self) -> int:
        return self.data * self.fsdp * self.tensor


def memory_per_chip(params: float, sharding: Sharding, *, layers: int = 0, width: int = 0,
                    heads: int = 0, seq_len: int = 0, micro_batch: int = 1, vocab: int = 0,
                    param_bytes: int = 4, remat: bool = False) -> dict[str, float]:
    """Bytes per chip of parameters, gradients, Adam state and activations.

    `micro_batch` is the number of sequences each data/fsdp shard processes at
    once. Activation terms need layers/width/heads/seq_len; left at 0 they are 0.
    """
    shard = sharding.fsdp * sharding.tensor
    t = sharding.tensor
    p = params * param_bytes / shard
    g = params * param_bytes / shard
    opt = params * (8 + (4 if param_bytes < 4 else 0)) / shard
    s, b, h, a = seq_len, micro_batch, width, heads
    per_layer = s * b * h * (10 + 24 / t + (5 * a * s / (h * t) if h else 0.0))
    if remat:
        acts = layers * 2 * s * b * h + per_layer
    else:
        acts = layers * per_layer
    logits = 4.0 * s * b * vocab / t
    out = {"params": p, "grads": g, "optimizer": opt, "activations": acts + logits}
    out["total"] = sum(out.values())
    return out


def _preset_flops(preset: presets.LMPreset) -> tuple[float, float]:
    """(analytic training FLOPs summed over the phases, tokens)."""
    total = tokens = 0.0
    for phase in preset.training.phases:
        ctx = phase.context if phase.context is not None else preset.seq_len
        total += phase.tokens * tfm.flops_per_token(preset.config, ctx)["train"]
        tokens += phase.tokens
    return total, tokens


def reconcile(mfu: float = DEFAULT_MFU) -> list[dict[str, Any]]:
    """One row per preset with published hardware: published time vs estimate."""
    rows = []
    for preset in presets.LANGUAGE_MODELS:
        tr = preset.training
        if tr is None or tr.chip is None:
            continue
        chip = hardware.chip(tr.chip)
        params = tfm.param_counts(preset.config)["total"]
        row: dict[str, Any] = {
            "name": preset.name, "chip": chip.name, "chips": tr.chips, "params": params,
            "published_days": tr.days, "time_source": tr.source, "tokens_source": tr.tokens_source,
            "tokens": None, "train_flops": None, "train_flops_6nd": None,
            "estimated_days": None, "mfu_to_match": None, "published_mfu": tr.published_mfu,
            "estimated_days_at_published_mfu": None, "default_mfu": mfu,
            "usd_per_chip_hour": chip.usd_per_chip_hour, "chip_hours": None, "usd": None,
            "usd_basis": None,
        }
        if tr.phases:
            flops, tokens = _preset_flops(preset)
            row.update(tokens=tokens, train_flops=flops,
                       train_flops_6nd=training_flops_6nd(params, tokens))
            if tr.chips:
                row["estimated_days"] = wall_clock_seconds(flops, chip, tr.chips, mfu) / DAY
                if tr.days:
                    row["mfu_to_match"] = mfu_for(flops, chip, tr.chips, tr.days * DAY)
                if tr.published_mfu:
                    row["estimated_days_at_published_mfu"] = wall_clock_seconds(
                        flops, chip, tr.chips, tr.published_mfu) / DAY
        row.update(run_cost(row, chip))
        rows.append(row)
    return rows


def run_cost(row: dict[str, Any], chip: hardware.Chip) -> dict[str, Any]:
    """Chip-hours of a published run and their on-demand price today.

    The published time when there is one, else the estimate at the published
    MFU, else at the default MFU ('usd_basis' says which); None without a
    chip count, a time or a current price for the chip."""
    days, basis = row["published_days"], "published"
    if days is None:
        days = row["estimated_days_at_published_mfu"] or row["estimated_days"]
        basis = "estimated"
    if not (row["chips"] and days):
        return {}
    chip_hours = row["chips"] * days * 24
    if not chip.usd_per_chip_hour:
        return {"chip_hours": chip_hours}
    return {"chip_hours": chip_hours, "usd": chip_hours * chip.usd_per_chip_hour,
            "usd_basis": basis}


def _usd(x: float | None) -> str:
    if x is None:
        return "-"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"${x / scale:.3g}{suffix}"
    return f"${x:.3g}"


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def format_reconcile(rows: list[dict[str, Any]]) -> str:
    header = ("model", "hardware", "tokens", "train FLOPs", "6ND", "published", f"est.@MFU {rows[0]['default_mfu']:.0%}",
              "MFU to match", "$ on-demand")
    body = []
    for r in rows:
        hw = f"{r['chips'] or '?'}x {r['chip']}"
        pub = "-" if r["published_days"] is None else f"{r['published_days']:.3g} d"
        est = "-" if r["estimated_days"] is None else f"{r['estimated_days']:.3g} d"
        if r["estimated_days_at_published_mfu"] is not None:
            est += f" ({r['estimated_days_at_published_mfu']:.3g} d @ {r['published_mfu']:.1%})"
        usd = _usd(r["usd"]) + (" (est.)" if r["usd_basis"] == "estimated" else "")
        body.append((r["name"], hw, _fmt(r["tokens"], ".3g"), _fmt(r["train_flops"], ".3e"),
                     _fmt(r["train_flops_6nd"], ".3e"), pub, est, _fmt(r["mfu_to_match"], ".1%"),
                     usd))
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [fmt(header), "  ".join("-" * w for w in widths), *map(fmt, body), ""]
    lines.append("Train FLOPs: analytic (3 x forward matmuls, attention included) over the token "
                 "counts below; 6ND uses total parameters. Peaks: vision_jax.scaling.hardware.")
    lines.append("$ on-demand: chips x published days (est.: the estimate, at the published MFU "
                 "where there is one) x 24 h x today's on-demand $/chip-hour (`vision-jax plan "
                 "--prices`); GPUs without their host VM; no discounts.")
    for r in rows:
        lines.append(f"  {r['name']}: tokens: {r['tokens_source']}; time: {r['time_source']}")
    return "\n".join(lines)


COMPILED_RECORD = os.path.join(os.path.dirname(__file__), "compiled_vit.json")


def gib(n: float | None, digits: int = 1) -> str:
    """Bytes as GiB ('n/a' for None): the memory figures of plan, compile and bench."""
    return "n/a" if n is None else f"{n / 2**30:.{digits}f} GiB"


def format_compiled(record: dict) -> str:
    """The ViT rows that `vision-jax compile --published` recorded, as a table."""
    header = ("model", "slice", "mesh d/f/t", "memory/device", "HBM/device", "fits",
              "TFLOP/step/device", "collectives/step")
    body = []
    for r in record["rows"]:
        m = r["mesh"]
        body.append((r["model"], f"{r['slice']} ({r['devices']} dev.)",
                     f"{m['data']}/{m['fsdp']}/{m['tensor']}", gib(r["memory_bytes"]),
                     gib(r["hbm_bytes"]), "yes" if r["fits"] else "NO",
                     "-" if r["flops_per_step_per_device"] is None
                     else f"{r['flops_per_step_per_device'] / 1e12:.3g}",
                     "-" if r["collective_bytes"] is None
                     else f"{r['collective_bytes'] / 2**20:,.0f} MiB"))
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, body)])


def read_compiled(path: str = COMPILED_RECORD) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)



def prices() -> list[dict[str, Any]]:
    """The chips of hardware.py by year: peak FLOP/s, on-demand $/chip-hour and
    peak GFLOP per dollar (the price-performance trend of accelerators)."""
    chips = sorted(hardware.CHIPS.values(), key=lambda c: (c.year or 0, c.peak_flops))
    return [{"chip": c.name, "year": c.year, "peak_tflops": c.peak_flops / 1e12,
             "usd_per_chip_hour": c.usd_per_chip_hour, "gflop_per_usd": c.gflop_per_usd,
             "note": c.price_note} for c in chips]


def format_prices(rows: list[dict[str, Any]]) -> str:
    header = ("chip", "year", "peak TFLOP/s", "$/chip-hour", "peak GFLOP/$", "note")
    body = [(r["chip"], str(r["year"] or "-"), f"{r['peak_tflops']:g}",
             "-" if r["usd_per_chip_hour"] is None else f"{r['usd_per_chip_hour']:.2f}",
             _fmt(r["gflop_per_usd"], ",.0f"), r["note"] or "") for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i in (0, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header).rstrip(), "  ".join("-" * w for w in widths),
                      *(fmt(b).rstrip() for b in body), "",
                      "Peak: dense 16-bit FLOP/s per chip. Prices: " + hardware.PRICE_SOURCE + "."])


def plan_one(args) -> dict[str, Any]:
    chip = hardware.chip(args.chip)
    layers, width, heads, seq, vocab = args.layers, args.width, args.heads, args.seq_len, args.vocab
    if args.model:
        preset = presets.by_name(args.model)
        if not isinstance(preset, presets.LMPreset):
            raise ValueError(f"--model {args.model!r} is a vision preset; give --params for it")
        cfg = preset.config
        params = tfm.param_counts(cfg)["total"]
        layers = layers or cfg.encoder_layers + cfg.decoder_layers
        width, heads, vocab = width or cfg.d_model, heads or cfg.num_heads, vocab or cfg.vocab_size
        seq = seq or preset.seq_len
        flops = args.tokens * tfm.flops_per_token(cfg, seq)["train"]
        flops_source = "analytic (preset architecture)"
    elif args.params:
        params = args.params
        flops = training_flops_6nd(params, args.tokens)
        flops_source = "6ND"
        if layers and width and seq:
            flops += attention_training_flops(layers, seq, width, args.tokens)
            flops_source = "6ND + attention"
    else:
        raise ValueError("give --model NAME or --params N")
    sharding = Sharding(args.data, args.fsdp, args.tensor)
    chips = args.chips or sharding.chips
    if sharding.chips not in (1, chips):
        raise ValueError(f"--data x --fsdp x --tensor = {sharding.chips} but --chips={chips}")
    if sharding.chips == 1:
        sharding = Sharding(data=chips)
    shape = dict(layers=layers, width=width, heads=heads, seq_len=seq,
                 micro_batch=args.micro_batch, vocab=vocab, param_bytes=args.param_bytes)
    mem = memory_per_chip(params, sharding, remat=False, **shape)
    mem_remat = memory_per_chip(params, sharding, remat=True, **shape)
    seconds = wall_clock_seconds(flops, chip, chips, args.mfu)
    return {
        "params": params, "tokens": args.tokens, "train_flops": flops, "flops_source": flops_source,
        "chip": chip.name, "chips": chips, "mfu": args.mfu, "seconds": seconds, "days": seconds / DAY,
        "sharding": dataclasses.asdict(sharding), "memory_bytes": mem,
        "memory_bytes_full_remat": mem_remat, "chip_memory_bytes": chip.memory_bytes,
        "remat": args.remat,
        "seq_len": seq,
        "fits": (mem_remat if args.remat else mem)["total"] <= chip.memory_bytes, "chip_source": chip.source,
    }


def seq_or(result: dict[str, Any]) -> str:
    return f"{result['seq_len']} tokens" if result["seq_len"] else "unknown length"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax plan", description=__doc__.split("\n")[0])
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--model", help="a preset name (see `vision-jax tables`)")
    parser.add_argument("--params", type=float, help="parameter count N (instead of --model)")
    parser.add_argument("--tokens", type=float, help="training tokens (or examples) D")
    parser.add_argument("--chip", default="H100", help=f"one of {list(hardware.CHIPS)}")
    parser.add_argument("--chips", type=int, default=0, help="default: data x fsdp x tensor")
    parser.add_argument("--mfu", type=float, default=DEFAULT_MFU)
    parser.add_argument("--layers", type=int, default=0)
    parser.add_argument("--width", type=int, default=0)
    parser.add_argument("--heads", type=int, default=0)
    parser.add_argument("--vocab", type=int, default=0)
    parser.add_argument("--seq-len", type=int, default=0)
    parser.add_argument("--micro-batch", type=int, default=1, help="sequences per chip per step")
    parser.add_argument("--data", type=int, default=1)
    parser.add_argument("--fsdp", type=int, default=1)
    parser.add_argument("--tensor", type=int, default=1)
    parser.add_argument("--param-bytes", type=int, default=4, choices=(2, 4))
    parser.add_argument("--remat", action="store_true", help="full rematerialisation")
    parser.add_argument("--prices", action="store_true",
                        help="on-demand $/chip-hour and peak GFLOP per $ of every chip")
    args = parser.parse_args(argv)
    if args.prices:
        rows = prices()
        print("\n".join(map(json.dumps, rows)) if args.format == "json" else format_prices(rows))
        return 0
    if args.model is None and args.params is None:
        rows = reconcile(args.mfu)
        if args.format == "json":
            for r in rows:
                print(json.dumps(r))
        else:
            print(format_reconcile(rows))
            record = read_compiled()
            if record is not None:
                print(f"\nViT train steps checked by the compiler ({record['command']}: "
                      f"recorded {record['recorded']}, jax {record['jax']}, libtpu "
                      f"{record['libtpu']}; {', '.join(record['overrides'])}, bf16):")
                print(format_compiled(record))
        return 0
    if args.tokens is None:
        parser.error("--tokens is required with --model or --params")
    try:
        result = plan_one(args)
    except ValueError as e:
        parser.error(str(e))
    if args.format == "json":
        print(json.dumps(result))
        return 0
    gb = lambda x: f"{x / 1e9:.2f} GB"  # noqa: E731
    print(f"params {result['params']:.4g}, tokens {result['tokens']:.4g}, "
          f"training FLOPs {result['train_flops']:.4g} ({result['flops_source']})")
    print(f"{result['chips']}x {result['chip']} at MFU {result['mfu']:.0%}: "
          f"{result['days']:.3g} days ({result['seconds'] / 3600:.3g} hours)")
    print(f"memory per chip, sharding {result['sharding']}, "
          f"{args.micro_batch} sequence(s) of {seq_or(result)} per chip:")
    print(f"  {'':<12} {'no remat':>12} {'full remat':>12}")
    for key in ("params", "grads", "optimizer", "activations", "total"):
        print(f"  {key:<12} {gb(result['memory_bytes'][key]):>12} "
              f"{gb(result['memory_bytes_full_remat'][key]):>12}")
    verdict = "fits" if result["fits"] else "does NOT fit"
    print(f"  with{'' if args.remat else 'out'} remat it {verdict} in "
          f"{gb(result['chip_memory_bytes'])} of {result['chip']} memory")
    return 0
