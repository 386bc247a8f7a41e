"""What every driver runs on the device per environment step, for one seed (``jax.vmap``
adds the seed axis): :func:`store_and_learn` stores the transition, learns from replay
and keeps the episode and update statistics; the drivers differ only in where the next
observation comes from. Only true terminations are stored as ``terminated``; a
time-limit truncation bootstraps from the next state's value. The learner is known only
through its protocol (:mod:`sqljax.learners`), found from its config.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from sqljax import learners, replay
from sqljax.learners import Batch


@struct.dataclass
class Carry:
    """What a seed keeps from one env step to the next (a pytree; checkpointed).

    agent: the learner. buffer: replay. key: PRNG key for acting and replay sampling.
    obs (O,): the current observation; action (A,): the action pending at it (the
    gymnasium driver's; the compiled loop samples it within the step).
    explore: the learner's exploration state of the running episode (e.g. OU noise;
    ``()`` for SQL), reset where an episode ends.
    env_state: the JAX-native environment's state (() for gymnasium envs).
    episode_return () f32, episode_length () i32: the running episode.
    episodes () i32, env_steps () i32: completed episodes and stored transitions so far.
    """

    agent: Any
    buffer: Any
    key: jax.Array
    obs: jax.Array
    action: jax.Array
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array
    episodes: jax.Array
    env_steps: jax.Array
    explore: Any = ()


@struct.dataclass
class Stats:
    """Sums since the last fetch (not checkpointed: zero at every sync point).

    metric_sum: per update metric, the sum of per-step means; n_learn () i32: how many
    env steps learned. ep_return_sum, ep_length_sum, ep_count: completed episodes.
    bad_step () i32, bad_update () i32: env step and update count of the first
    non-finite loss or parameter, -1 while all is finite.
    """

    metric_sum: dict
    n_learn: jax.Array
    ep_return_sum: jax.Array
    ep_length_sum: jax.Array
    ep_count: jax.Array
    bad_step: jax.Array
    bad_update: jax.Array


def strong(tree):
    """Every leaf with a strong dtype, so fresh and restored carries compile alike."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.asarray(x).dtype), tree)


def explore_init(agent: Any) -> Any:
    """The learner's exploration state at an episode's start."""
    return learners.of_state(agent).explore_init(agent.config, agent.action_dim)


def new_carry(agent: Any, key: jax.Array, capacity: int, obs=None, env_state: Any = ()) -> Carry:
    """A seed's carry with an empty replay of ``capacity`` transitions."""
    o, a = agent.obs_dim, agent.action_dim
    zero_f, zero_i = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
    return strong(Carry(
        agent=agent, buffer=replay.empty(capacity, o, a), key=jnp.asarray(key),
        obs=jnp.zeros((o,), jnp.float32) if obs is None else obs,
        action=jnp.zeros((a,), jnp.float32), env_state=env_state,
        episode_return=zero_f, episode_length=zero_i, episodes=zero_i, env_steps=zero_i,
        explore=explore_init(agent)))


def init_fn(cfg: Any, obs_dim: int, action_dim: int, capacity: int):
    """key -> a seed's fresh carry without an env state (the gymnasium driver's):
    ``split(key)`` gives the learner's key and the loop's."""
    learner = learners.of_config(cfg)

    def init_one(key):
        k_agent, k_loop = jax.random.split(key)
        return new_carry(learner.init(k_agent, cfg, obs_dim, action_dim), k_loop, capacity)

    return init_one


def policy_action(cfg: Any, carry: Carry, obs: jax.Array, key: jax.Array) -> tuple[jax.Array, Any]:
    """The action (A,) a seed takes at ``obs`` and its next exploration state: the
    learner's exploring action, or, with ``cfg.warmup_actions == "uniform"``, a uniform
    one in [-1, 1]^A from ``key`` (the same whatever the learner) until
    ``learning_starts`` transitions are stored."""
    action, explore = learners.of_config(cfg).act(carry.agent, carry.explore, obs, key, False)
    if cfg.warmup_actions == "uniform":
        uniform = jax.random.uniform(key, action.shape, minval=-1.0, maxval=1.0)
        action = jnp.where(carry.env_steps < cfg.learning_starts, uniform, action)
    return action, explore


def new_stats(names=None) -> Stats:
    """Zero sums for the update metrics ``names`` (default: the default learner's)."""
    names = learners.get(None).metrics if names is None else names
    def zero(dtype=jnp.float32):  # a buffer each, so that every leaf can be donated
        return jnp.zeros((), dtype)

    return Stats(metric_sum={k: zero() for k in names}, n_learn=zero(jnp.int32),
                 ep_return_sum=zero(), ep_length_sum=zero(), ep_count=zero(jnp.int32),
                 bad_step=zero(jnp.int32) - 1, bad_update=zero(jnp.int32) - 1)


