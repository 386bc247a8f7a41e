"""A training run compiled end to end, for environments written in JAX.

One chunk of training is a ``lax.scan`` over environment steps; each step acts with the
sampler, steps the environment, resets it when an episode ends, stores the transition,
and (once ``learning_starts`` transitions are stored) takes ``updates_per_step``
``sqljax.update`` steps on replay samples. The whole chunk is one jitted call; the host
only sees the chunk's summary metrics (progress bar, logs).

    fns = make_train(cfg, env_params, total_steps=10_000, chunk_steps=1_000)
    carry = jax.jit(fns.init_carry)(key)
    run = jax.jit(fns.run_chunk, donate_argnums=0)
    for _ in range(fns.num_chunks):
        carry, metrics = run(carry)

Both functions are pure, so ``jax.vmap`` over a leading seed axis trains independent
seeds in one program (``seed_keys`` gives seed i its own key from a base key)::

    carries = jax.jit(jax.vmap(fns.init_carry))(seed_keys(key, n_seeds))
    carries, metrics = jax.jit(jax.vmap(fns.run_chunk), donate_argnums=0)(carries)

:func:`train` is that host loop with a progress bar.

An environment here is any object (a module is fine) with
``reset(key, params) -> (obs (O,), env_state)`` and
``step(key, env_state, action (A,), params) -> (obs, env_state, reward, terminated,
truncated, info)``, plus ``OBS_DIM`` and ``ACTION_DIM``; see ``sqljax.envs.multigoal``.
Actions are passed as the sampler gives them, in [-1, 1]^A.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

import sqljax
from sqljax import replay
from sqljax.envs import multigoal


@struct.dataclass
class Carry:
    """Everything a training run carries from one env step to the next (a pytree).

    agent: the learner (``sqljax.SQLState``).
    buffer: replay buffer state.
    env_state, obs (O,): the environment's state and current observation.
    key: PRNG key for acting, resets and replay sampling.
    episode_return () f32, episode_length () i32: the running episode (unscaled reward).
    env_steps () i32: environment steps taken so far.
    """

    agent: Any
    buffer: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    env_steps: jax.Array


class TrainFns(NamedTuple):
    """What :func:`make_train` returns: two pure, jittable functions and the run's size.

    init_carry(key) -> Carry
    run_chunk(carry) -> (carry, metrics): ``chunk_steps`` env steps; metrics are scalars:
      ``episode_return`` (mean over the episodes completed in the chunk, NaN if none),
      ``episodes`` (how many completed), ``episode_length`` (their mean length),
      ``env_steps`` (total so far), ``updates`` (updates in this chunk), and the mean over
      the chunk's updates of every metric ``sqljax.update`` returns (NaN if none).
    """

    init_carry: Callable[[jax.Array], Carry]
    run_chunk: Callable[[Carry], tuple[Carry, dict[str, jax.Array]]]
    num_chunks: int
    chunk_steps: int


def seed_keys(key: jax.Array, n_seeds: int) -> jax.Array:
    """Keys for seeds 0..n-1 from a base key; seed i's key does not depend on n."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n_seeds))


