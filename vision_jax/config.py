"""Configs: loading `file.py:arg`, command-line overrides, validation, units.

A config file defines `get_config(arg: str | None) -> ConfigDict`, usually by
starting from `base_config()` and changing what its experiment needs. The
returned dict is locked: an override of a key that does not exist, or of the
wrong type, is an error that names the key and what would have been valid.

Arguments after the colon are parsed by `parse_arg`, whose keyword defaults
give both the valid keys and their types (big_vision's convention):

    configs/vit.py:B/16              -> variant='B/16'
    configs/vit.py:variant=S/16,runlocal

Every command that runs a config reads its command line with
`parse_config_args` (--config=FILE[:ARG], --workdir, --config.KEY=VALUE), and
`validate` stops a config that cannot run before any compute.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import math
import os
from typing import Any, Callable, Sequence

import ml_collections
from ml_collections import ConfigDict


class ConfigError(ValueError):
    """A config that cannot run. Raised before any compute."""


# ---------------------------------------------------------------------------
# The base config: every field the trainer reads, with its default.
# ---------------------------------------------------------------------------

def base_config() -> ConfigDict:
    c = ConfigDict()
    c.seed = 0
    # The objective (vision_jax/tasks): what the one trainer optimises.
    c.task = "classification"

    c.data = ConfigDict(dict(
        name="shapes", data_dir=ml_collections.FieldReference(None, field_type=str),
        train_split="train", eval_split="test", num_train_examples=-1,
        image_size=32, image_key="image", label_key="label", worker_count=0,
        # 'auto': small splits are read once into memory and augmented per batch
        # by jitted ops (vision_jax/data/memory.py), the rest through Grain;
        # True/False force either (True still falls back for what it lacks).
        in_memory=ml_collections.FieldReference("auto", field_type=object),
        label_noise=0.0,  # fraction of training labels redrawn at random (Zhang et al. 2017)
        label_noise_seed=0,
        # Zhang et al. 2017's image randomisations, all splits, labels kept:
        # 'none', 'shuffled_pixels', 'random_pixels' or 'gaussian' (data/pipeline.py).
        image_randomization="none",
        image_randomization_seed=0,
        shapes=dict(resolution=32, max_objects=3, train_size=50_000, test_size=10_000,
                    seed=0, group_skew=0.0),
        augment=dict(crop_padding=0, random_resized_crop=False, flip=False,
                     color_jitter=0.0, randaugment_layers=0, randaugment_magnitude=9,
                     cutout=0, mixup_alpha=0.0, cutmix_alpha=0.0),
    ))
    # Model keys depend on the family; `build_model` validates them.
    c.model = ConfigDict(dict(name="mlp"))

    # Budget: exactly one of these three is positive. Scaling studies speak
    # in examples; everything is turned into steps by `total_steps`.
    c.total_steps = -1
    c.total_epochs = -1.0
    c.total_examples = -1
    c.batch_size = 128  # global, over all processes and devices
    c.grad_accum_steps = 1

    c.optimizer = ConfigDict(dict(
        name="adamw", learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, momentum=0.9,
        weight_decay=1e-4, decay_norms_and_biases=False, grad_clip_norm=1.0))
    # Tasks with several optimizer groups (a GAN's generator and discriminator)
    # override `optimizer`'s keys per group: optimizers.<group>.<key>.
    c.optimizers = ConfigDict()
    # An exponential moving average of the parameters, kept in the state
    # (checkpointed, sharded like the parameters); 0 turns it off. With
    # `evaluate`, eval and sampling use the average.
    c.ema = ConfigDict(dict(decay=0.0, evaluate=True))
    c.schedule = ConfigDict(dict(
        name="cosine", warmup_steps=0, end_factor=0.0,
        boundaries=(0.5, 0.75), step_factor=0.1))
    # Adversarial training and evaluation (classification; vision_jax/attacks.py).
    # Budgets in 1/255 of the pixel range, as papers quote them. train: Madry
    # PGD-AT; eval (implied by train): robust accuracy under the same attack
    # with eval_steps steps beside the clean accuracy. step_size 0: 2.5 eps/steps.
    c.adversarial = ConfigDict(dict(train=False, eval=False, method="pgd", norm="linf",
                                    eps=8.0, steps=7, step_size=0.0, start="random",
                                    eval_steps=10))
    c.loss = "softmax"  # or "multiclass_hinge" (a linear SVM when the model is linear)
    c.label_smoothing = 0.0

    # Mixed precision: parameters and computation dtypes separately.
    # 'auto' computes in bfloat16 on GPU/TPU and float32 on CPU.
    c.param_dtype = "float32"
    c.compute_dtype = "auto"

    # Sharding is data: mesh sizes and the logical-to-mesh rules.
    c.mesh = ConfigDict(dict(data=-1, fsdp=1, tensor=1))
    c.logical_rules = ml_collections.FieldReference(None, field_type=tuple)

    c.log_every_steps = 50
    c.eval_every_steps = 0  # 0: only at the end
    c.checkpoint = ConfigDict(dict(every_steps=500, max_to_keep=3, keep_period=0,
                                   async_save=True))
    # Resume order: workdir checkpoint, else resume_from, else init_from, else scratch.
    c.resume_from = ""
    c.init_from = ""
    # Top-level parameter modules that init_from leaves at their fresh init,
    # e.g. ("head",) to fine-tune imported weights on another number of classes.
    c.init_from_skip = ml_collections.FieldReference((), field_type=tuple)
    # Sparse training: a .npz mask keyed by parameter path (vision_jax/prune.py).
    # Applied when a run starts (fresh or init_from), then carried by its
    # checkpoints; pruned weights stay exactly zero. '' trains dense.
    c.prune = ConfigDict(dict(mask=""))
    c.stop_on_nan = True
    c.progress_bar = True
    c.transfer_guard = "disallow"
    # A jax.profiler trace of steps [first_step, first_step + steps) into dir
    # ('' : none); `vision-jax train --profile=DIR` sets dir.
    c.profile = ConfigDict(dict(dir="", first_step=10, steps=5))
    # Energy per run (vision_jax/energy.py): the grid's carbon intensity for the
    # summary's CO2e; None is the world average that energy.GRID_SOURCE cites.
    c.energy = ConfigDict(dict(
        grid_gco2_per_kwh=ml_collections.FieldReference(None, field_type=float)))
    return c


def imagenet_recipe(c: ConfigDict, *, batch_size: int = 1024, epochs: float = 90.0) -> ConfigDict:
    """ImageNet-1k data and schedule shared by the model families' configs:
    224px, random-resized ("inception") crop and flip, evaluation on the
    validation split. Model-specific regularisation is added by each config."""
    c.data.name = "imagenet2012"
    c.data.image_size = 224
    c.data.eval_split = "validation"
    c.data.augment.random_resized_crop = True
    c.data.augment.flip = True
    c.batch_size = batch_size
    c.total_epochs = epochs
    c.eval_every_steps = 5000
    c.checkpoint.every_steps = 2000
    return c


def small_image_recipe(c: ConfigDict, dataset: str, *, epochs: float = 30.0) -> ConfigDict:
    """32x32 datasets (shapes, digits, cifar10): pad-and-crop by 4 and flip."""
    c.data.name = dataset
    c.data.augment.crop_padding = 4
    c.data.augment.flip = True
    c.batch_size = 128
    c.total_epochs = epochs
    c.eval_every_steps = 2000
    return c


def denoising_config(task: str, *, resolution: int, variant: str) -> ConfigDict:
    """The CPU recipe diffusion and flow configs share (configs/ddpm.py, flow.py): a
    U-Net `variant` on single-shape `shapes` at `resolution`, batch 64 for 2000 steps,
    Adam 1e-3 clipped at 1, cosine decay to 5% after 100 warm-up steps, EMA 0.998.
    The task's own section is the caller's."""
    c = base_config()
    c.task = task
    c.data.name = "shapes"
    c.data.shapes.resolution = resolution
    c.data.image_size = resolution
    c.data.shapes.max_objects = 1
    c.model = {"name": "unet", "variant": variant, "dropout": 0.0}
    c.batch_size = 64
    c.total_steps = 2000
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.weight_decay = 0.0
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 100
    c.schedule.end_factor = 0.05
    # 0.998: a 500-step horizon, so that after 2000 steps the average holds
    # 0.998^2000 = 2% of the initial weights (0.999 would keep 14%).
    c.ema.decay = 0.998
    c.log_every_steps = 50
    c.eval_every_steps = 0
    c.checkpoint.every_steps = 500
    return c


def shrink_for_local(c: ConfigDict) -> ConfigDict:
    """The `runlocal` switch: a few steps on a small `shapes` set, on any laptop."""
    c.data.name = "shapes"
    c.data.train_split, c.data.eval_split = "train", "test"
    c.data.image_size = c.data.shapes.resolution
    c.data.shapes.train_size, c.data.shapes.test_size = 1024, 256
    c.total_steps, c.total_epochs, c.total_examples = 20, -1.0, -1
    c.batch_size = 64
    c.log_every_steps = 5
    c.eval_every_steps = 10
    c.checkpoint.every_steps = 10
    return c


def parse_arg(arg: str | None, **defaults: Any) -> ConfigDict:
    """Parses 'a=1,b=x,flag' with types taken from `defaults`.

    A bare first item fills the first non-bool key (so 'B/16' means
    variant='B/16'); other bare items switch boolean keys on.
    """
    out = dict(defaults)
    if not arg:
        return ConfigDict(out)
    first_key = next((k for k, v in defaults.items() if not isinstance(v, bool)), None)
    for i, item in enumerate(a for a in arg.split(",") if a):
        if "=" in item:
            key, value = item.split("=", 1)
        elif isinstance(defaults.get(item), bool):
            key, value = item, "True"
        elif i == 0 and first_key is not None:
            key, value = first_key, item
        else:
            raise ConfigError(
                f"config argument {item!r} is not one of the switches "
                f"{[k for k, v in defaults.items() if isinstance(v, bool)]}; "
                f"use key=value with keys {sorted(defaults)}")
        if key not in defaults:
            raise ConfigError(f"unknown config argument {key!r}; valid: {sorted(defaults)}")
        out[key] = _parse_value(value, defaults[key], f"config argument {key!r}")
    return ConfigDict(out)


def load_config(spec: str) -> ConfigDict:
    """Loads 'path/to/file.py[:arg]' and returns its locked ConfigDict."""
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    module_spec = importlib.util.spec_from_file_location(
        f"vision_jax_config_{abs(hash(os.path.abspath(path)))}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {path!r} defines no get_config(arg)")
    config = module.get_config(arg or None)
    config.lock()
    return config


def from_json(path: str) -> ConfigDict:
    """The resolved config a run wrote (`<workdir>/config.json`), locked.

    JSON has no tuples: lists come back as tuples, as the config files write them.
    """
    import json

    def tuples(x):
        if isinstance(x, dict):
            return {k: tuples(v) for k, v in x.items()}
        return tuple(tuples(v) for v in x) if isinstance(x, list) else x

    with open(path) as f:
        config = ConfigDict(tuples(json.load(f)))
    config.lock()
    return config


def _parse_value(text: str, current: Any, where: str) -> Any:
    """Parses `text` into the type of `current`."""
    if isinstance(current, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(f"{where} expects a bool (true/false), got {text!r}")
    if isinstance(current, str):
        return text
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ConfigError(f"{where} expects {type(current).__name__}, got {text!r}") from None
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(current):
            raise ConfigError(f"{where} expects {type(current).__name__}, got {text!r}")
        return value
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    if current is not None and isinstance(current, (tuple, list)):
        if not isinstance(value, (tuple, list)):
            raise ConfigError(f"{where} expects a tuple, got {text!r}")
        return tuple(value)
    return value


def add_model_options(model_cfg: ConfigDict, keys: Sequence[str] | None = None) -> None:
    """Adds the model's own defaults for `keys` (default: all its options) that
    `model_cfg` does not set; keys the model does not have are left out.

    A config file lists only the model options it changes; any other option of
    the model (`--config.model.pool=fractional_max` on configs/default.py) is
    still settable, starting from the model's own default.
    """
    import dataclasses as dc

    from vision_jax import models  # imported only here: loading configs stays light

    options = models.model_options(model_cfg.get("name"))
    if not options:
        return  # build_model reports an unknown model name with the valid ones
    fields = {f.name: f for f in dc.fields(models.MODELS[model_cfg.name])}
    with model_cfg.unlocked():
        for key in options if keys is None else keys:
            if (key in options and key not in model_cfg
                    and fields[key].default is not dc.MISSING):
                model_cfg[key] = fields[key].default


def apply_overrides(config: ConfigDict, overrides: Sequence[str]) -> ConfigDict:
    """Applies 'a.b.c=value' strings (from `--config.a.b.c=value` flags)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form --config.key=value")
        dotted, text = item.split("=", 1)
        parts = dotted.split(".")
        node = config
        for depth, part in enumerate(parts):
            here = ".".join(["config"] + parts[:depth + 1])
            if len(parts) == 2 and node is config.get("model") and part not in node:
                add_model_options(node, [part])
            if not isinstance(node, ConfigDict) or part not in node:
                valid = sorted(node.keys()) if isinstance(node, ConfigDict) else []
                if node is config.get("model"):
                    from vision_jax import models
                    valid = sorted(set(valid) | set(models.model_options(node.get("name"))))
                raise ConfigError(f"unknown config key {here!r}; valid keys here: {valid}")
            if depth < len(parts) - 1:
                node = node[part]
        key = parts[-1]
        current = node[key]
        if isinstance(current, ConfigDict):
            raise ConfigError(f"{'config.' + dotted!r} is a section; set one of its keys: "
                              f"{sorted(current.keys())}")
        field = node.get_ref(key) if current is not None else None
        field_type = getattr(field, "_field_type", None) if field is not None else None
        if current is None and field_type is str:
            value = None if text.lower() == "none" else text
        else:
            value = _parse_value(text, current, f"config.{dotted}")
        try:
            node[key] = value
        except TypeError as e:
            raise ConfigError(f"config.{dotted}: {e}") from None
        if dotted in BUDGET_KEYS and value > 0:
            # The budget keys are exclusive: `--config.total_steps=100` on a
            # config that counts epochs means "100 steps instead".
            for other in BUDGET_KEYS:
                if other != dotted:
                    config[other] = type(config[other])(-1)
    return config


