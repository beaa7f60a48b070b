"""PPO with a small CNN on gymnax Breakout-MinAtar (Young & Tian 2019): 10x10x4
binary observations, 3 actions, +1 per brick.

    full size (GPU):  vision-jax rl --config=configs/rl/minatar_breakout.py --workdir=workdirs/rl/breakout
    CPU variant:      vision-jax rl --config=configs/rl/minatar_breakout.py:cpu --workdir=workdirs/rl/breakout_cpu

Lab note, 2026-12-04: not run yet (neither size), so no result, time or
`vision-jax plan` estimate is recorded; the config builds (tests/test_rl.py).
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
