"""PPO with a CNN policy on the built-in pixel environment `shapes_goal`: move to
the red circle (vision_jax/rl/shapes_goal.py).

    vision-jax rl --config=configs/rl/shapes_goal.py --workdir=workdirs/rl/shapes_goal
"""

from vision_jax.config import parse_arg
from vision_jax.rl import base_config


def get_config(arg=None):
    a = parse_arg(arg, num_seeds=4, runlocal=False)
    c = base_config()
    c.agent = "ppo"
    c.num_seeds = a.num_seeds
    c.env.name = "ShapesGoal"
    c.env.kwargs = dict(grid=5, cell=6, num_distractors=3, max_steps_in_episode=20)
    c.network.update(kind="cnn", channels=(16, 32), strides=(2, 2), hidden=(128,),
                     activation="relu")
    c.total_timesteps = 300_000
    c.num_envs, c.num_steps = 16, 64
    c.optim.update(lr=5e-4, update_epochs=4, num_minibatches=4)
    c.eval_episodes = 128  # the evaluation return is the success rate
    if a.runlocal:
        c.total_timesteps, c.chunks, c.eval_episodes = 4 * 16 * 64, 2, 16
    return c
