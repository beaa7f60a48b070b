"""Preemption and checkpoints: SIGKILL and resume, corrupt steps, other meshes, two processes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from vision_jax import checkpoint as ckpt_lib, metrics, sample, sharding, train

from helpers import ROOT, TINY_SHAPES, config_path, run_cli, tiny_config

COMPARED = ("loss", "accuracy", "grad_norm", "learning_rate",
            # the GAN's two groups (absent for the classifier)
            "loss_discriminator", "loss_generator", "grad_norm_generator", "d_real", "d_fake")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


# A classifier, and a GAN (two models, two optimizers, an EMA of the parameters).
RUNS = {"mlp": f"{config_path('mlp.py')}:hidden=64x64", "gan": config_path("gan.py")}


def train_args(workdir, data_dir, steps=40, extra=(), run="mlp"):
    return ["train", f"--config={RUNS[run]}", f"--workdir={workdir}",
            f"--config.data.data_dir={data_dir}", "--config.progress_bar=False",
            *[f"--config.{o}" for o in TINY_SHAPES],
            f"--config.total_steps={steps}", "--config.batch_size=32",
            "--config.log_every_steps=1", "--config.eval_every_steps=10",
            "--config.checkpoint.every_steps=5", *extra]


def compared(workdir):
    rows = metrics.read_metrics(str(workdir))
    return [(r["step"], r["split"], *[r.get(k) for k in COMPARED]) for r in rows]


@pytest.mark.parametrize("run", ["mlp", "gan"])
def test_sigkill_then_resume_reproduces_uninterrupted_run(data_dir, tmp_path, run):
    run_cli(train_args(tmp_path / "straight", data_dir, run=run))
    killed = tmp_path / "killed"
    env = dict(os.environ)  # conftest's XLA flags: 8 devices, as run_cli uses
    proc = subprocess.Popen([sys.executable, "-m", "vision_jax.cli",
                             *train_args(killed, data_dir, run=run)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # kill somewhere after the second checkpoint
        if os.path.exists(killed / "metrics.jsonl"):
            steps = [r["step"] for r in metrics.read_metrics(str(killed))]
            if steps and max(steps) >= 13:
                break
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be killed")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert max(r["step"] for r in metrics.read_metrics(str(killed))) < 40
    run_cli(train_args(killed, data_dir, run=run))
    assert compared(killed) == compared(tmp_path / "straight")  # bit for bit
    if run == "gan":  # the EMA and both optimizers' states came back too: same final state
        states = [restore(tmp_path / d) for d in ("straight", "killed")]
        assert states[0].ema and set(states[0].opt_state) == {"generator", "discriminator"}
        for a, b in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[1])):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        check_sample_cli(tmp_path / "killed")


def restore(workdir):
    config = sample.load_run_config(str(workdir))
    return train.restore_workdir(config, str(workdir))[2]


def check_sample_cli(workdir):
    """`vision-jax sample` on a finished GAN run: a PNG grid and ADM's npz layout."""
    proc = run_cli(["sample", f"--workdir={workdir}", "--num=10", "--seed=3"])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["step"] == 40 and out["num"] == 10
    with np.load(out["npz"]) as f:
        images, labels = f["arr_0"], f["arr_1"]
    assert images.shape == (10, 16, 16, 3) and images.dtype == np.uint8
    assert labels.tolist() == [i % 8 for i in range(10)]  # classes in turn
    assert images.std() > 0  # not a constant image
    from PIL import Image
    assert Image.open(out["png"]).size[0] > 16


def test_corrupt_newest_checkpoint_is_skipped(data_dir, tmp_path):
    run_cli(train_args(tmp_path, data_dir, steps=10))
    ckdir = tmp_path / "checkpoints"
    newest = ckdir / "10" / "state"
    for root, _, files in os.walk(newest):  # truncate every array file of step 10
        for f in files:
            if not f.endswith(".json") and not f.startswith("_"):
                open(os.path.join(root, f), "wb").close()
    # Continuing to 15 must fall back to step 5, recompute 6..15, and warn.
    proc = run_cli(train_args(tmp_path, data_dir, steps=15))
    assert "unreadable" in proc.stderr or "resuming from" in proc.stdout
    assert "step 5" in proc.stdout
    assert max(r["step"] for r in metrics.read_metrics(str(tmp_path))) == 15


