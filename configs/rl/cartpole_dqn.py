"""DQN on gymnax CartPole-v1 (purejaxrl's DQN recipe), seeds vmapped.

    vision-jax rl --config=configs/rl/cartpole_dqn.py --workdir=workdirs/rl/cartpole_dqn

Lab note, 2026-12-04: 4 vmapped seeds, 500,000 steps each (10 envs; an update
is 50 vector steps). Greedy evaluation return per seed (32 episodes): 500, 500,
500, 500; IQM 500.0; 4/4 solved; random policy 21.9. Wall 170 s (training
151 s); 2-core AMD EPYC VM (nproc 2) shared by 4 agents, load average 5-6; jax 0.10.2, gymnax 1.0.1, CPU.
"""

from vision_jax.config import parse_arg
from vision_jax.rl import base_config


def get_config(arg=None):
    a = parse_arg(arg, num_seeds=4, runlocal=False)
    c = base_config("dqn", a.num_seeds)
    c.solved_return = 475.0
    c.total_timesteps = 500_000
    c.num_envs, c.num_steps = 10, 50  # an update: 50 vector steps, each + 1 gradient step
    c.network.hidden, c.network.activation = (120, 84), "relu"
    c.optim.lr = 2.5e-4
    c.optim.max_grad_norm = 10.0
    c.dqn.update(buffer_size=10_000, batch_size=128, learning_starts=10_000, target_every=500,
                 eps_start=1.0, eps_end=0.05, eps_decay_steps=250_000)
    if a.runlocal:
        c.total_timesteps, c.chunks, c.eval_episodes = 4_000, 2, 8
        c.dqn.learning_starts, c.dqn.eps_decay_steps = 1_000, 2_000
    return c
