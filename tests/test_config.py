"""Config loading, overrides and validation: bad configs stop with clear errors."""

import argparse
import glob
import os

import jax
import numpy as np
import pytest

from vision_jax import config as config_lib
from vision_jax.config import ConfigError

from helpers import ROOT, config_path, run_cli


def test_override_sets_typed_values():
    c = config_lib.load_config(config_path("mlp.py"))
    config_lib.apply_overrides(c, ["optimizer.learning_rate=3e-4", "batch_size=64",
                                   "data.augment.flip=true", "mesh.fsdp=2"])
    assert c.optimizer.learning_rate == 3e-4 and c.batch_size == 64
    assert c.data.augment.flip is True and c.mesh.fsdp == 2


@pytest.mark.parametrize("override, needle", [
    ("optimizer.lr=1", "unknown config key 'config.optimizer.lr'"),
    ("optimizer.learning_rate=fast", "expects float"),
    ("batch_size=12.5", "expects int"),
    ("data.augment.flip=maybe", "expects a bool"),
    ("optimizer=3", "is a section"),
])
def test_bad_overrides_name_the_key(override, needle):
    c = config_lib.load_config(config_path("mlp.py"))
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        config_lib.apply_overrides(c, [override])


def test_unknown_key_lists_valid_keys():
    c = config_lib.load_config(config_path("mlp.py"))
    with pytest.raises(ConfigError) as e:
        config_lib.apply_overrides(c, ["optimizer.lr=1"])
    assert "learning_rate" in str(e.value)


def test_any_model_option_is_settable_from_its_default():
    # configs/default.py lists a few CNN options; the rest still override.
    c = config_lib.load_config(config_path("default.py"))
    assert "pool" not in c.model
    config_lib.apply_overrides(c, ["model.pool=fractional_max", "model.pool_ratio=1.5"])
    assert (c.model.pool, c.model.pool_ratio) == ("fractional_max", 1.5)
    with pytest.raises(ConfigError, match="expects float"):
        config_lib.apply_overrides(c, ["model.pool_ratio=wide"])
    with pytest.raises(ConfigError) as e:  # a typo lists the model's options too
        config_lib.apply_overrides(c, ["model.kernel_int=he_normal"])
    assert "kernel_init" in str(e.value) and "norm_groups" in str(e.value)


def test_config_argument_parsing():
    a = config_lib.parse_arg("B/16,runlocal", variant="Ti/16", runlocal=False, depth=2)
    assert a.variant == "B/16" and a.runlocal is True and a.depth == 2
    assert config_lib.parse_arg("depth=4", variant="x", depth=2).depth == 4
    with pytest.raises(ConfigError, match="unknown config argument 'widht'"):
        config_lib.parse_arg("widht=3", width=2)
    with pytest.raises(ConfigError, match="expects int"):
        config_lib.parse_arg("width=wide", width=2)


@pytest.mark.parametrize("overrides, needle", [
    (["batch_size=100"], "not divisible by the data-parallel size 8"),
    (["mesh.fsdp=3"], "does not divide the 8 available devices"),
    (["mesh.data=2", "mesh.fsdp=2", "mesh.tensor=1"], "needs 4 devices but 8 are available"),
    (["mesh.data=-1", "mesh.fsdp=-1"], "only one axis may be -1"),
    (["optimizer.name=adamax"], "choose one of"),
    (["batch_size=64", "grad_accum_steps=3"], "not divisible by config.grad_accum_steps"),
])
def test_impossible_combinations_are_rejected(overrides, needle):
    c = config_lib.load_config(config_path("mlp.py"))
    config_lib.apply_overrides(c, overrides)
    with pytest.raises(ConfigError, match=needle):
        config_lib.validate(c, num_devices=8)


@pytest.mark.parametrize("argv, needle", [
    # Gradient ascent, not a typo to train with.
    (["mlp.py", "--config.optimizer.learning_rate=-1"],
     r"config.optimizer.learning_rate=-1.0 is negative"),
    (["mlp.py", "--config.optimizer.weight_decay=-0.1"], r"config.optimizer.weight_decay=-0.1"),
    # 0 is not 'unset': default.py counts examples, and 0 steps must not fall back to them.
    (["default.py", "--config.total_steps=0"], r"config.total_steps=0 must be positive"),
    (["default.py", "--config.total_epochs=-2"], r"config.total_epochs=-2.0 must be positive"),
    # An unknown ViT size stops at validation, before the dataset is looked at.
    (["vit.py:Z/16"], r"config.model is not valid: ViT: variant='Z/16'.*'Ti', 'S'"),
    (["vit.py:B/16", "--config.model.pool=max"], r"config.model is not valid: .*pool='max'"),
])
def test_bad_inputs_stop_before_compute_naming_the_key(argv, needle):
    config, _ = config_lib.parse_config_args(
        [f"--config={config_path(argv[0])}", "--workdir=/nonexistent", *argv[1:]], "test")
    with pytest.raises(ConfigError, match=needle):
        config_lib.validate(config, num_devices=8)