def test_explicitly_requested_corrupt_checkpoint_is_a_clear_error(data_dir, tmp_path):
    run_cli(train_args(tmp_path / "src", data_dir, steps=5))
    shutil.rmtree(tmp_path / "src" / "checkpoints" / "5" / "state")
    proc = run_cli(train_args(tmp_path / "dst", data_dir, steps=10,
                              extra=[f"--config.resume_from={tmp_path / 'src' / 'checkpoints'}"]),
                   check=False)
    assert proc.returncode == 2 and "cannot be restored" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_checkpoint_restores_onto_a_smaller_mesh(data_dir, tmp_path):
    c = tiny_config("mlp.py:hidden=64x64", data_dir, "total_steps=5", "batch_size=32",
                    "checkpoint.every_steps=5", "mesh.data=1", "mesh.fsdp=-1")
    train.train(c, str(tmp_path))
    saved = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints"))
    rules = sharding.rules_from_config(None)
    eight = train.setup(c, sharding.make_mesh(dict(c.mesh)), rules).abstract
    four = train.setup(c, sharding.make_mesh(dict(c.mesh), jax.devices()[:4]), rules).abstract
    _, on8, _, _ = saved.restore(eight)
    _, on4, _, meta = saved.restore(four)
    assert meta["examples_seen"] == 5 * 32
    k4 = on4.params["hidden_0"]["kernel"]
    assert len(k4.sharding.device_set) == 4
    for a, b in zip(jax.tree.leaves(on8), jax.tree.leaves(on4)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_two_processes_train_checkpoint_and_resume(data_dir, tmp_path):
    launcher = [sys.executable, os.path.join(ROOT, "launch", "local.py"), "--processes=2",
                "--devices-per-process=4", f"--log-dir={tmp_path / 'logs'}", "--",
                sys.executable, "-m", "vision_jax.cli"]
    workdir = tmp_path / "run"

    def launch(steps):
        proc = subprocess.run(launcher + train_args(workdir, data_dir, steps=steps), cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
        return proc.stdout

    out = launch(10)
    assert "2 process(es), 8 cpu device(s)" in out
    assert ckpt_lib.Checkpointer(str(workdir / "checkpoints")).all_steps()[-1] == 10
    out = launch(20)
    assert "resuming from" in out and "step 10" in out
    rows = metrics.read_metrics(str(workdir), "train")
    assert [r["step"] for r in rows] == list(range(1, 21))
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_init_from_loads_parameters_only(data_dir, tmp_path):
    """init_from starts a new run (step 0, fresh optimizer) from another run's parameters."""
    src = tiny_config("mlp.py:hidden=64x64", data_dir, "total_steps=5", "batch_size=32",
                      "checkpoint.every_steps=5")
    train.train(src, str(tmp_path / "src"))
    dst = tiny_config("mlp.py:hidden=64x64", data_dir, "total_steps=2", "batch_size=32",
                      "checkpoint.every_steps=2", "optimizer.learning_rate=0.0",
                      "schedule.name=constant", "optimizer.weight_decay=0.0",
                      f"init_from={tmp_path / 'src' / 'checkpoints'}")
    train.train(dst, str(tmp_path / "dst"))
    abstract = train.setup(src, sharding.make_mesh(dict(src.mesh)),
                           sharding.rules_from_config(None)).abstract
    _, a, _, _ = ckpt_lib.Checkpointer(str(tmp_path / "src" / "checkpoints")).restore(abstract)
    _, b, _, _ = ckpt_lib.Checkpointer(str(tmp_path / "dst" / "checkpoints")).restore(abstract)
    assert int(b.step) == 2  # a new run, not a resumed one
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):  # lr 0: unchanged
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
