"""The two networks of Soft Q-Learning, as flax.linen modules.

Both take the observation and a second input (an action, or the sampler's noise xi)
into the first layer as ``W_o · obs + W_x · x + b``: the same function as a dense
layer on their concatenation (and initialised as one Xavier-uniform matrix over the
concatenated fan-in), but the observation's part is computed once per state and
broadcast over any number of particles. That matters: the soft value and the SVGD step
evaluate each state's network at 16-32 particles.

Shapes: obs (*S, O) and x (*S, *P, X), where *S are batch dims shared with obs and *P
are extra particle dims (possibly none). Outputs follow x's leading dims.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

_xavier = nn.initializers.xavier_uniform()


class _ObsAndInput(nn.Module):
    """First layer: dense over [obs, x], obs part computed once and broadcast over *P."""

    features: int

    @nn.compact
    def __call__(self, obs: jax.Array, x: jax.Array) -> jax.Array:
        obs_dim, x_dim = obs.shape[-1], x.shape[-1]
        kernel = self.param("kernel", _xavier, (obs_dim + x_dim, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        h_obs = obs @ kernel[:obs_dim] + bias  # (*S, H)
        h_x = _flat_matmul(x, kernel[obs_dim:])  # (*S, *P, H)
        n_particle_dims = x.ndim - obs.ndim
        h_obs = h_obs.reshape(h_obs.shape[:-1] + (1,) * n_particle_dims + h_obs.shape[-1:])
        return h_obs + h_x


def _flat_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """x (..., I) @ w (I, O) with the leading dims merged into one, so that the product
    and its weight gradient are single matrix products (also under vmap), not
    contractions over several dims, which XLA's CPU backend runs far slower."""
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(x.shape[:-1] + (w.shape[-1],))


