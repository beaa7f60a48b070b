"""Semantic segmentation: a class for every pixel.

    config.task = "segmentation"
    config.model = dict(name="fcn", variant="8s")   # or dict(name="seg_unet")

The target is `shapes`' semantic mask (uint8 [H, W]: 0 = background, class
+ 1 on each object's pixels), so there are K = num_classes + 1 classes,
background first. It reaches batches as the extra key 'segmentation' (the
pipeline's `DENSE_FEATURES`; 'mask' names a batch's real examples). In
training the mask follows the image through every geometric augmentation,
nearest-neighbour, and through no photometric one (`augment.augment_dense`);
RandAugment and mixup/cutmix are refused. Eval batches keep it at the
dataset's resolution, and the logits are resized (bilinear) to it, so
scores are always at the labels' own resolution.

The models (vision_jax/models/segmentation.py) map images to logits
[B, H, W, K]. The loss is the per-pixel softmax cross-entropy, averaged over
pixels and examples.

Evaluation accumulates the confusion matrix C (C[t, p] = pixels of true
class t predicted as p) over the whole split: integer counts per batch,
summed exactly across devices by the jitted step and across batches on the
host. From it, with TP_c = C[c, c] and union_c = sum_p C[c, p] + sum_t C[t, c]
- TP_c:

  iou_<class>     TP_c / union_c, for every class with union_c > 0
  miou            mean IoU over the classes present (union_c > 0: in the
                  ground truth or the predictions), background included
  miou_fg         the same mean without the background class
  pixel_accuracy  sum_c TP_c / sum C
  mean_accuracy   mean over classes in the ground truth of TP_c / sum_p C[c, p]
  loss            per-pixel cross-entropy, averaged per image, then over images

`miou` (background included) is the task's score. Classes absent from both
the ground truth and the predictions are left out of the means rather than
counted as 0 or 1 (the convention of mmsegmentation's `nanmean`).

`vision-jax segment --workdir=RUN` draws images, ground-truth masks and
predicted masks of the first test scenes (`main` below).
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax import flops, models
from vision_jax.tasks.base import Task
from vision_jax.tasks.classification import cross_entropy

BACKGROUND = "background"
TARGET = "segmentation"  # the batch key of the per-pixel targets


def confusion_matrix(labels: jax.Array, predictions: jax.Array, weights: jax.Array,
                     num_classes: int) -> jax.Array:
    """int32 [K, K]: C[t, p] = total weight of pixels with label t predicted p.

    labels, predictions: integer [...] in [0, K); weights: [...] (0 or 1)."""
    index = labels.astype(jnp.int32) * num_classes + predictions.astype(jnp.int32)
    counts = jnp.zeros(num_classes * num_classes, jnp.int32).at[index.reshape(-1)].add(
        weights.astype(jnp.int32).reshape(-1))
    return counts.reshape(num_classes, num_classes)


def segmentation_metrics(confusion, class_names) -> dict:
    """Per-class IoU, mIoU with and without background (class 0), pixel and
    mean class accuracy of a confusion matrix (see the module docstring)."""
    c = np.asarray(confusion, np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] != len(class_names):
        raise ValueError(f"confusion matrix of shape {c.shape} for {len(class_names)} classes")
    if c.sum() <= 0:
        raise ValueError("the confusion matrix counts no pixels")
    tp, truth, predicted = np.diag(c), c.sum(1), c.sum(0)
    union = truth + predicted - tp
    present = union > 0
    iou = np.where(present, tp / np.maximum(union, 1), np.nan)
    in_truth = truth > 0
    out = {"miou": float(np.mean(iou[present])),
           "miou_fg": float(np.mean(iou[1:][present[1:]])) if present[1:].any() else float("nan"),
           "pixel_accuracy": float(tp.sum() / c.sum()),
           "mean_accuracy": float(np.mean(tp[in_truth] / truth[in_truth]))}
    out.update({f"iou_{name}": float(v) for name, v, p in zip(class_names, iou, present) if p})
    return out


def _confusion_key(true: int, predicted: int) -> str:
    return f"confusion_{true:03d}_{predicted:03d}"


def confusion_from_totals(totals, num_classes: int) -> np.ndarray:
    """The int64 [K, K] confusion matrix of summed `eval_step` outputs (one
    scalar per cell, as the trainer sums every output on the host)."""
    return np.array([[totals[_confusion_key(t, p)] for p in range(num_classes)]
                     for t in range(num_classes)], np.int64)


class Segmentation(Task):
    """Per-pixel softmax cross-entropy; eval reports mIoU, per-class IoU, pixel accuracy."""

    score = "miou"
    extra_keys = (TARGET,)

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        from vision_jax.data import augment
        cfg = augment.AugmentConfig.from_mapping(config.data.get("augment"))
        if cfg.mixes or cfg.randaugment_layers:
            raise ValueError("task 'segmentation': data.augment mixup/cutmix and RandAugment "
                             "cannot move the per-pixel targets with the image; use crops, "
                             "crop_padding, flip, color_jitter or cutout")
        names = info.class_names or tuple(str(i) for i in range(info.num_classes))
        self.class_names = (BACKGROUND, *names)
        self.num_classes = len(self.class_names)
        self.model = models.build_model(config.model, num_classes=self.num_classes, **dtypes)

    # -- data --------------------------------------------------------------
    def example_batch(self, batch_size=1):
        batch = super().example_batch(batch_size)
        return {**batch, TARGET: jnp.zeros((batch_size, *self.info.image_shape[:2]), jnp.uint8)}

    def synthetic_batch(self, batch_size, seed=0):
        batch = super().synthetic_batch(batch_size, seed)
        rng = np.random.default_rng(seed + 1)
        batch[TARGET] = rng.integers(0, self.num_classes, (batch_size, *self.info.image_shape[:2])
                                     ).astype(np.uint8)
        return batch

    # -- model -------------------------------------------------------------
    def init(self, rng, batch):
        variables = self.model.init({"params": rng, "dropout": jax.random.fold_in(rng, 1)},
                                    batch["image"], train=False)
        return variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def predict(self, params, variables, images):
        """Logits float32 [B, H, W, K] in eval mode."""
        return self.model.apply({"params": params, **variables}, images, train=False)

    def _check(self, logits, labels):
        if logits.shape[-1] != self.num_classes or logits.ndim != 4:
            raise ValueError(f"model {self.config.model.name!r} returned logits of shape "
                             f"{logits.shape}; segmentation needs [B, H, W, {self.num_classes}] "
                             "(a model of vision_jax/models/segmentation.py)")
        if labels.ndim != 3:
            raise ValueError(f"batch[{TARGET!r}] has shape {labels.shape}; expected [B, H, W]")

    # -- objective ---------------------------------------------------------
    def loss(self, params, variables, batch, rng, group=None):
        logits, new_variables = self.model.apply(
            {"params": params, **variables}, batch["image"], train=True,
            rngs={"dropout": rng}, mutable=list(variables.keys()))
        labels = batch[TARGET].astype(jnp.int32)
        self._check(logits, labels)
        loss = cross_entropy(logits, labels, self.num_classes).mean()
        correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32).mean()
        return loss, {"pixel_accuracy": correct}, dict(new_variables)

    def eval_step(self, params, variables, batch, rng):
        labels = batch[TARGET].astype(jnp.int32)
        logits = self.predict(params, variables, batch["image"])
        self._check(logits, labels)
        if logits.shape[1:3] != labels.shape[1:]:  # score at the labels' resolution
            logits = jax.image.resize(logits, (*labels.shape, logits.shape[-1]), "bilinear")
        mask = batch["mask"]
        losses = cross_entropy(logits, labels, self.num_classes).mean((1, 2))
        pixels = jnp.broadcast_to(mask[:, None, None], labels.shape)
        confusion = confusion_matrix(labels, jnp.argmax(logits, -1), pixels, self.num_classes)
        sums = {"count": mask.sum(), "loss_sum": (losses * mask).sum()}
        sums.update({_confusion_key(t, p): confusion[t, p]
                     for t in range(self.num_classes) for p in range(self.num_classes)})
        return sums

    def eval_reduce(self, totals):
        n = max(totals["count"], 1.0)
        confusion = confusion_from_totals(totals, self.num_classes)
        return {"loss": totals["loss_sum"] / n, "examples": int(totals["count"]),
                **segmentation_metrics(confusion, self.class_names)}

    def flops_per_example(self, params, variables):
        return flops.flops_per_example(self.model, {"params": params, **variables},
                                       self.info.image_shape)


# ---------------------------------------------------------------------------
# `vision-jax segment`: a figure of predictions beside the ground truth.


def class_colors(num_classes: int) -> np.ndarray:
    """uint8 [K, 3]: near-black for the background, then tab10's colours."""
    from matplotlib import colormaps
    colors = [(30, 30, 30)] + [tuple(int(255 * v) for v in colormaps["tab10"](i)[:3])
                               for i in range(num_classes - 1)]
    return np.asarray(colors, np.uint8)


