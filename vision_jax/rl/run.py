"""`vision-jax rl`: train an RL config over vmapped seeds, evaluate, report.

    vision-jax rl --config=configs/rl/cartpole_ppo.py --workdir=workdirs/cartpole_ppo

The run is `config.chunks` calls of one jitted, seed-vmapped `lax.scan` over
updates (the progress bar moves between them). The workdir gets config.json,
metrics.jsonl (one row per update: timesteps, each seed's mean return of the
episodes that ended in it, losses), summary.json (evaluation returns per seed
before and after training, their interquartile mean, a uniform random policy's
return, wall and compile time, hardware) and learning_curve.png.
"""

from __future__ import annotations

import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.rl import common


def hardware() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()], "jax": jax.__version__}


def chunk_size(num_updates: int, chunks: int) -> int:
    """Updates per jitted call: about num_updates / chunks, preferring a size
    that divides num_updates (a shorter last chunk is a second compile)."""
    chunks = max(1, min(chunks, num_updates))
    for c in [chunks] + [x for d in range(1, chunks) for x in (chunks + d, chunks - d)]:
        if chunks // 2 <= c <= min(2 * chunks, num_updates) and num_updates % c == 0:
            return num_updates // c
    return math.ceil(num_updates / chunks)


def evaluate_seeds(agent, env, env_params, params, keys, episodes: int) -> np.ndarray:
    """[seeds, episodes] evaluation returns of vmapped parameters, one seed per
    call (vmapping this over seeds hung XLA:CPU at 0% CPU on shapes_goal)."""
    fn = jax.jit(lambda p, k: common.evaluate(agent, env, env_params, p, k, episodes))
    return np.stack([np.asarray(fn(jax.tree.map(lambda x: x[i], params), keys[i]))
                     for i in range(len(keys))])


def train(config, workdir: str, progress: bool = True) -> dict:
    from tqdm import tqdm
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json(indent=2))
    env, env_params = common.make_env(config.env)
    agent = common.make_agent(config, env, env_params)
    n = agent.num_updates
    if n < 1:
        raise ValueError(f"config.total_timesteps={config.total_timesteps} is less than one "
                         f"update ({agent.steps_per_update} steps)")
    seeds = jax.random.split(jax.random.key(config.seed), config.num_seeds)
    k_init, k_before, k_after, k_random = (jnp.stack([jax.random.fold_in(k, i) for k in seeds])
                                           for i in range(4))
    start = time.time()
    # One seed after another (lax.map), not vmapped: a batched orthogonal init
    # is a batched QR, which XLA:CPU runs without LAPACK and, for the CNN's wide
    # dense layer, seemingly forever; unbatched it takes a second.
    state = jax.jit(lambda keys: jax.lax.map(agent.init, keys))(k_init)
    before = evaluate_seeds(agent, env, env_params, state["train"].params, k_before,
                            config.eval_episodes)
    random_returns = evaluate_seeds(common.random_agent(env.action_space(env_params).n), env,
                                    env_params, None, k_random, config.eval_episodes)
    size = chunk_size(n, config.chunks)
    chunk = jax.jit(jax.vmap(lambda s, length: common.run_updates(agent, s, length),
                             in_axes=(0, None)), static_argnums=1)
    rows, done, compile_s = [], 0, None
    bar = tqdm(total=n, unit="update", disable=not progress, desc=f"{config.agent} {config.env.name}")
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        while done < n:
            length = min(size, n - done)
            t0 = time.time()
            state, metrics = chunk(state, length)
            metrics = jax.tree.map(np.asarray, jax.block_until_ready(metrics))
            compile_s = compile_s if compile_s is not None else time.time() - t0
            for i in range(length):
                done += 1
                row = {"update": done, "timesteps": done * agent.steps_per_update}
                for k, v in metrics.items():
                    value = v[:, i]
                    row[k] = [None if np.isnan(x) else float(x) for x in value]
                f.write(json.dumps(row) + "\n")
                rows.append(row)
            f.flush()  # a run stopped mid-way keeps its curve so far
            bar.update(length)
            last = metrics["episode_return"][:, -1]
            if not np.all(np.isnan(last)):
                bar.set_postfix(episode_return=f"{np.nanmean(last):.1f}")
    bar.close()
    train_s = time.time() - start
    after = evaluate_seeds(agent, env, env_params, state["train"].params, k_after,
                           config.eval_episodes)
    per_seed = after.mean(axis=1)
    summary = {
        "agent": config.agent, "env": config.env.name, "seeds": config.num_seeds,
        "timesteps_per_seed": n * agent.steps_per_update, "updates": n,
        "eval_episodes_per_seed": config.eval_episodes,
        "eval_return_per_seed": per_seed.tolist(),
        "eval_return_iqm": common.interquartile_mean(per_seed),
        "eval_return_mean": float(per_seed.mean()),
        "eval_return_before_training": before.mean(axis=1).tolist(),
        "random_policy_return": float(random_returns.mean()),
        "final_training_return_per_seed": _last_returns(rows),
        "train_seconds": train_s, "first_chunk_seconds_incl_compile": compile_s,
        "hardware": hardware(),
    }
    if config.solved_return >= 0:
        summary["solved_return"] = config.solved_return
        summary["seeds_solved"] = int((per_seed >= config.solved_return).sum())
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    plot(rows, os.path.join(workdir, "learning_curve.png"),
         f"{config.agent.upper()} on {config.env.name} ({config.num_seeds} seeds)",
         config.solved_return)
    return summary


def _last_returns(rows, window: int = 10) -> list:
    """Each seed's mean training return over the last `window` updates."""
    r = np.array([[np.nan if x is None else x for x in row["episode_return"]]
                  for row in rows[-window:]])
    with np.errstate(all="ignore"):
        return [None if np.isnan(x) else float(x) for x in np.nanmean(r, axis=0)]


def plot(rows, path: str, title: str, solved: float = -1.0) -> None:
    """Per-seed training return against environment steps, and their mean."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = np.array([row["timesteps"] for row in rows])
    r = np.array([[np.nan if x is None else x for x in row["episode_return"]] for row in rows])
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    for s in range(r.shape[1]):
        ok = ~np.isnan(r[:, s])
        ax.plot(t[ok], r[ok, s], lw=0.8, alpha=0.45)
    with np.errstate(all="ignore"):
        mean = np.nanmean(r, axis=1)
    ok = ~np.isnan(mean)
    ax.plot(t[ok], mean[ok], color="k", lw=1.6, label="mean over seeds")
    if solved >= 0:
        ax.axhline(solved, color="grey", ls="--", lw=0.8, label=f"solved ({solved:g})")
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel("episode return (training)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def cli_main(argv) -> int:
    from vision_jax.config import parse_config_args

    def extra(parser):
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    config, flags = parse_config_args(argv, "vision-jax rl", extra=extra,
                                      description="train an RL agent (docs/RL.md)")
    summary = train(config, flags.workdir, progress=not flags.no_progress)
    print(json.dumps({k: summary[k] for k in ("agent", "env", "eval_return_per_seed",
                                              "eval_return_iqm", "random_policy_return",
                                              "train_seconds")}, indent=1))
    return 0
