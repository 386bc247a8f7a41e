"""The learner: `SQLState`, `init`, and one pure `update(state, batch)` composed from the
soft value, TD loss, SVGD step and target update.

`update` takes no static arguments (the config rides in the state as static data), so
`jax.jit(update)` and `jax.jit(jax.vmap(update))` compile it as is.
"""

from __future__ import annotations

import math
from typing import Any

import chex
import flax.struct
import jax
import jax.numpy as jnp
import optax

from sqljax.config import SQLConfig
from sqljax.learners.protocol import Batch, check_batch
from sqljax.networks import init_q_params, init_sampler_params, q_apply, sampler_apply, scale_q
from sqljax.svgd import sampler_svgd_gradient
from sqljax.value import soft_value

Params = Any


@flax.struct.dataclass
class SQLState:
    """Everything `update` needs. A pytree; `config` is static (not a leaf).

    q_params: Q-function parameters stacked on a leading axis of size config.n_q.
    target_q_params: the target copy Q̄, same structure.
    sampler_params: the sampling network's parameters.
    q_opt_state, sampler_opt_state: Adam states.
    key: raw uint32 PRNG key (2,) for the update's randomness.
    step: int32, updates done.
    noise_bank: (max(noise_bank_size, 1), A) fixed xi vectors for fine-tuning; unused
        unless config.noise_bank_size > 0.
    """

    q_params: Params
    target_q_params: Params
    sampler_params: Params
    q_opt_state: optax.OptState
    sampler_opt_state: optax.OptState
    key: jax.Array
    step: jax.Array
    noise_bank: jax.Array
    config: SQLConfig = flax.struct.field(pytree_node=False)

    @property
    def obs_dim(self) -> int:
        return int(self.sampler_params["params"]["trunk"]["input"]["kernel"].shape[-2]) - self.action_dim

    @property
    def action_dim(self) -> int:
        return int(self.noise_bank.shape[-1])


def q_optimizer(config: SQLConfig) -> optax.GradientTransformation:
    return optax.adam(config.qf_lr)


def sampler_optimizer(config: SQLConfig) -> optax.GradientTransformation:
    return optax.adam(config.policy_lr)


