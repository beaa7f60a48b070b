"""Deep RL (vision_jax/rl): each agent improves its CartPole return within a
tiny budget, in one jitted call of the whole run; the shapes_goal pixel
environment is pure and rewards the goal; every RL config builds abstractly."""

import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.config import load_config
from vision_jax.rl import common
from vision_jax.rl.shapes_goal import ShapesGoal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tiny budgets that learn fast: higher learning rates than the configs, one seed.
TINY = {
    "ppo": ("cartpole_ppo.py", dict(total_timesteps=16 * 256, num_envs=4, num_steps=64,
                                    lr=3e-3, hidden=(32, 32))),
    "reinforce": ("cartpole_reinforce.py", dict(total_timesteps=24 * 1024, num_envs=8,
                                                num_steps=128, lr=1e-2, hidden=(32, 32))),
    "dqn": ("cartpole_dqn.py", dict(total_timesteps=6_000, num_envs=4, num_steps=25,
                                    lr=2e-3, hidden=(32, 32))),
}


def _tiny_config(agent):
    name, o = TINY[agent]
    c = load_config(os.path.join(ROOT, "configs/rl", name))
    with c.unlocked():
        c.total_timesteps, c.num_envs, c.num_steps = (o["total_timesteps"], o["num_envs"],
                                                      o["num_steps"])
        c.optim.lr, c.optim.anneal_lr = o["lr"], False
        c.network.hidden = o["hidden"]
        c.dqn.update(learning_starts=1_000, eps_decay_steps=3_000, target_every=200,
                     buffer_size=4_000, batch_size=64)
    return c


def _training_return(metrics, updates):
    """Mean return of the training episodes that ended in `updates` (a slice)."""
    ret = np.nan_to_num(np.asarray(metrics["episode_return"])[updates])
    count = np.asarray(metrics["episodes"])[updates]
    return float((ret * count).sum() / count.sum()), int(count.sum())


@pytest.fixture(scope="module", params=sorted(TINY))
def trained(request):
    """(agent name, agent, lowered program text, metrics) of one tiny run: the
    whole training run is one jitted program, called once."""
    config = _tiny_config(request.param)
    agent = common.make_agent(config)
    lowered = jax.jit(common.make_train(agent)).lower(jax.random.key(0))
    _, metrics = lowered.compile()(jax.random.key(0))
    return request.param, agent, lowered.as_text(), jax.tree.map(np.asarray, metrics)


