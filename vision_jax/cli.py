"""The `vision-jax` command: one subcommand per job, each in its own module.

Subcommands are imported lazily so that `vision-jax datasets list` or
`vision-jax tables` never pay for importing the trainer.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, function, one-line help). Each function takes argv (a list
# of strings, without the subcommand) and returns an exit code.
SUBCOMMANDS = {
    "train": ("vision_jax.train", "cli_main", "train a config (resumes by itself in its workdir)"),
    "eval": ("vision_jax.train", "eval_cli_main", "evaluate the latest checkpoint of a workdir"),
    "bench": ("vision_jax.bench", "cli_main", "time the real train step on synthetic data"),
    "compile": ("vision_jax.aot", "cli_main",
                "AOT-compile the train step for a TPU slice: memory, flops, collectives"),
    "datasets": ("vision_jax.data.cli", "main", "list or prepare the built-in datasets"),
    "tables": ("vision_jax.scaling.tables", "main", "parameter/FLOP tables of the published models"),
    "plan": ("vision_jax.scaling.planner", "main", "training time and memory estimates"),
    "fit": ("vision_jax.scaling.fit", "main", "fit scaling laws to results"),
    "sweep": ("vision_jax.scaling.sweep", "main", "run a sweep of trials through the trainer"),
    "lottery": ("vision_jax.scaling.lottery", "main", "lottery tickets: pruning vs re-init"),
    "initstats": ("vision_jax.initstats", "main", "per-layer activation statistics at init"),
    "sample": ("vision_jax.sample", "main", "draw images from a trained generative run"),
    "segment": ("vision_jax.tasks.segmentation", "main",
                "predicted masks of a segmentation run beside the ground truth"),
    "attack": ("vision_jax.robustness", "main",
               "robustness curve and fooling images of a trained classifier"),
    "explain": ("vision_jax.explain", "main",
                "attribution maps of a trained classifier and their sanity checks"),
    "inspect": ("vision_jax.inspect_features", "main",
                "what a classifier learned: filters, neighbours, t-SNE, top patches"),
    "synthesize": ("vision_jax.synthesis", "main",
                   "class visualisation, feature inversion, DeepDream, style transfer"),
    "import-weights": ("vision_jax.weights.cli", "import_main",
                       "import timm/torchvision/big_vision weights as an init_from checkpoint"),
    "export-weights": ("vision_jax.weights.cli", "export_main",
                       "write a run's weights as timm-named .safetensors"),
    "evaluate-samples": ("vision_jax.evaluate.samples", "main",
                         "FID/KID/precision/recall of generated samples (in-house features)"),
    "probe": ("vision_jax.probe", "main", "linear and kNN probes of a run's frozen encoder"),
    "shortcuts": ("vision_jax.shortcuts", "main", "spurious backgrounds: JTT, mitigation sweep"),
    "calibrate": ("vision_jax.calibration", "main", "ECE, temperature scaling, OOD scores of a run"),
    "rl": ("vision_jax.rl.run", "cli_main",
           "train an RL agent (PPO, DQN, REINFORCE) on vmapped gymnax envs"),
}


def _usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = ["usage: vision-jax <command> [options]", "", "commands:"]
    for name, (_, _, text) in SUBCOMMANDS.items():
        lines.append(f"  {name:<{width}}  {text}")
    return "\n".join(lines)


def _quiet_absl() -> None:
    """TFDS logs through absl at WARNING for routine events (custom builder
    configs, the PIL image decoder); keep the terminal for what matters."""
    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"vision-jax: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, function, _ = SUBCOMMANDS[name]
    _quiet_absl()
    return int(getattr(importlib.import_module(module), function)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
