"""PPO with a CNN policy on the built-in pixel environment `shapes_goal`: move to
the red circle (vision_jax/rl/shapes_goal.py).

    vision-jax rl --config=configs/rl/shapes_goal.py --workdir=workdirs/rl/shapes_goal

Lab note, 2026-12-04, 2-core AMD EPYC (nproc 2), jax 0.10.2, CPU. `:runlocal`
(4,096 steps x 4 seeds): 175 s, success IQM 0.25, the same as the random
policy (chance at that budget). The full config: about 40 s per update on the
2 cores (15 of 292 updates in 10 min, return 0.2), so about 3 hours, over
issue 12's 15-minute CPU budget; it was stopped there. No success rate yet:
a smaller CPU variant is still to be made and run.
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
