"""REINFORCE with a learned value baseline on gymnax CartPole-v1, seeds vmapped.

    vision-jax rl --config=configs/rl/cartpole_reinforce.py --workdir=workdirs/rl/cartpole_reinforce

Lab note, 2026-12-04: NOT solved. 4 vmapped seeds, 1,000,000 steps each (250
updates of 8 envs x 500 steps, one gradient step each). Evaluation return per
seed (32 episodes): 246.4, 246.1, 263.9, 242.0; IQM 246.3; 0/4 seeds reach
475 (random policy 21.9). Wall 89 s (training 68 s); 2-core AMD EPYC VM (nproc 2) shared by 4 agents, load average 5-6; jax 0.10.2, gymnax 1.0.1, CPU.
"""

from vision_jax.config import parse_arg
from vision_jax.rl import base_config


def get_config(arg=None):
    a = parse_arg(arg, num_seeds=4, runlocal=False)
    c = base_config("reinforce", a.num_seeds)
    c.solved_return = 475.0
    c.total_timesteps = 1_000_000
    # 8 x 500 steps per update: at least one full-length episode per environment.
    c.num_envs, c.num_steps = 8, 500
    c.optim.lr, c.optim.anneal_lr = 2e-3, True
    if a.runlocal:
        c.total_timesteps, c.chunks, c.eval_episodes = 16_000, 2, 8
    return c