def parse_config_args(
        argv: Sequence[str], prog: str, *,
        extra: argparse.ArgumentParser | Callable[[argparse.ArgumentParser], Any] | None = None,
        needs_workdir: bool = True, description: str | None = None,
) -> tuple[ConfigDict, argparse.Namespace]:
    """The one command-line parser of the commands that run a config:

        --config=FILE.py[:ARG] [--workdir=DIR] [--config.KEY=VALUE ...] [EXTRA ...]

    Returns the loaded config with the overrides applied, and the namespace of
    every flag: `config` (the FILE[:ARG] spec as given), `workdir` (None when
    `needs_workdir` is False: the command then takes no --workdir at all),
    `overrides` (the KEY=VALUE strings, in order) and the caller's own flags.
    `extra` adds those: an argparse parent parser (made with add_help=False)
    or a function that adds arguments to the parser. A malformed command line
    exits with argparse's usage message (status 2); a config that cannot load
    or an override that does not fit raises ConfigError naming the key.
    """
    parents = [extra] if isinstance(extra, argparse.ArgumentParser) else []
    parser = argparse.ArgumentParser(prog=prog, description=description, parents=parents)
    parser.add_argument("--config", required=True, metavar="FILE[:ARG]",
                        help="config file and its argument, e.g. configs/vit.py:B/16; "
                             "then --config.KEY=VALUE overrides, e.g. --config.batch_size=64")
    if needs_workdir:
        parser.add_argument("--workdir", required=True, help="run directory")
    else:
        parser.set_defaults(workdir=None)
    if extra is not None and not parents:
        extra(parser)
    flags, rest = parser.parse_known_args(list(argv))
    bad = [r for r in rest if not r.startswith("--config.")]
    if bad:
        parser.error(f"unrecognised arguments: {' '.join(bad)} (config overrides are "
                     "written --config.KEY=VALUE)")
    flags.overrides = [r[len("--config."):] for r in rest]
    config = load_config(flags.config)
    apply_overrides(config, flags.overrides)
    return config, flags


