"""Soft Actor-Critic (Haarnoja et al. 2018, with a learned temperature) under the learner protocol.

A tanh-squashed Gaussian policy a = tanh(u), u ~ N(μ(s), σ(s)²), and a critic ensemble
Q_1..Q_n (n = 2: twin critics) with Polyak-averaged targets Q̄_i. One :func:`update`

1. regresses every critic onto y = r + γ (1 - terminated) · (min_i Q̄_i(s', a') - α log π(a'|s')),
   a' ~ π(·|s');
2. takes an actor step on mean_B (α log π(a|s) - min_i Q_i(s, a)), a = tanh(μ + σ ε)
   reparameterised, against the critics just updated;
3. takes a temperature step on -mean_B (log α · (log π(a|s) + H̄)) with the actor step's
   sampled actions (H̄ the target entropy, -A by default), unless ``learn_alpha`` is off;
4. moves the targets Q̄ <- τ Q + (1 - τ) Q̄ every ``target_update_interval`` updates.

The log-density of the squashed sample uses the numerically stable form
log(1 - tanh(u)²) = 2 (log 2 - u - softplus(-2u)) (exact, no epsilon).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import chex
import flax.struct
import jax
import jax.numpy as jnp
import optax

from sqljax.learners.actor_critic import (
    ActorCriticConfig,
    actor_obs_dim,
    actor_optimizer,
    check_init,
    critic_optimizer,
)
from sqljax.learners.protocol import (
    Batch,
    Learner,
    check_batch,
    check_field,
    check_positive_float,
)
from sqljax.networks import gaussian_policy_apply, init_gaussian_policy_params, init_q_params, q_apply
from sqljax.update import raw_key, td_loss, td_target, update_target

Params = Any


@dataclasses.dataclass(frozen=True)
class SACConfig(ActorCriticConfig):
    """Every hyperparameter of SAC. Frozen and hashable (static data of `SACState`).
    Invalid values raise ``ValueError`` naming the field.

    The defaults (the ``code`` preset) are the SAC paper's v2 settings: 256-256 networks,
    twin critics, Polyak targets (τ 0.005 every update), Adam 3e-4 everywhere, batch 256,
    5000 uniform warm-up steps, a learned temperature with target entropy -|A|.
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    n_q: int = 2
    target_tau: float = 0.005
    target_update_interval: int = 1
    batch_size: int = 256
    learning_starts: int = 5000
    discount: float = 0.99
    # Adam learning rate of log α (the actor's and critics': ActorCriticConfig).
    alpha_lr: float = 3e-4
    # The temperature α at init. learn_alpha False keeps α = exp(state.log_alpha) fixed
    # (init_alpha for a fresh learner; the pretrained one's when fine-tuned).
    init_alpha: float = 1.0
    # H̄ of the temperature loss; None: -action_dim.
    target_entropy: float | None = None
    learn_alpha: bool = True

    def validate(self) -> None:
        super().validate()
        check_positive_float(self, "alpha_lr", "init_alpha")
        t = self.target_entropy
        check_field(self, t is None or (isinstance(t, (int, float)) and not isinstance(t, bool)
                                        and math.isfinite(t)),
                    "target_entropy", "None (-action_dim) or a finite number", t)
        check_field(self, isinstance(self.learn_alpha, bool), "learn_alpha", "True or False",
                    self.learn_alpha)


#: "code": the defaults (the SAC paper's v2 settings). "sql": the SQL code preset's network
#: and optimiser (128-128, Adam 3e-4, batch 128, 1000 warm-up steps) with SAC's twin
#: critics and Polyak targets, so that it differs from SQL's ``code`` mostly in the algorithm.
PRESETS: dict[str, dict[str, Any]] = {
    "code": {},
    "sql": dict(hidden_sizes=(128, 128), actor_lr=3e-4, critic_lr=3e-4, alpha_lr=3e-4,
                batch_size=128, learning_starts=1000),
}


