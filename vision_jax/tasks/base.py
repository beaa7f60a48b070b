"""What the trainer needs to know about an objective: the `Task` interface.

The trainer owns what every objective shares (mesh, shardings, optimizers,
EMA, accumulation, checkpoints, progress, metrics); a task owns what differs.
A task is a small object of pure functions, built from the config and the
dataset's `DatasetInfo`:

    task = tasks.build(config, info)
    params, variables = task.init(rng, task.example_batch())
    loss, metrics, variables = task.loss(params, variables, batch, rng)       # one optimizer
    loss, metrics, variables = task.loss(params, variables, batch, rng, group="generator")
    sums = task.eval_step(params, variables, batch, rng)   # per-batch sums, "count" included
    task.eval_reduce(totals)                                # -> {"loss": ..., ...}
    images = task.sample(params, variables, rng, num=64)    # generative tasks

`params` is one model's tree for a task with one optimizer (`groups == ()`),
or a dict keyed by the names in `groups` for a task with several (a GAN's
generator and discriminator). The trainer updates the groups one after the
other, inside one pure jitted step, each with its own optax chain
(`config.optimizer`, overridden per group by `config.optimizers.<group>`).
`variables` holds the non-trainable collections (e.g. `batch_stats`), keyed
the same way.

Every function here is pure and traceable: the trainer jits and shards them.
"""

from __future__ import annotations

import abc
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict


class Task(abc.ABC):
    """The default methods fit image tasks (an `image` and a `label` per example).

    Generative tasks also define `sample(params, variables, rng, *, num, **options)`
    -> images in [-1, 1], shape [num, H, W, C].
    """

    #: Optimizer groups, updated in this order; () means one optimizer over all of `params`.
    groups: tuple[str, ...] = ()
    #: Eval metric that `vision-jax sweep` and the summary read as "the" score, and its sense.
    score: str = "loss"

    def __init__(self, config: ConfigDict, info, *, dtype=jnp.float32,
                 param_dtype=jnp.float32):
        self.config = config
        self.info = info
        self.dtype = dtype
        self.param_dtype = param_dtype

    # -- data --------------------------------------------------------------
    # Image tasks read the config's TFDS dataset through the Grain pipeline;
    # a task on other data (text, environments) overrides these four.
    #: Features (or `shapes.ATTRIBUTES`) the pipeline adds to every batch
    #: beside image and label, e.g. ("color", "count") or ("caption_tokens",).
    extra_keys: tuple[str, ...] = ()

    @classmethod
    def prepare_data(cls, config: ConfigDict) -> None:
        """Generates a built-in dataset if it is absent (called on process 0 only)."""
        from vision_jax import data
        data.prepare(config.data)

    @classmethod
    def dataset_info(cls, config: ConfigDict):
        from vision_jax import data
        return data.dataset_info(config.data)

    def train_iterator(self, *, global_batch_size: int, seed: int, process_index: int,
                       process_count: int):
        """An endless iterator of process-local numpy batches with get_state/set_state."""
        from vision_jax import data
        return data.make_train_iterator(self.config.data, global_batch_size=global_batch_size,
                                        seed=seed, process_index=process_index,
                                        process_count=process_count,
                                        extra_keys=self.extra_keys)

    def eval_batches(self, split: str, *, global_batch_size: int, process_index: int,
                     process_count: int):
        """Finite process-local batches, each with a 'mask' of its real examples."""
        from vision_jax import data
        return data.make_eval_batches(self.config.data, split=split,
                                      global_batch_size=global_batch_size,
                                      process_index=process_index, process_count=process_count,
                                      extra_keys=self.extra_keys)

    # -- variables ---------------------------------------------------------
    def example_batch(self, batch_size: int = 1) -> dict:
        """A batch of zeros with the data's shapes: what `init` sees."""
        return {"image": jnp.zeros((batch_size, *self.info.image_shape), jnp.float32),
                "label": jnp.zeros((batch_size,), jnp.int32)}

    def synthetic_batch(self, batch_size: int, seed: int = 0) -> dict:
        """Random numpy data of the right shapes (the benchmark's input)."""
        rng = np.random.default_rng(seed)
        return {"image": rng.uniform(-1, 1, (batch_size, *self.info.image_shape))
                .astype(np.float32),
                "label": rng.integers(0, max(self.info.num_classes, 1), batch_size)
                .astype(np.int32)}

    @abc.abstractmethod
    def init(self, rng: jax.Array, batch: Mapping[str, jax.Array]) -> tuple[Any, dict]:
        """(params, variables) from an example batch. Boxed (logical names) leaves are fine."""

    # -- objective ---------------------------------------------------------
    @abc.abstractmethod
    def loss(self, params, variables, batch, rng, group: str | None = None):
        """-> (scalar loss, dict of scalar metrics, new variables)."""

    def eval_step(self, params, variables, batch, rng) -> dict:
        """Sums over the real examples (batch['mask'] == 1) of one eval batch.

        The default evaluates the training loss of every group on the batch
        (masked examples included in the mean: fine for the losses that are
        means over the batch; tasks with per-example losses override this).
        """
        mask = batch["mask"]
        out = {"count": mask.sum()}
        for group in self.groups or (None,):
            loss, metrics, _ = self.loss(params, variables, batch, rng, group=group)
            suffix = f"_{group}" if group else ""
            out["loss" + suffix + "_sum"] = loss * mask.sum()
            for k, v in metrics.items():
                out[k + "_sum"] = v * mask.sum()
        return out

    def eval_reduce(self, totals: Mapping[str, float]) -> dict:
        """Per-batch sums over the whole split -> the split's metrics."""
        n = max(totals["count"], 1.0)
        out = {k[:-len("_sum")]: v / n for k, v in totals.items() if k.endswith("_sum")}
        if "loss" not in out:
            out["loss"] = sum(v for k, v in out.items() if k.startswith("loss_"))
        out["examples"] = int(totals["count"])
        return out

    # -- costs -------------------------------------------------------------
    def flops_per_example(self, params, variables) -> dict:
        """Forward FLOPs per example from XLA's cost analysis of the losses
        at batch 1 (every group's forward counted once); train = 3 x forward."""
        from vision_jax import flops
        batch = flops._abstract(self.example_batch(1))
        total = 0.0
        for group in self.groups or (None,):
            def forward(p, v, b, group=group):
                return self.loss(p, v, b, jax.random.key(0), group=group)[0]
            total += flops.compiled_flops(forward, flops._abstract(params),
                                          flops._abstract(variables), batch)
        return {"forward": total, "train": 3.0 * total}

    @property
    def can_sample(self) -> bool:
        return callable(getattr(self, "sample", None))


def group_params(params, group: str | None):
    return params if group is None else params[group]


def with_group(params, group: str | None, value):
    """`params` with one group's tree replaced (the whole tree when group is None)."""
    return value if group is None else {**params, group: value}
