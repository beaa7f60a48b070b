"""Checkpoints: the only module that imports orbax.

A checkpoint holds three items: `state` (params, optimizer state, step, RNG,
sharded arrays written by every process), `data` (the input iterator's state,
JSON) and `meta` (counters a scaling study needs after a preemption: examples
seen, compute spent, wall time; JSON).

Orbax writes each step to a temporary directory and renames it when complete,
so a process killed mid-save leaves no step that looks finished. A finished
step that still fails to restore (a truncated file, a disk error) is skipped
with a warning and the next older one is tried: nothing that can be resumed
is lost.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import jax
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint that was asked for explicitly cannot be restored."""


class Checkpointer:
    def __init__(self, directory: str, *, max_to_keep: int = 3, keep_period: int = 0,
                 async_save: bool = True):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep or None,
            keep_period=keep_period or None,
            enable_async_checkpointing=async_save,
            create=True,
            cleanup_tmp_directories=True,
        )
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "data", "meta"))

    def save(self, step: int, state: Any, data_state: dict, meta: dict) -> None:
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state),
            meta=ocp.args.JsonSave(meta)), force=True)

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore(self, abstract_state: Any, step: int | None = None):
        """Restores (state, data_state, meta) onto the shardings of `abstract_state`.

        `abstract_state` is a tree of `jax.ShapeDtypeStruct` with `.sharding`
        set: restoring onto a different mesh than the one that saved is just a
        different abstract state. With `step=None`, the newest restorable step
        is used; returns None when there is none.
        """
        steps = [step] if step is not None else self.all_steps()[::-1]
        unreadable = []
        for s in steps:
            try:
                restored = self._manager.restore(s, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract_state),
                    data=ocp.args.JsonRestore(),
                    meta=ocp.args.JsonRestore()))
            except Exception as e:  # noqa: BLE001 - any failure means "not usable"
                if step is not None:
                    raise CheckpointError(
                        f"checkpoint step {s} in {self.directory} cannot be restored: "
                        f"{type(e).__name__}: {e}") from e
                log.warning("checkpoint step %d in %s is unreadable (%s: %s); trying an "
                            "older one", s, self.directory, type(e).__name__, str(e)[:200])
                unreadable.append(s)
                continue
            self._set_aside(unreadable)
            return s, restored["state"], restored["data"], restored["meta"]
        self._set_aside(unreadable)
        return None

    def _set_aside(self, steps: list[int]) -> None:
        """Moves unreadable steps out of the way (kept for inspection, never deleted)."""
        if not steps:
            return
        if jax.process_index() == 0:
            aside = self.directory + "_unreadable"
            os.makedirs(aside, exist_ok=True)
            for s in steps:
                target = os.path.join(aside, f"{s}_{int(time.time())}")
                os.rename(os.path.join(self.directory, str(s)), target)
                log.warning("moved unreadable checkpoint step %d to %s", s, target)
        from vision_jax import distributed
        distributed.barrier("unreadable checkpoints set aside")
        self._manager.reload()

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def _checkpoint_dir(path: str) -> tuple[str, int | None]:
    """(manager directory, step or None) of a run's checkpoint dir or one step's."""
    path = os.path.abspath(path)
    parent, leaf = os.path.split(path)
    return (parent, int(leaf)) if leaf.isdigit() else (path, None)


def _read_only(path: str):
    """(read-only manager, directory, step) of `path` (the newest step of a
    checkpoint directory, or the one step named)."""
    directory, step = _checkpoint_dir(path)
    if not os.path.isdir(directory):
        raise CheckpointError(f"init checkpoint {path!r} does not exist")
    manager = ocp.CheckpointManager(directory, item_names=("state", "data", "meta"),
                                    options=ocp.CheckpointManagerOptions(read_only=True))
    step = manager.latest_step() if step is None else step
    if step is None:
        raise CheckpointError(f"no checkpoint steps in {directory!r}")
    return manager, directory, step


