"""Classification: one label per image (every model of the zoo). The first task."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from vision_jax import attacks, flops, models, shortcuts, subgroups
from vision_jax.config import base_config
from vision_jax.tasks.base import Task

LOSSES = ("softmax", "multiclass_hinge")
# Scalars a model may sow for the task to report beside the loss (an ODE-Net's
# solver steps and function evaluations: vision_jax/models/ode.py); summed
# over the values one forward pass sows under a name.
DIAGNOSTICS = "diagnostics"


def pop_diagnostics(variables):
    """(metrics sown into DIAGNOSTICS, the other collections)."""
    variables = dict(variables)
    sown = variables.pop(DIAGNOSTICS, {})
    return {k: sum(v) for k, v in sown.items()}, variables


def cross_entropy(logits, labels, num_classes: int, label_smoothing: float = 0.0,
                  soft_labels=None):
    """Per-example softmax cross-entropy with optional smoothing or soft targets."""
    if soft_labels is None:
        soft_labels = jax.nn.one_hot(labels, num_classes, dtype=logits.dtype)
    if label_smoothing:
        soft_labels = soft_labels * (1.0 - label_smoothing) + label_smoothing / num_classes
    return optax.softmax_cross_entropy(logits, soft_labels)


def multiclass_hinge(logits, labels, margin: float = 1.0):
    """Per-example multiclass SVM loss (Weston & Watkins 1999, as in CS231n):
    sum over wrong classes j of max(0, s_j - s_y + margin)."""
    correct = jnp.take_along_axis(logits, labels[:, None], axis=-1)
    margins = jnp.maximum(0.0, logits - correct + margin)
    return margins.sum(-1) - margin  # the j == y term contributes exactly `margin`


def example_losses(logits, batch, *, loss: str, num_classes: int, label_smoothing: float = 0.0):
    if loss == "multiclass_hinge":
        return multiclass_hinge(logits, batch["label"])
    return cross_entropy(logits, batch["label"], num_classes, label_smoothing,
                         batch.get("soft_label"))


class Classification(Task):
    """Softmax (or hinge) loss on `config.model`'s logits; eval reports loss and accuracy."""

    score = "accuracy"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        self.model = models.build_model(config.model, num_classes=info.num_classes, **dtypes)
        # Runs written before attacks existed have no `adversarial` section.
        self.adversarial = config.get("adversarial") or base_config().adversarial
        # Mitigations of shortcut learning (vision_jax/shortcuts.py) and the
        # attributes that eval reports subgroup accuracies by (vision_jax/subgroups.py).
        self.shortcut = shortcuts.options(config)
        self.attributes = subgroups.attribute_keys(config.data)
        self.train_keys = ("group",) if shortcuts.needs_groups(self.shortcut) else ()
        # Open-set training (vision_jax/ood.py): these classes' examples get no
        # loss and leave eval, so they can serve as unseen classes afterwards.
        self.holdout = tuple(int(k) for k in (config.get("holdout_classes") or ()))
        if any(not 0 <= k < info.num_classes for k in self.holdout):
            raise ValueError(f"holdout_classes={self.holdout}: classes are 0..{info.num_classes - 1}")

    # -- data: the image pipeline, plus group attributes where they exist ----
    def train_iterator(self, *, global_batch_size, seed, process_index, process_count):
        from vision_jax import data
        return data.make_train_iterator(self.config.data, global_batch_size=global_batch_size,
                                        seed=seed, process_index=process_index,
                                        process_count=process_count, extra_keys=self.train_keys)

    def eval_batches(self, split, *, global_batch_size, process_index, process_count):
        from vision_jax import data
        return data.make_eval_batches(self.config.data, split=split,
                                      global_batch_size=global_batch_size,
                                      process_index=process_index, process_count=process_count,
                                      extra_keys=self.attributes)

    def example_batch(self, batch_size=1):
        batch = super().example_batch(batch_size)
        return {**batch, **{k: jnp.zeros((batch_size,), jnp.int32) for k in self.train_keys}}

    def synthetic_batch(self, batch_size, seed=0):
        batch = super().synthetic_batch(batch_size, seed)
        for k in self.train_keys:
            batch[k] = (batch["label"] % shortcuts.group_sizes(1)[k]).astype(batch["label"].dtype)
        return batch

    def init(self, rng, batch):
        # `rng` seeds the parameters as it did before tasks existed (same numbers).
        variables = self.model.init({"params": rng, "dropout": jax.random.fold_in(rng, 1)},
                                    batch["image"], train=False)
        extra = {}
        if self.shortcut.method == "group_dro":  # the group weights q, uniform at the start
            g = shortcuts.num_groups(self.info.num_classes)
            extra["group_dro"] = {"q": jnp.full((g,), 1.0 / g, jnp.float32)}
        return variables["params"], {**{k: v for k, v in variables.items() if k != "params"},
                                     **extra}

    @functools.cached_property
    def _group_weights(self):
        """Reweighting's per-group weights, from the training split's counts."""
        return jnp.asarray(shortcuts.balanced_weights(
            shortcuts.train_group_counts(self.config, self.info.num_classes)), jnp.float32)

    @functools.cached_property
    def _jtt_errors(self):
        return jnp.asarray(shortcuts.load_errors(self.shortcut.jtt_errors))

    def _kept(self, labels):
        """1.0 for examples of the trained classes, 0.0 for `holdout_classes`."""
        held = jnp.zeros(labels.shape, bool)
        for k in self.holdout:
            held = held | (labels == k)
        return 1.0 - held.astype(jnp.float32)

    def _reduce_loss(self, losses, batch, variables):
        """The batch loss under `shortcut.method`, and the new group-DRO weights."""
        method, keep = self.shortcut.method, self._kept(batch["label"])
        if method == "erm":
            return (shortcuts.weighted_mean(losses, keep) if self.holdout else losses.mean()), {}
        if method == "jtt":
            listed = shortcuts.is_listed(shortcuts.image_keys(batch["image"]), self._jtt_errors)
            weights = jnp.where(listed, self.shortcut.jtt_upweight, 1.0)
            return shortcuts.weighted_mean(losses, weights * keep), {}
        ids = shortcuts.group_ids(batch, self.info.num_classes)
        if method == "reweight":
            return shortcuts.weighted_mean(losses, self._group_weights[ids] * keep), {}
        num = shortcuts.num_groups(self.info.num_classes)
        group_losses, present = shortcuts.group_mean_losses(
            losses, jnp.where(keep > 0, ids, num), num)  # held-out examples join no group
        q = shortcuts.dro_step(variables["group_dro"]["q"], group_losses, present,
                               self.shortcut.dro_step_size)
        return (q * group_losses).sum(), {"group_dro": {"q": q}}

    def model_variables(self, variables):
        """The model's own collections: `variables` less the group-DRO weights."""
        return {k: v for k, v in variables.items() if k != "group_dro"}

    def _adversarial(self, params, variables, images, labels, rng, steps: int):
        """`config.adversarial`'s attack on the model in eval mode (batch norm
        frozen, so the examples do not interact)."""
        adv = self.adversarial
        # Constants to the attack: with the parameters stopped here, reverse mode
        # never linearises the attack's loop (stopping only its output would).
        params, variables = jax.lax.stop_gradient((params, variables))
        eps = attacks.to_model_units(adv.eps)
        step_size = attacks.to_model_units(adv.step_size) if adv.step_size else None
        return attacks.attack(lambda x: self.predict(params, variables, x), images, labels,
                              rng, method=adv.method, eps=eps, steps=steps,
                              step_size=step_size, norm=adv.norm, start=adv.start)

    def loss(self, params, variables, batch, rng, group=None):
        images = batch["image"]
        if self.adversarial.train:
            # Madry et al. 2018: train on the worst case in the ball, found by PGD
            # against the current parameters; no gradient flows through the attack.
            attack_rng, rng = jax.random.split(rng)
            images = self._adversarial(params, variables, images, batch["label"],
                                       attack_rng, self.adversarial.steps)
        model_variables = self.model_variables(variables)
        logits, new_variables = self.model.apply(
            {"params": params, **model_variables}, images, train=True,
            rngs={"dropout": rng}, mutable=[*model_variables.keys(), DIAGNOSTICS])
        diagnostics, new_variables = pop_diagnostics(new_variables)
        losses = example_losses(logits, batch, loss=self.config.loss,
                                num_classes=self.info.num_classes,
                                label_smoothing=self.config.label_smoothing)
        loss, updated = self._reduce_loss(losses, batch, variables)
        correct = (jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32).mean()
        return loss, {"accuracy": correct, **diagnostics}, {**new_variables, **updated}

    def forward(self, params, variables, images):
        """(eval-mode logits, the diagnostics the model sows)."""
        logits, sown = self.model.apply({"params": params, **self.model_variables(variables)},
                                        images, train=False, mutable=[DIAGNOSTICS])
        return logits, pop_diagnostics(sown)[0]

    def predict(self, params, variables, images):
        return self.forward(params, variables, images)[0]

    def eval_step(self, params, variables, batch, rng):
        logits, diagnostics = self.forward(params, variables, batch["image"])
        losses = example_losses(logits, {"label": batch["label"]}, loss=self.config.loss,
                                num_classes=self.info.num_classes)
        mask = batch["mask"] * self._kept(batch["label"]) if self.holdout else batch["mask"]
        correct = (jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32)
        sums = {"loss_sum": (losses * mask).sum(), "accuracy_sum": (correct * mask).sum(),
                "count": mask.sum(),
                **{f"{k}_sum": v * mask.sum() for k, v in diagnostics.items()}}
        adv = self.adversarial
        if adv.train or adv.eval:
            images = self._adversarial(params, variables, batch["image"], batch["label"],
                                       rng, adv.eval_steps)
            robust = jnp.argmax(self.predict(params, variables, images), -1) == batch["label"]
            sums["robust_accuracy_sum"] = (robust.astype(jnp.float32) * mask).sum()
        if self.attributes and all(k in batch for k in self.attributes):
            sums.update(subgroups.eval_sums(correct, {**batch, "mask": mask},
                                            self._attribute_names))
        return sums

    @property
    def _attribute_names(self):
        return subgroups.attribute_names(self.info.class_names)

    def eval_reduce(self, totals):
        out = super().eval_reduce({k: v for k, v in totals.items()
                                   if not subgroups.is_sum_key(k)})
        return {**out, **subgroups.report(totals, self._attribute_names)}

    def flops_per_example(self, params, variables):
        return flops.flops_per_example(self.model, {"params": params, **variables},
                                       self.info.image_shape)
