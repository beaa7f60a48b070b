"""What the agents share: environments, the vmapped rollout, GAE, episode
metrics, the jitted training run (one `lax.scan` over updates) and evaluation."""

from __future__ import annotations

import importlib
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class Agent(NamedTuple):
    """What every agent module's `make` returns; all three are pure functions.

    init(key) -> state; update(state) -> (state, metrics of that update);
    act(params, obs, key) -> action (the evaluation policy), whose parameters
    are state["train"].params (a flax TrainState)."""

    init: Callable[[jax.Array], Any]
    update: Callable[[Any], tuple[Any, dict]]
    act: Callable[[Any, jax.Array, jax.Array], jax.Array]
    num_updates: int
    steps_per_update: int  # environment steps of one update, over all vmapped copies


def make_env(env_config):
    """(env, env_params) with gymnax's LogWrapper (episode returns in `info`).
    `name` is a gymnax id (CartPole-v1, Breakout-MinAtar, ...) or ShapesGoal."""
    from gymnax.wrappers.purerl import LogWrapper
    kwargs = dict(env_config.get("kwargs", {}) or {})
    if env_config.name == "ShapesGoal":
        from vision_jax.rl.shapes_goal import ShapesGoal
        max_steps = kwargs.pop("max_steps_in_episode", None)
        env = ShapesGoal(**kwargs)
        params = env.default_params
        if max_steps is not None:
            params = params.replace(max_steps_in_episode=max_steps)
    else:
        import gymnax
        env, params = gymnax.make(env_config.name, **kwargs)
    return LogWrapper(env), params


def make_agent(config, env=None, env_params=None) -> Agent:
    from vision_jax.rl import AGENTS
    if config.agent not in AGENTS:
        raise ValueError(f"config.agent={config.agent!r}: expected one of {sorted(AGENTS)}")
    if env is None:
        env, env_params = make_env(config.env)
    return importlib.import_module(AGENTS[config.agent]).make(config, env, env_params)


def make_train(agent: Agent, num_updates: int | None = None):
    """train(key) -> (state, metrics [num_updates, ...]): the whole run, one
    function to jit (and to vmap over seeds)."""
    n = agent.num_updates if num_updates is None else num_updates

    def train(key):
        return run_updates(agent, agent.init(key), n)
    return train


def run_updates(agent: Agent, state, num_updates: int):
    """`num_updates` updates from `state` as one `lax.scan`; the CLI calls this
    in chunks between which it reports progress."""
    return jax.lax.scan(lambda s, _: agent.update(s), state, None, length=num_updates)


def reset_envs(env, env_params, key, num_envs: int):
    return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), env_params)


def step_envs(env, env_params, key, env_state, action):
    """One step of every vmapped copy (auto-resetting): obs, state, reward,
    terminated, truncated, info (info['final_observation'] is the observation
    the step reached before a reset)."""
    keys = jax.random.split(key, action.shape[0])
    return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, env_state, action, env_params)


def episode_metrics(info) -> dict:
    """Mean return and length of the episodes that ended in `info`'s steps
    (NaN when none did), and how many ended."""
    done = info["returned_episode"]
    count = done.sum()
    mean = lambda x: jnp.where(count > 0, (x * done).sum() / jnp.maximum(count, 1), jnp.nan)
    return {"episode_return": mean(info["returned_episode_returns"]),
            "episode_length": mean(info["returned_episode_lengths"].astype(jnp.float32)),
            "episodes": count}