def restore_params(path: str, abstract_params: Any, item: str = "params") -> Any:
    """Loads only the parameters from another run's checkpoint (init_from).

    `path` is a run's checkpoint directory (newest step is used) or one step's
    directory inside it. `item="ema"` reads the run's parameter average instead
    (a reflow teacher's sampling weights).
    """
    manager, directory, step = _read_only(path)
    try:
        restored = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.PyTreeRestore(
                item={item: abstract_params},
                restore_args=jax.tree.map(
                    lambda a: ocp.ArrayRestoreArgs(sharding=a.sharding),
                    {item: abstract_params}),
                partial_restore=True)))
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"cannot read {item} from {directory!r} step {step}: {e}") from e
    return restored["state"][item]


# ---------------------------------------------------------------------------
# Imported weights (vision_jax/weights): a one-step checkpoint init_from reads
# ---------------------------------------------------------------------------

IMPORTED_META = "weights.json"  # next to the steps: where the weights came from


def save_imported(directory: str, params: Any, model_state: Any, meta: dict) -> None:
    """Writes imported weights as step 0 of a checkpoint that `init_from` reads.

    The state item holds only `params` and, for batch-norm models,
    `model_state` (={'batch_stats': ...}); `meta` (source file, sha256,
    preprocessing, ...) is written both as the meta item and as
    `<directory>/weights.json`, the mark of an imported checkpoint.
    """
    import json
    state = {"params": params}
    if jax.tree.leaves(model_state):
        state["model_state"] = model_state
    state = jax.tree.map(jax.numpy.asarray, state)
    ckpt = Checkpointer(directory, max_to_keep=0, async_save=False)
    ckpt.save(0, state, {}, meta)
    ckpt.close()
    with open(os.path.join(os.path.abspath(directory), IMPORTED_META), "w") as f:
        json.dump(meta, f, indent=2, default=str)


def imported_meta(path: str) -> dict | None:
    """The weights.json of an imported checkpoint (`path` as init_from takes
    it), or None for a trainer's checkpoint."""
    import json
    meta = os.path.join(_checkpoint_dir(path)[0], IMPORTED_META)
    if not os.path.isfile(meta):
        return None
    with open(meta) as f:
        return json.load(f)


def restore_init(path: str, abstract_params: Any, abstract_model_state: Any,
                 skip: tuple[str, ...] = ()):
    """(params, model_state or None) for init_from.

    model_state (batch-norm running statistics) is read only from imported
    weights: a pretrained network's statistics belong to its parameters. A
    trainer checkpoint gives its parameters only, as init_from always did.
    Top-level modules named in `skip` (a new classifier head) are not read:
    the trees returned lack them, and the caller keeps their fresh values.
    """
    if skip:
        unknown = sorted(set(skip) - set(abstract_params))
        if unknown:
            raise CheckpointError(f"init_from_skip names {unknown}, which the model does not "
                                  f"have; its top-level modules are {sorted(abstract_params)}")
        abstract_params = {k: v for k, v in abstract_params.items() if k not in skip}
        if isinstance(abstract_model_state, dict):
            abstract_model_state = {c: {k: v for k, v in tree.items() if k not in skip}
                                    for c, tree in abstract_model_state.items()}
    try:
        params = restore_params(path, abstract_params)
    except CheckpointError as e:
        if "shape" not in str(e):
            raise
        raise CheckpointError(f"{e}\nTo start a module fresh (e.g. a classifier head for "
                              f"another number of classes), name it in "
                              f"--config.init_from_skip; this model's top-level modules are "
                              f"{sorted(abstract_params)}") from e
    if not jax.tree.leaves(abstract_model_state) or imported_meta(path) is None:
        return params, None
    return params, restore_params(path, abstract_model_state, item="model_state")


def read_variables(path: str) -> tuple[Any, Any]:
    """(params, model_state) of a checkpoint as host NumPy trees, without knowing
    the model: the structure comes from the checkpoint's own metadata.
    `path` is a checkpoint directory (newest step) or one step's directory."""
    import numpy as np
    _, directory, step = _read_only(path)
    state = os.path.join(directory, str(step), "state")
    checkpointer = ocp.PyTreeCheckpointer()
    tree = checkpointer.metadata(state).item_metadata.tree
    tree = {k: v for k, v in tree.items() if k in ("params", "model_state")}
    restored = checkpointer.restore(state, args=ocp.args.PyTreeRestore(
        item=tree, partial_restore=True,
        restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)))
    return restored["params"], restored.get("model_state") or {}
