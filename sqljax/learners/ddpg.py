"""DDPG under the learner protocol, with TD3 as its ``modern`` preset.

A deterministic actor μ(s) = tanh(MLP(s)) and a critic ensemble Q_1..Q_n (n = 1 for
DDPG, 2 for TD3's twin critics). One :func:`update` regresses every critic onto

    y = r + γ (1 - terminated) · min_i Q̄_i(s', a'),  a' = clip(μ̄(s') + clip(ε, -c, c), -1, 1),

with ε ~ N(0, policy_noise²) (ε = 0 for DDPG), then takes an actor step on
-mean_B Q_1(s, μ(s)) every ``policy_delay`` updates, and moves the targets
(target <- τ θ + (1 - τ) target) after updates that are multiples of both
``policy_delay`` and ``target_update_interval``. Exploration adds Ornstein-Uhlenbeck
(``"ou"``) or independent Gaussian (``"gaussian"``) noise to μ(s).
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
    check_positive_int,
)
from sqljax.networks import actor_apply, init_actor_params, init_q_params, q_apply
from sqljax.update import raw_key, td_loss, td_target, update_target

Params = Any


@dataclasses.dataclass(frozen=True)
class DDPGConfig(ActorCriticConfig):
    """Every hyperparameter of DDPG / TD3. Frozen and hashable (static data of
    `DDPGState`). Invalid values raise ``ValueError`` naming the field.

    The defaults (the ``code`` preset) use the SQL code preset's network, learning rates,
    batch and warm-up, a hard target copy every 1000 updates and OU noise (θ 0.15, σ 0.3).
    """

    # The targets (actor and critics) move after updates that are multiples of both
    # target_update_interval and policy_delay; n_q = 2 (TD3): twin critics, their minimum
    # in the target. Learning rates and uniform warm-up: ActorCriticConfig.
    # Exploration: "ou" (x <- x - θ x + σ N(0, I) per env step, action = μ(s) + x; θ = 0 is a
    # random walk) or "gaussian" (action = μ(s) + exploration_sigma · N(0, I)); actions are
    # clipped to [-1, 1].
    exploration: str = "ou"
    ou_theta: float = 0.15
    ou_sigma: float = 0.3
    exploration_sigma: float = 0.1
    # Target policy smoothing (TD3): ε ~ N(0, policy_noise²) clipped to ±noise_clip; 0 = off.
    policy_noise: float = 0.0
    noise_clip: float = 0.5
    # Actor (and target) updates every policy_delay critic updates.
    policy_delay: int = 1

    def validate(self) -> None:
        super().validate()
        _validate(self)


#: "code": the defaults. "paper": the SQL paper's DDPG baseline (Appendix D.1). "modern":
#: TD3 (twin critics, target smoothing, delayed actor, Polyak targets, Gaussian noise).
PRESETS: dict[str, dict[str, Any]] = {
    "code": {},
    "paper": dict(hidden_sizes=(200, 200), critic_lr=1e-3, actor_lr=1e-4, batch_size=64,
                  learning_starts=10_000, max_episode_steps=500, target_update_interval=1000,
                  target_tau=1.0, exploration="ou", ou_theta=0.15, ou_sigma=0.3),
    "modern": dict(n_q=2, policy_noise=0.2, noise_clip=0.5, policy_delay=2, target_tau=0.005,
                   target_update_interval=1, exploration="gaussian", exploration_sigma=0.1,
                   batch_size=256, learning_starts=5000),
}


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _validate(c: DDPGConfig) -> None:
    def _check(ok: bool, field: str, allowed: str, value: Any) -> None:
        check_field(c, ok, field, allowed, value)

    check_positive_float(c, "noise_clip")
    check_positive_int(c, "policy_delay")
    _check(c.exploration in ("ou", "gaussian"), "exploration", "'ou' or 'gaussian'", c.exploration)
    _check(_is_real(c.ou_theta) and 0 <= c.ou_theta <= 1, "ou_theta", "in [0, 1]", c.ou_theta)
    for name in ("ou_sigma", "exploration_sigma", "policy_noise"):
        v = getattr(c, name)
        _check(_is_real(v) and v >= 0, name, "a finite number >= 0", v)


@flax.struct.dataclass
class DDPGState:
    """Everything `update` needs. A pytree; `config` is static (not a leaf).

    actor_params: the actor μ's parameters. critic_params: n_q critics stacked on a leading
    axis of size config.n_q. target_actor_params, target_critic_params: the targets μ̄, Q̄.
    actor_opt_state, critic_opt_state: Adam states. key: raw uint32 PRNG key (2,).
    step: int32, updates done.
    """

    actor_params: Params
    critic_params: Params
    target_actor_params: Params
    target_critic_params: Params
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    key: jax.Array
    step: jax.Array
    config: DDPGConfig = flax.struct.field(pytree_node=False)

    @property
    def obs_dim(self) -> int:
        return actor_obs_dim(self.actor_params)

    @property
    def action_dim(self) -> int:
        return int(self.actor_params["params"]["output"]["kernel"].shape[-1])



def init(key: jax.Array, config: DDPGConfig, obs_dim: int, action_dim: int) -> DDPGState:
    """A fresh learner: Xavier-uniform weights, zero biases, targets = copies, step 0."""
    check_init(config, DDPGConfig, obs_dim, action_dim)
    k_actor, k_critic, k_state = jax.random.split(raw_key(key), 3)
    actor_params = init_actor_params(k_actor, config.hidden_sizes, obs_dim, action_dim)
    critic_params = init_q_params(k_critic, config.hidden_sizes, obs_dim, action_dim, config.n_q)
    return DDPGState(
        actor_params=actor_params,
        critic_params=critic_params,
        target_actor_params=jax.tree.map(jnp.copy, actor_params),
        target_critic_params=jax.tree.map(jnp.copy, critic_params),
        actor_opt_state=actor_optimizer(config).init(actor_params),
        critic_opt_state=critic_optimizer(config).init(critic_params),
        key=k_state,
        step=jnp.zeros((), jnp.int32),
        config=config,
    )


# ---------------------------------------------------------------- pieces of the update

def smoothed_target_action(target_action: jax.Array, noise: jax.Array, noise_clip: float) -> jax.Array:
    """a' = clip(μ̄(s') + clip(ε, -c, c), -1, 1). target_action, noise (*S, A) -> (*S, A)."""
    return jnp.clip(target_action + jnp.clip(noise, -noise_clip, noise_clip), -1.0, 1.0)


def critic_target(target_critic_params: Params, hidden_sizes, batch: Batch, next_action: jax.Array,
                  discount: float) -> jax.Array:
    """y = r + γ (1 - terminated) · min_i Q̄_i(s', a'), gradient stopped.

    batch: reward, terminated (B,), next_obs (B, O); next_action a' (B, A) -> y (B,).
    """
    next_q = jnp.min(q_apply(target_critic_params, hidden_sizes, batch.next_obs, next_action), axis=0)
    return td_target(batch.reward, batch.terminated, next_q, 1.0, discount)


def actor_loss(actor_params: Params, critic_params: Params, hidden_sizes, obs: jax.Array) -> jax.Array:
    """-mean_B Q_1(s, μ(s)) with the first critic of the ensemble. obs (B, O) -> scalar."""
    first = jax.tree.map(lambda x: x[:1], critic_params)
    q = q_apply(first, hidden_sizes, obs, actor_apply(actor_params, hidden_sizes, obs))[0]
    return -jnp.mean(q)


def _select(pred: jax.Array, new: Any, old: Any) -> Any:
    """The tree `new` where `pred` (a traced bool scalar), else `old`."""
    return jax.tree.map(lambda n, o: jnp.where(pred, n, o), new, old)


#: Names of the scalar metrics `update` returns, in a fixed order.
UPDATE_METRICS: tuple[str, ...] = ("critic_loss", "q_mean", "target_mean", "actor_loss",
                                   "critic_grad_norm", "actor_grad_norm", "actor_updated")


def update(state: DDPGState, batch: Batch) -> tuple[DDPGState, dict[str, jax.Array]]:
    """One DDPG / TD3 update. Pure; `jax.jit(update)` and `jax.jit(jax.vmap(update))` work.

    1. Critics: one Adam step on Σ_i ½ mean_B (Q_i(s, a) - y)² (`critic_target`'s y, with
       a' = `smoothed_target_action` of the target actor and ε ~ N(0, policy_noise²)).
    2. Actor: one Adam step on `actor_loss` with the updated critic, kept only after update
       number step + 1 ≡ 0 (mod policy_delay) (selected, not branched on).
    3. Targets (actor and critics): target <- τ θ + (1 - τ) target after update numbers
       that are multiples of both policy_delay and target_update_interval.

    batch: `Batch` with B = config.batch_size (checked when traced). Metrics, in the order
    of UPDATE_METRICS: critic_loss (per critic), q_mean (Q before the step), target_mean
    (y), actor_loss (this update's, applied or not), critic_grad_norm, actor_grad_norm,
    actor_updated (1.0 if the actor step was applied, else 0.0).
    """
    cfg = state.config
    hidden = cfg.hidden_sizes
    check_batch(batch, state.obs_dim, state.action_dim, cfg.batch_size)
    batch = Batch(*(jnp.asarray(x, jnp.float32) for x in batch))
    key, k_noise = jax.random.split(state.key)

    # Critics.
    target_mu = actor_apply(state.target_actor_params, hidden, batch.next_obs)  # (B, A)
    noise = cfg.policy_noise * jax.random.normal(k_noise, target_mu.shape)
    next_action = smoothed_target_action(target_mu, noise, cfg.noise_clip)
    y = critic_target(state.target_critic_params, hidden, batch, next_action, cfg.discount)
    (c_loss, q), c_grads = jax.value_and_grad(td_loss, has_aux=True)(state.critic_params, hidden, batch, y)
    c_updates, critic_opt_state = critic_optimizer(cfg).update(c_grads, state.critic_opt_state,
                                                               state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, c_updates)

    # Actor, against the updated critic; applied every policy_delay updates.
    step = state.step + 1
    a_loss, a_grads = jax.value_and_grad(actor_loss)(state.actor_params, critic_params, hidden, batch.obs)
    a_updates, stepped_opt_state = actor_optimizer(cfg).update(a_grads, state.actor_opt_state,
                                                               state.actor_params)
    stepped_actor = optax.apply_updates(state.actor_params, a_updates)
    actor_due = (step % cfg.policy_delay) == 0
    actor_params = _select(actor_due, stepped_actor, state.actor_params)
    actor_opt_state = _select(actor_due, stepped_opt_state, state.actor_opt_state)

    # Targets: due when step is a multiple of both intervals, i.e. of their lcm.
    interval = math.lcm(cfg.policy_delay, cfg.target_update_interval)
    new_state = state.replace(
        actor_params=actor_params,
        critic_params=critic_params,
        target_actor_params=update_target(state.target_actor_params, actor_params, step,
                                          cfg.target_tau, interval),
        target_critic_params=update_target(state.target_critic_params, critic_params, step,
                                           cfg.target_tau, interval),
        actor_opt_state=actor_opt_state,
        critic_opt_state=critic_opt_state,
        key=key,
        step=step,
    )
    values = (c_loss / cfg.n_q, jnp.mean(q), jnp.mean(y), a_loss, optax.tree.norm(c_grads),
              optax.tree.norm(a_grads), actor_due.astype(jnp.float32))
    return new_state, dict(zip(UPDATE_METRICS, values, strict=True))


# ---------------------------------------------------------------- acting

def explore_init(cfg: DDPGConfig, action_dim: int):
    """One episode's initial exploration state: OU noise x = 0 (A,), or () for Gaussian."""
    if cfg.exploration == "ou":
        return jnp.zeros((action_dim,), jnp.float32)
    return ()


def act(state: DDPGState, explore: Any, obs: jax.Array, key: jax.Array,
        deterministic: bool = False) -> tuple[jax.Array, Any]:
    """Actions: obs (*S, O) -> (*S, A) in [-1, 1], and the next exploration state.

    deterministic: μ(s), explore unchanged. "ou": explore (*S, A) (or broadcastable to it)
    -> explore' = explore - θ explore + σ N(0, I) of shape (*S, A), action
    clip(μ(s) + explore', -1, 1). "gaussian": clip(μ(s) + σ N(0, I), -1, 1), explore ().
    """
    cfg = state.config
    obs = jnp.asarray(obs, jnp.float32)
    chex.assert_axis_dimension(obs, -1, state.obs_dim)
    mu = actor_apply(state.actor_params, cfg.hidden_sizes, obs)
    if deterministic:
        return mu, explore
    if key is None:
        raise ValueError("act needs a PRNG key for exploration (or deterministic=True)")
    noise = jax.random.normal(raw_key(key), mu.shape)
    if cfg.exploration == "ou":
        explore = explore - cfg.ou_theta * explore + cfg.ou_sigma * noise
        return jnp.clip(mu + explore, -1.0, 1.0), explore
    return jnp.clip(mu + cfg.exploration_sigma * noise, -1.0, 1.0), explore


def finetune_state(key: jax.Array, pretrained: DDPGState, config: DDPGConfig | None = None) -> DDPGState:
    """A new learner from a pretrained one: actor and critic parameters copied (targets
    = copies of them), optimisers and step fresh. `config` (default: the pretrained one)
    may change anything but hidden_sizes and n_q (ValueError)."""
    config = pretrained.config if config is None else config
    if config.hidden_sizes != pretrained.config.hidden_sizes or config.n_q != pretrained.config.n_q:
        raise ValueError(
            "fine-tuning config must keep the pretrained network shape: hidden_sizes "
            f"{pretrained.config.hidden_sizes} and n_q {pretrained.config.n_q}, got "
            f"{config.hidden_sizes} and {config.n_q}")
    fresh = init(key, config, pretrained.obs_dim, pretrained.action_dim)
    return fresh.replace(
        actor_params=pretrained.actor_params,
        critic_params=pretrained.critic_params,
        target_actor_params=jax.tree.map(jnp.copy, pretrained.actor_params),
        target_critic_params=jax.tree.map(jnp.copy, pretrained.critic_params),
        actor_opt_state=actor_optimizer(config).init(pretrained.actor_params),
        critic_opt_state=critic_optimizer(config).init(pretrained.critic_params),
    )


LEARNER = Learner(
    name="ddpg",
    title="DDPG",
    config_class=DDPGConfig,
    state_class=DDPGState,
    presets=PRESETS,
    init=init,
    update=update,
    act=act,
    explore_init=explore_init,
    params=lambda state: (state.actor_params, state.critic_params),
    metrics=UPDATE_METRICS,
    export_fields=("actor_params", "critic_params", "target_actor_params", "target_critic_params",
                   "step", "key"),
    finetune=finetune_state,
    eval_modes={"stochastic": "mu(s) plus the exploration noise (OU, reset each episode, or "
                              "Gaussian)", "deterministic": "mu(s)"},
)
