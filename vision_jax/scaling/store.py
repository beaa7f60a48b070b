"""The results store of a sweep: one row per finished trial, rebuilt from the workdirs.

A sweep directory looks like

    DIR/trials/<name>/trial.json     what the sweep asked for: axis values, overrides,
                                     parameter counts (written before training)
    DIR/trials/<name>/summary.json   written by the trainer when the trial finished
    DIR/trials/<name>/metrics.jsonl  the trainer's metrics stream
    DIR/results.jsonl, results.csv   this module's table

The table is never appended to: `write` rebuilds it from every trial that has
both trial.json and summary.json, so it always agrees with what finished, a
crashed or resumed trial can never leave a stale row, and concurrent writers
(SLURM array tasks) each replace the file atomically with a complete table.

This module reads JSON only (no JAX), so analysis runs anywhere the sweep
directory can be copied to:

    df = store.load("workdirs/sweeps/demo")       # a pandas.DataFrame
    pandas.read_json("workdirs/sweeps/demo/results.jsonl", lines=True)

Columns of a row (FLOPs are 2 x multiply-accumulates, training = 3 x forward,
as the trainer counts them):

  trial, index                    the trial's name and its position in the sweep
  <axis key path>, ...            one column per swept config key (a grouped axis
                                  contributes one column per key it sets)
  model, dataset                  from the trainer's summary
  params, non_embedding_params    see `parameter_counts`
  forward_flops_per_example, train_flops_per_example
  examples_seen                   training examples processed (steps x batch)
  compute_flops                   examples_seen x train_flops_per_example
  final_train_loss, final_train_accuracy, final_train_error   last logged training batch
  final_eval_loss, final_eval_accuracy, final_eval_error       the final evaluation
                                  (accuracy and error None for tasks without an accuracy:
                                  diffusion, flow)
  final_eval_<metric>             its other metrics (an LM's bits_per_byte, tokens)
  wall_seconds, examples_per_second, mfu (null where the device peak is unknown)
  train_curve                     [[step, loss, error], ...] of the logged training batches
  eval_curve                      [[step, loss, error], ...] of every evaluation
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping

TRIALS = "trials"
TRIAL_FILE = "trial.json"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"
RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"

# Top-level parameter collections that are not "non-embedding" parameters.
# ViT: the patch embedding (a strided conv named 'embedding'), the position
# embedding and the classification head, as Kaplan et al. (2020) exclude the
# token and position embeddings of a language model. The cls token is kept: it
# is one vector. Other families have no embedding table; their head, whose
# size is set by the number of classes rather than by the model's scale, is
# excluded the same way.
_EMBEDDING_PARAMS = {"vit": ("embedding", "pos_embedding", "head"),
                     # the LM task's Transformer: as transformer.param_counts counts them
                     "transformer": ("embed", "position_embedding", "segment_embedding",
                                     "unembed")}
_DEFAULT_EXCLUDED = ("head",)


def trials_dir(sweepdir: str) -> str:
    return os.path.join(sweepdir, TRIALS)


def trial_dir(sweepdir: str, name: str) -> str:
    return os.path.join(trials_dir(sweepdir), name)


def is_finished(workdir: str) -> bool:
    """A trial is finished when the trainer wrote its summary (its last act)."""
    return os.path.isfile(os.path.join(workdir, SUMMARY_FILE))


def parameter_counts(params: Mapping[str, Any], model_name: str) -> dict[str, int]:
    """{'params': total, 'non_embedding_params': ...} of a parameter tree.

    `params` is a nested mapping whose leaves have a `.shape` (arrays or
    `jax.ShapeDtypeStruct`s, unboxed). Non-embedding parameters are, for ViT,
    the total minus the patch embedding, the position embedding and the head;
    for every other family, the total minus the head. These are the parameters
    that grow with the model's scale, which is what N in a scaling law means
    (Kaplan et al. 2020, sec. 2.1).
    """
    from vision_jax.flops import count_params  # JAX only here: loading results stays light

    total = count_params(params)
    excluded = _EMBEDDING_PARAMS.get(model_name, _DEFAULT_EXCLUDED)
    embedding = count_params([params[k] for k in excluded if k in params])
    return {"params": total, "non_embedding_params": total - embedding}


def _read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


def _read_metrics(workdir: str) -> list[dict]:
    """The metrics stream, skipping a last line cut short by a killed process."""
    path = os.path.join(workdir, METRICS_FILE)
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def _error(metrics: Mapping[str, Any]) -> float | None:
    """1 - accuracy of a metrics row; None for tasks without an accuracy (diffusion, flow)."""
    return None if metrics.get("accuracy") is None else 1.0 - metrics["accuracy"]


def row(workdir: str) -> dict[str, Any] | None:
    """The results row of one trial workdir, or None if it has not finished."""
    if not (is_finished(workdir) and os.path.isfile(os.path.join(workdir, TRIAL_FILE))):
        return None
    trial = _read_json(os.path.join(workdir, TRIAL_FILE))
    summary = _read_json(os.path.join(workdir, SUMMARY_FILE))
    metrics = _read_metrics(workdir)
    train = [r for r in metrics if r.get("split") == "train"]
    evals = [r for r in metrics if r.get("split") == "eval"]
    last = train[-1] if train else {}
    train_flops = summary["train_flops_per_example"]
    examples = int(last.get("examples_seen", 0))
    train_acc = last.get("accuracy")
    eval_acc = summary.get("eval_accuracy")
    return {
        "trial": trial["name"],
        "index": trial["index"],
        **trial["values"],
        "model": summary["model"],
        "dataset": summary["dataset"],
        "params": trial.get("params", summary["params"]),
        "non_embedding_params": trial.get("non_embedding_params"),
        "forward_flops_per_example": summary["forward_flops_per_example"],
        "train_flops_per_example": train_flops,
        "examples_seen": examples,
        "compute_flops": examples * train_flops,
        "final_train_loss": summary["train_loss"],
        "final_train_accuracy": train_acc,
        "final_train_error": None if train_acc is None else 1.0 - train_acc,
        # any other metric of the final evaluation (an LM's bits_per_byte, tokens)
        **{"final_" + k: v for k, v in summary.items() if k.startswith("eval_")
           and k not in ("eval_loss", "eval_accuracy")},
        "final_eval_loss": summary["eval_loss"],
        "final_eval_accuracy": eval_acc,
        "final_eval_error": None if eval_acc is None else 1.0 - eval_acc,
        "wall_seconds": summary["wall_seconds"],
        "examples_per_second": summary["examples_per_second"],
        "mfu": summary["mfu"],
        "train_curve": [[r["step"], r["loss"], _error(r)] for r in train],
        "eval_curve": [[r["step"], r["loss"], _error(r)] for r in evals],
    }


def collect(sweepdir: str) -> list[dict[str, Any]]:
    """Rows of every finished trial under `sweepdir`, in sweep order."""
    root = trials_dir(sweepdir)
    names = sorted(os.listdir(root)) if os.path.isdir(root) else []
    rows = [r for r in (row(os.path.join(root, n)) for n in names) if r is not None]
    return sorted(rows, key=lambda r: r["index"])


def load(sweepdir: str):
    """The results of `sweepdir` as a pandas.DataFrame, rebuilt from the trial workdirs."""
    import pandas as pd
    return pd.DataFrame(collect(sweepdir))


def _atomic_write(path: str, lines: Iterable[str]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.replace(tmp, path)


def write(sweepdir: str):
    """Rebuilds results.jsonl and results.csv of `sweepdir`; returns the DataFrame.

    In the CSV, the curves and any sequence-valued axis (e.g. CNN channels) are
    JSON strings; the JSONL keeps them as lists.
    """
    import pandas as pd
    rows = collect(sweepdir)
    os.makedirs(sweepdir, exist_ok=True)
    _atomic_write(os.path.join(sweepdir, RESULTS_JSONL), (json.dumps(r) + "\n" for r in rows))
    flat = [{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()}
            for r in rows]
    csv_path = os.path.join(sweepdir, RESULTS_CSV)
    tmp = f"{csv_path}.tmp{os.getpid()}"
    pd.DataFrame(flat).to_csv(tmp, index=False)
    os.replace(tmp, csv_path)
    return pd.DataFrame(rows)
