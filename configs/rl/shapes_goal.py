"""PPO with a CNN policy on the built-in pixel environment `shapes_goal`: move to
the red circle (vision_jax/rl/shapes_goal.py).

    vision-jax rl --config=configs/rl/shapes_goal.py --workdir=workdirs/rl/shapes_goal

    CPU variant:  vision-jax rl --config=configs/rl/shapes_goal.py:cpu --workdir=workdirs/rl/shapes_goal_cpu

Lab note, 2026-12-04 (evening), 2-core AMD EPYC (nproc 2, shared with two
other training runs), jax 0.10.2, CPU, convolutions as patches (PatchConv).
`:cpu` (2 seeds x 150k steps, 146 updates): success rate 66.8% (seeds 68.8%,
64.8%; 128 eval episodes each) against 22.3% for a random policy and 19.5%
before training; 772 s of training (73 s first chunk with compile), still
rising at the end. The full config (4 seeds x 300k steps) was not run: about
50 min on these 2 cores, or minutes on one GPU (launch/gpu_issue12.sh).
Earlier (before PatchConv) `:runlocal` took 175 s at chance, and the full
config ran at ~40 s per update.
"""

from vision_jax.config import parse_arg
from vision_jax.rl import base_config


def get_config(arg=None):
    a = parse_arg(arg, num_seeds=4, cpu=False, runlocal=False)
    c = base_config("ppo", a.num_seeds)
    c.env.name = "ShapesGoal"
    c.env.kwargs = dict(grid=5, cell=6, num_distractors=3, max_steps_in_episode=20)
    c.network.update(kind="cnn", channels=(16, 32), strides=(2, 2), hidden=(128,),
                     activation="relu")
    c.total_timesteps = 300_000
    c.num_envs, c.num_steps = 16, 64
    c.optim.update(lr=5e-4, update_epochs=4, num_minibatches=4)
    c.eval_episodes = 128  # the evaluation return is the success rate
    if a.cpu:  # half the steps, two seeds: about 10 min on 2 cores
        c.num_seeds, c.total_timesteps = min(c.num_seeds, 2), 150_000
    if a.runlocal:
        c.total_timesteps, c.chunks, c.eval_episodes = 4 * 16 * 64, 2, 16
    return c
