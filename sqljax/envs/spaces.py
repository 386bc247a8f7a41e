"""Spaces and the automatic reset of the JAX-native environment protocol.

A leaf module (it imports only jax, numpy and typing), shared by the envs that
implement the protocol of :mod:`sqljax.envs.jax_env`:

* :class:`Box`, a continuous space;
* :func:`auto_reset`, which turns one step without automatic reset and a freshly reset
  episode into the protocol's step: where the episode ended, the new episode's first
  observation and state, with the true last observation in ``info["final_observation"]``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Box(NamedTuple):
    """A continuous space: ``low`` and ``high`` broadcast to ``shape``."""

    low: Any
    high: Any
    shape: tuple[int, ...]
    dtype: Any = np.float32


def auto_reset(step_out: tuple, reset_out: tuple[jax.Array, Any]) -> tuple:
    """The protocol's step from a plain step and a reset (pure; vmappable).

    Args:
      step_out: ``(obs (O,), state, reward (), terminated () bool, truncated () bool,
        info)`` of one step that does not reset.
      reset_out: ``(obs (O,), state)`` of a new episode (the caller draws it on every
        step; it is used only where the episode ended).

    Returns:
      ``(obs (O,), state, reward (), terminated (), truncated (), info)``: where
      ``terminated | truncated``, the reset's observation and state (every leaf of the
      state chosen with ``jnp.where``), else the step's; ``info`` is the step's plus
      ``final_observation`` (O,), the step's own observation.
    """
    obs, state, reward, terminated, truncated, info = step_out
    obs_reset, state_reset = reset_out
    done = terminated | truncated
    state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_reset, state)
    info = dict(info, final_observation=obs)
    return jnp.where(done, obs_reset, obs), state, reward, terminated, truncated, info
