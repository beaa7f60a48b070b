"""PPO on gymnax CartPole-v1, purejaxrl's recipe, seeds vmapped.

    vision-jax rl --config=configs/rl/cartpole_ppo.py --workdir=workdirs/rl/cartpole_ppo

Lab note: see docs/RL.md (filled in below after the run).
"""

from vision_jax.config import parse_arg
from vision_jax.rl import base_config


def get_config(arg=None):
    a = parse_arg(arg, num_seeds=4, runlocal=False)
    c = base_config()
    c.agent = "ppo"
    c.num_seeds = a.num_seeds
    c.solved_return = 475.0
    c.total_timesteps = 500_000
    if a.runlocal:
        c.total_timesteps, c.chunks, c.eval_episodes = 8 * 512, 2, 8
    return c
