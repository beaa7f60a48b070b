#!/usr/bin/env python3
"""Runs a vision-jax command as N local processes, each with its own CPU devices.

The same code path as a TPU pod or a SLURM job: every process calls
`jax.distributed.initialize` (through the VISION_JAX_* variables below),
reads only its shard of the data, and the mesh spans all processes' devices.

    python launch/local.py --processes=2 --devices-per-process=4 -- \
        vision-jax train --config=configs/mlp.py --workdir=/tmp/mp

Output of process i goes to <log-dir>/process_<i>.log (and process 0's also
to the terminal). The exit code is the first non-zero exit code, if any; when
one process fails the others are stopped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--devices-per-process", type=int, default=4)
    parser.add_argument("--log-dir", default=None, help="default: a temporary directory")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    if command[0] == "vision-jax" and shutil.which("vision-jax") is None:
        command = [sys.executable, "-m", "vision_jax.cli"] + command[1:]

    log_dir = args.log_dir or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), f"vision_jax_local_{os.getpid()}")
    os.makedirs(log_dir, exist_ok=True)
    coordinator = f"127.0.0.1:{free_port()}"
    procs, logs = [], []
    for i in range(args.processes):
        env = dict(os.environ)
        env.update(
            VISION_JAX_COORDINATOR=coordinator,
            VISION_JAX_NUM_PROCESSES=str(args.processes),
            VISION_JAX_PROCESS_ID=str(i),
            JAX_PLATFORMS="cpu",
            XLA_FLAGS=(env.get("XLA_FLAGS", "").replace(
                "--xla_force_host_platform_device_count=8", "") +
                f" --xla_force_host_platform_device_count={args.devices_per_process}").strip(),
        )
        log = open(os.path.join(log_dir, f"process_{i}.log"), "w")
        logs.append(log)
        procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))

    code = 0
    try:
        while any(p.poll() is None for p in procs):
            failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
            if failed:
                code = failed[0]
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
                break
            time.sleep(0.2)
        for p in procs:
            p.wait()
            code = code or p.returncode
    finally:
        for log in logs:
            log.close()
    with open(os.path.join(log_dir, "process_0.log")) as f:
        sys.stdout.write(f.read())
    if code:
        print(f"launch/local.py: a process exited with {code}; logs in {log_dir}",
              file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
