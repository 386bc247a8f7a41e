"""Soft value by importance sampling with a uniform proposal over [-1, 1]^A."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp


def soft_value_from_samples(q_values: jax.Array, action_dim: int) -> jax.Array:
    """V = logsumexp_k Q(a_k) - log K + A·log 2, for a_k ~ Uniform[-1, 1]^A.

    q_values: (..., K) Q at the K uniform samples. Returns (...). The last term is the
    log-volume of the proposal's support (its density is 2^-A).
    """
    n = q_values.shape[-1]
    return jax.nn.logsumexp(q_values, axis=-1) - math.log(n) + action_dim * math.log(2.0)


def uniform_actions(key: jax.Array, n_particles: int, action_dim: int) -> jax.Array:
    """K actions uniform in [-1, 1]^A: (K, A)."""
    return jax.random.uniform(key, (n_particles, action_dim), minval=-1.0, maxval=1.0)


def soft_value(q_fn: Callable[[jax.Array, jax.Array], jax.Array], obs: jax.Array,
               key: jax.Array, n_particles: int, action_dim: int) -> jax.Array:
    """Soft value V(s) = log ∫ exp(Q(s, a)) da over [-1, 1]^A, estimated with K uniform
    actions shared by all states.

    q_fn(obs (B, O), actions (B, K, A)) -> (B, K); obs: (B, O). Returns (B,).
    """
    actions = uniform_actions(key, n_particles, action_dim)
    actions = jnp.broadcast_to(actions, obs.shape[:-1] + actions.shape)
    return soft_value_from_samples(q_fn(obs, actions), action_dim)