@flax.struct.dataclass
class SACState:
    """Everything `update` needs. A pytree; `config` is static (not a leaf).

    actor_params: the Gaussian policy's parameters. critic_params: n_q critics stacked on
    a leading axis of size config.n_q; target_critic_params: their targets Q̄. log_alpha:
    float32 scalar, log of the temperature. actor_opt_state, critic_opt_state,
    alpha_opt_state: Adam states. key: raw uint32 PRNG key (2,). step: int32, updates done.
    """

    actor_params: Params
    critic_params: Params
    target_critic_params: Params
    log_alpha: jax.Array
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    alpha_opt_state: optax.OptState
    key: jax.Array
    step: jax.Array
    config: SACConfig = flax.struct.field(pytree_node=False)

    @property
    def obs_dim(self) -> int:
        return actor_obs_dim(self.actor_params)

    @property
    def action_dim(self) -> int:
        return int(self.actor_params["params"]["mean"]["kernel"].shape[-1])



def alpha_optimizer(config: SACConfig) -> optax.GradientTransformation:
    return optax.adam(config.alpha_lr)


def target_entropy(config: SACConfig, action_dim: int) -> float:
    """H̄: config.target_entropy, or -action_dim when it is None."""
    return float(-action_dim if config.target_entropy is None else config.target_entropy)


def init(key: jax.Array, config: SACConfig, obs_dim: int, action_dim: int) -> SACState:
    """A fresh learner: Xavier-uniform weights, zero biases, targets = copies,
    log_alpha = log(init_alpha), step 0."""
    check_init(config, SACConfig, obs_dim, action_dim)
    k_actor, k_critic, k_state = jax.random.split(raw_key(key), 3)
    actor_params = init_gaussian_policy_params(k_actor, config.hidden_sizes, obs_dim, action_dim)
    critic_params = init_q_params(k_critic, config.hidden_sizes, obs_dim, action_dim, config.n_q)
    log_alpha = jnp.asarray(math.log(config.init_alpha), jnp.float32)
    return SACState(
        actor_params=actor_params,
        critic_params=critic_params,
        target_critic_params=jax.tree.map(jnp.copy, critic_params),
        log_alpha=log_alpha,
        actor_opt_state=actor_optimizer(config).init(actor_params),
        critic_opt_state=critic_optimizer(config).init(critic_params),
        alpha_opt_state=alpha_optimizer(config).init(log_alpha),
        key=k_state,
        step=jnp.zeros((), jnp.int32),
        config=config,
    )


# ---------------------------------------------------------------- pieces of the update

def sample_tanh_gaussian(mean: jax.Array, log_std: jax.Array, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
    """a = tanh(u), u = mean + exp(log_std) · noise, and its log-density under the squashed
    Gaussian: log π(a|s) = Σ_d [log N(u_d; mean_d, std_d²) - log(1 - tanh(u_d)²)], with
    log(1 - tanh(u)²) = 2 (log 2 - u - softplus(-2u)).

    mean, log_std, noise (*S, A) -> action (*S, A) in [-1, 1], log_prob (*S,).
    """
    u = mean + jnp.exp(log_std) * noise
    gaussian = -0.5 * noise ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    log_det = 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.tanh(u), jnp.sum(gaussian - log_det, axis=-1)


def policy_sample(actor_params: Params, hidden_sizes, obs: jax.Array,
                  noise: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A reparameterised sample of π(·|s): obs (*S, O), noise (*S, A) ~ N(0, I) ->
    action (*S, A), log_prob (*S,)."""
    mean, log_std = gaussian_policy_apply(actor_params, hidden_sizes, obs)
    return sample_tanh_gaussian(mean, log_std, noise)


def critic_target(actor_params: Params, target_critic_params: Params, hidden_sizes, batch: Batch,
                  noise: jax.Array, alpha: jax.Array, discount: float) -> jax.Array:
    """y = r + γ (1 - terminated) · (min_i Q̄_i(s', a') - α log π(a'|s')), gradient stopped,
    with a' = tanh(μ(s') + σ(s') · noise) from the current policy.

    batch: reward, terminated (B,), next_obs (B, O); noise (B, A); alpha scalar -> y (B,).
    """
    next_action, next_log_prob = policy_sample(actor_params, hidden_sizes, batch.next_obs, noise)
    next_q = jnp.min(q_apply(target_critic_params, hidden_sizes, batch.next_obs, next_action), axis=0)
    return td_target(batch.reward, batch.terminated, next_q - alpha * next_log_prob, 1.0, discount)


def actor_loss(actor_params: Params, critic_params: Params, hidden_sizes, obs: jax.Array,
               noise: jax.Array, alpha: jax.Array) -> tuple[jax.Array, jax.Array]:
    """mean_B (α log π(a|s) - min_i Q_i(s, a)), a = tanh(μ(s) + σ(s) · noise) (gradient
    through the sample). obs (B, O), noise (B, A), alpha scalar -> (loss, log_prob (B,))."""
    action, log_prob = policy_sample(actor_params, hidden_sizes, obs, noise)
    q = jnp.min(q_apply(critic_params, hidden_sizes, obs, action), axis=0)
    return jnp.mean(alpha * log_prob - q), log_prob


def temperature_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
    """-mean_B (log α · stop_gradient(log π + H̄)): its gradient step raises α while the
    policy's entropy -mean log π is below H̄. log_alpha scalar, log_prob (B,) -> scalar."""
    return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy))


