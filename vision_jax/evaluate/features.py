"""The in-house feature network: FID and KID without Inception weights.

Inception-v3 cannot be downloaded here, so the features come from a small CNN
trained through the one trainer (`train.train`) on `shapes` with three heads
(task `attributes`): the main object's shape (`label`, 8 classes), its colour
(8) and the number of objects (1-3). Its penultimate layer (the 128-d global
average pool of the CNN of configs/default.py) is the feature space; its
class head also scores conditional samples.

One network per resolution (`variant`: shapes_r16, shapes_r32), kept under

    $VISION_JAX_FEATURE_NET_DIR/<variant>, default
    <the directory above VISION_JAX_DATA_DIR>/feature_nets/<variant>
    (~/.cache/vision_jax/feature_nets/<variant> when neither is set)

as an ordinary run directory (config.json, checkpoints, metrics, summary.json)
plus `feature_net.json`, the record of its accuracies. `load_feature_net`
trains it when it is missing (5 min of training at 16x16 on a 2-core CPU;
configs/feature_net.py has the measured numbers) and resumes an interrupted
training.

    net = load_feature_net(16)
    feats, logits = net(images_uint8)      # [N, 128] float64, {head: [N, classes]}
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax import config as config_lib

RECORD = "feature_net.json"


def variant_name(resolution: int) -> str:
    return f"shapes_r{int(resolution)}"


def feature_net_root() -> str:
    """Where feature nets live (see the module docstring); read at call time."""
    explicit = os.environ.get("VISION_JAX_FEATURE_NET_DIR")
    if explicit:
        return os.path.expanduser(explicit)
    data_dir = os.environ.get("VISION_JAX_DATA_DIR") or "~/.cache/vision_jax/tensorflow_datasets"
    return os.path.join(os.path.dirname(os.path.abspath(os.path.expanduser(data_dir))),
                        "feature_nets")


def feature_net_config(resolution: int = 16, *, runlocal: bool = False):
    """The feature network's training config at `resolution` (configs/feature_net.py)."""
    c = config_lib.base_config()
    c.task = "attributes"
    c.attributes = {"heads": ("label", "color", "count")}
    c.data.name = "shapes"
    c.data.shapes.resolution = int(resolution)
    c.data.image_size = int(resolution)
    c.data.shapes.max_objects = 3
    # configs/default.py's CNN and recipe, without augmentation: the features
    # should see the pixels as they are. 128-d penultimate features.
    c.model = {"name": "cnn", "channels": (32, 64, 128), "convs_per_stage": 1,
               "norm": "none", "activation": "relu", "dropout": 0.0}
    c.batch_size = 64
    c.total_steps = 3000 if resolution <= 16 else 2500
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.warmup_steps = 250
    c.log_every_steps = 100
    c.eval_every_steps = 0
    c.checkpoint.every_steps = 1000
    c.checkpoint.async_save = False
    c.progress_bar = False
    if runlocal:
        c = config_lib.shrink_for_local(c)
        c.eval_every_steps = 0
    return c


@dataclasses.dataclass
class FeatureNet:
    """A trained (or, for tests, freshly initialised) attributes network on the host."""

    task: Any            # tasks.attributes.Attributes
    params: Any          # numpy trees
    variables: Any
    record: dict         # accuracies, variant, config summary
    batch_size: int = 500

    def __post_init__(self):
        self._apply = jax.jit(lambda p, v, x: self.task.features(p, v, x, with_logits=True))

    @property
    def resolution(self) -> int:
        return int(self.task.info.image_shape[0])

    @classmethod
    def from_init(cls, config, info, seed: int = 0) -> FeatureNet:
        """A randomly initialised network (plumbing tests; features still well defined)."""
        from vision_jax import tasks
        task = tasks.build(config, info)
        params, variables = task.init(jax.random.key(seed), task.example_batch())
        import flax.linen as nn
        return cls(task, jax.device_get(nn.unbox(params)), jax.device_get(nn.unbox(variables)),
                   {"variant": "random_init", "seed": seed})

    def __call__(self, images) -> tuple[np.ndarray, dict]:
        """uint8 [N, H, W, C] (or floats in [-1, 1]) -> (features float64 [N, D],
        {head: logits float32 [N, classes]})."""
        x = np.asarray(images)
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / 127.5 - 1.0
        expected = tuple(self.task.info.image_shape)
        if x.ndim != 4 or x.shape[1:] != expected:
            raise ValueError(f"images have shape {x.shape}; the feature net takes "
                             f"[N, {', '.join(map(str, expected))}]")
        feats, logits = [], []
        n, b = len(x), self.batch_size
        for s in range(0, n, b):
            chunk = x[s:s + b]
            if len(chunk) < b:  # one shape, one compilation
                chunk = np.concatenate([chunk, np.zeros((b - len(chunk), *expected), x.dtype)])
            f, lg = self._apply(self.params, self.variables, jnp.asarray(chunk, jnp.float32))
            feats.append(f)
            logits.append(lg)
        feats, logits = jax.device_get((feats, logits))
        heads = {h: np.concatenate([lg[h] for lg in logits])[:n] for h in self.task.heads}
        return np.concatenate(feats)[:n].astype(np.float64), heads


