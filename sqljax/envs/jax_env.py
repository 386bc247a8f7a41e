"""The JAX-native environment protocol (gymnax 1.0's interface) and builders by name.

An environment is an object with::

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
    env.observation_space(params).shape, env.action_space(params).{shape, low, high}

``step`` resets automatically when an episode ends (``terminated | truncated``): it
returns the new episode's first observation and puts the true last one in
``info["final_observation"]``. Truncations bootstrap, terminations don't. gymnax
environments with a continuous (``Box``) action space satisfy it as they are.
:func:`rollout` runs a learner's evaluation episodes on such an env. No gymnasium
import here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import sqljax
from sqljax.envs.registry import GYMNAX_PREFIX, MJX_PREFIX, base_name, find_task


class Box(NamedTuple):
    """A continuous space: ``low`` and ``high`` broadcast to ``shape``."""

    low: Any
    high: Any
    shape: tuple[int, ...]
    dtype: Any = np.float32


def space_dims(env: Any, params: Any) -> tuple[int, int]:
    """(obs_dim, action_dim) of a JAX-native env; ValueError unless both are flat-able
    and the actions continuous."""
    action_space = env.action_space(params)
    if not hasattr(action_space, "low") or not hasattr(action_space, "high"):
        raise ValueError(f"{type(env).__name__} has a discrete action space "
                         f"({type(action_space).__name__}); Soft Q-Learning needs continuous actions")
    obs_dim = int(np.prod(env.observation_space(params).shape))
    return obs_dim, int(np.prod(action_space.shape))


def action_affine(env: Any, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) with ``offset + scale * a`` mapping [-1, 1]^A onto the action box."""
    space = env.action_space(params)
    low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape).reshape(-1)
    high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape).reshape(-1)
    return (high + low) / 2, (high - low) / 2


def rollout(agent: sqljax.SQLState, key: jax.Array, n_episodes: int, env: Any, env_params: Any,
            *, deterministic: bool = False, reset_fn: Callable | None = None,
            max_steps: int | None = None) -> dict[str, Any]:
    """``n_episodes`` evaluation episodes of the sampler, in parallel (pure; jittable with
    ``agent`` and ``key`` as arguments and the rest static).

    Stochastic: a fresh xi per state and step; ``deterministic=True``: xi = 0.
    ``reset_fn(key) -> (obs, env_state)`` chooses the start (default ``env.reset``).
    Episodes run for ``max_steps`` (default ``agent.config.max_episode_steps``) steps or
    until the environment ends them; steps after the end are masked out.

    Returns: ``obs`` (N, T+1, O) (after the end: the last one repeated), ``reward`` (N, T)
    (0 after the end), ``alive`` (N, T) bool, ``terminated`` (N,) bool,
    ``episode_return`` (N,), ``length`` (N,) int32, ``info`` (each leaf (N, T, ...)).
    """
    reset_fn = (lambda k: env.reset(k, env_params)) if reset_fn is None else reset_fn
    max_steps = int(agent.config.max_episode_steps if max_steps is None else max_steps)
    offset, scale = action_affine(env, env_params)

    def episode(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = reset_fn(k_reset)

        def one_step(c, k):
            obs, state, alive = c
            k_act, k_env = jax.random.split(k)
            action = sqljax.sample_actions(agent, obs, k_act, deterministic=deterministic)
            next_obs, next_state, reward, term, trunc, info = env.step(
                k_env, state, offset + scale * action, env_params)
            shown = jnp.where(alive, info["final_observation"], obs)
            out = dict(obs=shown, reward=jnp.where(alive, reward, 0.0), alive=alive,
                       terminated=alive & term, info=info)
            return (jnp.where(alive, next_obs, obs), next_state, alive & ~(term | trunc)), out

        _, out = jax.lax.scan(one_step, (obs, state, jnp.array(True)),
                              jax.random.split(k_run, max_steps))
        return dict(obs=jnp.concatenate([obs[None], out["obs"]], axis=0), reward=out["reward"],
                    alive=out["alive"], terminated=jnp.any(out["terminated"]),
                    episode_return=jnp.sum(out["reward"]),
                    length=jnp.sum(out["alive"]).astype(jnp.int32), info=out["info"])

    return jax.vmap(episode)(jax.random.split(key, n_episodes))


def make_jax_env(name: str) -> tuple[Any, Any]:
    """``(env, env_params)`` of a JAX-native task: ``MultiGoal`` (any of its names),
    ``gymnax:<id>`` (needs the ``gymnax`` package) or ``mjx:<Task>`` (gymnasium's v5
    HalfCheetah, Hopper, Walker2d, Ant, Humanoid stepped by MJX; needs ``mujoco-mjx``).
    ValueError (one line) otherwise."""
    task = find_task(name)
    env_id = task.id if task is not None else str(name)
    if env_id == "sqljax/MultiGoal-v0":
        from sqljax.envs import multigoal

        return multigoal.MultiGoal(), multigoal.DEFAULT_PARAMS
    if env_id.startswith(GYMNAX_PREFIX):
        try:
            import gymnax
        except ImportError:
            raise ValueError(f"{env_id} needs the gymnax package: pip install "
                             "'sqljax[gymnax]'") from None
        gymnax_id = env_id.removeprefix(GYMNAX_PREFIX)
        try:
            env, params = gymnax.make(gymnax_id)
        except (ValueError, KeyError) as e:
            raise ValueError(f"unknown gymnax environment {gymnax_id!r} ({e})") from None
        space_dims(env, params)
        return env, params
    if env_id.startswith(MJX_PREFIX):
        try:
            from sqljax.envs import mjx_locomotion
        except ImportError:
            raise ValueError(f"{env_id} needs the mujoco-mjx package: pip install 'sqljax[mjx]'") from None
        return mjx_locomotion.make(base_name(env_id))
    raise ValueError(f"{name!r} is not a JAX-native environment (MultiGoal, gymnax:<id>, mjx:<Task>)")
