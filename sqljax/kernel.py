"""RBF kernel with the median-heuristic bandwidth, as used by amortized SVGD."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp


class KernelOutput(NamedTuple):
    """kappa (..., Kx, Ky); grad_x (..., Kx, Ky, D) = d kappa / d x; bandwidth (...)."""

    kappa: jax.Array
    grad_x: jax.Array
    bandwidth: jax.Array


def median_bandwidth(sq_dists: jax.Array, n_x: int, h_min: float = 1e-3) -> jax.Array:
    """h = max(lower_median(d²) / log(n_x), h_min), gradient stopped.

    sq_dists: (..., Kx, Ky) squared distances. The lower median is the
    (N - N // 2 - 1)-th smallest of the N = Kx·Ky values (for even N the smaller of the
    two middle ones). Returns (...).
    """
    flat = sq_dists.reshape(sq_dists.shape[:-2] + (-1,))
    n = flat.shape[-1]
    rank = n - n // 2 - 1
    lower_median = jnp.partition(flat, rank, axis=-1)[..., rank]
    h = jnp.maximum(lower_median / math.log(n_x), h_min)
    return jax.lax.stop_gradient(h)


def rbf_kernel(xs: jax.Array, ys: jax.Array, h_min: float = 1e-3) -> KernelOutput:
    """kappa(x, y) = exp(-||x - y||² / h) between every x and every y.

    xs: (..., Kx, D), ys: (..., Ky, D) with equal leading dims. The bandwidth h is the
    median heuristic of `median_bandwidth`, one per leading index. The gradient with
    respect to x is -2 (x - y) / h · kappa.
    """
    diff = xs[..., :, None, :] - ys[..., None, :, :]  # (..., Kx, Ky, D)
    sq_dists = jnp.sum(diff**2, axis=-1)  # (..., Kx, Ky)
    h = median_bandwidth(sq_dists, xs.shape[-2], h_min)
    kappa = jnp.exp(-sq_dists / h[..., None, None])
    grad_x = -2.0 * diff / h[..., None, None, None] * kappa[..., None]
    return KernelOutput(kappa, grad_x, h)