class _FlatDense(nn.Module):
    """Dense layer (Xavier-uniform weights, zero bias) computed by `_flat_matmul`."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", _xavier, (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return _flat_matmul(x, kernel) + bias


class _Trunk(nn.Module):
    """ReLU MLP on (obs, x): first layer `_ObsAndInput`, then dense layers."""

    hidden_sizes: Sequence[int]
    out_dim: int

    @nn.compact
    def __call__(self, obs: jax.Array, x: jax.Array) -> jax.Array:
        h = nn.relu(_ObsAndInput(self.hidden_sizes[0], name="input")(obs, x))
        for i, size in enumerate(self.hidden_sizes[1:]):
            h = nn.relu(_FlatDense(size, name=f"hidden_{i}")(h))
        return _FlatDense(self.out_dim, name="output")(h)


class QFunction(nn.Module):
    """Soft Q-function Q(s, a): obs (*S, O), action (*S, *P, A) -> (*S, *P)."""

    hidden_sizes: Sequence[int] = (128, 128)

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        return _Trunk(self.hidden_sizes, 1, name="trunk")(obs, action)[..., 0]


class Sampler(nn.Module):
    """Sampling network a = tanh(MLP(obs, xi)): obs (*S, O), xi (*S, *P, A) -> (*S, *P, A)."""

    hidden_sizes: Sequence[int] = (128, 128)
    action_dim: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array, noise: jax.Array) -> jax.Array:
        return jnp.tanh(_Trunk(self.hidden_sizes, self.action_dim, name="trunk")(obs, noise))


def init_q_params(key: jax.Array, hidden_sizes: Sequence[int], obs_dim: int, action_dim: int,
                  n_q: int = 1):
    """Parameters of `n_q` independent Q-functions, stacked on a leading axis of size n_q."""
    module = QFunction(tuple(hidden_sizes))
    obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, action_dim))
    keys = jax.random.split(key, n_q)
    return jax.vmap(lambda k: module.init(k, obs, act))(keys)


def q_apply(q_params, hidden_sizes: Sequence[int], obs: jax.Array, action: jax.Array) -> jax.Array:
    """All Q-functions of a stacked ensemble: -> (n_q, *S, *P)."""
    module = QFunction(tuple(hidden_sizes))
    return jax.vmap(module.apply, in_axes=(0, None, None))(q_params, obs, action)


def scale_q(q_params, factor) -> dict:
    """Parameters of `factor` times the Q-functions: the output layer (weights and bias,
    every member of the ensemble) multiplied by `factor`, the rest shared."""
    trunk = dict(q_params["params"]["trunk"])
    trunk["output"] = jax.tree.map(lambda x: x * factor, trunk["output"])
    return {**q_params, "params": {**q_params["params"], "trunk": trunk}}


def init_sampler_params(key: jax.Array, hidden_sizes: Sequence[int], obs_dim: int,
                        action_dim: int):
    """Parameters of the sampling network."""
    module = Sampler(tuple(hidden_sizes), action_dim)
    return module.init(key, jnp.zeros((1, obs_dim)), jnp.zeros((1, action_dim)))


def sampler_apply(sampler_params, hidden_sizes: Sequence[int], obs: jax.Array,
                  noise: jax.Array) -> jax.Array:
    """Sampler actions in [-1, 1]: obs (*S, O), noise (*S, *P, A) -> (*S, *P, A)."""
    action_dim = noise.shape[-1]
    return Sampler(tuple(hidden_sizes), action_dim).apply(sampler_params, obs, noise)


def _hidden_layers(x: jax.Array, hidden_sizes: Sequence[int]) -> jax.Array:
    """ReLU layers ``hidden_<i>`` of the calling module (called inside its compact method):
    x (*S, I) -> (*S, H_last)."""
    for i, size in enumerate(hidden_sizes):
        x = nn.relu(_FlatDense(size, name=f"hidden_{i}")(x))
    return x


class Actor(nn.Module):
    """Deterministic policy a = tanh(MLP(obs)): obs (*S, O) -> (*S, A) in [-1, 1].

    ReLU hidden layers ``hidden_<i>`` and a linear ``output`` layer, each a `_FlatDense`
    (Xavier-uniform weights, zero biases), then tanh.
    """

    hidden_sizes: Sequence[int] = (128, 128)
    action_dim: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = _hidden_layers(obs, self.hidden_sizes)
        return jnp.tanh(_FlatDense(self.action_dim, name="output")(h))


def init_actor_params(key: jax.Array, hidden_sizes: Sequence[int], obs_dim: int, action_dim: int):
    """Parameters of an `Actor`: hidden kernels (in, H_i), output kernel (H_last, A)."""
    module = Actor(tuple(hidden_sizes), action_dim)
    return module.init(key, jnp.zeros((1, obs_dim)))


def actor_apply(actor_params, hidden_sizes: Sequence[int], obs: jax.Array) -> jax.Array:
    """The actor's actions in [-1, 1]: obs (*S, O) -> (*S, A); A is read from the params."""
    action_dim = actor_params["params"]["output"]["kernel"].shape[-1]
    return Actor(tuple(hidden_sizes), action_dim).apply(actor_params, obs)


#: Bounds of the Gaussian policy's log standard deviation (the head's output is clipped).
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class GaussianPolicy(nn.Module):
    """Diagonal Gaussian over pre-squash actions: obs (*S, O) -> mean (*S, A), log_std (*S, A).

    ReLU hidden layers ``hidden_<i>`` (as in `Actor`), then two linear heads ``mean`` and
    ``log_std`` (each a `_FlatDense`: Xavier-uniform weights, zero biases); log_std is
    clipped to [LOG_STD_MIN, LOG_STD_MAX] = [-20, 2].
    """

    hidden_sizes: Sequence[int] = (256, 256)
    action_dim: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = _hidden_layers(obs, self.hidden_sizes)
        mean = _FlatDense(self.action_dim, name="mean")(h)
        log_std = _FlatDense(self.action_dim, name="log_std")(h)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


def init_gaussian_policy_params(key: jax.Array, hidden_sizes: Sequence[int], obs_dim: int,
                                action_dim: int):
    """Parameters of a `GaussianPolicy`: hidden kernels (in, H_i), head kernels (H_last, A)."""
    module = GaussianPolicy(tuple(hidden_sizes), action_dim)
    return module.init(key, jnp.zeros((1, obs_dim)))


def gaussian_policy_apply(policy_params, hidden_sizes: Sequence[int],
                          obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The policy's mean (*S, A) and clipped log_std (*S, A) at obs (*S, O); A is read
    from the params."""
    action_dim = policy_params["params"]["mean"]["kernel"].shape[-1]
    return GaussianPolicy(tuple(hidden_sizes), action_dim).apply(policy_params, obs)
