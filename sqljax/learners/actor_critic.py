"""What the actor-critic learners (DDPG / TD3 and SAC) share: their config's learning rates
and warm-up, their two Adam optimisers, and the checks and sizes of a fresh learner."""

from __future__ import annotations

import dataclasses
from typing import Any

import optax

from sqljax.learners.protocol import QLearningConfig, check_positive_float


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig(QLearningConfig):
    """Adam learning rates of the actor and the critics (which share hidden_sizes), and
    uniform warm-up actions in [-1, 1]^A (the baselines' way) unless set to "policy"."""

    warmup_actions: str = "uniform"
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4

    def validate(self) -> None:
        super().validate()
        check_positive_float(self, "actor_lr", "critic_lr")


def actor_optimizer(config: ActorCriticConfig) -> optax.GradientTransformation:
    return optax.adam(config.actor_lr)


def critic_optimizer(config: ActorCriticConfig) -> optax.GradientTransformation:
    return optax.adam(config.critic_lr)


def check_init(config: Any, config_class: type, obs_dim: int, action_dim: int) -> None:
    """TypeError unless ``config`` is a ``config_class``; ValueError unless both sizes are >= 1."""
    if not isinstance(config, config_class):
        raise TypeError(f"config must be a {config_class.__name__}, got {type(config).__name__}")
    if int(obs_dim) < 1 or int(action_dim) < 1:
        raise ValueError(f"obs_dim and action_dim must be >= 1, got {obs_dim}, {action_dim}")


def actor_obs_dim(actor_params: Any) -> int:
    """The observation size of an actor whose first dense layer is ``hidden_0``."""
    return int(actor_params["params"]["hidden_0"]["kernel"].shape[-2])