#: Names of the scalar metrics `update` returns, in a fixed order.
UPDATE_METRICS: tuple[str, ...] = ("critic_loss", "q_mean", "target_mean", "actor_loss", "alpha",
                                   "alpha_loss", "entropy")


def update(state: SACState, batch: Batch) -> tuple[SACState, dict[str, jax.Array]]:
    """One SAC update. Pure; `jax.jit(update)` and `jax.jit(jax.vmap(update))` work.

    The state's key splits into (next key, k_target, k_actor); α = exp(log_alpha) before
    this update's temperature step is used by both the target and the actor loss.

    1. Critics: one Adam step on Σ_i ½ mean_B (Q_i(s, a) - y)², y = `critic_target` with
       noise N(0, I) (B, A) from k_target.
    2. Actor: one Adam step on `actor_loss` against the critics updated in 1, noise from
       k_actor.
    3. Temperature (if learn_alpha): one Adam step on `temperature_loss` with step 2's
       log π (the policy before its step).
    4. Targets: Q̄ <- τ Q + (1 - τ) Q̄ after update numbers that are multiples of
       target_update_interval.

    batch: `Batch` with B = config.batch_size (checked when traced). Metrics, in the order
    of UPDATE_METRICS: critic_loss (per critic), q_mean (Q before the step), target_mean
    (y), actor_loss, alpha (the α this update used), alpha_loss, entropy (-mean_B log π of
    step 2's sampled actions).
    """
    cfg = state.config
    hidden = cfg.hidden_sizes
    check_batch(batch, state.obs_dim, state.action_dim, cfg.batch_size)
    batch = Batch(*(jnp.asarray(x, jnp.float32) for x in batch))
    key, k_target, k_actor = jax.random.split(state.key, 3)
    shape = (cfg.batch_size, state.action_dim)
    alpha = jnp.exp(state.log_alpha)

    # Critics.
    y = critic_target(state.actor_params, state.target_critic_params, hidden, batch,
                      jax.random.normal(k_target, shape), alpha, cfg.discount)
    (c_loss, q), c_grads = jax.value_and_grad(td_loss, has_aux=True)(state.critic_params, hidden, batch, y)
    c_updates, critic_opt_state = critic_optimizer(cfg).update(c_grads, state.critic_opt_state,
                                                               state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, c_updates)

    # Actor, against the updated critics.
    (a_loss, log_prob), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(
        state.actor_params, critic_params, hidden, batch.obs, jax.random.normal(k_actor, shape), alpha)
    a_updates, actor_opt_state = actor_optimizer(cfg).update(a_grads, state.actor_opt_state,
                                                             state.actor_params)
    actor_params = optax.apply_updates(state.actor_params, a_updates)

    # Temperature.
    h_bar = target_entropy(cfg, state.action_dim)
    t_loss, t_grad = jax.value_and_grad(temperature_loss)(state.log_alpha, log_prob, h_bar)
    log_alpha, alpha_opt_state = state.log_alpha, state.alpha_opt_state
    if cfg.learn_alpha:
        t_update, alpha_opt_state = alpha_optimizer(cfg).update(t_grad, state.alpha_opt_state,
                                                                state.log_alpha)
        log_alpha = optax.apply_updates(state.log_alpha, t_update)

    step = state.step + 1
    new_state = state.replace(
        actor_params=actor_params,
        critic_params=critic_params,
        target_critic_params=update_target(state.target_critic_params, critic_params, step,
                                           cfg.target_tau, cfg.target_update_interval),
        log_alpha=log_alpha,
        actor_opt_state=actor_opt_state,
        critic_opt_state=critic_opt_state,
        alpha_opt_state=alpha_opt_state,
        key=key,
        step=step,
    )
    values = (c_loss / cfg.n_q, jnp.mean(q), jnp.mean(y), a_loss, alpha, t_loss, -jnp.mean(log_prob))
    return new_state, dict(zip(UPDATE_METRICS, values, strict=True))