def predict_examples(config, workdir: str, num: int):
    """(step, images uint8 [N, H, W, C], true masks [N, H, W], predicted masks
    [N, H, W], class names) for the first `num` scenes of the eval split."""
    from vision_jax import config as config_lib, sharding, train
    from vision_jax.sample import to_uint8
    if config.task != "segmentation":
        raise config_lib.ConfigError(f"task {config.task!r}: `vision-jax segment` needs a "
                                     "segmentation run")
    mesh = sharding.make_mesh(dict(config.mesh))
    rules = sharding.rules_from_config(config.logical_rules)
    run, step, state = train.restore_workdir(config, workdir, mesh, rules)
    task = run.task
    params = state.ema if (config.ema.decay and config.ema.evaluate and state.ema) \
        else state.params
    predict = jax.jit(lambda p, v, x: jnp.argmax(task.predict(p, v, x), -1))
    images, truth, predicted = [], [], []
    for local in task.eval_batches(config.data.eval_split, global_batch_size=config.batch_size,
                                   process_index=0, process_count=1):
        keep = local["mask"].astype(bool)
        batch = train.global_batch({"image": local["image"]}, mesh, rules)
        pred = np.asarray(jax.device_get(predict(params, state.model_state, batch["image"])))
        if pred.shape[1:] != local[TARGET].shape[1:]:
            from vision_jax.data import augment
            pred = np.stack([augment.resize_nearest(p, local[TARGET].shape[1]) for p in pred])
        images += list(to_uint8(local["image"][keep]))
        truth += list(local[TARGET][keep])
        predicted += list(pred[keep])
        if len(images) >= num:
            break
    return (step, np.stack(images[:num]), np.stack(truth[:num]), np.stack(predicted[:num]),
            task.class_names)


