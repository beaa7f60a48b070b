"""Attributes: several labels per image, one softmax head each.

Built for the in-house feature network of `vision_jax/evaluate` (FID and KID
without Inception weights): on `shapes`, heads for the main object's shape
(`label`), its colour (`color`) and the number of objects (`count`). Any zoo
model whose classifier is a layer named `head` works: its logits are the
heads' logits side by side, split here, and the head's input is the
penultimate feature vector (`features`).

    config.task = "attributes"
    config.attributes.heads = ("label", "color", "count")   # the default

The extra targets come from the Grain pipeline's `extra_keys` (a feature of
the dataset, or an attribute derived from one: `data/shapes.py: ATTRIBUTES`).
The loss is the sum of the heads' cross-entropies; `accuracy` (the score) is
the `label` head's, `accuracy_<head>` the others'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax import flops, models
from vision_jax.models.layers import apply_with_features
from vision_jax.tasks.base import Task
from vision_jax.tasks.classification import cross_entropy

DEFAULT_HEADS = ("label", "color", "count")


def head_sizes(config, info) -> dict[str, int]:
    """{head: number of classes} of the configured heads, in order."""
    section = config.get("attributes") or {}
    heads = tuple(section.get("heads", DEFAULT_HEADS))
    if not heads or heads[0] != "label":
        raise ValueError(f"attributes.heads={heads!r} must start with 'label' (the score)")
    from vision_jax.data import shapes
    sizes = {"label": info.num_classes, "color": len(shapes.COLOR_NAMES),
             # counts run 1..max_objects; class 0 is never a target
             "count": int(config.data.shapes.max_objects) + 1}
    unknown = [h for h in heads if h not in sizes]
    if unknown:
        raise ValueError(f"attributes.heads: unknown heads {unknown}; valid: {sorted(sizes)}")
    return {h: sizes[h] for h in heads}


def _accuracy_key(head: str) -> str:
    return "accuracy" if head == "label" else f"accuracy_{head}"


class Attributes(Task):
    """A multi-head classifier: one softmax per attribute on one backbone."""

    score = "accuracy"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        self.heads = head_sizes(config, info)
        self.model = models.build_model(config.model, num_classes=sum(self.heads.values()),
                                        **dtypes)

    @property
    def extra_keys(self) -> tuple[str, ...]:
        return tuple(h for h in self.heads if h != "label")

    def example_batch(self, batch_size=1):
        batch = super().example_batch(batch_size)
        return {**batch, **{h: jnp.zeros((batch_size,), jnp.int32) for h in self.extra_keys}}

    def synthetic_batch(self, batch_size, seed=0):
        batch = super().synthetic_batch(batch_size, seed)
        rng = np.random.default_rng(seed + 1)
        for head, size in self.heads.items():
            if head != "label":
                batch[head] = rng.integers(0, size, batch_size).astype(np.int32)
        return batch

    # -- model -------------------------------------------------------------
    def init(self, rng, batch):
        variables = self.model.init({"params": rng, "dropout": jax.random.fold_in(rng, 1)},
                                    batch["image"], train=False)
        return variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def split_logits(self, logits) -> dict:
        bounds = np.cumsum(list(self.heads.values()))[:-1].tolist()
        return dict(zip(self.heads, jnp.split(logits, bounds, axis=-1)))

    def predict(self, params, variables, images) -> dict:
        """{head: logits} in eval mode."""
        logits = self.model.apply({"params": params, **variables}, images, train=False)
        return self.split_logits(logits)

    def features(self, params, variables, images, *, with_logits: bool = False):
        """Penultimate features: the input of the model's `head` layer, float32 [B, D]
        (and the {head: logits} too with `with_logits`)."""
        logits, feats = apply_with_features(self.model, {"params": params, **variables}, images,
                                            train=False)
        return (feats, self.split_logits(logits)) if with_logits else feats

    # -- objective ---------------------------------------------------------
    def _losses(self, logits: dict, batch) -> tuple[dict, dict]:
        """Per-example cross-entropy and correctness of every head."""
        losses, correct = {}, {}
        for head, size in self.heads.items():
            losses[head] = cross_entropy(logits[head], batch[head], size)
            correct[head] = (jnp.argmax(logits[head], -1) == batch[head]).astype(jnp.float32)
        return losses, correct

    def loss(self, params, variables, batch, rng, group=None):
        out, new_variables = self.model.apply(
            {"params": params, **variables}, batch["image"], train=True,
            rngs={"dropout": rng}, mutable=list(variables.keys()))
        losses, correct = self._losses(self.split_logits(out), batch)
        loss = sum(v.mean() for v in losses.values())
        metrics = {_accuracy_key(h): c.mean() for h, c in correct.items()}
        metrics.update({f"loss_{h}": v.mean() for h, v in losses.items()})
        return loss, metrics, dict(new_variables)

    def eval_step(self, params, variables, batch, rng):
        losses, correct = self._losses(self.predict(params, variables, batch["image"]), batch)
        mask = batch["mask"]
        out = {"count": mask.sum(), "loss_sum": (sum(losses.values()) * mask).sum()}
        for head in self.heads:
            out[_accuracy_key(head) + "_sum"] = (correct[head] * mask).sum()
            out[f"loss_{head}_sum"] = (losses[head] * mask).sum()
        return out

    def flops_per_example(self, params, variables):
        return flops.flops_per_example(self.model, {"params": params, **variables},
                                       self.info.image_shape)
