"""REINFORCE with a learned value baseline on gymnax CartPole-v1, seeds vmapped.

    vision-jax rl --config=configs/rl/cartpole_reinforce.py --workdir=workdirs/rl/cartpole_reinforce
"""

from vision_jax.config import parse_arg
from vision_jax.rl import base_config


def get_config(arg=None):
    a = parse_arg(arg, num_seeds=4, runlocal=False)
    c = base_config()
    c.agent = "reinforce"
    c.num_seeds = a.num_seeds
    c.solved_return = 475.0
    c.total_timesteps = 1_000_000
    # 8 x 500 steps per update: at least one full-length episode per environment.
    c.num_envs, c.num_steps = 8, 500
    c.optim.lr, c.optim.anneal_lr = 2e-3, True
    if a.runlocal:
        c.total_timesteps, c.chunks, c.eval_episodes = 16_000, 2, 8
    return c