def _record_from_summary(config, summary: dict, wall: float | None) -> dict:
    heads = tuple(config.attributes.heads)
    acc = {h: summary.get("eval_accuracy" if h == "label" else f"eval_accuracy_{h}")
           for h in heads}
    return {
        "variant": variant_name(config.data.image_size), "task": config.task,
        "model": dict(config.model), "feature_dim": int(config.model.channels[-1]),
        "dataset": summary.get("dataset"), "shapes": dict(config.data.shapes),
        "steps": summary.get("steps"), "batch_size": config.batch_size,
        "test_accuracy": acc, "test_examples": summary.get("eval_examples"),
        "train_wall_seconds": summary.get("wall_seconds"),
        "command_wall_seconds": wall, "device_kind": summary.get("device_kind"),
        "devices": summary.get("devices"), "jax": jax.__version__,
        "date": datetime.date.today().isoformat(),
    }


def train_feature_net(workdir: str, config) -> dict:
    """Trains (or finishes training) the network in `workdir` through the one
    trainer and writes its record. The trainer's messages go to stderr, so a
    command's JSON on stdout stays clean."""
    from vision_jax import train
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        print(f"[vision_jax] training the feature net {variant_name(config.data.image_size)} "
              f"in {workdir} (once; later calls reuse it)", flush=True)
        summary = train.train(config, workdir)
    record = _record_from_summary(config, summary, time.perf_counter() - t0)
    with open(os.path.join(workdir, RECORD), "w") as f:
        json.dump(record, f, indent=2)
    return record


def load_feature_net(resolution: int, *, root: str | None = None, train_if_missing: bool = True,
                     config=None) -> FeatureNet:
    """The feature network for `resolution`, trained first if it is not there.

    `config` (default `feature_net_config(resolution)`) is only used to train a
    missing network; an existing one is restored with the config it was
    trained with (its workdir's config.json).
    """
    from vision_jax import sharding, train

    workdir = os.path.join(root or feature_net_root(), variant_name(resolution))
    record_path = os.path.join(workdir, RECORD)
    if not os.path.isfile(record_path):
        if not train_if_missing:
            raise FileNotFoundError(f"no feature net in {workdir}; train it with "
                                    f"`vision-jax train --config=configs/feature_net.py:"
                                    f"resolution={resolution} --workdir={workdir}`")
        os.makedirs(workdir, exist_ok=True)
        saved = os.path.join(workdir, "config.json")
        cfg = config_lib.from_json(saved) if os.path.isfile(saved) else (
            config if config is not None else feature_net_config(resolution))
        train_feature_net(workdir, cfg)
    with open(record_path) as f:
        record = json.load(f)
    cfg = config_lib.from_json(os.path.join(workdir, "config.json"))
    if int(cfg.data.image_size) != int(resolution):
        raise ValueError(f"{workdir} holds a {cfg.data.image_size}px feature net, not "
                         f"{resolution}px")
    # Restored without reading the dataset (it need not be on disk any more):
    # the shapes' info follows from the config. A data-parallel mesh over every
    # device: the parameters are replicated.
    from vision_jax import data
    from vision_jax.data import shapes
    info = data.DatasetInfo(name="shapes", num_classes=len(shapes.SHAPES),
                            image_shape=(int(resolution), int(resolution), 3),
                            split_sizes={"train": int(cfg.data.shapes.train_size),
                                         "test": int(cfg.data.shapes.test_size)})
    mesh = sharding.make_mesh({"data": -1, "fsdp": 1, "tensor": 1})
    run = train.setup(cfg, mesh, sharding.rules_from_config(cfg.logical_rules), info=info)
    _, state = train.restore_newest(run, workdir)
    params, variables = jax.device_get((state.params, state.model_state))
    return FeatureNet(run.task, params, variables, record)
