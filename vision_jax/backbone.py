"""The default backbone: a network to look through when the user brings none.

`vision-jax synthesize` (class images, inversion, DeepDream, style transfer)
and the Johnson style task need a trained feature network. When no `--workdir`
is given they use a small VGG-style CNN (configs/backbone.py: three stages of
two 3x3 convolutions with ReLU, 16/32/64 channels, max pooling, global
average pooling and a linear head) trained on `shapes` through the one
trainer (`train.train`), on first use, and kept under

    $VISION_JAX_CACHE/backbones/<name>     (~/.cache/vision_jax/backbones/<name>)

as an ordinary run directory plus `backbone.json`, the record of what it
reached. The directory is written as `<name>.partial` and renamed to `<name>`
only once training has finished and the record is written, so a training
killed half-way never looks finished: the next call resumes it from the
partial directory's newest checkpoint (the trainer's resume), and a `<name>`
directory without `backbone.json` (not written by this module) is refused
rather than trusted.

    workdir = default_workdir()            # trains once (minutes), then returns at once
    config = sample.load_run_config(workdir)

Any classification run (`--workdir`, e.g. an `import-weights` output of
VGG-16) takes its place where the user passes one: `resolve_workdir`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import sys
import time

from vision_jax import config as config_lib

NAME = "shapes_vgg_r32"
MARKER = "backbone.json"


class BackboneError(config_lib.ConfigError):
    """A cache directory that is not a finished backbone."""


def cache_root() -> str:
    """`$VISION_JAX_CACHE/backbones` (default ~/.cache/vision_jax/backbones), read at call time."""
    base = os.environ.get("VISION_JAX_CACHE") or "~/.cache/vision_jax"
    return os.path.join(os.path.abspath(os.path.expanduser(base)), "backbones")


def backbone_config(*, steps: int = 500, width_mult: float = 1.0, resolution: int = 32,
                    runlocal: bool = False):
    """The default backbone's training config (configs/backbone.py has its lab note).

    `steps`, `width_mult` and `resolution` shrink it (the tests train a tiny one
    for a few steps); `runlocal` is the project's 20-step smoke switch."""
    if steps <= 0 or width_mult <= 0 or resolution < 8:
        raise config_lib.ConfigError(f"backbone: steps={steps}, width_mult={width_mult} must "
                                     f"be positive and resolution={resolution} >= 8")
    c = config_lib.base_config()
    c.data.name = "shapes"
    c.data.shapes.resolution = int(resolution)
    c.data.image_size = int(resolution)
    # VGG's pattern (Simonyan & Zisserman 2015) at CPU size: two 3x3 convolutions
    # per stage, so each stage has an early and a late activation for style and
    # content layers. No normalisation and no augmentation: the features should
    # see pixels as they are, and the net stays a plain ReLU network (guided
    # backprop, Grad-CAM and the attacks all accept it).
    c.model = {"name": "cnn", "channels": (16, 32, 64), "convs_per_stage": 2,
               "width_mult": float(width_mult), "norm": "none", "activation": "relu",
               "dropout": 0.0}
    c.batch_size = 64
    c.total_steps = int(steps)
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.warmup_steps = min(100, max(1, steps // 10))
    c.log_every_steps = min(50, steps)
    c.eval_every_steps = 0
    c.checkpoint.every_steps = min(100, steps)
    c.checkpoint.async_save = False
    if runlocal:
        c = config_lib.shrink_for_local(c)
        c.eval_every_steps = 0
    return c


def _record(config, summary: dict, wall: float) -> dict:
    return {"name": os.path.basename(os.path.normpath(summary.get("workdir", NAME))),
            "model": dict(config.model), "dataset": config.data.name,
            "resolution": int(config.data.image_size), "steps": summary.get("steps"),
            "batch_size": config.batch_size, "params": summary.get("params"),
            "test_accuracy": summary.get("eval_accuracy"),
            "test_examples": summary.get("eval_examples"),
            "train_wall_seconds": summary.get("wall_seconds"), "command_wall_seconds": wall,
            "device_kind": summary.get("device_kind"), "devices": summary.get("devices"),
            "date": datetime.date.today().isoformat()}


def is_finished(workdir: str) -> bool:
    return os.path.isfile(os.path.join(workdir, MARKER))


def default_workdir(*, name: str = NAME, root: str | None = None, config=None,
                    train_if_missing: bool = True) -> str:
    """The run directory of the default backbone, trained first if it is not there.

    `config` (default `backbone_config()`) only matters when training starts
    from nothing; a partial directory resumes with the config it was started
    with (its config.json)."""
    final = os.path.join(root or cache_root(), name)
    if os.path.isdir(final):
        if not is_finished(final):
            raise BackboneError(
                f"{final} exists but holds no {MARKER}: it is not a finished backbone "
                f"(finished ones are renamed into place with their record). Remove it "
                f"to have it retrained, or pass a run with --workdir")
        return final
    partial = final + ".partial"
    if not train_if_missing:
        raise BackboneError(f"no default backbone in {final}; train it with "
                            f"`vision-jax train --config=configs/backbone.py "
                            f"--workdir={partial}` or let a command train it")
    from vision_jax import train
    os.makedirs(partial, exist_ok=True)
    saved = os.path.join(partial, "config.json")
    cfg = config_lib.from_json(saved) if os.path.isfile(saved) else (
        config if config is not None else backbone_config())
    t0 = time.perf_counter()
    # The trainer's messages go to stderr so a command's JSON on stdout stays clean.
    with contextlib.redirect_stdout(sys.stderr):
        print(f"[vision_jax] training the default backbone {name} in {partial} (once; "
              f"later calls reuse {final}); 20 min on 2 busy CPU cores, less on idle ones",
              flush=True)
        summary = train.train(cfg, partial)
    record = _record(cfg, {**summary, "workdir": final}, time.perf_counter() - t0)
    with open(os.path.join(partial, MARKER), "w") as f:
        json.dump(record, f, indent=2)
    try:
        os.rename(partial, final)
    except OSError:
        if not is_finished(final):  # another process finished first: keep its copy
            raise
        shutil.rmtree(partial, ignore_errors=True)
    return final


def resolve_workdir(workdir: str | None) -> str:
    """`workdir` if given, else the default backbone's (trained on first use)."""
    return workdir if workdir else default_workdir()
