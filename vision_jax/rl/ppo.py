"""PPO (Schulman et al. 2017, arXiv:1707.06347) as purejaxrl writes it: each
update collects `num_steps` steps from `num_envs` vmapped environments, computes
GAE, then runs `update_epochs` epochs of `num_minibatches` shuffled minibatches
on the clipped surrogate, the clipped value loss and an entropy bonus."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from vision_jax.rl import common, networks


def make_optimizer(config, num_updates: int, steps_per_update: int):
    """Adam clipped at `max_grad_norm`, its rate decayed linearly to 0 over the
    run when `anneal_lr` (counted in gradient steps)."""
    a = config.optim
    lr = (optax.linear_schedule(a.lr, 0.0, num_updates * steps_per_update)
          if a.anneal_lr else a.lr)
    return optax.chain(optax.clip_by_global_norm(a.max_grad_norm), optax.adam(lr, eps=1e-5))


def make_actor_critic(config, env, env_params):
    obs_shape = env.observation_space(env_params).shape
    net = networks.ActorCritic(env.action_space(env_params).n,
                               networks.torso_kwargs(config.network, obs_shape))
    return net, obs_shape


def sample_act(net):
    """The evaluation policy: a sample of the learned stochastic policy."""
    def act(params, obs, key):
        return jax.random.categorical(key, net.apply(params, obs)[0])
    return act


def init_on_policy(config, env, env_params, net, obs_shape, tx):
    """init(key) of the on-policy agents: parameters, optimizer, vmapped envs."""
    def init(key):
        k_net, k_env, k_run = jax.random.split(key, 3)
        params = net.init(k_net, jnp.zeros(obs_shape))
        obs, env_state = common.reset_envs(env, env_params, k_env, config.num_envs)
        train_state = TrainState.create(apply_fn=net.apply, params=params, tx=tx)
        return {"train": train_state, "env_state": env_state, "obs": obs, "key": k_run}
    return init


def collect(config, env, env_params, state, key, lam: float):
    """A rollout of the current policy and its advantages and value targets."""
    ts = state["train"]
    env_state, obs, traj, info = common.rollout(
        ts.apply_fn, ts.params, env, env_params, state["env_state"], state["obs"], key,
        config.num_steps, config.gamma)
    _, last_value = ts.apply_fn(ts.params, obs)
    adv, targets = common.gae(traj, last_value, config.gamma, lam)
    return env_state, obs, traj, info, adv, targets


def loss_fn(config, clip_eps):
    def loss(params, apply_fn, traj, adv, targets):
        actor, critic, entropy = common.policy_loss_terms(apply_fn, params, traj, adv, targets,
                                                          clip_eps)
        total = actor + config.optim.vf_coef * critic - config.optim.ent_coef * entropy
        return total, {"actor_loss": actor, "critic_loss": critic, "entropy": entropy}
    return loss


def make(config, env, env_params) -> common.Agent:
    steps_per_update = config.num_envs * config.num_steps
    num_updates = config.total_timesteps // steps_per_update
    a = config.optim
    grad_steps = a.update_epochs * a.num_minibatches
    tx = make_optimizer(config, num_updates, grad_steps)
    net, obs_shape = make_actor_critic(config, env, env_params)
    loss = jax.value_and_grad(loss_fn(config, a.clip_eps), has_aux=True)

    def update(state):
        key, k_roll, k_perm = jax.random.split(state["key"], 3)
        env_state, obs, traj, info, adv, targets = collect(config, env, env_params, state,
                                                           k_roll, config.gae_lambda)
        flat = lambda x: x.reshape((steps_per_update,) + x.shape[2:])
        batch = jax.tree.map(flat, (traj, adv, targets))

        def epoch(ts, key):
            perm = jax.random.permutation(key, steps_per_update)
            mb = jax.tree.map(lambda x: x[perm].reshape((a.num_minibatches, -1) + x.shape[1:]),
                              batch)

            def minibatch(ts, mb):
                (_, aux), grads = loss(ts.params, ts.apply_fn, *mb)
                return ts.apply_gradients(grads=grads), aux
            return jax.lax.scan(minibatch, ts, mb)

        ts, aux = jax.lax.scan(epoch, state["train"], jax.random.split(k_perm, a.update_epochs))
        metrics = {**common.episode_metrics(info), **jax.tree.map(jnp.mean, aux)}
        return {"train": ts, "env_state": env_state, "obs": obs, "key": key}, metrics

    return common.Agent(init=init_on_policy(config, env, env_params, net, obs_shape, tx),
                        update=update, act=sample_act(net), num_updates=num_updates,
                        steps_per_update=steps_per_update)
