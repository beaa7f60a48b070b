"""`vision-jax compile`: a layout checked by the real compiler before the pod is paid for.

With `libtpu` installed (`pip install -e '.[tpu]'`),
`jax.experimental.topologies.get_topology_desc` describes the devices of a
TPU slice that this machine does not have: a laptop can compile for a
`v5e:16x16`. This module ahead-of-time compiles the trainer's own
initialiser and train step (`train.init_state_fn`, `train.make_train_step_fn`,
not copies) over a mesh of those devices, with the config's mesh sizes and
logical rules, and reports what XLA decided:

* per-chip memory of the train step (XLA's `memory_analysis`: arguments,
  outputs, aliased (the donated state), temporaries) against the chip's HBM,
  and whether it fits;
* compile time, XLA's FLOPs per step;
* the collectives in the compiled HLO (all-gather, reduce-scatter,
  all-reduce, all-to-all, collective-permute): count and bytes per step.

`--search` tries the data/FSDP/tensor mixes that tile the slice: an analytic
estimate first drops those that cannot fit, at most `--max-candidates` are
compiled, and those that fit are ranked by collective bytes.
`--num-slices=N` compiles for N slices joined by DCN, with data parallelism
across slices through a hybrid mesh (`mesh_utils.create_hybrid_device_mesh`),
the mesh the trainer itself builds on real multi-slice pods
(`sharding.make_mesh`).

    vision-jax compile --config=configs/vit.py:B/16 --topology=v5e:2x2 \\
        --config.mesh.fsdp=-1 --config.mesh.data=1
    vision-jax compile --config=configs/vit.py:L/16 --topology=v5e:4x4 --search
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sys
import time
from typing import Sequence

import jax
import jax.numpy as jnp

from vision_jax import config as config_lib, flops, sharding, train
from vision_jax.bench import synthetic_info
from vision_jax.scaling import hardware, planner

COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all",
               "collective-permute")

_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2,
                "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8,
                "f8e4m3fn": 1, "f8e5m2": 1, "c64": 8, "c128": 16}
_SHAPE = re.compile(r"\b([a-z]+[0-9]*[a-z0-9]*)\[([0-9,]*)\]")
# `%name = <result shape> <op>(` where op may carry an async suffix.
_OP = re.compile(r"=\s*(.+?)\s+(" + "|".join(COLLECTIVES) + r")(-start)?\(")


class TopologyError(RuntimeError):
    """libtpu is missing, or it does not know the topology."""


def topology_devices(topology: str, num_slices: int = 1) -> list:
    """The devices of a virtual TPU slice (or `num_slices` of them), from libtpu."""
    # No TPU here: let several processes load libtpu (its lockfile guards a real
    # chip) and tell it there is no pod to find.
    if not libtpu_available():
        raise TopologyError("no TPU compiler here: install libtpu with "
                            "pip install -e '.[tpu]' (about 210 MB)")
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
    from jax.experimental import topologies
    kwargs = {"num_slices": num_slices} if num_slices > 1 else {}
    try:
        desc = topologies.get_topology_desc(platform="tpu", topology_name=topology, **kwargs)
    except Exception as e:  # RuntimeError/ValueError/XlaRuntimeError, varying by jax
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TopologyError(f"topology {topology!r}: {msg}") from e
    return list(desc.devices)


def libtpu_available() -> bool:
    return importlib.util.find_spec("libtpu") is not None


def hbm_per_device(devices: Sequence) -> float | None:
    """HBM of one device: the chip's, split over its TensorCores when the
    topology exposes each as a device (v2, v3 and v4 slices do)."""
    chip = hardware.chip_of_device(devices[0].device_kind)
    if chip is None:
        return None
    cores = len({getattr(d, "core_on_chip", 0) for d in devices})
    return chip.memory_bytes / cores


def hlo_collectives(hlo_text: str) -> dict[str, dict[str, int]]:
    """{op: {'count', 'bytes'}} of the collectives in an HLO module's text.

    Bytes are those of each op's result (for all-gather the gathered array,
    for reduce-scatter the scattered shard, per device); an async `-start`
    op's tuple result holds its operands too, so its largest array is taken.
    Ops inside a loop body count once, not once per iteration.
    """
    out = {op: {"count": 0, "bytes": 0} for op in COLLECTIVES}
    for line in hlo_text.splitlines():
        m = _OP.search(line)
        if not m:
            continue
        shapes = [math.prod(int(d) for d in dims.split(",") if d) * _DTYPE_BYTES.get(t, 4)
                  for t, dims in _SHAPE.findall(m.group(1)) if t in _DTYPE_BYTES]
        if not shapes:
            continue
        nbytes = max(shapes) if m.group(3) else sum(shapes)
        out[m.group(2)]["count"] += 1
        out[m.group(2)]["bytes"] += nbytes
    return out


def _memory(compiled) -> dict[str, int]:
    """The program's memory with its code, which occupies the chip's HBM too."""
    memory = flops.program_memory(compiled)
    return {**memory, "total": memory["total"] + memory["code"]}


def compile_config(config, devices: Sequence, *, num_classes: int = 1000, image_size: int | None = None,
                   compile_init: bool = True) -> dict:
    """AOT-compiles the config's init (unless not `compile_init`) and train step
    for `devices`; the report as a dict."""
    config_lib.validate(config, num_devices=len(devices), process_count=1)
    if config.compute_dtype == "auto":  # 'auto' follows the backend: here TPU, not this CPU
        config = config_lib.ConfigDict(config.to_dict())
        config.compute_dtype = "bfloat16"
    size = image_size or config.data.image_size
    mesh = sharding.make_mesh(dict(config.mesh), devices)
    rules = sharding.rules_from_config(config.logical_rules)
    run = train.setup(config, mesh, rules, info=synthetic_info(config, num_classes, size))
    batch = train.abstract_batch(run.task, config.batch_size, mesh, rules)
    key = jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=sharding.replicated(mesh))

    init = init_s = None
    if compile_init:
        t0 = time.perf_counter()
        init = train.init_state_fn(run.init_fn, run.shardings).lower(key).compile()
        init_s = time.perf_counter() - t0
    kind = devices[0].device_kind
    chip = hardware.chip_of_device(kind)
    hbm = hbm_per_device(devices)
    report = {
        "device_kind": kind, "chip": chip.name if chip else None, "devices": len(devices),
        "num_slices": sharding.slice_count(devices), "mesh": dict(mesh.shape), "batch_size": config.batch_size,
        "image_size": size, "params": flops.count_params(run.abstract.params),
        "hbm_per_device": hbm,
        "init_memory_per_device": _memory(init) if init is not None else None,
    }
    t0 = time.perf_counter()
    try:
        step = train.make_train_step_fn(config, run, mesh, rules).lower(
            run.abstract, batch).compile()
    except Exception as e:  # the TPU compiler refuses programs that exceed HBM
        oom = _OOM.search(str(e))
        if oom is None:
            raise
        report.update(compile_seconds={"init": init_s, "train_step": time.perf_counter() - t0},
                      fits=False, compiler_error=oom.group(0),
                      memory_per_device={"total": _bytes(oom["need"]), "temp": _bytes(oom["need"])},
                      hbm_per_device=_bytes(oom["have"]), flops_per_step_per_device=None,
                      collectives=None, collective_bytes=None)
        return report
    step_s = time.perf_counter() - t0
    memory = _memory(step)
    collectives = hlo_collectives(step.as_text())
    report.update(
        compile_seconds={"init": init_s, "train_step": step_s}, memory_per_device=memory,
        fits=None if hbm is None else memory["total"] <= hbm,
        flops_per_step_per_device=flops._cost_flops(step), collectives=collectives,
        collective_bytes=sum(c["bytes"] for c in collectives.values()))
    return report


# "Ran out of memory on HBM, the total memory required for HLO temporaries
# (24.53G) exceeds available HBM (15.75G)" (libtpu's message; G = GiB).
_OOM = re.compile(r"memory required for [^(]*\((?P<need>[0-9.]+[KMGT]?)\)[^(]*"
                  r"available HBM \((?P<have>[0-9.]+[KMGT]?)\)")


def _bytes(text: str) -> int:
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    return int(float(text.rstrip("KMGT")) * scale.get(text[-1], 1))


# --- search -------------------------------------------------------------------------

def mesh_candidates(num_devices: int, num_slices: int = 1) -> list[dict[str, int]]:
    """Every (data, fsdp, tensor) that tiles the devices (data a multiple of the slices)."""
    out = []
    for t in _divisors(num_devices):
        for f in _divisors(num_devices // t):
            d = num_devices // (t * f)
            if d % num_slices == 0:
                out.append({"data": d, "fsdp": f, "tensor": t})
    return out


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _transformer_dims(config, image_size: int) -> dict[str, int]:
    """layers/width/heads/seq_len of a ViT config (for the activation estimate), else {}."""
    if config.model.get("name") != "vit":
        return {}
    from vision_jax.models import vit
    m = config.model
    size, patch = vit.decode_variant(m.variant, **{k: m.get(k) for k in (
        "width", "depth", "mlp_dim", "num_heads")})
    return {"layers": size.depth, "width": size.width, "heads": size.num_heads,
            "seq_len": (image_size // patch) ** 2 + (m.get("pool") == "tok")}


def estimate_bytes(config, mesh: dict[str, int], params: int, image_size: int) -> float:
    """The planner's analytic bytes per device (ZeRO's Adam state, Korthikanti et
    al.'s activations for ViTs; parameters and optimizer only for other models):
    used only to drop layouts that cannot fit before compiling them."""
    per_shard_batch = config.batch_size // (mesh["data"] * mesh["fsdp"])
    return planner.memory_per_chip(
        params, planner.Sharding(**mesh), micro_batch=per_shard_batch,
        remat=config.model.get("remat_policy", "none") != "none",
        **_transformer_dims(config, image_size))["total"]


def search(config, devices: Sequence, *, max_candidates: int = 8,
           num_classes: int = 1000, image_size: int | None = None,
           progress=None) -> dict:
    """Compiles the most promising layouts; ranks those that fit by collective bytes."""
    t_start = time.perf_counter()
    hbm = hbm_per_device(devices) or math.inf
    size = image_size or config.data.image_size
    run = train.setup(config, None, None, info=synthetic_info(config, num_classes, size))
    params = flops.count_params(run.abstract.params)
    candidates = []
    for mesh in mesh_candidates(len(devices), sharding.slice_count(devices)):
        if config.batch_size % (mesh["data"] * mesh["fsdp"]):
            continue
        est = estimate_bytes(config, mesh, params, size)
        candidates.append((est, mesh))
    dropped = [m for est, m in candidates if est > hbm]
    kept = sorted([(est, m) for est, m in candidates if est <= hbm], key=lambda c: c[0])
    # Prefer variety: the estimate favours full sharding, so take the cheapest
    # per tensor size first, then fill up by estimate.
    by_tensor: dict[int, tuple] = {}
    for est, m in kept:
        by_tensor.setdefault(m["tensor"], (est, m))
    chosen = list(by_tensor.values())
    for c in kept:
        if len(chosen) >= max_candidates:
            break
        if c not in chosen:
            chosen.append(c)
    chosen = chosen[:max_candidates]
    results = []
    for est, mesh in chosen:
        c = config_lib.ConfigDict(config.to_dict())
        c.mesh = dict(mesh)
        try:
            r = compile_config(c, devices, num_classes=num_classes,
                               image_size=image_size)
            r["estimate_bytes"] = est
        except Exception as e:  # a layout XLA rejects is a result, not a crash
            r = {"mesh": mesh, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
        results.append(r)
        if progress:
            progress(r)
    fitting = sorted((r for r in results if r.get("fits")),
                     key=lambda r: (r["collective_bytes"], r["memory_per_device"]["total"]))
    return {"candidates": len(candidates), "dropped_by_estimate": dropped,
            "compiled": results, "ranked": [r["mesh"] for r in fitting],
            "best": fitting[0] if fitting else None,
            "wall_seconds": time.perf_counter() - t_start}


# --- the published ViT rows -----------------------------------------------------------

# The ViT papers trained on TPUv3 (Dosovitskiy et al. 2021, Table 2, counts
# TPUv3-core-days); a 512-core v3 slice stands for that generation, v5e and
# v6e slices of 256 chips for current ones.
PUBLISHED_SLICES = ("v3:16x16", "v5e:16x16", "v6e:16x16")
PUBLISHED_VITS = ("B/16", "L/16", "H/14", "g/14", "G/14")
# Batch 4096 (the ViT paper's pre-training batch), FSDP over 16 devices inside
# data parallelism, scanned layers (one layer compiled), bf16 compute.
PUBLISHED_OVERRIDES = ("batch_size=4096", "mesh.data=-1", "mesh.fsdp=16", "model.scan=True")
_VIT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", "vit.py")


def published(slices: Sequence[str] = PUBLISHED_SLICES,
              variants: Sequence[str] = PUBLISHED_VITS, progress=None) -> dict:
    """Compiles the published ViTs' train steps for each slice: the planner's
    compiler-checked rows (`vision-jax plan` prints the recorded ones)."""
    import jaxlib
    from importlib import metadata
    rows = []
    for topology in slices:
        devices = topology_devices(topology)
        for variant in variants:
            c = config_lib.load_config(f"{_VIT_CONFIG}:{variant}")
            config_lib.apply_overrides(c, list(PUBLISHED_OVERRIDES))
            r = compile_config(c, devices, compile_init=False)
            row = {"model": f"ViT-{variant}", "slice": topology, "devices": r["devices"],
                   "chip": r["chip"], "mesh": r["mesh"], "batch_size": r["batch_size"],
                   "params": r["params"], "memory_bytes": r["memory_per_device"]["total"],
                   "hbm_bytes": r["hbm_per_device"], "fits": r["fits"],
                   "compile_seconds": r["compile_seconds"]["train_step"],
                   "flops_per_step_per_device": r["flops_per_step_per_device"],
                   "collective_bytes": r["collective_bytes"],
                   "compiler_error": r.get("compiler_error")}
            rows.append(row)
            if progress:
                progress(row)
    return {"command": "vision-jax compile --published --write",
            "recorded": time.strftime("%Y-%m-%d"), "jax": jax.__version__,
            "jaxlib": jaxlib.__version__, "libtpu": metadata.version("libtpu"),
            "overrides": list(PUBLISHED_OVERRIDES), "rows": rows}


# --- command line ---------------------------------------------------------------------

def gib(n: float | None) -> str:
    return planner.gib(n, digits=2)


def format_report(r: dict) -> str:
    mem = r["memory_per_device"]
    fits = {True: "FITS", False: "DOES NOT FIT", None: "fit unknown (HBM unknown)"}[r["fits"]]
    if r["collectives"] is None:  # refused by the compiler
        return (f"{r['devices']} x {r['device_kind']}, mesh {r['mesh']}, batch "
                f"{r['batch_size']}, {r['params']:,} params: DOES NOT FIT: "
                f"{r['compiler_error']}")
    lines = [
        f"{r['devices']} x {r['device_kind']} ({r['num_slices']} slice(s)), mesh "
        f"{r['mesh']}, batch {r['batch_size']} at {r['image_size']}px, {r['params']:,} params",
        "  compile: " + (f"init {r['compile_seconds']['init']:.1f}s, "
                         if r["compile_seconds"]["init"] is not None else "")
        + f"train step {r['compile_seconds']['train_step']:.1f}s",
        f"  memory per device: {gib(mem['total'])} of {gib(r['hbm_per_device'])} HBM: {fits}"
        f" (arguments {gib(mem['argument'])}, temporaries {gib(mem['temp'])}, outputs "
        f"{gib(mem['output'])}, donated {gib(mem['alias'])})",
        f"  XLA flops per step per device: {r['flops_per_step_per_device']:.3e}",
        "  collectives per step: " + (", ".join(
            f"{op} x{c['count']} ({c['bytes'] / 2**20:.1f} MiB)"
            for op, c in r["collectives"].items() if c["count"]) or "none"),
    ]
    return "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    def extra(parser):
        parser.add_argument("--published", action="store_true",
                            help="compile the published ViTs for v3, v5e and v6e slices "
                                 "(the rows `vision-jax plan` prints); --write records them")
        parser.add_argument("--write", action="store_true",
                            help=f"with --published: write {os.path.basename(planner.COMPILED_RECORD)}")
        parser.add_argument("--topology", default=None,
                            help="a TPU slice, e.g. v5e:2x2, v4:2x2x2, v5p:2x2x4, v6e:4x4")
        parser.add_argument("--num-slices", type=int, default=1)
        parser.add_argument("--search", action="store_true",
                            help="compile the promising data/fsdp/tensor mixes and rank them")
        parser.add_argument("--max-candidates", type=int, default=8)
        parser.add_argument("--num-classes", type=int, default=1000)
        parser.add_argument("--image-size", type=int, default=None)
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    if "--published" in argv:  # needs no --config: the rows name their own
        argv = [*argv, f"--config={_VIT_CONFIG}"] if not any(
            a.startswith("--config=") for a in argv) else argv
    try:
        config, flags = config_lib.parse_config_args(
            argv, "vision-jax compile", extra=extra, needs_workdir=False,
            description=__doc__.split("\n")[0])
        if flags.published:
            slices = (flags.topology,) if flags.topology else PUBLISHED_SLICES
            record = published(slices, progress=lambda r: print(
                f"{r['model']} on {r['slice']}: {gib(r['memory_bytes'])} per device, "
                f"{'fits' if r['fits'] else 'does NOT fit'}", flush=True))
            print(planner.format_compiled(record))
            if flags.write:
                with open(planner.COMPILED_RECORD, "w") as f:
                    json.dump(record, f, indent=1)
                print(f"wrote {planner.COMPILED_RECORD}")
            return 0
        if flags.topology is None:
            raise config_lib.ConfigError("--topology is required (e.g. v5e:2x2), or --published")
        if flags.num_slices < 1 or flags.max_candidates < 1:
            raise config_lib.ConfigError("--num-slices and --max-candidates must be >= 1")
        devices = topology_devices(flags.topology, flags.num_slices)
        common = dict(num_classes=flags.num_classes,
                      image_size=flags.image_size)
        if flags.search:
            say = None if flags.json else (lambda r: print(
                f"compiled {r['mesh']}: " + (r["error"] if "error" in r else
                f"{gib(r['memory_per_device']['total'])}, "
                f"{'fits' if r['fits'] else 'does not fit'}, collectives "
                f"{(r['collective_bytes'] or 0) / 2**20:.1f} MiB, "
                f"{(r['flops_per_step_per_device'] or 0):.3g} FLOPs/device"), flush=True))
            result = search(config, devices, max_candidates=flags.max_candidates,
                            progress=say, **common)
        else:
            result = compile_config(config, devices, **common)
    except (config_lib.ConfigError, TopologyError, ValueError) as e:
        print(f"vision-jax compile: error: {e}", file=sys.stderr)
        return 2
    if flags.json:
        print(json.dumps(result, default=str))
        return 0
    if not flags.search:
        print(format_report(result))
        return 0 if result["fits"] is not False else 1
    print(f"search over {result['candidates']} layouts of {len(devices)} devices: "
          f"{len(result['dropped_by_estimate'])} dropped by the memory estimate, "
          f"{len(result['compiled'])} compiled in {result['wall_seconds']:.1f}s")
    if result["best"] is None:
        print("no compiled layout fits")
        return 1
    print("ranked by collective bytes: " + ", ".join(
        "{data}/{fsdp}/{tensor}".format(**m) for m in result["ranked"]) + " (data/fsdp/tensor)")
    print("best:\n" + format_report(result["best"]))
    return 0