def make_train(
    cfg: "sqljax.SQLConfig",
    env_params: Any = multigoal.DEFAULT_PARAMS,
    total_steps: int = 10_000,
    chunk_steps: int = 1_000,
    *,
    env: Any = multigoal,
) -> TrainFns:
    """Build the pure functions of a training run on a JAX-native environment.

    Args:
      cfg: hyperparameters; uses batch_size, learning_starts, updates_per_step,
        replay_size (capped at total_steps) and max_episode_steps (a time limit on top of
        the environment's own).
      env_params: the environment's parameters (static).
      total_steps: environment steps of the whole run; rounded up to whole chunks.
      chunk_steps: environment steps per ``run_chunk`` call (one ``lax.scan``).
      env: the environment (see the module docstring).

    Only true terminations are stored as ``terminated``: a time-limit truncation
    bootstraps from the next state's value.
    """
    if not isinstance(cfg, sqljax.SQLConfig):
        raise TypeError(f"cfg must be an sqljax.SQLConfig, got {type(cfg).__name__}")
    if int(chunk_steps) < 1 or int(total_steps) < 1:
        raise ValueError(f"total_steps and chunk_steps must be >= 1, got {total_steps}, {chunk_steps}")
    chunk_steps = int(chunk_steps)
    num_chunks = math.ceil(int(total_steps) / chunk_steps)
    capacity = int(min(cfg.replay_size, num_chunks * chunk_steps))
    obs_dim, action_dim = int(env.OBS_DIM), int(env.ACTION_DIM)
    update_metric_names = sqljax.UPDATE_METRICS

    def init_carry(key: jax.Array) -> Carry:
        k_agent, k_env, k_run = jax.random.split(key, 3)
        agent = sqljax.init(k_agent, cfg, obs_dim, action_dim)
        obs, env_state = env.reset(k_env, env_params)
        example = sqljax.Batch(
            obs=jnp.zeros((obs_dim,)), action=jnp.zeros((action_dim,)), reward=jnp.zeros(()),
            next_obs=jnp.zeros((obs_dim,)), terminated=jnp.zeros(()))
        return Carry(
            agent=agent,
            buffer=replay.init(capacity, example),
            env_state=env_state,
            obs=obs,
            key=k_run,
            episode_return=jnp.zeros((), jnp.float32),
            episode_length=jnp.zeros((), jnp.int32),
            env_steps=jnp.zeros((), jnp.int32),
        )

    def learn(agent, buffer, key):
        """``updates_per_step`` updates on fresh replay samples; metrics averaged."""
        def one(agent, k):
            batch = replay.sample(buffer, k, cfg.batch_size)
            return sqljax.update(agent, batch)

        agent, metrics = jax.lax.scan(one, agent, jax.random.split(key, cfg.updates_per_step))
        return agent, {k: jnp.mean(v) for k, v in metrics.items()}

    def skip(agent, buffer, key):
        del buffer, key
        return agent, {k: jnp.zeros((), jnp.float32) for k in update_metric_names}

    def env_step(carry: Carry, _):
        key, k_act, k_env, k_reset, k_learn = jax.random.split(carry.key, 5)
        action = sqljax.sample_actions(carry.agent, carry.obs, k_act)
        next_obs, env_state, reward, terminated, truncated, _info = env.step(
            k_env, carry.env_state, action, env_params)
        episode_length = carry.episode_length + 1
        truncated = truncated | (episode_length >= cfg.max_episode_steps)
        buffer = replay.add(carry.buffer, sqljax.Batch(
            obs=carry.obs, action=action, reward=reward, next_obs=next_obs,
            terminated=terminated.astype(jnp.float32)))
        env_steps = carry.env_steps + 1

        learning = env_steps >= max(cfg.learning_starts, 1)
        agent, metrics = jax.lax.cond(learning, learn, skip, carry.agent, buffer, k_learn)

        done = terminated | truncated
        episode_return = carry.episode_return + reward
        reset_obs, reset_state = env.reset(k_reset, env_params)
        env_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, env_state)
        new_carry = Carry(
            agent=agent,
            buffer=buffer,
            env_state=env_state,
            obs=jnp.where(done, reset_obs, next_obs),
            key=key,
            episode_return=jnp.where(done, 0.0, episode_return),
            episode_length=jnp.where(done, 0, episode_length),
            env_steps=env_steps,
        )
        out = dict(done=done, episode_return=episode_return, episode_length=episode_length,
                   learning=learning, metrics=metrics)
        return new_carry, out

    def run_chunk(carry: Carry) -> tuple[Carry, dict[str, jax.Array]]:
        carry, out = jax.lax.scan(env_step, carry, None, length=chunk_steps)
        done = out["done"]
        n_episodes = jnp.sum(done)
        per_episode = jnp.maximum(n_episodes, 1)
        nan = jnp.float32(jnp.nan)
        metrics = {
            "episode_return": jnp.where(
                n_episodes > 0, jnp.sum(jnp.where(done, out["episode_return"], 0.0)) / per_episode, nan),
            "episode_length": jnp.where(
                n_episodes > 0, jnp.sum(jnp.where(done, out["episode_length"], 0)) / per_episode, nan),
            "episodes": n_episodes.astype(jnp.int32),
            "env_steps": carry.env_steps,
        }
        learning = out["learning"]
        n_updates = jnp.sum(learning)
        metrics["updates"] = (n_updates * cfg.updates_per_step).astype(jnp.int32)
        for name, values in out["metrics"].items():
            metrics[name] = jnp.where(
                n_updates > 0, jnp.sum(jnp.where(learning, values, 0.0)) / jnp.maximum(n_updates, 1), nan)
        return carry, metrics

    return TrainFns(init_carry=init_carry, run_chunk=run_chunk, num_chunks=num_chunks,
                    chunk_steps=chunk_steps)


