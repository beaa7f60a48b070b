"""PPO on gymnax CartPole-v1, purejaxrl's recipe, seeds vmapped.

    vision-jax rl --config=configs/rl/cartpole_ppo.py --workdir=workdirs/rl/cartpole_ppo

Lab note, 2026-12-04: 4 vmapped seeds, 499,712 steps each (976 updates of
4 envs x 128 steps). Evaluation return per seed (32 episodes): 500, 500, 500,
500; IQM 500.0; 4/4 seeds solved (>= 475); random policy 21.9. Wall 89 s
(training 75 s, first chunk with compile 15.7 s); 2-core AMD EPYC VM (nproc 2) shared by 4 agents, load average 5-6; jax 0.10.2, gymnax 1.0.1, CPU.
"""

from vision_jax.config import parse_arg
from vision_jax.rl import base_config


def get_config(arg=None):
    a = parse_arg(arg, num_seeds=4, runlocal=False)
    c = base_config("ppo", a.num_seeds)
    c.solved_return = 475.0
    c.total_timesteps = 500_000
    if a.runlocal:
        c.total_timesteps, c.chunks, c.eval_episodes = 8 * 512, 2, 8
    return c
