"""Shortcut learning and its mitigations, as classification-task options.

On `shapes` with `data.shapes.spurious=p`, the training background is the
label's own kind with probability p (the cow-on-grass / Waterbirds setting),
so the background predicts the label as well as the shape does. Test
backgrounds are independent of the label. The groups are Sagawa et al.'s
(label, background) pairs: 32 on `shapes`.

    config.shortcut.method = "erm"        # plain average loss (the default)
                           | "reweight"   # each group weighted by 1 / its training frequency
                           | "group_dro"  # Sagawa et al. 2020, online group DRO
                           | "jtt"        # Liu et al. 2021, just train twice

* Group-balanced reweighting: example weights N / (G n_g) from the counts
  n_g of the (non-empty) training groups, counted once from the train split;
  the batch loss is the weighted mean.
* Group DRO (Sagawa et al. 2020, "Distributionally Robust Neural Networks",
  Algorithm 1): group weights q live in the train state (collection
  `group_dro`, so they are checkpointed and resumed); each step
  q_g <- q_g exp(eta * loss_g) for the groups in the batch, normalised, and
  the loss is sum_g q_g loss_g. The paper's group adjustment C / sqrt(n_g)
  is not implemented.
* JTT (Liu et al. 2021, "Just Train Twice"): an ERM model trained briefly
  (`jtt_steps`) marks the training examples it gets wrong; a fresh model is
  then trained with those examples' losses weighted by `jtt_upweight` (the
  paper upsamples them instead: equal in expectation). No group labels are
  used. `vision-jax shortcuts jtt` runs both stages through the one trainer.
  The error set is keyed by image content (`image_keys`, a hash of the 8-bit
  pixels), so it needs un-augmented training images.

`vision-jax shortcuts sweep` trains every method at several correlation
strengths and writes the average and worst-group test accuracy (the lab note
of configs/shortcuts.py).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from vision_jax import subgroups

METHODS = ("erm", "reweight", "group_dro", "jtt")
DEFAULTS = dict(method="erm", dro_step_size=0.01, jtt_upweight=20.0, jtt_errors="",
                jtt_steps=200)
GROUP_FAMILY = subgroups.HEADLINE  # (label, background): the groups mitigations use


def options(config) -> ConfigDict:
    """`config.shortcut` with defaults filled in (older configs have none); checked."""
    opts = ConfigDict(DEFAULTS)
    opts.update(dict(config.get("shortcut") or {}))
    if opts.method not in METHODS:
        raise ValueError(f"shortcut.method={opts.method!r}: expected one of {METHODS}")
    if opts.method in ("reweight", "group_dro") and not subgroups.attribute_keys(config.data):
        raise ValueError(f"shortcut.method={opts.method!r} needs group attributes; dataset "
                         f"{config.data.name!r} has none (only shapes does)")
    if opts.method == "jtt":
        if not opts.jtt_errors:
            raise ValueError("shortcut.method='jtt' needs shortcut.jtt_errors (the error set "
                             "of a first ERM model): run `vision-jax shortcuts jtt`")
        augment = dict(config.data.get("augment") or {})
        if any(v for k, v in augment.items() if k != "randaugment_magnitude"):
            raise ValueError(f"shortcut.method='jtt' keys its error set by image content and "
                             f"needs un-augmented training images; data.augment={augment}")
    return opts


def needs_groups(opts) -> bool:
    return opts.method in ("reweight", "group_dro")


def group_sizes(num_classes: int) -> dict[str, int]:
    return {k: len(v) for k, v in subgroups.attribute_names([""] * num_classes).items()}


def num_groups(num_classes: int) -> int:
    sizes = group_sizes(num_classes)
    return int(np.prod([sizes[k] for k in subgroups.FAMILIES[GROUP_FAMILY]]))


def group_ids(batch, num_classes: int):
    return subgroups.group_index(batch, GROUP_FAMILY, group_sizes(num_classes))


# ---------------------------------------------------------------------------
# The losses (pure; traced inside the task's loss).


def weighted_mean(losses, weights):
    return (losses * weights).sum() / jnp.maximum(weights.sum(), 1e-12)


def balanced_weights(counts) -> np.ndarray:
    """Per-group weights N / (G n_g) over the non-empty groups (0 for empty
    ones): the average weight of a training example is 1 and every group
    carries the same total weight."""
    counts = np.asarray(counts, np.float64)
    seen = counts > 0
    return np.where(seen, counts.sum() / (seen.sum() * np.maximum(counts, 1)), 0.0)


def group_mean_losses(losses, groups, num: int):
    """(mean loss of each group in the batch (0 where absent), presence mask)."""
    onehot = jax.nn.one_hot(groups, num, dtype=losses.dtype)
    count = onehot.sum(0)
    return (losses @ onehot) / jnp.maximum(count, 1.0), count > 0


def dro_step(q, group_losses, present, step_size: float):
    """Sagawa et al.'s exponentiated-gradient ascent on the group weights:
    q_g * exp(eta * loss_g) for groups in the batch, renormalised."""
    logq = jnp.log(q) + step_size * jnp.where(present, jax.lax.stop_gradient(group_losses), 0.0)
    return jax.nn.softmax(logq)


@jax.jit
def image_keys(images):
    """A uint32 content key per image: the 8-bit pixel values (recovered from
    the normalised floats) dotted with fixed random odd multipliers, modulo
    2^32. Identical images get identical keys; two of 10^4 distinct images
    collide with probability ~1e-2 / 2^16."""
    pixels = jnp.round((images.reshape(images.shape[0], -1) + 1.0) * 127.5).astype(jnp.uint32)
    multipliers = jax.random.bits(jax.random.key(0), pixels.shape[1:], jnp.uint32) | 1
    return (pixels * multipliers[None]).sum(-1, dtype=jnp.uint32)


def is_listed(keys, table):
    """keys[i] in the sorted uint32 `table` (an empty table lists nothing)."""
    if table.shape[0] == 0:
        return jnp.zeros(keys.shape, bool)
    pos = jnp.clip(jnp.searchsorted(table, keys), 0, table.shape[0] - 1)
    return table[pos] == keys


# ---------------------------------------------------------------------------
# Host side: counts from the train split, JTT's error set.


def _train_batches(config, extra_keys=()):
    from vision_jax import data
    return data.make_eval_batches(config.data, split=config.data.train_split,
                                  global_batch_size=512, process_index=0, process_count=1,
                                  extra_keys=extra_keys)


def train_group_counts(config, num_classes: int) -> np.ndarray:
    """Examples per (label, background) group in the training split."""
    from tqdm.auto import tqdm
    counts = np.zeros(num_groups(num_classes), np.int64)
    sizes = group_sizes(num_classes)
    for b in tqdm(_train_batches(config, ("group",)), desc="group counts", leave=False):
        ids = np.asarray(subgroups.group_index(b, GROUP_FAMILY, sizes))
        np.add.at(counts, ids[b["mask"] > 0], 1)
    return counts


def error_keys(config, workdir: str) -> np.ndarray:
    """Sorted content keys of the training examples that the newest checkpoint
    in `workdir` misclassifies (JTT's error set)."""
    from tqdm.auto import tqdm

    from vision_jax.explain import restore_task
    task, params, model_state, _ = restore_task(config, workdir, why="JTT's error set")
    predict = jax.jit(task.predict)
    wrong = []
    for b in tqdm(_train_batches(config), desc="JTT errors", leave=False):
        pred = np.asarray(jnp.argmax(predict(params, model_state, b["image"]), -1))
        keep = (pred != b["label"]) & (b["mask"] > 0)
        wrong.append(np.asarray(image_keys(b["image"]))[keep])
    return np.unique(np.concatenate(wrong)).astype(np.uint32)


def _with(config: ConfigDict, **shortcut) -> ConfigDict:
    c = copy.deepcopy(config)
    with c.unlocked():
        section = ConfigDict(DEFAULTS)
        section.update(dict(c.get("shortcut") or {}))
        section.update(shortcut)
        c.shortcut = section
    return c


def jtt(config: ConfigDict, workdir: str) -> dict:
    """Just Train Twice: ERM for `shortcut.jtt_steps` steps in workdir/stage1,
    its training errors to workdir/jtt_errors.npy, then the configured run
    with them upweighted in workdir/stage2. Returns stage 2's summary (with
    the error set's size and how many minority-group examples it holds)."""
    from vision_jax import train
    first = _with(config, method="erm")
    with first.unlocked():
        first.total_steps, first.total_epochs, first.total_examples = \
            int(first.shortcut.jtt_steps), -1.0, -1
    train.train(first, os.path.join(workdir, "stage1"))
    errors = error_keys(first, os.path.join(workdir, "stage1"))
    path = os.path.join(workdir, "jtt_errors.npy")
    np.save(path, errors)
    print(f"[vision_jax] JTT: {errors.size} training errors of the ERM model -> {path}",
          flush=True)
    summary = train.train(_with(config, method="jtt", jtt_errors=os.path.abspath(path)),
                          os.path.join(workdir, "stage2"))
    summary["jtt_errors"] = int(errors.size)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def load_errors(path: str) -> np.ndarray:
    table = np.load(path, allow_pickle=False)
    if table.dtype != np.uint32 or table.ndim != 1:
        raise ValueError(f"{path}: expected a 1-D uint32 array of image keys, got "
                         f"{table.dtype} {table.shape}")
    return np.sort(table)


# ---------------------------------------------------------------------------
# The sweep of the lab note.


def sweep(config_spec: str, workdir: str, strengths, methods, overrides=()) -> list[dict]:
    """Trains each method at each correlation strength (configs/shortcuts.py's
    `strength` and `method` arguments); returns one row per run."""
    from vision_jax import config as config_lib
    from vision_jax import train
    rows = []
    path, _, arg = config_spec.partition(":")
    for strength in strengths:
        for method in methods:
            spec = f"{path}:{','.join(filter(None, [arg, f'strength={strength}', f'method={method}']))}"
            config = config_lib.load_config(spec)
            config_lib.apply_overrides(config, list(overrides))
            run_dir = os.path.join(workdir, f"{method}_{strength}")
            t0 = time.perf_counter()
            if method == "jtt":
                s = jtt(config, run_dir)
            else:
                s = train.train(config, run_dir)
            rows.append({"strength": strength, "method": method,
                         "accuracy": s["eval_accuracy"],
                         "worst_group_accuracy": s["eval_worst_group_accuracy"],
                         "worst_background_accuracy":
                             s["eval_worst_group_accuracy/background"],
                         "wall_seconds": time.perf_counter() - t0,
                         **({"jtt_errors": s["jtt_errors"]} if method == "jtt" else {})})
            with open(os.path.join(workdir, "results.json"), "w") as f:
                json.dump(rows, f, indent=2)
    return rows


def table(rows) -> str:
    """A markdown table: average / worst-group test accuracy per method and strength."""
    strengths = sorted({r["strength"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["strength"]): r for r in rows}
    lines = ["| method | " + " | ".join(f"p={s} avg / worst" for s in strengths) + " |",
             "|---" * (len(strengths) + 1) + "|"]
    for m in methods:
        vals = [f"{100 * cell[m, s]['accuracy']:.1f} / {100 * cell[m, s]['worst_group_accuracy']:.1f}"
                if (m, s) in cell else "" for s in strengths]
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def plot(rows, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["strength"])
        x = [r["strength"] for r in rs]
        axes[0].plot(x, [100 * r["accuracy"] for r in rs], "o-", label=method)
        axes[1].plot(x, [100 * r["worst_group_accuracy"] for r in rs], "o-", label=method)
    for ax, title in zip(axes, ("average test accuracy", "worst-group test accuracy")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("train P(background = label's kind)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("%")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax shortcuts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("jtt", help="JTT's two stages through the trainer")
    one.add_argument("--config", required=True)
    one.add_argument("--workdir", required=True)
    one.add_argument("overrides", nargs="*", help="config overrides key=value")
    many = commands.add_parser("sweep", help="every method at every strength")
    many.add_argument("--config", default="configs/shortcuts.py")
    many.add_argument("--workdir", required=True)
    many.add_argument("--strengths", default="0.5,0.9,0.99")
    many.add_argument("--methods", default=",".join(METHODS))
    many.add_argument("--figure", default="", help="also plot the results to this PNG")
    many.add_argument("overrides", nargs="*", help="config overrides key=value")
    args = parser.parse_args(argv)
    from vision_jax import config as config_lib
    try:
        if args.command == "jtt":
            config = config_lib.load_config(args.config)
            config_lib.apply_overrides(config, args.overrides)
            summary = jtt(config, args.workdir)
            print(json.dumps({k: summary[k] for k in ("eval_accuracy",
                                                      "eval_worst_group_accuracy",
                                                      "jtt_errors") if k in summary}))
            return 0
        methods = [m for m in args.methods.split(",") if m]
        unknown = sorted(set(methods) - set(METHODS))
        if unknown:
            raise ValueError(f"--methods: unknown {unknown}; valid: {METHODS}")
        rows = sweep(args.config, args.workdir, [float(s) for s in args.strengths.split(",")],
                     methods, args.overrides)
    except (ValueError, config_lib.ConfigError) as e:
        print(f"vision-jax shortcuts: error: {e}", file=sys.stderr)
        return 2
    print(table(rows))
    if args.figure:
        plot(rows, args.figure)
    return 0

