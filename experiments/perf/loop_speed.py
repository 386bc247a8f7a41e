"""The compiled training loop's speed over seeds, for :mod:`experiments.perf.bench_gpu`.

:func:`measure_loop`: ``sqljax.loops.scan_loop`` on a JAX-native env, ``jax.vmap``-ed
over S seeds: a warm-up chunk (which holds the ``learning_starts`` steps without
updates), then a timed chunk of C env steps per seed, each step taking one update.
:func:`measure_training`: a whole run of the training driver (``multi_seed.train``: env
steps, replay, updates, evaluation, checkpoints) on S seeds for as many env steps as a
time allowance holds at a measured rate, with its evaluation returns.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import sqljax
from sqljax.envs import make_jax_env
from sqljax.loops import device, multi_seed, scan_loop
from sqljax.store.run_dir import RunSpec


def loop_config(name: str, env_name: str, chunk_steps: int) -> sqljax.SQLConfig:
    """The learner of a loop measurement. On MultiGoal: ``multigoal`` is its preset;
    another preset takes the multi-goal task's episode length and learning_starts. On
    another env: the preset with the task's reward scale. ``learning_starts`` is capped
    at half a chunk so that the timed chunk updates at every step."""
    if env_name == "MultiGoal":
        task = sqljax.SQLConfig.preset("multigoal")
        cfg = task if name == "multigoal" else sqljax.SQLConfig.preset(
            name, max_episode_steps=task.max_episode_steps, learning_starts=task.learning_starts)
    else:
        cfg = sqljax.SQLConfig.preset(name, task=env_name)
    return cfg.replace(learning_starts=min(cfg.learning_starts, chunk_steps // 2))


def measure_loop(config_name: str, env_name: str, n_seeds: int, chunk_steps: int) -> dict:
    """Env steps/s of the compiled loop, S seeds vmapped (see the module docstring). The
    replay capacity is the run's own length, 2 C transitions per seed, not the preset's
    1e6, so that 256 seeds fit in memory (sampling costs the same at any capacity)."""
    run_steps = 2 * chunk_steps  # one warm-up chunk, one timed chunk
    cfg = loop_config(config_name, env_name, chunk_steps).replace(replay_size=run_steps)
    env, env_params = make_jax_env(env_name)
    fns = scan_loop.make_train(cfg, env, env_params, capacity=run_steps, chunk_steps=chunk_steps)
    keys = jax.random.split(jax.random.key(0), n_seeds)

    def fresh_stats():
        return jax.jit(jax.vmap(lambda _: device.new_stats()))(jnp.arange(n_seeds))

    t0 = time.perf_counter()
    carries = jax.block_until_ready(jax.jit(jax.vmap(fns.init_carry))(keys))
    stats = fresh_stats()
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_chunk = jax.jit(jax.vmap(fns.run_chunk), donate_argnums=(0, 1)).lower(carries, stats).compile()
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    carries, _ = jax.block_until_ready(run_chunk(carries, stats))
    warmup_s = time.perf_counter() - t0
    stats = fresh_stats()
    t0 = time.perf_counter()
    carries, stats = jax.block_until_ready(run_chunk(carries, stats))
    timed_s = time.perf_counter() - t0
    stats = jax.device_get(stats)
    del carries, run_chunk
    n_learn = np.asarray(stats.n_learn, float)
    q_loss = np.asarray(stats.metric_sum["q_loss"]) / np.maximum(n_learn, 1)
    return {
        "config": config_name, "env": env_name, "seeds": n_seeds, "chunk_steps": chunk_steps,
        "batch_size": cfg.batch_size, "kernel_n_particles": cfg.kernel_n_particles,
        "hidden_sizes": list(cfg.hidden_sizes), "replay_capacity_per_seed": run_steps,
        "env_steps_per_s": n_seeds * chunk_steps / timed_s,
        "env_steps_per_s_per_seed": chunk_steps / timed_s,
        "ms_per_env_step": timed_s / chunk_steps * 1e3,
        "timed_chunk_s": timed_s, "warmup_chunk_s": warmup_s, "compile_s": compile_s,
        "init_s": init_s,
        "updates_per_seed_in_timed_chunk": float(np.mean(n_learn * cfg.updates_per_step)),
        "q_loss_finite": bool(np.all(np.isfinite(q_loss))),
    }


def training_steps(rate_per_seed: float, seconds: float, least: int, most: int) -> int:
    """Env steps per seed that ``seconds`` hold at ``rate_per_seed`` steps/s, keeping a
    third of the time for compilation and evaluation; a multiple of ``least``, in
    [least, most]."""
    steps = int(rate_per_seed * seconds * 2 / 3) // least * least
    return int(np.clip(steps, least, most))


def measure_training(env_name: str, n_seeds: int, steps: int, out: Path,
                     eval_episodes: int) -> dict:
    """One run of the training driver: ``n_seeds`` seeds x ``steps`` env steps of the
    ``code`` preset on ``env_name``, five evaluations, into ``out`` (replaced)."""
    shutil.rmtree(out, ignore_errors=True)
    cfg = sqljax.SQLConfig.preset("code", task=env_name)
    cfg = cfg.replace(learning_starts=min(cfg.learning_starts, steps // 4))
    every = max(steps // 5, 1)
    spec = RunSpec(env_id=env_name, config=cfg, seed_ids=tuple(range(n_seeds)), steps=steps,
                   out=out, eval_every=every, eval_episodes=eval_episodes, checkpoint_every=steps,
                   log_every=every, progress=False, label="bench-gpu")
    t0 = time.perf_counter()
    result = multi_seed.train(spec, log=lambda _: None, handle_signals=False)
    wall = time.perf_counter() - t0
    last = result["evals"][-1] if result["evals"] else {}
    return {
        "env": env_name, "seeds": n_seeds, "steps_per_seed": steps, "wall_s_run": wall,
        "env_steps_per_s": n_seeds * steps / wall, "eval_episodes": eval_episodes,
        "evals": result["evals"],
        "final_stochastic_mean": float(np.mean(last["stochastic"])) if last else None,
        "final_deterministic_mean": float(np.mean(last["deterministic"])) if last else None,
        "run_dir": str(out),
    }
