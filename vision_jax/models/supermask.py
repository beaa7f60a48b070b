"""A supermask over any classifier of the zoo: its weights frozen at their random
initialisation, only a mask over them learned (edge-popup; vision_jax/prune.py).

    model = {'name': 'supermask', 'base': {'name': 'mlp', 'hidden': (300, 100)},
             'density': 0.5}

The frozen weights live in the 'supermask' collection (model state: sharded
and checkpointed like batch statistics, never touched by the optimizer); the
trainable parameters are the scores, one per prunable kernel weight, so the
optimizer, the trainer and every task run unchanged. Base models with state of
their own (batch norm) are refused: their statistics would belong to weights
that are masked differently at every step.
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax import prune
from vision_jax.models.layers import check_choice

COLLECTION = "supermask"


def _rebox(boxed: Any, raw: Any) -> Any:
    """`raw`'s arrays in `boxed`'s logical-axis boxes, matched by parameter path."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(boxed, is_leaf=_is_box)
    boxes = {prune.path_name(p): b for p, b in leaves}
    return jax.tree_util.tree_map_with_path(
        lambda p, v: boxes[prune.path_name(p)].replace_boxed(v)
        if _is_box(boxes.get(prune.path_name(p))) else v, raw)


def _is_box(x: Any) -> bool:
    return isinstance(x, nn.meta.AxisMetadata)


class Supermask(nn.Module):
    """`base` (a model config) with frozen weights and a learned edge-popup mask.

    density: the fraction of each prunable kernel's weights kept (Ramanujan et
    al. 2020's k); output_density: the classifier's ('head'), default density.
    weights: 'signed_constant' (sign of the init times its layer's RMS, the
    papers' best) or 'init' (the initial weights as drawn).
    """

    num_classes: int
    base: Mapping[str, Any] | None = None
    density: float = 0.5
    output_density: float | None = None
    weights: str = "signed_constant"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        if not hasattr(self.base, "items") or "name" not in self.base:
            raise ValueError(f"{owner}: base={self.base!r} must be a model config with a name, "
                             "e.g. {'name': 'mlp', 'hidden': (300, 100)}")
        if self.base["name"] == "supermask":
            raise ValueError(f"{owner}: base cannot itself be a supermask")
        for key in ("density", "output_density"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise ValueError(f"{owner}: {key}={value!r} must be in (0, 1]")
        check_choice(owner, "weights", self.weights, prune.SUPERMASK_WEIGHTS)
        super().__post_init__()

    def _base_model(self) -> nn.Module:
        from vision_jax.models import build_model  # models/__init__ imports this module
        base = self.base.to_dict() if hasattr(self.base, "to_dict") else dict(self.base)
        return build_model(base, num_classes=self.num_classes, dtype=self.dtype,
                           param_dtype=self.param_dtype).clone(parent=None)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        model = self._base_model()
        drawn = {}

        def init_base():
            variables = model.init({"params": self.make_rng("params")}, x, train=False)
            extra = sorted(set(variables) - {"params"})
            if extra:
                raise ValueError(f"Supermask: base model {self.base['name']!r} has state "
                                 f"{extra}; a supermask needs a model without it")
            drawn["boxed"] = variables["params"]
            return variables["params"]

        def init_frozen():
            # The base's own initialisation (signed constants of it by default).
            boxed = init_base()
            return _rebox(boxed, self._frozen(nn.unbox(boxed)))

        weights = self.variable(COLLECTION, "weights", init_frozen).value
        def init_scores(rng):
            # Flax also calls this abstractly in apply, to check the shapes: it
            # reads the boxes (logical axis names) off an abstract init of the base.
            boxed = drawn.get("boxed") or jax.eval_shape(
                lambda: model.init(jax.random.key(0), x, train=False))["params"]
            return _rebox(boxed, prune.supermask_scores(weights, rng))

        scores = self.param("scores", init_scores)
        masked = prune.supermask_apply(weights, scores, density=self.density,
                                       output_density=self.output_density)
        rngs = {"dropout": self.make_rng("dropout")} if train and self.has_rng("dropout") else {}
        return model.apply({"params": masked}, x, train=train, rngs=rngs)

    def _frozen(self, params: Any) -> Any:
        return prune.signed_constant(params) if self.weights == "signed_constant" else params