def test_agent_improves_cartpole_in_one_jitted_call(trained):
    name, agent, hlo, metrics = trained
    # The training loop is inside the one program: a while loop over updates.
    assert "while" in hlo
    assert metrics["episode_return"].shape == (agent.num_updates,)
    # Training episodes of the first update (the initial policy, or DQN's
    # epsilon = 1) against those of the last quarter of the run. A uniform
    # random policy averages ~22 steps on CartPole, and its episodes last over
    # 60 steps with probability ~2%: a mean over 60 needs learning.
    before, n_before = _training_return(metrics, slice(0, 1))
    after, n_after = _training_return(metrics, slice(-max(1, agent.num_updates // 4), None))
    assert n_before >= 3 and n_after >= 3, (name, n_before, n_after)
    assert before < 40 and after > max(60.0, 2.5 * before), (name, before, after)


def test_gae_with_lambda_one_is_monte_carlo_return_minus_baseline():
    T, gamma = 5, 0.9
    reward = jnp.arange(1.0, T + 1)[:, None]
    done = jnp.array([0, 0, 1, 0, 0], jnp.float32)[:, None]
    value = jnp.full((T, 1), 0.5)
    traj = common.Trajectory(obs=None, action=None, log_prob=None, value=value, reward=reward,
                             done=done)
    adv, targets = common.gae(traj, jnp.array([2.0]), gamma, 1.0)
    g, returns = 2.0, []
    for t in reversed(range(T)):  # the return restarts after the episode end at t=2
        g = float(reward[t, 0]) + gamma * g * (1 - float(done[t, 0]))
        returns.append(g)
    np.testing.assert_allclose(targets[:, 0], returns[::-1], rtol=1e-6)
    np.testing.assert_allclose(adv, targets - value, rtol=1e-6)


def _next_to_goal(state):
    """`state` rearranged: goal at (2, 2), the agent just left of it,
    distractors in three corners."""
    return state.replace(agent=jnp.array([2, 1]),
                         objects=jnp.array([[2, 2], [0, 0], [4, 4], [0, 4]]))


def test_shapes_goal_is_pure_and_rewards_the_red_circle():
    env = ShapesGoal(grid=5, cell=6, num_distractors=3)
    p = env.default_params
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    o1, s1 = reset(jax.random.key(3), p)
    o2, s2 = reset(jax.random.key(3), p)
    assert o1.shape == (30, 30, 3) and bool((o1 == o2).all())  # a function of the key
    assert not bool((o1 == reset(jax.random.key(4), p)[0]).all())
    # Exactly one red circle, and every distractor shares one attribute with it.
    red = np.all(np.isclose(np.asarray(s1.color), np.asarray(s1.color[0])), axis=-1)
    circle = np.asarray(s1.sprite) == 0
    assert (red & circle).sum() == 1 and (red ^ circle)[1:].all()

    s = _next_to_goal(s1)
    k = jax.random.key(6)
    # right (3) onto the goal: reward 1, episode over (and auto-reset).
    _, _, r, term, trunc, info = step(k, s, 3, p)
    assert float(r) == 1.0 and bool(term) and not bool(trunc)
    assert (step(k, s, 3, p)[0] == step(k, s, 3, p)[0]).all()  # pure: same inputs, same output
    # left (2) into an empty cell: no reward, the agent's pixels move.
    obs, s_left, r, term, _, info = step(k, s, 2, p)
    assert float(r) == 0.0 and not bool(term) and tuple(s_left.agent.tolist()) == (2, 0)
    assert not bool((obs == step(k, s, 0, p)[0]).all())  # up: (1, 1), other pixels
    # onto a distractor: no reward, episode over.
    s_d = s.replace(agent=jnp.array([0, 1]))
    _, _, r, term, _, _ = step(k, s_d, 2, p)
    assert float(r) == 0.0 and bool(term)
    # up (0) against the wall: stays put.
    s_wall = s.replace(agent=jnp.array([0, 2]))
    assert tuple(step(k, s_wall, 0, p)[1].agent.tolist()) == (0, 2)
    # The time limit truncates.
    s_late = s.replace(time=p.max_steps_in_episode - 1)
    assert bool(step(k, s_late, 2, p)[4])


CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs/rl/*.py")))
VARIANTS = {"minatar_breakout.py": ("", "cpu", "runlocal"),
            "shapes_goal.py": ("", "cpu", "runlocal")}


def test_patch_conv_torso_is_the_conv_torso():
    """The im2col torso (CPU default) has nn.Conv's parameters, initial values
    and outputs, so runs and checkpoints do not depend on the backend."""
    from vision_jax.rl.networks import Torso
    obs = jax.random.uniform(jax.random.key(0), (2, 3, 12, 12, 3))
    kw = dict(kind="cnn", channels=(4, 8), strides=(2, 1), hidden=(16,), activation="relu",
              obs_ndim=3)
    xla, patches = Torso(conv="xla", **kw), Torso(conv="patches", **kw)
    params = xla.init(jax.random.key(1), obs)
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), params,
                        patches.init(jax.random.key(1), obs))
    assert all(jax.tree.leaves(same))
    out = patches.apply(params, obs)
    assert out.shape == (2, 3, 16)
    np.testing.assert_allclose(out, xla.apply(params, obs), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="network.conv"):
        Torso(conv="fft", **kw).init(jax.random.key(1), obs)


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_rl_config_builds(path):
    for arg in VARIANTS.get(os.path.basename(path), ("", "runlocal")):
        config = load_config(path + (":" + arg if arg else ""))
        agent = common.make_agent(config)
        assert agent.num_updates >= 1
        state = jax.eval_shape(agent.init, jax.random.key(0))
        n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state["train"].params))
        assert n_params > 0
        env, env_params = common.make_env(config.env)
        assert state["obs"].shape == (config.num_envs,) + env.observation_space(env_params).shape
