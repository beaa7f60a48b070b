"""Deep RL in the pure-functional style (purejaxrl): environments are pure JAX
(gymnax, and the built-in `shapes_goal`), vmapped over a batch of copies, and an
agent's whole training run is one jitted function, a `lax.scan` over updates.

    vision-jax rl --config=configs/rl/cartpole_ppo.py --workdir=workdirs/cartpole_ppo

Agents (one module each, all with the same `make(config, env, env_params)`):
`ppo` (clipped objective, GAE, minibatch epochs), `dqn` (replay buffer as arrays
in the jitted state, target network, epsilon-greedy) and `reinforce` (Monte
Carlo policy gradient with a learned value baseline). docs/RL.md has the results.
"""

AGENTS = {
    "ppo": "vision_jax.rl.ppo",
    "dqn": "vision_jax.rl.dqn",
    "reinforce": "vision_jax.rl.reinforce",
}


def base_config(agent: str = "ppo", num_seeds: int = 4):
    """Every key the RL agents read, with its default (PPO on CartPole-v1 with
    purejaxrl's hyperparameters). Loading a config imports no JAX."""
    from ml_collections import ConfigDict
    return ConfigDict(dict(
        agent=agent,
        seed=0,
        num_seeds=num_seeds,     # independent runs, vmapped into one program
        env=dict(name="CartPole-v1", kwargs={}),
        total_timesteps=500_000,  # environment steps per seed
        num_envs=4,
        num_steps=128,           # steps per environment per update
        gamma=0.99,
        gae_lambda=0.95,
        network=dict(kind="mlp", hidden=(64, 64), channels=(), strides=(), activation="tanh",
                     conv="auto"),  # CNN: 'xla' | 'patches' (im2col) | 'auto' (patches on CPU)
        optim=dict(lr=2.5e-4, anneal_lr=True, max_grad_norm=0.5, update_epochs=4,
                   num_minibatches=4, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01),
        dqn=dict(buffer_size=10_000, batch_size=128, learning_starts=10_000, target_every=500,
                 eps_start=1.0, eps_end=0.05, eps_decay_steps=250_000),
        eval_episodes=32,        # per seed, after training (and before, as the baseline)
        solved_return=-1.0,      # a seed counts as solved at this evaluation return (<0: none)
        chunks=20,               # jitted pieces of the run between progress reports
    ))