def test_a_learning_rate_of_zero_is_allowed():  # it freezes the weights (tests rely on it)
    config, _ = config_lib.parse_config_args(
        [f"--config={config_path('mlp.py')}", "--workdir=w",
         "--config.optimizer.learning_rate=0.0"], "test")
    config_lib.validate(config, num_devices=8)


def test_parse_config_args(capsys):
    def extra(parser):
        parser.add_argument("--steps", type=int, default=3)

    argv = [f"--config={config_path('vit.py')}:S/16,dataset=shapes", "--workdir=runs/a",
            "--config.batch_size=64", "--steps=5", "--config.model.pool=gap"]
    config, flags = config_lib.parse_config_args(argv, "vision-jax test", extra=extra)
    assert (config.model.variant, config.batch_size, config.model.pool) == ("S/16", 64, "gap")
    assert (flags.workdir, flags.steps, flags.overrides) == (
        "runs/a", 5, ["batch_size=64", "model.pool=gap"])
    assert flags.config.endswith("vit.py:S/16,dataset=shapes")
    # A parent parser works as well; without needs_workdir there is no --workdir.
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true")
    config, flags = config_lib.parse_config_args(
        [argv[0], "--json"], "vision-jax test", extra=parent, needs_workdir=False)
    assert flags.json and flags.workdir is None and flags.overrides == []
    for bad in ([argv[0]],                                  # --workdir missing
                [argv[0], "--workdir=w", "--config.batch_size", "64"],   # not KEY=VALUE
                [argv[0], "--workdir=w", "--stpes=5"]):      # a typo
        with pytest.raises(SystemExit) as e:
            config_lib.parse_config_args(bad, "vision-jax test", extra=extra)
        assert e.value.code == 2
    assert "unrecognised arguments: --stpes=5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        config_lib.parse_config_args([argv[0], "--workdir=w"], "vision-jax test",
                                     needs_workdir=False)
    with pytest.raises(ConfigError, match="unknown config key 'config.optimizer.lr'"):
        config_lib.parse_config_args([argv[0], "--workdir=w", "--config.optimizer.lr=1"], "t")


def test_budget_units():
    c = config_lib.load_config(config_path("mlp.py"))
    c.total_epochs, c.batch_size = 2.0, 100
    assert config_lib.total_steps(c, 1000).total_steps == 20
    config_lib.apply_overrides(c, ["total_examples=2500"])  # clears total_epochs
    assert config_lib.total_steps(c, 1000).total_steps == 25
    c.total_steps = 7
    with pytest.raises(ConfigError, match="exactly one"):
        config_lib.total_steps(c, 1000)


CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))
                 + glob.glob(os.path.join(ROOT, "configs", "ssl", "*.py"))
                 + glob.glob(os.path.join(ROOT, "configs", "dense", "*.py")))


RUNLOCAL = [p for p in CONFIGS if "runlocal" in open(p).read()]


@pytest.mark.parametrize("path", CONFIGS + [p + ":runlocal" for p in RUNLOCAL],
                         ids=lambda p: os.path.basename(p))
def test_every_config_builds_abstractly(path):
    """Every config (and its runlocal switch) loads, validates and its model
    initialises abstractly: none rots."""
    c = config_lib.load_config(path)
    config_lib.validate(c, num_devices=8)
    if path.endswith(":runlocal"):  # a laptop run uses the built-in data and its splits
        assert (c.data.name, c.data.train_split, c.data.eval_split) == ("shapes", "train", "test")
    from vision_jax import data, train
    info = data.DatasetInfo(name="synthetic", num_classes=10,
                            image_shape=(c.data.image_size, c.data.image_size, 3),
                            split_sizes={c.data.train_split: 50_000})
    state = train.setup(c, info=info).abstract  # the task's models and optimizers, abstractly
    assert jax.tree.leaves(state.params) and int(np.prod(state.step.shape)) == 1


def test_video_configs_build_abstractly():
    """configs/video/clips.py for every video model (and runlocal) builds on clips
    [T, H, W, 3]; its runlocal switch stays on the built-in moving_shapes."""
    from vision_jax import data, train
    from vision_jax.models.video import VIDEO_MODELS
    for arg in [f"model={m}" for m in VIDEO_MODELS] + ["model=two_stream_flow", "runlocal"]:
        c = config_lib.load_config(config_path("video/clips.py") + ":" + arg)
        config_lib.validate(c, num_devices=8)
        assert c.data.name == "moving_shapes"
        shape = (c.data.moving_shapes.frames, c.data.image_size, c.data.image_size, 3)
        info = data.DatasetInfo(name="synthetic", num_classes=9, image_shape=shape,
                                split_sizes={c.data.train_split: 10_000})
        state = train.setup(c, info=info).abstract
        assert jax.tree.leaves(state.params), arg


def test_cli_reports_bad_config_without_traceback(tmp_path):
    proc = run_cli(["train", f"--config={config_path('mlp.py')}", f"--workdir={tmp_path}",
                    "--config.optimizer.lr=1"], check=False, timeout=120)
    assert proc.returncode == 2
    assert "unknown config key 'config.optimizer.lr'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "checkpoints")
