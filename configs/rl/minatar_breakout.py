"""PPO with a small CNN on gymnax Breakout-MinAtar (Young & Tian 2019): 10x10x4
binary observations, 3 actions, +1 per brick.

    full size (GPU):  vision-jax rl --config=configs/rl/minatar_breakout.py --workdir=workdirs/rl/breakout
    CPU variant:      vision-jax rl --config=configs/rl/minatar_breakout.py:cpu --workdir=workdirs/rl/breakout_cpu

Lab note, 2026-12-04, 2-core AMD EPYC (nproc 2), jax 0.10.2, CPU,
convolutions as patches (PatchConv). `:cpu` (2 seeds x 500k steps, 244
updates): eval return 6.30 (seeds 6.44, 6.16; 32 episodes each), random
policy 0.53, before training 0.63; 293 s of training (21 s first chunk with
compile), training return still rising. The full config (4 seeds x 10M steps)
was not run: about 3 h at this rate on 2 cores; it is GPU-sized
(launch/gpu_issue12.sh).
"""

from vision_jax.config import parse_arg
from vision_jax.rl import base_config


def get_config(arg=None):
    a = parse_arg(arg, num_seeds=4, cpu=False, runlocal=False)
    c = base_config("ppo", a.num_seeds)
    c.env.name = "Breakout-MinAtar"
    c.network.update(kind="cnn", channels=(16,), strides=(1,), hidden=(128,), activation="relu")
    # Full size: 10M steps per seed, 64 environments x 128 steps per update.
    c.total_timesteps = 10_000_000
    c.num_envs, c.num_steps = 64, 128
    c.optim.update(lr=5e-4, update_epochs=4, num_minibatches=8)
    c.eval_episodes = 32
    if a.cpu:  # a short run that shows learning on a laptop
        c.num_seeds = min(c.num_seeds, 2)
        c.total_timesteps = 500_000
        c.num_envs, c.num_steps = 16, 128
        c.optim.num_minibatches = 4
    if a.runlocal:
        c.total_timesteps, c.num_envs, c.chunks, c.eval_episodes = 4 * 16 * 128, 16, 2, 4
        c.env.kwargs = {}
    return c
