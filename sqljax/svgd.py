"""Amortized Stein variational gradient descent for the sampling network."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sqljax.kernel import rbf_kernel

SQUASH_EPS = 1e-6


def squash_correction(actions: jax.Array) -> jax.Array:
    """Σ_d log(1 - a_d² + 1e-6): (..., A) -> (...). The tanh change of variables, taken,
    as in the authors' code, as a function of the squashed action a."""
    return jnp.sum(jnp.log(1.0 - actions**2 + SQUASH_EPS), axis=-1)


def target_score(q_fn: Callable[[jax.Array], jax.Array], actions: jax.Array) -> jax.Array:
    """∇_a log p(a) with log p(a) = Q(s, a) + squash_correction(a), gradient stopped.

    q_fn(actions (B, K, A)) -> (B, K) is Q at each state's actions; actions: (B, K, A).
    Returns (B, K, A).
    """
    def log_p(a):
        return jnp.sum(q_fn(a) + squash_correction(a))

    return jax.lax.stop_gradient(jax.grad(log_p)(actions))


def svgd_direction(fixed: jax.Array, updated: jax.Array, score: jax.Array,
                   h_min: float = 1e-3) -> tuple[jax.Array, jax.Array]:
    """φ(y_i) = mean_j [κ(x_j, y_i) ∇log p(x_j) + ∇_{x_j} κ(x_j, y_i)].

    fixed x: (B, Kf, A); updated y: (B, Ku, A); score ∇log p(x): (B, Kf, A).
    Returns φ (B, Ku, A) and the kernel bandwidth (B,).
    """
    k = rbf_kernel(fixed, updated, h_min)  # kappa (B, Kf, Ku), grad_x (B, Kf, Ku, A)
    phi = jnp.mean(k.kappa[..., None] * score[:, :, None, :] + k.grad_x, axis=1)
    return phi, k.bandwidth


class SamplerStep(NamedTuple):
    """grads: pytree like the sampler params, the SVGD ascent direction VJP(a(θ), φ);
    phi (B, Ku, A); bandwidth (B,)."""

    grads: object
    phi: jax.Array
    bandwidth: jax.Array


def sampler_svgd_gradient(sampler_fn: Callable[[object, jax.Array], jax.Array], sampler_params,
                          noise: jax.Array, q_fn: Callable[[jax.Array], jax.Array], n_fixed: int,
                          h_min: float = 1e-3) -> SamplerStep:
    """The sampler's SVGD step: a forward pass over all K particles and one VJP.

    sampler_fn(params, noise (B, k, A)) -> actions (B, k, A) for fixed states.
    noise: (B, K, A). The first `n_fixed` particles are fixed (the score is taken there,
    no gradient flows through them), the rest are updated:
    g = Σ_{b,i} (∂a_{b,i}/∂θ)ᵀ φ_{b,i}. Ascend along g (equivalently minimise
    -Σ stop_gradient(φ)·a(θ), whose gradient is -g). The fixed particles' forward pass
    carries no VJP, so the backward pass costs only the updated particles.
    """
    fixed = jax.lax.stop_gradient(sampler_fn(sampler_params, noise[:, :n_fixed]))
    updated, vjp = jax.vjp(lambda p: sampler_fn(p, noise[:, n_fixed:]), sampler_params)
    score = target_score(q_fn, fixed)
    phi, bandwidth = svgd_direction(fixed, jax.lax.stop_gradient(updated), score, h_min)
    (grads,) = vjp(phi)
    return SamplerStep(grads, phi, bandwidth)
