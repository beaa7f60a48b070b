"""REINFORCE with a learned baseline (Williams 1992; Sutton & Barto 2018,
section 13.4). Each update collects `num_steps` steps from `num_envs` vmapped
environments and takes one gradient step on the whole batch: the policy
gradient -log pi(a|s) (G - V(s)) with G the discounted Monte Carlo return, and
a squared-error loss that fits V to G. An episode still running at the end of
the rollout has its return completed by V of the last observation (as for a
time-limit truncation): with `num_steps` at least the episode limit most
returns are full Monte Carlo returns. The actor-critic machinery is PPO's
(vision_jax/rl/ppo.py) with lambda = 1, one epoch, one minibatch, no clipping.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vision_jax.rl import common, ppo


def make(config, env, env_params) -> common.Agent:
    steps_per_update = config.num_envs * config.num_steps
    num_updates = config.total_timesteps // steps_per_update
    tx = ppo.make_optimizer(config, num_updates, 1)
    net, obs_shape = ppo.make_actor_critic(config, env, env_params)
    loss = jax.value_and_grad(ppo.loss_fn(config, None), has_aux=True)

    def update(state):
        key, k_roll = jax.random.split(state["key"])
        env_state, obs, traj, info, adv, targets = ppo.collect(config, env, env_params, state,
                                                               k_roll, 1.0)
        ts = state["train"]
        (_, aux), grads = loss(ts.params, ts.apply_fn, traj, adv, targets)
        ts = ts.apply_gradients(grads=grads)
        metrics = {**common.episode_metrics(info), **jax.tree.map(jnp.mean, aux)}
        return {"train": ts, "env_state": env_state, "obs": obs, "key": key}, metrics

    return common.Agent(init=ppo.init_on_policy(config, env, env_params, net, obs_shape, tx),
                        update=update, act=ppo.sample_act(net), num_updates=num_updates,
                        steps_per_update=steps_per_update)