# ---------------------------------------------------------------- acting

def explore_init(cfg: SACConfig, action_dim: int) -> tuple:
    """SAC keeps no exploration state: ()."""
    return ()


def act(state: SACState, explore: Any, obs: jax.Array, key: jax.Array,
        deterministic: bool = False) -> tuple[jax.Array, Any]:
    """Actions: obs (*S, O) -> (*S, A) in [-1, 1], explore returned unchanged.

    Stochastic: a sample tanh(μ(s) + σ(s) ε), ε ~ N(0, I) from `key`. deterministic:
    tanh(μ(s)) (`key` unused, may be None).
    """
    obs = jnp.asarray(obs, jnp.float32)
    chex.assert_axis_dimension(obs, -1, state.obs_dim)
    mean, log_std = gaussian_policy_apply(state.actor_params, state.config.hidden_sizes, obs)
    if deterministic:
        return jnp.tanh(mean), explore
    if key is None:
        raise ValueError("act needs a PRNG key to sample the policy (or deterministic=True)")
    action, _ = sample_tanh_gaussian(mean, log_std, jax.random.normal(raw_key(key), mean.shape))
    return action, explore


def finetune_state(key: jax.Array, pretrained: SACState, config: SACConfig | None = None) -> SACState:
    """A new learner from a pretrained one: actor and critic parameters copied (targets
    = copies of the critics), log_alpha copied, optimisers and step fresh. `config`
    (default: the pretrained one) may change anything but hidden_sizes and n_q (ValueError)."""
    config = pretrained.config if config is None else config
    if config.hidden_sizes != pretrained.config.hidden_sizes or config.n_q != pretrained.config.n_q:
        raise ValueError(
            "fine-tuning config must keep the pretrained network shape: hidden_sizes "
            f"{pretrained.config.hidden_sizes} and n_q {pretrained.config.n_q}, got "
            f"{config.hidden_sizes} and {config.n_q}")
    fresh = init(key, config, pretrained.obs_dim, pretrained.action_dim)
    log_alpha = jnp.asarray(pretrained.log_alpha, jnp.float32)
    return fresh.replace(
        actor_params=pretrained.actor_params,
        critic_params=pretrained.critic_params,
        target_critic_params=jax.tree.map(jnp.copy, pretrained.critic_params),
        log_alpha=log_alpha,
        actor_opt_state=actor_optimizer(config).init(pretrained.actor_params),
        critic_opt_state=critic_optimizer(config).init(pretrained.critic_params),
        alpha_opt_state=alpha_optimizer(config).init(log_alpha),
    )


LEARNER = Learner(
    name="sac",
    title="SAC",
    config_class=SACConfig,
    state_class=SACState,
    presets=PRESETS,
    init=init,
    update=update,
    act=act,
    explore_init=explore_init,
    params=lambda state: (state.actor_params, state.critic_params, state.log_alpha),
    metrics=UPDATE_METRICS,
    export_fields=("actor_params", "critic_params", "target_critic_params", "log_alpha", "step", "key"),
    finetune=finetune_state,
    eval_modes={"stochastic": "a sample of the tanh-Gaussian policy", "deterministic": "tanh of its mean"},
)
