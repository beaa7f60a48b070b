"""`vision-jax sweep --executor=ray` on a local Ray instance, with killed trials retried.

Ray's start-up on two shared cores takes about 9 s before any trial runs, so
this test runs only with VISION_JAX_RAY_TESTS=1 (and `pip install -e '.[ray]'`):

    VISION_JAX_RAY_TESTS=1 python -m pytest -q tests/test_sweep_ray.py
"""

import os
import signal
import threading
import time

import pandas as pd
import pytest
from test_sweep import TEST, TRAIN, _write_tiny_sweep

from vision_jax import data, metrics
from vision_jax.scaling import store, sweep

pytestmark = pytest.mark.skipif(
    os.environ.get("VISION_JAX_RAY_TESTS") != "1",
    reason="Ray start-up is slow on shared cores: run with VISION_JAX_RAY_TESTS=1 "
           "(needs `pip install -e '.[ray]'`)")

STEPS = 16


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    data.prepare(dict(name="shapes", data_dir=path, shapes=dict(train_size=TRAIN, test_size=TEST)))
    return path


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can read (Linux /proc)."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[int(pid)] = (ppid, cmd)
    return out


def _kill_after_first_checkpoint(workdir: str, target: str, killed: dict, timeout: float = 120):
    """SIGKILLs the trial training in `workdir` once its step-2 checkpoint exists:
    its `vision-jax train` process (target='trial') or the Ray worker that
    started it (target='worker', as when a node is lost)."""
    checkpoint = os.path.join(workdir, "checkpoints", "2")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isdir(checkpoint):
            for pid, (ppid, cmd) in _processes().items():
                if f"--workdir={workdir}" in cmd and " train " in cmd:
                    victim = ppid if target == "worker" else pid
                    victim_cmd = _processes().get(victim, (0, ""))[1]
                    os.kill(victim, signal.SIGKILL)
                    # A lost worker takes its trial with it (no orphan keeps
                    # writing into the workdir the retry resumes from).
                    end = time.monotonic() + 10
                    while os.path.exists(f"/proc/{pid}") and time.monotonic() < end:
                        time.sleep(0.05)
                    killed[workdir] = (target, victim_cmd, not os.path.exists(f"/proc/{pid}"))
                    return
        time.sleep(0.02)
    killed[workdir] = (target, "never found", False)


def test_ray_sweep_retries_killed_trials_and_resumes(tmp_path, data_dir):
    ray = pytest.importorskip("ray", reason="pip install -e '.[ray]'")
    spec = _write_tiny_sweep(tmp_path, data_dir)
    # The shared tiny sweep, longer: a trial must still be running after its
    # first checkpoint to be killed mid-run.
    with open(spec) as f:
        text = f.read()
    with open(spec, "w") as f:
        f.write(text.replace("'total_steps=4'", f"'total_steps={STEPS}'"))
    sweepdir = str(tmp_path / "sweep")
    trials = [t.name for t in sweep.expand(sweep.load_sweep(spec))]
    victims = {store.trial_dir(sweepdir, trials[0]): "trial",
               store.trial_dir(sweepdir, trials[1]): "worker"}
    killed: dict = {}
    killers = [threading.Thread(target=_kill_after_first_checkpoint, args=(w, t, killed),
                                daemon=True) for w, t in victims.items()]

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for k in killers:
            k.start()
        rc = sweep.main([f"--config={spec}", f"--sweepdir={sweepdir}", "--executor=ray",
                         "--cpus-per-trial=1", "--max-retries=2", "--no-analysis"])
    finally:
        ray.shutdown()
    for k in killers:
        k.join(timeout=1)

    assert rc == 0
    for workdir, target in victims.items():
        what, cmd, trial_gone = killed[workdir]
        assert what == target and cmd != "never found" and trial_gone, killed
        if target == "worker":
            assert "ray::" in cmd  # the Ray worker process itself was killed
        with open(os.path.join(workdir, "train.log")) as f:
            log = f.read()
        # The retry continued from the trial's own checkpoint, not from scratch.
        resumed = [int(line.rsplit("step", 1)[1]) for line in log.splitlines()
                   if "resuming from" in line]
        assert len(resumed) == 1 and 2 <= resumed[0] < STEPS, log[-2000:]
        steps = [r["step"] for r in metrics.read_metrics(workdir, "eval")]
        assert steps[-1] == STEPS
    # The same results store as the local executor: one row per trial.
    df = pd.read_json(os.path.join(sweepdir, store.RESULTS_JSONL), lines=True)
    assert sorted(df.trial) == sorted(trials)
    assert (df.examples_seen == STEPS * 64).all()
    # ... which `--analyse-only` reads unchanged.
    assert sweep.main([f"--config={spec}", f"--sweepdir={sweepdir}", "--analyse-only"]) == 0
    assert os.path.exists(os.path.join(sweepdir, "fits.json"))