def raw_key(key: jax.Array) -> jax.Array:
    """A uint32 (2,) key from either a new-style typed key or a raw one."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def init(key: jax.Array, config: SQLConfig, obs_dim: int, action_dim: int) -> SQLState:
    """A fresh learner: Xavier-uniform weights, zero biases, target = Q, step 0."""
    if not isinstance(config, SQLConfig):
        raise TypeError(f"config must be an SQLConfig, got {type(config).__name__}")
    if int(obs_dim) < 1 or int(action_dim) < 1:
        raise ValueError(f"obs_dim and action_dim must be >= 1, got {obs_dim}, {action_dim}")
    key = raw_key(key)
    k_q, k_pi, k_bank, k_state = jax.random.split(key, 4)
    q_params = init_q_params(k_q, config.hidden_sizes, obs_dim, action_dim, config.n_q)
    sampler_params = init_sampler_params(k_pi, config.hidden_sizes, obs_dim, action_dim)
    noise_bank = jax.random.normal(k_bank, (max(config.noise_bank_size, 1), action_dim))
    return SQLState(
        q_params=q_params,
        target_q_params=jax.tree.map(jnp.copy, q_params),
        sampler_params=sampler_params,
        q_opt_state=q_optimizer(config).init(q_params),
        sampler_opt_state=sampler_optimizer(config).init(sampler_params),
        key=k_state,
        step=jnp.zeros((), jnp.int32),
        noise_bank=noise_bank,
        config=config,
    )


# ---------------------------------------------------------------- schedules (pure in step)

def reward_scale_at(config: SQLConfig, step: jax.Array) -> jax.Array:
    """Reward scale (1 / alpha) after `step` updates: constant, or log-linear from
    `reward_scale` to `final_reward_scale` over `anneal_steps` updates."""
    if config.final_reward_scale is None or config.anneal_steps == 0:
        return jnp.asarray(config.reward_scale, jnp.float32)
    frac = jnp.clip(step / config.anneal_steps, 0.0, 1.0)
    log_start, log_end = math.log(config.reward_scale), math.log(config.final_reward_scale)
    return jnp.exp(log_start + frac * (log_end - log_start)).astype(jnp.float32)


def noise_bank_size_at(config: SQLConfig, step: jax.Array) -> jax.Array:
    """Active size K_xi of the fixed noise bank: `noise_bank_size` at step 0, linearly
    down to 1 at `anneal_steps` (rounded to the nearest integer). 0 when off."""
    if config.noise_bank_size == 0:
        return jnp.zeros((), jnp.int32)
    k0 = config.noise_bank_size
    if config.anneal_steps == 0:
        return jnp.asarray(k0, jnp.int32)
    frac = jnp.clip(step / config.anneal_steps, 0.0, 1.0)
    return jnp.round(k0 + frac * (1 - k0)).astype(jnp.int32)


# ---------------------------------------------------------------- pieces of the update

def q_values(state: SQLState, obs: jax.Array, actions: jax.Array, target: bool = False) -> jax.Array:
    """Soft Q (the minimum over the ensemble when n_q = 2).

    obs (*S, O), actions (*S, *P, A) -> (*S, *P).
    """
    params = state.target_q_params if target else state.q_params
    return jnp.min(q_apply(params, state.config.hidden_sizes, obs, actions), axis=0)


def td_target(reward: jax.Array, terminated: jax.Array, next_value: jax.Array,
              reward_scale: jax.Array, discount: float) -> jax.Array:
    """y = reward_scale · r + γ (1 - terminated) V(s'), gradient stopped. All (B,)."""
    y = reward_scale * reward + discount * (1.0 - terminated) * next_value
    return jax.lax.stop_gradient(y)


def td_loss(q_params: Params, hidden_sizes, batch: Batch, y: jax.Array):
    """Σ over the ensemble of 0.5 · mean_B (Q_i(s, a) - y)²; returns (loss, Q (n_q, B))."""
    q = q_apply(q_params, hidden_sizes, batch.obs, batch.action)
    return jnp.sum(0.5 * jnp.mean((q - y) ** 2, axis=-1)), q


def update_target(target_params: Params, q_params: Params, step: jax.Array, tau: float,
                  interval: int) -> Params:
    """After update number `step` (1-based): if step % interval == 0,
    target <- tau · Q + (1 - tau) · target (tau = 1: an exact copy); else unchanged."""
    due = (step % interval) == 0
    if tau == 1.0:
        new = q_params
    else:
        new = jax.tree.map(lambda q, t: tau * q + (1.0 - tau) * t, q_params, target_params)
    return jax.tree.map(lambda n, t: jnp.where(due, n, t), new, target_params)


# Names of the scalar metrics `update` returns, in a fixed order (for logs and tables).
UPDATE_METRICS: tuple[str, ...] = ("q_loss", "q_mean", "value_mean", "target_mean",
                                   "kernel_bandwidth", "svgd_norm", "sampler_grad_norm",
                                   "reward_scale", "noise_bank_size")


def update(state: SQLState, batch: Batch) -> tuple[SQLState, dict[str, jax.Array]]:
    """One Soft Q-Learning update: a TD step on Q, an SVGD step on the sampler, and the
    target update. Pure; `jax.jit(update)` and `jax.jit(jax.vmap(update))` work as is.

    batch: `Batch` with leading axis B. Returns the new state and scalar metrics:
    q_loss, q_mean, value_mean (soft value of next states), target_mean (TD target),
    kernel_bandwidth, svgd_norm (mean ‖φ‖ over batch and particles), sampler_grad_norm,
    reward_scale, noise_bank_size (the active K_xi of the fine-tuning noise bank, 0 if off).

    Shapes, the batch size (must equal config.batch_size) and dtypes are checked when the
    function is traced (ValueError / TypeError / chex's AssertionError). Values are not:
    a NaN or inf in the batch (or a diverging learner) makes the metrics non-finite and
    spreads into the parameters. Check `metrics["q_loss"]` (as sqljax's drivers do after
    every update, stopping at the first non-finite one and naming it) before keeping a
    state you care about.
    """
    cfg = state.config
    obs_dim, action_dim = state.obs_dim, state.action_dim
    check_batch(batch, obs_dim, action_dim, cfg.batch_size)
    batch = Batch(*(jnp.asarray(x, jnp.float32) for x in batch))
    key, k_value, k_noise = jax.random.split(state.key, 3)
    hidden = cfg.hidden_sizes

    # Q: TD regression onto the importance-sampled soft value of the target network. With
    # Q in reward units, Q / alpha = scale * Q is the scaled Q of the formulas, and
    # V = alpha * softvalue(Q / alpha).
    scale = reward_scale_at(cfg, state.step)
    to_scaled = scale if cfg.q_units == "reward" else 1.0

    def target_q(obs, actions):
        return to_scaled * jnp.min(q_apply(state.target_q_params, hidden, obs, actions), axis=0)

    next_value = soft_value(target_q, batch.next_obs, k_value, cfg.value_n_particles,
                            action_dim) / to_scaled
    y = td_target(batch.reward, batch.terminated, next_value, scale / to_scaled, cfg.discount)
    (q_loss, q), q_grads = jax.value_and_grad(td_loss, has_aux=True)(state.q_params, hidden, batch, y)
    q_updates, q_opt_state = q_optimizer(cfg).update(q_grads, state.q_opt_state, state.q_params)
    q_params = optax.apply_updates(state.q_params, q_updates)

    # Sampler: amortized SVGD towards exp(Q) with the current (pre-step) Q.
    noise = jax.random.normal(k_noise, (batch.obs.shape[0], cfg.kernel_n_particles, action_dim))

    def sampler_fn(params, xi):
        return sampler_apply(params, hidden, batch.obs, xi)

    def current_q(actions):  # the scaled Q: the sampler's target is exp(Q / alpha)
        return to_scaled * jnp.min(q_apply(state.q_params, hidden, batch.obs, actions), axis=0)

    svgd = sampler_svgd_gradient(sampler_fn, state.sampler_params, noise, current_q,
                                 cfg.n_fixed_particles, cfg.kernel_h_min)
    ascent = jax.tree.map(jnp.negative, svgd.grads)
    pi_updates, sampler_opt_state = sampler_optimizer(cfg).update(
        ascent, state.sampler_opt_state, state.sampler_params)
    sampler_params = optax.apply_updates(state.sampler_params, pi_updates)

    step = state.step + 1
    target_q_params = update_target(state.target_q_params, q_params, step, cfg.target_tau,
                                    cfg.target_update_interval)
    new_state = state.replace(
        q_params=q_params,
        target_q_params=target_q_params,
        sampler_params=sampler_params,
        q_opt_state=q_opt_state,
        sampler_opt_state=sampler_opt_state,
        key=key,
        step=step,
    )
    metrics = {
        "q_loss": q_loss / cfg.n_q,
        "q_mean": jnp.mean(q),
        "value_mean": jnp.mean(next_value),
        "target_mean": jnp.mean(y),
        "kernel_bandwidth": jnp.mean(svgd.bandwidth),
        "svgd_norm": jnp.mean(jnp.linalg.norm(svgd.phi, axis=-1)),
        "sampler_grad_norm": optax.tree.norm(svgd.grads),
        "reward_scale": scale,
        "noise_bank_size": noise_bank_size_at(cfg, state.step).astype(jnp.float32),
    }
    assert tuple(metrics) == UPDATE_METRICS
    return new_state, metrics


def sample_actions(state: SQLState, obs: jax.Array, key: jax.Array,
                   deterministic: bool = False) -> jax.Array:
    """Actions of the sampler: obs (..., O) -> (..., A) in [-1, 1].

    Stochastic: a fresh xi ~ N(0, I) per state (or, when fine-tuning with a noise bank,
    a uniformly chosen one of the bank's active vectors). deterministic=True: xi = 0.
    """
    cfg = state.config
    if key is None and not deterministic:
        raise ValueError("sample_actions needs a PRNG key for stochastic actions: pass a key "
                         "(e.g. jax.random.key(0)), or deterministic=True for xi = 0")
    obs = jnp.asarray(obs, jnp.float32)
    chex.assert_axis_dimension(obs, -1, state.obs_dim)
    batch_shape = obs.shape[:-1]
    a_dim = state.action_dim
    if deterministic:
        noise = jnp.zeros(batch_shape + (a_dim,))
    elif cfg.noise_bank_size > 0:
        active = noise_bank_size_at(cfg, state.step)
        idx = jax.random.randint(raw_key(key), batch_shape, 0, active)
        noise = state.noise_bank[idx]
    else:
        noise = jax.random.normal(raw_key(key), batch_shape + (a_dim,))
    return sampler_apply(state.sampler_params, cfg.hidden_sizes, obs, noise)


def finetune_state(key: jax.Array, pretrained: SQLState, config: SQLConfig | None = None) -> SQLState:
    """Start a new task from a pretrained learner: Q, target and sampler parameters are
    copied, optimisers and step start fresh, and a new noise bank is drawn. `config`
    (default: the pretrained one) may change schedules and learning rates but not the
    network sizes. A `config` with other `q_units` converts Q and its target exactly: the
    output layer is multiplied (to "reward") or divided (to "scaled") by the pretrained
    learner's alpha at its last update."""
    config = pretrained.config if config is None else config
    if config.hidden_sizes != pretrained.config.hidden_sizes or config.n_q != pretrained.config.n_q:
        raise ValueError(
            "fine-tuning config must keep the pretrained network shape: hidden_sizes "
            f"{pretrained.config.hidden_sizes} and n_q {pretrained.config.n_q}, got "
            f"{config.hidden_sizes} and {config.n_q}")
    fresh = init(key, config, pretrained.obs_dim, pretrained.action_dim)
    q_params = pretrained.q_params
    if config.q_units != pretrained.config.q_units:
        alpha = 1.0 / reward_scale_at(pretrained.config, pretrained.step)
        q_params = scale_q(q_params, alpha if config.q_units == "reward" else 1.0 / alpha)
    return fresh.replace(
        q_params=q_params,
        target_q_params=jax.tree.map(jnp.copy, q_params),
        sampler_params=pretrained.sampler_params,
        q_opt_state=q_optimizer(config).init(q_params),
        sampler_opt_state=sampler_optimizer(config).init(pretrained.sampler_params),
    )
