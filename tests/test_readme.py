"""The README's two commands: the first runs end to end (shortened), the second is CI's."""

import os
import re
import shlex

from vision_jax import metrics

from helpers import ROOT, TINY_SHAPES, run_cli


def readme_commands() -> list[str]:
    with open(os.path.join(ROOT, "README.md")) as f:
        return re.findall(r"```bash\n(.*?)\n```", f.read(), flags=re.S)


def test_first_command_trains_the_default_config(tmp_path):
    first = readme_commands()[0]
    train_part = first.split("&&")[-1].strip()
    args = shlex.split(train_part)
    assert args[:2] == ["vision-jax", "train"]
    args = [a if not a.startswith("--workdir=") else f"--workdir={tmp_path / 'run'}"
            for a in args[2:]]
    # Same command, shortened: a small dataset and a few steps.
    run_cli(["train", *args, f"--config.data.data_dir={tmp_path / 'tfds'}",
             *[f"--config.{o}" for o in TINY_SHAPES], "--config.total_steps=12",
             "--config.eval_every_steps=6", "--config.checkpoint.every_steps=6",
             "--config.log_every_steps=6"], devices=1)
    evals = metrics.read_metrics(str(tmp_path / "run"), "eval")
    assert [r["step"] for r in evals] == [6, 12]


def test_ci_runs_exactly_the_second_command():
    second = readme_commands()[1]
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci_lines = [line.strip() for line in f]
    assert second.strip() in ci_lines