def train(
    cfg: "sqljax.SQLConfig",
    key: jax.Array,
    total_steps: int,
    chunk_steps: int = 1_000,
    env_params: Any = multigoal.DEFAULT_PARAMS,
    *,
    env: Any = multigoal,
    progress: bool = True,
    log: Callable[[dict[str, float]], None] | None = None,
    callback: Callable[[Carry, dict[str, float]], dict[str, Any] | None] | None = None,
) -> tuple[Carry, list[dict[str, float]]]:
    """Run :func:`make_train`'s functions on the host, one jitted call per chunk.

    Returns the final carry (``carry.agent`` is the trained ``SQLState``) and one dict of
    metrics per chunk (plain floats, with ``wall_time`` seconds since the start,
    compilation included). After each chunk, ``callback(carry, metrics)`` (e.g. an
    evaluation) may return more entries for that chunk's dict (it must not keep
    ``carry``: the next chunk reuses its buffers); then ``log`` is called with the dict.
    """
    from tqdm.auto import tqdm

    fns = make_train(cfg, env_params, total_steps, chunk_steps, env=env)
    start = time.perf_counter()
    carry = jax.jit(fns.init_carry)(key)
    run_chunk = jax.jit(fns.run_chunk, donate_argnums=0)
    history = []
    bar = tqdm(total=fns.num_chunks * fns.chunk_steps, unit="step", disable=not progress,
               dynamic_ncols=True)
    for _ in range(fns.num_chunks):
        carry, metrics = run_chunk(carry)
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        metrics["wall_time"] = time.perf_counter() - start
        if callback is not None:
            metrics.update(callback(carry, metrics) or {})
        history.append(metrics)
        bar.update(fns.chunk_steps)
        bar.set_postfix(ret=f"{metrics['episode_return']:.1f}", q_loss=f"{metrics.get('q_loss', float('nan')):.3g}")
        if log is not None:
            log(metrics)
    bar.close()
    return carry, history


def rollout(
    agent: "sqljax.SQLState",
    key: jax.Array,
    n_episodes: int,
    env_params: Any = multigoal.DEFAULT_PARAMS,
    *,
    env: Any = multigoal,
    deterministic: bool = False,
    reset_fn: Callable[[jax.Array], tuple[jax.Array, Any]] | None = None,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """``n_episodes`` evaluation episodes of the sampler, in parallel (pure; jittable with
    ``agent`` as an argument and the rest static).

    Stochastic: a fresh xi per state and step; ``deterministic=True``: xi = 0.
    ``reset_fn(key) -> (obs, env_state)`` chooses the start (default ``env.reset``).
    Episodes run for ``max_steps`` (default ``agent.config.max_episode_steps``) steps or
    until the environment ends them; steps after the end are masked out.

    Returns a dict: ``obs`` (N, T+1, O) (positions after the end repeat the last one),
    ``reward`` (N, T) (0 after the end), ``alive`` (N, T) bool (step t belongs to the
    episode), ``terminated`` (N,) bool, ``episode_return`` (N,), ``length`` (N,) int32,
    and ``info``: the env's info per step, each leaf (N, T, ...).
    """
    reset_fn = (lambda k: env.reset(k, env_params)) if reset_fn is None else reset_fn
    max_steps = int(agent.config.max_episode_steps if max_steps is None else max_steps)

    def episode(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = reset_fn(k_reset)

        def one_step(c, k):
            obs, state, alive = c
            k_act, k_env = jax.random.split(k)
            action = sqljax.sample_actions(agent, obs, k_act, deterministic=deterministic)
            next_obs, next_state, reward, term, trunc, info = env.step(k_env, state, action, env_params)
            next_obs = jnp.where(alive, next_obs, obs)
            next_state = jax.tree.map(lambda n, s: jnp.where(alive, n, s), next_state, state)
            out = dict(obs=next_obs, reward=jnp.where(alive, reward, 0.0), alive=alive,
                       terminated=alive & term, info=info)
            return (next_obs, next_state, alive & ~(term | trunc)), out

        _, out = jax.lax.scan(one_step, (obs, state, jnp.array(True)), jax.random.split(k_run, max_steps))
        return dict(
            obs=jnp.concatenate([obs[None], out["obs"]], axis=0),
            reward=out["reward"],
            alive=out["alive"],
            terminated=jnp.any(out["terminated"]),
            episode_return=jnp.sum(out["reward"]),
            length=jnp.sum(out["alive"]).astype(jnp.int32),
            info=out["info"],
        )

    return jax.vmap(episode)(jax.random.split(key, n_episodes))