def figure(images, truth, predicted, class_names, *, title: str = ""):
    """Rows: images, ground truth, prediction (one column per scene), and a legend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colors = class_colors(len(class_names))
    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(1.3 * n, 4.4), squeeze=False)
    for i in range(n):
        for row, (picture, name) in enumerate(((images[i], "image"),
                                               (colors[truth[i]], "ground truth"),
                                               (colors[predicted[i]], "predicted"))):
            ax = axes[row, i]
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.legend(handles=[Patch(color=colors[k] / 255.0, label=name)
                        for k, name in enumerate(class_names)],
               loc="lower center", ncol=min(len(class_names), 9), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95 if title else 1))
    return fig


def main(argv: list[str]) -> int:
    from vision_jax import checkpoint as ckpt_lib, config as config_lib, data
    from vision_jax.sample import load_run_config
    parser = argparse.ArgumentParser(
        prog="vision-jax segment",
        description="images, ground-truth and predicted masks of a segmentation run's "
                    "first test scenes")
    parser.add_argument("--workdir", required=True, help="a segmentation run's directory")
    parser.add_argument("--num", type=int, default=8, help="scenes to draw (default 8)")
    parser.add_argument("--out", help="PNG path (default WORKDIR/segmentation_<step>.png)")
    args = parser.parse_args(argv)
    if args.num <= 0:
        parser.error(f"--num={args.num} must be positive")
    try:
        config = load_run_config(args.workdir)
        step, images, truth, predicted, names = predict_examples(config, args.workdir,
                                                                 args.num)
    except (config_lib.ConfigError, ckpt_lib.CheckpointError, data.DatasetNotFoundError,
            ValueError) as e:
        print(f"vision-jax segment: error: {e}", file=sys.stderr)
        return 2
    fig = figure(images, truth, predicted, names,
                 title=f"{config.model.name}, step {step}: top image, ground truth, prediction")
    out = args.out or os.path.join(args.workdir, f"segmentation_{step}.png")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    print(out)
    return 0
