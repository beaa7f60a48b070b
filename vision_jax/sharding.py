"""Meshes, logical axis rules and the shardings of state and inputs.

Models name every parameter axis logically (`nn.with_logical_partitioning`);
the config decides how those names map onto mesh axes. The vocabulary:

  batch     leading axis of activations and input batches
  embed     model width (ViT hidden size, MLP input features, d_model)
  mlp       hidden width of an MLP block, or any "fan-out" dense dimension
  heads     attention heads
  kv        per-head feature dimension
  classes   classifier outputs
  vocab     token embedding rows
  conv_in   input channels of a convolution kernel
  conv_out  output channels of a convolution kernel
  norm      scale/bias of normalisation layers over channels
  seq       sequence/position axis of position embeddings
  layers    the stacked-layer axis introduced by `nn.scan`
  None      never sharded (kernel height/width, tiny axes)

The mesh has three named axes, `data`, `fsdp` and `tensor`, so that data
parallel, FSDP and tensor parallel layouts are a matter of their sizes:

  data parallel:   mesh.data=-1                 (parameters replicated)
  FSDP:            mesh.fsdp=-1, mesh.data=1    (parameters sharded over fsdp)
  tensor parallel: mesh.tensor=-1, mesh.data=1  (mlp/heads/conv_out split)

A dimension that a mesh axis does not divide is replicated rather than
rejected, so the first convolution's 3 input channels or a 10-class head
never stop a layout that suits the rest of the model.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")

# Default logical-to-mesh rules. The batch is split over every axis that
# carries different examples; parameters over fsdp (storage) and tensor (compute).
DEFAULT_RULES: tuple[tuple[str, Any], ...] = (
    ("batch", ("data", "fsdp")),
    ("embed", "fsdp"),
    ("conv_in", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("conv_out", "tensor"),
    ("vocab", "tensor"),
    ("kv", None),
    ("classes", None),
    ("norm", None),
    ("seq", None),
    ("layers", None),
)


def resolve_mesh_shape(mesh_cfg: Mapping[str, int], num_devices: int) -> dict[str, int]:
    """Turns {'data': -1, 'fsdp': 2, 'tensor': 1} into concrete sizes.

    At most one axis may be -1 (it takes the remaining devices). Raises
    ValueError, naming the config keys, when the sizes cannot tile the devices.
    """
    unknown = set(mesh_cfg) - set(MESH_AXES)
    if unknown:
        raise ValueError(
            f"config.mesh has unknown axes {sorted(unknown)}; valid axes: {list(MESH_AXES)}")
    sizes = {a: int(mesh_cfg.get(a, 1)) for a in MESH_AXES}
    free = [a for a, s in sizes.items() if s == -1]
    if len(free) > 1:
        raise ValueError(f"config.mesh: only one axis may be -1, got {free}")
    for a, s in sizes.items():
        if s == 0 or s < -1:
            raise ValueError(f"config.mesh.{a}={s}: sizes are positive integers or -1")
    fixed = math.prod(s for s in sizes.values() if s != -1)
    if free:
        if num_devices % fixed:
            raise ValueError(
                f"config.mesh={dict(mesh_cfg)}: the fixed axes multiply to {fixed}, "
                f"which does not divide the {num_devices} available devices")
        sizes[free[0]] = num_devices // fixed
    elif fixed != num_devices:
        raise ValueError(
            f"config.mesh={dict(mesh_cfg)} needs {fixed} devices but {num_devices} are "
            f"available; set one axis to -1 to absorb the rest")
    return sizes


def slice_count(devices: Sequence) -> int:
    """How many TPU slices `devices` span (1 on GPUs, CPUs and single slices)."""
    return len({getattr(d, "slice_index", 0) or 0 for d in devices})


def make_mesh(mesh_cfg: Mapping[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A mesh with Auto axes (what Linen's logical partitioning expects).

    On several TPU slices (devices with different `slice_index`: a multi-slice
    pod, or `vision-jax compile --num-slices`) the mesh is hybrid: the data
    axis spans the slices, whose links (DCN) are slow, and fsdp/tensor stay
    inside a slice (ICI).
    """
    devices = list(jax.devices() if devices is None else devices)
    sizes = resolve_mesh_shape(mesh_cfg, len(devices))
    shape = tuple(sizes[a] for a in MESH_AXES)
    auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
    slices = slice_count(devices)
    if slices > 1:
        if sizes["data"] % slices:
            raise ValueError(
                f"config.mesh={dict(mesh_cfg)}: the data axis ({sizes['data']}) must be a "
                f"multiple of the {slices} slices, since data parallelism crosses them")
        from jax.experimental import mesh_utils
        ici = (sizes["data"] // slices, sizes["fsdp"], sizes["tensor"])
        grid = mesh_utils.create_hybrid_device_mesh(ici, (slices, 1, 1), devices=devices)
        return Mesh(grid, MESH_AXES, axis_types=auto)
    if len(devices) == len(jax.devices()):
        return jax.make_mesh(shape, MESH_AXES, axis_types=auto)
    return Mesh(np.asarray(devices).reshape(shape), MESH_AXES, axis_types=auto)


def rules_from_config(rules: Sequence[Sequence[Any]] | None) -> tuple[tuple[str, Any], ...]:
    if rules is None:
        return DEFAULT_RULES
    out = []
    for rule in rules:
        if len(rule) != 2:
            raise ValueError(f"config.logical_rules entry {rule!r} is not a (name, mesh_axes) pair")
        name, axes = rule
        axes = tuple(axes) if isinstance(axes, (list, tuple)) else axes
        for a in (axes if isinstance(axes, tuple) else (axes,)):
            if a is not None and a not in MESH_AXES:
                raise ValueError(
                    f"config.logical_rules maps {name!r} to unknown mesh axis {a!r}; "
                    f"valid: {list(MESH_AXES)}")
        out.append((name, axes))
    return tuple(out)


def _fit_spec(spec: P, shape: Sequence[int], mesh: Mesh) -> P:
    """Drops mesh axes from dimensions that they do not divide."""
    fitted = []
    for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
        if axes is None:
            fitted.append(None)
            continue
        names = axes if isinstance(axes, tuple) else (axes,)
        kept = []
        for a in names:
            size = mesh.shape[a]
            if dim % (size * math.prod(mesh.shape[k] for k in kept)) == 0:
                kept.append(a)
        fitted.append(tuple(kept) if len(kept) > 1 else (kept[0] if kept else None))
    return P(*fitted)


def logical_to_sharding(abstract_tree: Any, mesh: Mesh, rules) -> Any:
    """NamedShardings for a tree of (possibly boxed) abstract values.

    `abstract_tree` is what `jax.eval_shape(model.init, ...)` returns: leaves
    wrapped in `nn.LogicallyPartitioned` carry names; plain leaves (optimizer
    counters, RNG keys) are replicated.
    """
    specs = nn.get_partition_spec(abstract_tree)
    mesh_specs = nn.logical_to_mesh(specs, rules)
    unboxed = nn.unbox(abstract_tree)

    def to_sharding(spec, leaf):
        spec = spec if isinstance(spec, P) else P()
        return NamedSharding(mesh, _fit_spec(spec, np.shape(leaf), mesh))

    return jax.tree.map(to_sharding, mesh_specs, unboxed,
                        is_leaf=lambda x: isinstance(x, P) or x is None)


def batch_sharding(mesh: Mesh, rules) -> NamedSharding:
    """Sharding of an input batch: its leading axis follows the 'batch' rule."""
    spec = nn.logical_to_mesh(P("batch"), rules)
    return NamedSharding(mesh, spec)


def data_parallel_size(mesh: Mesh, rules) -> int:
    """How many ways the batch axis is split (what the batch size must divide by)."""
    axes = batch_sharding(mesh, rules).spec[0]
    if axes is None:
        return 1
    names = axes if isinstance(axes, tuple) else (axes,)
    return math.prod(mesh.shape[a] for a in names)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


# Activation constraints. Parameters are laid out by their names; activations
# follow by XLA's propagation, which under FSDP may shard them like the weights
# (width over fsdp) and gather the batch instead. Models pin the activations
# that matter with `constrain`; the trainer supplies the mesh and rules while
# it traces its steps (`activation_sharding`). Outside that context (tests,
# init, eval_shape) `constrain` is the identity.
_ACTIVATION_CONTEXT: contextvars.ContextVar = contextvars.ContextVar("activations", default=None)


@contextlib.contextmanager
def activation_sharding(mesh: Mesh, rules):
    token = _ACTIVATION_CONTEXT.set((mesh, rules))
    try:
        yield
    finally:
        _ACTIVATION_CONTEXT.reset(token)


def traced_with_activation_sharding(fn, mesh: Mesh, rules):
    """`fn` whose tracing happens inside `activation_sharding(mesh, rules)`."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with activation_sharding(mesh, rules):
            return fn(*args, **kwargs)
    return wrapped


def constrain(x: jax.Array, names: tuple) -> jax.Array:
    """Pins `x` to the layout of its logical `names` (names without a rule: unsplit)."""
    context = _ACTIVATION_CONTEXT.get()
    if context is None:
        return x
    mesh, rules = context
    spec = _fit_spec(nn.logical_to_mesh(P(*names), rules), x.shape, mesh)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))
