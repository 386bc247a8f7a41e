"""The JAX-native environment protocol (gymnax 1.0's interface) and builders by name.

An environment is an object with::

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
    env.observation_space(params).shape, env.action_space(params).{shape, low, high}

``step`` resets automatically when an episode ends (``terminated | truncated``): it
returns the new episode's first observation and puts the true last one in
``info["final_observation"]``. Truncations bootstrap, terminations don't. gymnax
environments with a continuous (``Box``) action space satisfy it as they are.
:class:`Box` and the shared automatic reset (:func:`sqljax.envs.spaces.auto_reset`) live
in :mod:`sqljax.envs.spaces`; ``Box`` is re-exported here. Evaluation episodes on such an
env: :func:`sqljax.loops.evaluation.rollout`. No gymnasium import here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sqljax.envs.registry import GYMNAX_PREFIX, MJX_PREFIX, base_name, find_task
from sqljax.envs.spaces import Box

__all__ = ["Box", "action_affine", "make_jax_env", "space_dims"]


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


def make_jax_env(name: str) -> tuple[Any, Any]:
    """``(env, env_params)`` of a JAX-native task: ``MultiGoal`` (any of its names),
    ``gymnax:<id>`` (needs the ``gymnax`` package) or ``mjx:<Task>`` (gymnasium's v5
    HalfCheetah, Hopper, Walker2d, Ant, Humanoid, and the Ant transfer tasks
    ``AntAnyDirection``, ``AntHallwayWide``, ``AntHallwayNarrow``, ``AntUMaze`` (``-v1``),
    stepped by MJX; needs ``mujoco-mjx``).
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
            from sqljax.envs import mjx_ant_tasks, mjx_locomotion
        except ImportError:
            raise ValueError(f"{env_id} needs the mujoco-mjx package: pip install 'sqljax[mjx]'") from None
        if base_name(env_id) in mjx_ant_tasks.TASKS:
            return mjx_ant_tasks.make(env_id.removeprefix(MJX_PREFIX))
        return mjx_locomotion.make(base_name(env_id))
    raise ValueError(f"{name!r} is not a JAX-native environment (MultiGoal, gymnax:<id>, mjx:<Task>)")
