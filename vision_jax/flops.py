"""Parameter and FLOP counts: XLA's count of the real model, and analytic ones.

Convention: one multiply-accumulate is 2 FLOPs. XLA's cost analysis follows it
for dots and convolutions and adds one FLOP per elementwise operation
(normalisation, activations, softmax), so for transformers it sits a percent or
two above the matmul-only analytic count. Training is taken as 3x the forward
pass (the backward pass costs about twice the forward: gradients with respect
to both activations and weights), the convention of Kaplan et al. 2020 and
Hoffmann et al. 2022; rematerialisation adds recomputation on top of it, which
these counts deliberately leave out (they measure the model, not the schedule).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.vit import decode_variant


def count_params(params: Any) -> int:
    """Number of scalars in a parameter tree.

    Accepts boxed (`nn.LogicallyPartitioned`) or plain leaves, concrete arrays
    or abstract `jax.ShapeDtypeStruct`s (what `jax.eval_shape(model.init, ...)`
    returns). Pass `variables['params']`: batch-norm running statistics are not
    parameters.
    """
    leaves = jax.tree.leaves(nn.unbox(params))
    return sum(math.prod(getattr(x, "shape", ())) for x in leaves)


def _abstract(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)),
                        nn.unbox(tree))


def compiled_flops(fn, *abstract_args) -> float:
    """XLA's FLOP count of `fn` on abstract arguments, compiled for the CPU
    whatever the default backend: on GPU, convolutions become cuDNN custom
    calls that XLA's cost analysis does not count."""
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        return _cost_flops(jax.jit(fn).lower(*abstract_args).compile())


def program_memory(compiled) -> dict[str, int] | None:
    """Per-device bytes of a compiled program (XLA's `memory_analysis`):
    arguments, outputs, aliased (donated), temporaries, generated code, and
    `total` = arguments + outputs - aliased + temporaries, the data one call
    holds at its peak. None where the backend does not report it."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if m is None:
        return None
    out = {"argument": m.argument_size_in_bytes, "output": m.output_size_in_bytes,
           "alias": m.alias_size_in_bytes, "temp": m.temp_size_in_bytes,
           "code": getattr(m, "generated_code_size_in_bytes", 0)}
    out = {k: int(v) for k, v in out.items()}
    out["total"] = out["argument"] + out["output"] - out["alias"] + out["temp"]
    return out


def _cost_flops(compiled) -> float:
    # cost_analysis() returned a list with one dict per program in older jax,
    # a dict in newer ones.
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float(cost.get("flops", 0.0)) if cost else 0.0


def flops_per_example(model: nn.Module, variables: Any,
                      image_shape: Sequence[int]) -> dict[str, float]:
    """XLA's FLOP count of one example: {'forward': F, 'train': 3 * F}.

    Lowers and compiles `model.apply(variables, images, train=False)` on a batch
    of one, from abstract shapes only, so nothing is allocated however big the
    model; `variables` may be concrete, abstract, boxed or not.

    The count is taken on a twin of the model that computes the same function
    in a form XLA can count: XLA's cost analysis counts a loop body once, not
    once per iteration, so `scan=True` models are unrolled (abstract parameters
    re-derived from `model.init`); and a fused attention kernel is an opaque
    custom call to it, so attention is lowered as plain XLA dots.
    """
    images = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)
    if getattr(model, "attention_impl", "xla") != "xla":
        model = model.clone(attention_impl="xla")
    if getattr(model, "scan", False):
        model = model.clone(scan=False)
        variables = jax.eval_shape(functools.partial(model.init, train=False),
                                   jax.random.key(0), images)

    def forward(variables, images):
        return model.apply(variables, images, train=False)

    forward_flops = compiled_flops(forward, _abstract(variables), images)
    return {"forward": forward_flops, "train": 3.0 * forward_flops}


def vit_flops(variant: str, image_size: int, num_classes: int, pool: str = "tok", *,
              channels: int = 3, **overrides: int | None) -> dict[str, float]:
    """Analytic forward FLOPs of one example through a ViT (matmuls only, 2 x MACs).

    With T tokens (patches, plus the class token for pool='tok'), width D and
    MLP width M, each encoder block costs 2*T*(4*D^2 + 2*D*M) for its weight
    matmuls and 4*T^2*D for attention (QK^T and AV). `forward_no_attention`
    drops the T^2 term: it is the 2 x parameters x tokens approximation that
    scaling-law papers use. `overrides` (width, depth, mlp_dim, num_heads) are
    those of the ViT model.
    """
    size, patch = decode_variant(variant, **overrides)
    if image_size % patch:
        raise ValueError(f"vit_flops: image_size={image_size} is not a multiple of patch={patch}")
    if pool not in ("tok", "gap"):
        raise ValueError(f"vit_flops: pool={pool!r}; valid choices: ['tok', 'gap']")
    patches = (image_size // patch) ** 2
    tokens = patches + (pool == "tok")
    d, m = size.width, size.mlp_dim
    embedding = 2 * patches * patch * patch * channels * d
    block_dense = 2 * tokens * (4 * d * d + 2 * d * m)
    block_attention = 4 * tokens * tokens * d
    head = 2 * d * num_classes
    no_attention = embedding + size.depth * block_dense + head
    return {"forward": float(no_attention + size.depth * block_attention),
            "forward_no_attention": float(no_attention)}
