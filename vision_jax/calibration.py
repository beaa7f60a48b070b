"""Calibration of a classifier, and `vision-jax calibrate`, which ties it to
out-of-distribution detection (vision_jax/ood.py).

* Expected calibration error with equal-width confidence bins (Naeini et al.
  2015; Guo et al. 2017): ECE = sum_b (n_b / N) |acc_b - conf_b|, where
  conf is the top-class probability.
* Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural
  Networks"): one scalar T > 0 dividing the logits, fitted by minimising the
  NLL of a held-out split over log T (scipy's bounded Brent search on
  [1/20, 20]); T = 1 is kept if the search does not beat it, so the fitted
  NLL is never worse than the model's own.

    vision-jax calibrate --workdir=RUN [--figures=DIR] [--bins=15] [--noise=2000]

restores RUN's newest checkpoint (its own config.json), splits the eval
split in two halves by index (the first fits T, the second reports), and
writes RUN/calibration.json, RUN/ood.json and, under --figures (default RUN),
calibration_reliability.png and calibration_ood_scores.png. Runs trained
with `holdout_classes` (configs/open_set.py) are scored on those unseen
classes as well as on uniform noise images.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys

import numpy as np
import scipy.optimize
import scipy.special

from vision_jax import ood

BINS = 15
_BATCH = 500  # examples per forward pass
T_RANGE = (0.05, 20.0)


def confidences(probs) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, np.float64)
    return probs.max(-1), probs.argmax(-1)


def reliability(probs, labels, bins: int = BINS) -> dict:
    """Per equal-width confidence bin: count, mean confidence, accuracy."""
    conf, pred = confidences(probs)
    correct = (pred == np.asarray(labels)).astype(np.float64)
    # bin b holds confidences in (b / B, (b + 1) / B]; confidence 0 joins bin 0
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(idx, minlength=bins).astype(np.float64)
    safe = np.maximum(count, 1)
    return {"edges": np.linspace(0, 1, bins + 1), "count": count,
            "confidence": np.bincount(idx, conf, bins) / safe,
            "accuracy": np.bincount(idx, correct, bins) / safe}


def ece(probs, labels, bins: int = BINS) -> float:
    r = reliability(probs, labels, bins)
    return float((r["count"] * np.abs(r["accuracy"] - r["confidence"])).sum()
                 / r["count"].sum())


def nll(logits, labels, temperature: float = 1.0) -> float:
    logp = scipy.special.log_softmax(np.asarray(logits, np.float64) / temperature, axis=-1)
    return float(-logp[np.arange(len(logp)), np.asarray(labels)].mean())


def fit_temperature(logits, labels) -> float:
    """The T minimising the NLL of (logits / T, labels); never worse than T = 1."""
    res = scipy.optimize.minimize_scalar(
        lambda log_t: nll(logits, labels, float(np.exp(log_t))),
        bounds=tuple(np.log(T_RANGE)), method="bounded", options={"xatol": 1e-4})
    t = float(np.exp(res.x))
    return t if nll(logits, labels, t) <= nll(logits, labels, 1.0) else 1.0


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    return scipy.special.softmax(np.asarray(logits, np.float64) / temperature, axis=-1)


# ---------------------------------------------------------------------------
# Figures.


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def reliability_figure(panels: dict, path: str, bins: int = BINS) -> None:
    """One reliability diagram per {title: (probs, labels)}."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.3), squeeze=False)
    for ax, (title, (probs, labels)) in zip(axes[0], panels.items()):
        r = reliability(probs, labels, bins)
        centres = (r["edges"][:-1] + r["edges"][1:]) / 2
        seen = r["count"] > 0
        ax.bar(centres[seen], r["accuracy"][seen], width=1 / bins, edgecolor="k",
               linewidth=0.5, label="accuracy")
        ax.bar(centres[seen], (r["confidence"] - r["accuracy"])[seen],
               bottom=r["accuracy"][seen], width=1 / bins, color="tab:red", alpha=0.35,
               label="gap to confidence")
        ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence",
               title=f"{title}\nECE {100 * ece(probs, labels, bins):.2f}%")
        ax.title.set_fontsize(9)
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def scores_figure(score_sets: dict, path: str) -> None:
    """Histograms of each OOD score, {score: {set name: values}}."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(score_sets), figsize=(3.4 * len(score_sets), 3.0),
                             squeeze=False)
    for ax, (score, sets) in zip(axes[0], score_sets.items()):
        lo = min(np.percentile(v, 1) for v in sets.values())
        hi = max(np.percentile(v, 99) for v in sets.values())
        for name, values in sets.items():
            ax.hist(np.clip(values, lo, hi), bins=40, range=(lo, hi), density=True,
                    histtype="step", label=name)
        ax.set_title(score, fontsize=9)
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------------------
# The command.


def _restore(config, workdir: str):
    """(jitted images -> (logits, penultimate features), its variables, image shape)."""
    import jax

    from vision_jax.explain import restore_task
    from vision_jax.inspect_features import penultimate_features
    task, params, model_state, _ = restore_task(config, workdir, why="calibration and OOD")
    variables = {"params": params, **task.model_variables(model_state)}
    forward = jax.jit(lambda v, x: (task.model.apply(v, x, train=False),
                                    penultimate_features(task.model, v, x)))
    return forward, variables, task.info.image_shape


def _outputs(config, forward, variables, split: str, max_examples: int | None = None):
    """(logits, penultimate features, labels) of a split's real examples."""
    import jax
    from tqdm.auto import tqdm

    from vision_jax import data
    batches = data.make_eval_batches(config.data, split=split, global_batch_size=_BATCH,
                                     process_index=0, process_count=1)
    limit = None if max_examples is None else -(-max_examples // _BATCH)
    out = []
    for b in tqdm(itertools.islice(batches, limit), desc=f"{split} logits", leave=False):
        logits, feats = jax.device_get(forward(variables, b["image"]))
        keep = b["mask"] > 0
        out.append((logits[keep], feats[keep], b["label"][keep]))
    return [np.concatenate(x) for x in zip(*out)]


def _over(probs, threshold: float) -> float:
    return float((probs.max(-1) > threshold).mean())


def calibrate(config, workdir: str, *, figures: str | None = None, bins: int = BINS,
              num_noise: int = 2000, train_examples: int = 10_000) -> tuple[dict, dict]:
    """calibration.json and ood.json of a classification run (see the module doc)."""
    holdout = tuple(int(k) for k in (config.get("holdout_classes") or ()))
    forward, variables, image_shape = _restore(config, workdir)
    logits, feats, labels = _outputs(config, forward, variables, config.data.eval_split)
    seen = ~np.isin(labels, holdout)
    half = len(labels) // 2
    fit, rep = np.zeros(len(labels), bool), np.zeros(len(labels), bool)
    fit[:half], rep[half:] = True, True
    fit, rep = fit & seen, rep & seen
    t = fit_temperature(logits[fit], labels[fit])
    cal = {"temperature": t, "bins": bins, "fit_examples": int(fit.sum()),
           "report_examples": int(rep.sum()),
           "fit_nll": {"before": nll(logits[fit], labels[fit]),
                       "after": nll(logits[fit], labels[fit], t)}}
    for name, temp in (("before", 1.0), ("after", t)):
        probs = softmax(logits[rep], temp)
        cal[name] = {"ece": ece(probs, labels[rep], bins), "nll": nll(logits[rep], labels[rep], temp),
                     "accuracy": float((probs.argmax(-1) == labels[rep]).mean()),
                     "mean_confidence": float(probs.max(-1).mean())}
    figures = figures or workdir
    os.makedirs(figures, exist_ok=True)
    reliability_figure({"before (T = 1)": (softmax(logits[rep]), labels[rep]),
                        f"after (T = {t:.2f})": (softmax(logits[rep], t), labels[rep])},
                       os.path.join(figures, "calibration_reliability.png"), bins)

    # OOD: Gaussians on the training features of the trained classes.
    _, train_feats, train_labels = _outputs(config, forward, variables,
                                            config.data.train_split, train_examples)
    classes = [c for c in range(logits.shape[-1]) if c not in holdout]
    means, precision = ood.fit_gaussians(train_feats, train_labels, classes)
    import jax
    noise = ood.noise_images(num_noise, image_shape)
    # padded to whole batches of the eval batch size: one compiled shape
    padded = np.concatenate([noise, np.zeros((-num_noise % _BATCH, *image_shape), np.float32)])
    noise_logits, noise_feats = (np.concatenate(x)[:num_noise] for x in zip(*(
        jax.device_get(forward(variables, padded[i:i + _BATCH]))
        for i in range(0, len(padded), _BATCH))))
    sets = {"in-distribution": (logits[seen], feats[seen]), "noise": (noise_logits, noise_feats)}
    if holdout:
        sets["held-out classes"] = (logits[~seen], feats[~seen])
    s = {name: ood.scores(lg, ft, means, precision) for name, (lg, ft) in sets.items()}
    result = {"holdout_classes": list(holdout), "temperature": t,
              "examples": {name: int(len(lg)) for name, (lg, _) in sets.items()},
              "auroc": {other: {score: ood.auroc(s["in-distribution"][score], s[other][score])
                                for score in ood.SCORES}
                        for other in sets if other != "in-distribution"},
              "share_p_over_0.9": {name: _over(softmax(lg), 0.9) for name, (lg, _) in sets.items()},
              "share_p_over_0.9_after_temperature": {name: _over(softmax(lg, t), 0.9)
                                                     for name, (lg, _) in sets.items()},
              "mean_max_probability": {name: float(softmax(lg).max(-1).mean())
                                       for name, (lg, _) in sets.items()}}
    scores_figure({score: {name: s[name][score] for name in sets} for score in ood.SCORES},
                  os.path.join(figures, "calibration_ood_scores.png"))
    for name, obj in (("calibration.json", cal), ("ood.json", result)):
        with open(os.path.join(workdir, name), "w") as f:
            json.dump(obj, f, indent=2)
    return cal, result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--figures", default=None, help="folder for the PNGs (default: workdir)")
    parser.add_argument("--bins", type=int, default=BINS)
    parser.add_argument("--noise", type=int, default=2000, help="noise images scored as OOD")
    parser.add_argument("--train-examples", type=int, default=10_000,
                        help="training examples the Mahalanobis Gaussians are fitted on")
    args = parser.parse_args(argv)
    from vision_jax import config as config_lib
    from vision_jax.sample import load_run_config
    try:
        config = load_run_config(args.workdir)
        cal, result = calibrate(config, args.workdir, figures=args.figures, bins=args.bins,
                                num_noise=args.noise, train_examples=args.train_examples)
    except (ValueError, config_lib.ConfigError) as e:
        print(f"vision-jax calibrate: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"calibration": cal, "ood": result}, indent=2))
    return 0
