"""Soft Q-Learning under the learner protocol: the functions of :mod:`sqljax.update`
and :mod:`sqljax.config`, unchanged, as one :class:`~sqljax.learners.protocol.Learner`."""

from __future__ import annotations

import jax

from sqljax import config as sql_config
from sqljax.learners.protocol import Learner
from sqljax.update import (
    UPDATE_METRICS,
    SQLState,
    finetune_state,
    init,
    sample_actions,
    update,
)

#: What a compact export keeps (the rest, Adam moments, starts fresh on load).
EXPORT_FIELDS = ("q_params", "target_q_params", "sampler_params", "noise_bank", "step", "key")


def act(state: SQLState, explore: tuple, obs: jax.Array, key: jax.Array,
        deterministic: bool = False) -> tuple[jax.Array, tuple]:
    """The sampler's actions (obs (*S, O) -> (*S, A)); SQL keeps no exploration state."""
    return sample_actions(state, obs, key, deterministic=deterministic), explore


LEARNER = Learner(
    name="sql",
    title="Soft Q-Learning",
    config_class=sql_config.SQLConfig,
    state_class=SQLState,
    presets=sql_config.PRESETS,
    init=init,
    update=update,
    act=act,
    explore_init=lambda cfg, action_dim: (),
    params=lambda state: (state.q_params, state.sampler_params),
    metrics=UPDATE_METRICS,
    export_fields=EXPORT_FIELDS,
    finetune=finetune_state,
    task_preset=sql_config.task_preset,
    task_overrides=sql_config.task_overrides,
    eval_modes={"stochastic": "fresh xi ~ N(0, I) every step (the authors' protocol)",
                "deterministic": "xi = 0"},
)