class Trajectory(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array   # with gamma * V(final observation) added on truncation
    done: jax.Array     # the episode ended here (terminated or truncated)


def rollout(apply_fn, params, env, env_params, env_state, obs, key, num_steps: int,
            gamma: float):
    """`num_steps` steps of the vmapped envs under the policy: (env_state, obs,
    Trajectory [T, N], info). A time-limit truncation is not a terminal state:
    its reward gets the discounted value of the observation reached, so the
    return estimate does not drop to zero at CartPole's 500-step limit."""

    def step(carry, key):
        env_state, obs = carry
        k_act, k_env = jax.random.split(key)
        logits, value = apply_fn(params, obs)
        action = jax.random.categorical(k_act, logits)
        log_prob = jax.nn.log_softmax(logits)[jnp.arange(action.shape[0]), action]
        obs2, env_state, reward, terminated, truncated, info = step_envs(
            env, env_params, k_env, env_state, action)
        _, final_value = apply_fn(params, info["final_observation"])
        reward = reward + gamma * final_value * (truncated & ~terminated)
        done = terminated | truncated
        return (env_state, obs2), (Trajectory(obs, action, log_prob, value, reward, done), info)

    (env_state, obs), (traj, info) = jax.lax.scan(
        step, (env_state, obs), jax.random.split(key, num_steps))
    return env_state, obs, jax.lax.stop_gradient(traj), info


def gae(traj: Trajectory, last_value, gamma: float, lam: float):
    """Generalised advantage estimation (Schulman et al. 2016) over [T, N];
    lam=1 gives Monte Carlo returns minus the value baseline. Returns
    (advantages, value targets)."""

    def back(carry, t):
        next_adv, next_value = carry
        nonterminal = 1.0 - t.done
        delta = t.reward + gamma * next_value * nonterminal - t.value
        adv = delta + gamma * lam * nonterminal * next_adv
        return (adv, t.value), adv

    _, adv = jax.lax.scan(back, (jnp.zeros_like(last_value), last_value), traj, reverse=True)
    return adv, adv + traj.value


def policy_loss_terms(apply_fn, params, traj: Trajectory, adv, targets, clip_eps: float | None):
    """(actor loss, critic loss, entropy) of a batch. With `clip_eps` the
    actor loss is PPO's clipped surrogate, without it the plain policy
    gradient -log pi(a|s) * advantage (REINFORCE with a baseline)."""
    logits, value = apply_fn(params, traj.obs)
    log_probs = jax.nn.log_softmax(logits)
    log_prob = jnp.take_along_axis(log_probs, traj.action[..., None], axis=-1)[..., 0]
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    if clip_eps is None:
        actor = -(log_prob * adv).mean()
        critic = 0.5 * jnp.square(value - targets).mean()
    else:
        ratio = jnp.exp(log_prob - traj.log_prob)
        actor = -jnp.minimum(ratio * adv,
                             jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv).mean()
        clipped = traj.value + jnp.clip(value - traj.value, -clip_eps, clip_eps)
        critic = 0.5 * jnp.maximum(jnp.square(value - targets),
                                   jnp.square(clipped - targets)).mean()
    entropy = -(jnp.exp(log_probs) * log_probs).sum(-1).mean()
    return actor, critic, entropy


def evaluate(agent: Agent, env, env_params, params, key, num_episodes: int):
    """Returns [num_episodes] of the agent's evaluation policy: the first
    episode of each of `num_episodes` vmapped copies, run to its end."""
    k_reset, k_run = jax.random.split(key)
    obs, env_state = reset_envs(env, env_params, k_reset, num_episodes)

    def step(carry, key):
        env_state, obs, total, running = carry
        k_act, k_env = jax.random.split(key)
        action = agent.act(params, obs, k_act)
        obs, env_state, reward, terminated, truncated, _ = step_envs(
            env, env_params, k_env, env_state, action)
        total = total + reward * running
        return (env_state, obs, total, running & ~(terminated | truncated)), None

    init = (env_state, obs, jnp.zeros(num_episodes), jnp.ones(num_episodes, bool))
    steps = int(env_params.max_steps_in_episode)
    (_, _, total, _), _ = jax.lax.scan(step, init, jax.random.split(k_run, steps))
    return total


def random_agent(num_actions: int) -> Agent:
    """A uniform random policy, evaluated like the agents (the baseline)."""
    act = lambda params, obs, key: jax.random.randint(key, obs.shape[:1], 0, num_actions)
    return Agent(init=None, update=None, act=act, num_updates=0, steps_per_update=0)


def interquartile_mean(x) -> float:
    """Mean of the middle 50% of runs (scipy's trim_mean at 0.25, as rliable
    computes it; Agarwal et al. 2021): robust to one bad or lucky seed."""
    import numpy as np
    from scipy import stats
    return float(stats.trim_mean(np.asarray(x, np.float64).ravel(), 0.25))