# ---------------------------------------------------------------------------
# Validation and units
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Budget:
    total_steps: int
    steps_per_epoch: float


BUDGET_KEYS = ("total_steps", "total_epochs", "total_examples")


def _budget_given(config: ConfigDict) -> dict[str, float]:
    """{key: value} of the one budget key the config sets; -1 leaves a key
    unset, and 0 or another negative value is an error, not 'unset'."""
    for key in BUDGET_KEYS:
        if config[key] != -1 and config[key] <= 0:
            raise ConfigError(
                f"config.{key}={config[key]} must be positive (-1 leaves it unset); the "
                f"budget is exactly one of {['config.' + k for k in BUDGET_KEYS]}, and setting "
                "one on the command line clears the others")
    given = {k: config[k] for k in BUDGET_KEYS if config[k] > 0}
    if len(given) != 1:
        raise ConfigError(
            "set exactly one of config.total_steps, config.total_epochs, "
            f"config.total_examples to a positive value; got {given or 'none'}")
    return given


def total_steps(config: ConfigDict, num_train_examples: int) -> Budget:
    """Turns whichever of steps / epochs / examples the config used into steps."""
    given = _budget_given(config)
    steps_per_epoch = num_train_examples / config.batch_size
    if "total_steps" in given:
        steps = config.total_steps
    elif "total_epochs" in given:
        steps = math.ceil(config.total_epochs * steps_per_epoch)
    else:
        steps = math.ceil(config.total_examples / config.batch_size)
    return Budget(int(max(steps, 1)), steps_per_epoch)