def _finite(tree) -> jax.Array:
    return jnp.isfinite(optax.tree.norm(tree))


def learn(cfg: Any, agent: Any, buffer, key: jax.Array):
    """``updates_per_step`` updates on fresh replay samples (one ``lax.scan``).

    Returns the learner, each metric's mean over the updates, and the update count
    (``agent.step`` after it) of the first update with a non-finite metric or leaving a
    non-finite parameter (-1 if none).
    """
    learner = learners.of_config(cfg)

    def one(agent, k):
        agent, metrics = learner.update(agent, replay.sample(buffer, k, cfg.batch_size))
        ok = jnp.all(jnp.stack([jnp.isfinite(v) for v in metrics.values()]))
        ok = ok & jnp.all(jnp.stack([_finite(p) for p in learner.params(agent)]))
        return agent, (metrics, ok, agent.step)

    agent, (metrics, ok, steps) = jax.lax.scan(one, agent, jax.random.split(key, cfg.updates_per_step))
    bad_update = jnp.where(jnp.all(ok), -1, steps[jnp.argmin(ok)]).astype(jnp.int32)
    return agent, {k: jnp.mean(v) for k, v in metrics.items()}, bad_update


def store_and_learn(cfg: Any, carry: Carry, stats: Stats, action, next_obs,
                    reward, terminated, done, learning) -> tuple[Carry, Stats]:
    """Store (carry.obs, action, reward, next_obs, terminated), learn if ``learning``
    (a bool, traced or static), and count the episode that ``done`` ends (resetting the
    exploration state there). The caller then moves ``carry.obs`` on (to next_obs, or a
    reset's observation)."""
    buffer = replay.add(carry.buffer, Batch(
        obs=carry.obs, action=action, reward=reward, next_obs=next_obs,
        terminated=jnp.asarray(terminated, jnp.float32)))
    key, k_learn = jax.random.split(carry.key)
    env_steps = carry.env_steps + 1

    names = tuple(stats.metric_sum)  # the logged metrics

    def run(agent, buffer, key):
        agent, metrics, bad_update = learn(cfg, agent, buffer, key)
        return agent, {k: metrics[k] for k in names}, bad_update

    def skip(agent, buffer, key):
        del buffer, key
        return agent, {k: jnp.zeros((), jnp.float32) for k in names}, jnp.int32(-1)

    if isinstance(learning, bool):
        agent, metrics, bad_update = (run if learning else skip)(carry.agent, buffer, k_learn)
    else:
        agent, metrics, bad_update = jax.lax.cond(learning, run, skip, carry.agent, buffer, k_learn)
    learned = jnp.asarray(learning, jnp.int32)
    first = (stats.bad_step < 0) & (bad_update >= 0)
    ep_return = carry.episode_return + reward
    ep_length = carry.episode_length + 1
    stats = Stats(
        metric_sum={k: stats.metric_sum[k] + learned * metrics[k] for k in names},
        n_learn=stats.n_learn + learned,
        ep_return_sum=stats.ep_return_sum + jnp.where(done, ep_return, 0.0),
        ep_length_sum=stats.ep_length_sum + jnp.where(done, ep_length, 0),
        ep_count=stats.ep_count + done,
        bad_step=jnp.where(first, env_steps, stats.bad_step),
        bad_update=jnp.where(first, bad_update, stats.bad_update))
    carry = carry.replace(agent=agent, buffer=buffer, key=key, env_steps=env_steps,
                          episode_return=jnp.where(done, 0.0, ep_return),
                          episode_length=jnp.where(done, 0, ep_length),
                          episodes=carry.episodes + done,
                          explore=jax.tree.map(lambda init, x: jnp.where(done, init, x),
                                               explore_init(agent), carry.explore))
    return carry, stats


def summarize(stats: Stats) -> dict[str, jax.Array]:
    """The means a metrics row shows (NaN where nothing happened since the last fetch),
    plus ``bad_step``, ``bad_update`` and ``n_learn``."""
    nan = jnp.float32(jnp.nan)
    n, e = stats.n_learn, stats.ep_count
    out = {k: jnp.where(n > 0, v / jnp.maximum(n, 1), nan) for k, v in stats.metric_sum.items()}
    out.update(episode_return=jnp.where(e > 0, stats.ep_return_sum / jnp.maximum(e, 1), nan),
               episode_length=jnp.where(e > 0, stats.ep_length_sum / jnp.maximum(e, 1), nan),
               n_learn=n, bad_step=stats.bad_step, bad_update=stats.bad_update)
    return out
