"""Functional replay buffer of `Batch` transitions: state in, state out; jittable,
vmappable over a leading seed axis, checkpointable as a plain pytree.

Storage and sampling are flashbax's item buffer (a ring buffer of independent items,
uniform sampling with replacement over the filled part). These functions fix its
configuration for transitions, so callers hold only the buffer state.

For speed, jit the adders with `donate_argnums=0` (the drivers do) so the ring buffer
is updated in place rather than copied.
"""

from __future__ import annotations

import flashbax as fbx
import jax
import jax.numpy as jnp
from flashbax.buffers.trajectory_buffer import TrajectoryBufferState

from sqljax.learners.protocol import Batch

ReplayState = TrajectoryBufferState


def _buffer(capacity: int, add_sequences: bool, sample_batch_size: int = 1):
    return fbx.make_item_buffer(max_length=capacity, min_length=1,
                                sample_batch_size=sample_batch_size,
                                add_sequences=add_sequences)


def capacity(buffer: ReplayState) -> int:
    """Number of transitions the buffer holds when full (static)."""
    return int(buffer.experience.obs.shape[-2])


def init(capacity: int, example: Batch) -> ReplayState:
    """An empty buffer for `capacity` transitions shaped like `example` (one transition:
    obs (O,), action (A,), reward (), next_obs (O,), terminated ())."""
    if int(capacity) < 1:
        raise ValueError(f"replay capacity must be >= 1, got {capacity}")
    example = Batch(*(jnp.asarray(x, jnp.float32) for x in example))
    state = _buffer(int(capacity), False).init(example)
    # A strongly typed index: a buffer restored from a checkpoint then has the same
    # types as a fresh one and reuses compiled steps instead of recompiling them.
    return state.replace(current_index=jnp.asarray(state.current_index, jnp.int32))


def empty(capacity: int, obs_dim: int, action_dim: int) -> ReplayState:
    """An empty buffer for ``capacity`` transitions with observations (O,) and actions (A,)."""
    return init(capacity, Batch(obs=jnp.zeros((obs_dim,)), action=jnp.zeros((action_dim,)),
                                reward=jnp.zeros(()), next_obs=jnp.zeros((obs_dim,)),
                                terminated=jnp.zeros(())))


def add(buffer: ReplayState, transition: Batch) -> ReplayState:
    """Append one transition (fields without a batch axis); overwrites the oldest when full."""
    transition = Batch(*(jnp.asarray(x, jnp.float32) for x in transition))
    return _buffer(capacity(buffer), False).add(buffer, transition)


def add_batch(buffer: ReplayState, transitions: Batch) -> ReplayState:
    """Append N transitions (fields with a leading axis N <= capacity), in order."""
    transitions = Batch(*(jnp.asarray(x, jnp.float32) for x in transitions))
    return _buffer(capacity(buffer), True).add(buffer, transitions)


def size(buffer: ReplayState) -> jax.Array:
    """Number of transitions stored (int32 scalar)."""
    cap = capacity(buffer)
    return jnp.where(buffer.is_full, cap, buffer.current_index).astype(jnp.int32)


def sample(buffer: ReplayState, key: jax.Array, batch_size: int) -> Batch:
    """`batch_size` transitions drawn uniformly with replacement from those stored.
    Sampling an empty buffer returns zeros (check `size` first)."""
    from sqljax.update import raw_key

    out = _buffer(capacity(buffer), False, batch_size).sample(buffer, raw_key(key))
    return Batch(*out.experience)