_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "lamb")
_SCHEDULES = ("constant", "step", "cosine", "linear")
_DTYPES = ("float32", "bfloat16", "float16")


def validate(config: ConfigDict, *, num_devices: int, process_count: int = 1) -> None:
    """Stops impossible configs before any compute, naming the key."""
    from vision_jax import sharding  # local: keeps `vision-jax datasets` light

    def choice(key: str, value: Any, valid: Sequence[Any]) -> None:
        if value not in valid:
            raise ConfigError(f"config.{key}={value!r} is not valid; choose one of {list(valid)}")

    choice("optimizer.name", config.optimizer.name, _OPTIMIZERS)
    choice("schedule.name", config.schedule.name, _SCHEDULES)
    from vision_jax import tasks  # local: the registry only names modules, imports nothing
    choice("task", config.task, tuple(tasks.REGISTRY))
    choice("loss", config.loss, ("softmax", "multiclass_hinge"))
    if not 0.0 <= config.ema.decay < 1.0:
        raise ConfigError(f"config.ema.decay={config.ema.decay} must be in [0, 1) (0: no EMA)")
    if config.prune.mask and tasks.get_class(config.task).groups:
        raise ConfigError(f"config.prune.mask: pruning needs a task with one optimizer; "
                          f"task {config.task!r} has several")
    adv = config.get("adversarial")
    if adv is not None and (adv.train or adv.eval):
        if config.task != "classification":
            raise ConfigError(f"config.adversarial: attacks need the classification task, "
                              f"not {config.task!r}")
        choice("adversarial.method", adv.method, ("fgsm", "pgd"))
        choice("adversarial.norm", adv.norm, ("linf", "l2"))
        choice("adversarial.start", adv.start, ("zero", "random", "fgsm"))
        if adv.eps < 0 or adv.steps < 1 or adv.eval_steps < 1 or adv.step_size < 0:
            raise ConfigError(f"config.adversarial: eps={adv.eps}, step_size={adv.step_size} "
                              f"must be >= 0 and steps={adv.steps}, "
                              f"eval_steps={adv.eval_steps} >= 1")
    choice("param_dtype", config.param_dtype, _DTYPES)
    choice("compute_dtype", config.compute_dtype, _DTYPES + ("auto",))
    if config.batch_size <= 0:
        raise ConfigError(f"config.batch_size={config.batch_size} must be positive")
    _budget_given(config)
    groups = {"optimizer": config.optimizer,
              **{f"optimizers.{g}": o for g, o in (config.get("optimizers") or {}).items()}}
    for where, opt in groups.items():
        # 0 is allowed: it freezes the weights (a rewound ticket's check, a resume test).
        if opt.get("learning_rate", 0.0) < 0:
            raise ConfigError(f"config.{where}.learning_rate={opt.learning_rate} is negative: "
                              "that is gradient ascent; use a rate >= 0")
        if opt.get("weight_decay", 0.0) < 0:
            raise ConfigError(f"config.{where}.weight_decay={opt.weight_decay} must be >= 0")
    _check_model(config.model)
    if config.grad_accum_steps <= 0:
        raise ConfigError(f"config.grad_accum_steps={config.grad_accum_steps} must be positive")
    try:
        sizes = sharding.resolve_mesh_shape(dict(config.mesh), num_devices)
        rules = sharding.rules_from_config(config.logical_rules)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    batch_axes = dict(rules).get("batch")
    names = batch_axes if isinstance(batch_axes, tuple) else (batch_axes,)
    dp = math.prod(sizes[a] for a in names if a is not None)
    micro = config.batch_size // config.grad_accum_steps
    if config.batch_size % config.grad_accum_steps:
        raise ConfigError(
            f"config.batch_size={config.batch_size} is not divisible by "
            f"config.grad_accum_steps={config.grad_accum_steps}")
    if micro % dp:
        raise ConfigError(
            f"config.batch_size={config.batch_size} (micro-batch {micro}) is not divisible by "
            f"the data-parallel size {dp} (mesh {sizes}, batch sharded over {list(names)}); "
            f"use a multiple of {dp}")
    if config.batch_size % process_count:
        raise ConfigError(
            f"config.batch_size={config.batch_size} is not divisible by the "
            f"{process_count} processes")
    if config.checkpoint.every_steps <= 0:
        raise ConfigError("config.checkpoint.every_steps must be positive")


def _check_model(model_cfg: ConfigDict) -> None:
    """Constructs the model (no parameters, no compute), so that an unknown
    size ('configs/vit.py:Z/16'), key or option value of a zoo model stops
    here rather than after the dataset is read. Models outside the zoo are
    left to their task."""
    from vision_jax import models  # local: keeps loading configs light

    if model_cfg.get("name") not in models.MODELS:
        return
    try:
        models.build_model(model_cfg, num_classes=1)
    except ValueError as e:
        raise ConfigError(f"config.model is not valid: {e}") from None
