"""DQN (Mnih et al. 2015, doi:10.1038/nature14236) in one jitted function: the
replay buffer is a set of arrays in the scanned state (a ring of `buffer_size`
transitions), the target network a second copy of the parameters refreshed every
`target_every` environment steps, exploration epsilon-greedy with epsilon
decayed linearly from `eps_start` to `eps_end` over `eps_decay_steps`.

One update = `num_steps` steps of the `num_envs` vmapped environments; after
`learning_starts` environment steps each of them is followed by one gradient
step on a uniform sample of `batch_size` transitions (squared TD error against
r + gamma * max_a Q_target(s', a), zero bootstrap only on true termination: the
stored s' of a truncated episode is the observation it reached)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from vision_jax.rl import common, networks


def make(config, env, env_params) -> common.Agent:
    d = config.dqn
    steps_per_update = config.num_envs * config.num_steps
    num_updates = config.total_timesteps // steps_per_update
    obs_shape = env.observation_space(env_params).shape
    num_actions = env.action_space(env_params).n
    net = networks.QNetwork(num_actions, networks.torso_kwargs(config.network, obs_shape))
    tx = optax.chain(optax.clip_by_global_norm(config.optim.max_grad_norm),
                     optax.adam(config.optim.lr))
    epsilon = optax.linear_schedule(d.eps_start, d.eps_end, d.eps_decay_steps)

    def init(key):
        k_net, k_env, k_run = jax.random.split(key, 3)
        params = net.init(k_net, jnp.zeros(obs_shape))
        obs, env_state = common.reset_envs(env, env_params, k_env, config.num_envs)
        n = d.buffer_size
        buffer = {"obs": jnp.zeros((n,) + obs_shape), "action": jnp.zeros(n, jnp.int32),
                  "reward": jnp.zeros(n), "next_obs": jnp.zeros((n,) + obs_shape),
                  "terminated": jnp.zeros(n, bool)}
        return {"train": TrainState.create(apply_fn=net.apply, params=params, tx=tx),
                "target": params, "buffer": buffer, "size": jnp.int32(0), "ptr": jnp.int32(0),
                "t": jnp.int32(0), "env_state": env_state, "obs": obs, "key": k_run}

    def td_loss(params, target, batch):
        q = net.apply(params, batch["obs"])
        q = jnp.take_along_axis(q, batch["action"][:, None], axis=-1)[:, 0]
        next_q = net.apply(target, batch["next_obs"]).max(-1)
        y = batch["reward"] + config.gamma * (1.0 - batch["terminated"]) * next_q
        return jnp.mean(jnp.square(q - jax.lax.stop_gradient(y)))

    def learn(state, key):
        idx = jax.random.randint(key, (d.batch_size,), 0, state["size"])
        batch = jax.tree.map(lambda x: x[idx], state["buffer"])
        loss, grads = jax.value_and_grad(td_loss)(state["train"].params, state["target"], batch)
        return state["train"].apply_gradients(grads=grads), loss

    def env_step(state, key):
        k_eps, k_rand, k_env, k_learn = jax.random.split(key, 4)
        ts, obs = state["train"], state["obs"]
        greedy = ts.apply_fn(ts.params, obs).argmax(-1)
        explore = jax.random.uniform(k_eps, greedy.shape) < epsilon(state["t"])
        action = jnp.where(explore, jax.random.randint(k_rand, greedy.shape, 0, num_actions),
                           greedy)
        obs2, env_state, reward, terminated, _, info = common.step_envs(
            env, env_params, k_env, state["env_state"], action)
        idx = (state["ptr"] + jnp.arange(config.num_envs)) % d.buffer_size
        new = {"obs": obs, "action": action, "reward": reward,
               "next_obs": info["final_observation"], "terminated": terminated}
        buffer = jax.tree.map(lambda b, x: b.at[idx].set(x), state["buffer"], new)
        t = state["t"] + config.num_envs
        state = {**state, "buffer": buffer, "env_state": env_state, "obs": obs2, "t": t,
                 "ptr": (state["ptr"] + config.num_envs) % d.buffer_size,
                 "size": jnp.minimum(state["size"] + config.num_envs, d.buffer_size)}
        ts, loss = jax.lax.cond(t >= d.learning_starts, learn,
                                lambda s, k: (s["train"], jnp.float32(jnp.nan)), state, k_learn)
        # Target refresh when t crosses a multiple of target_every.
        refresh = (t // d.target_every) > (state["t"] - config.num_envs) // d.target_every
        target = jax.tree.map(lambda p, q: jnp.where(refresh, p, q), ts.params, state["target"])
        return {**state, "train": ts, "target": target}, (info, loss)

    def update(state):
        key, k_steps = jax.random.split(state["key"])
        state, (info, loss) = jax.lax.scan(env_step, {**state, "key": key},
                                           jax.random.split(k_steps, config.num_steps))
        metrics = {**common.episode_metrics(info), "td_loss": jnp.nanmean(loss),
                   "epsilon": epsilon(state["t"])}
        return state, metrics

    def act(params, obs, key):
        return net.apply(params, obs).argmax(-1)  # greedy: epsilon is for exploring

    return common.Agent(init=init, update=update, act=act, num_updates=num_updates,
                        steps_per_update=steps_per_update)
