"""Hyperparameters of Soft Q-Learning: one frozen, validated dataclass and named presets.

The defaults are those of the authors' public code (which produced their published
curves); the paper's Appendix D values are the ``"paper"`` preset. The temperature is
expressed, as in the authors' code, through ``reward_scale`` = 1 / alpha: the Q-function
lives in units of scaled reward and the policy is pi(a|s) ∝ exp(Q(s, a)).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from sqljax.learners.protocol import (
    QLearningConfig,
    check_field,
    check_positive_float,
    check_positive_int,
)

#: Reward scale (1 / alpha) per task in the authors' code, by task name without prefix or
#: version: the same for ``Ant``, ``Ant-v5``, ``mjx:Ant`` (and ``gymnax:Pendulum-v1``).
TASK_REWARD_SCALES: dict[str, float] = {
    "Swimmer": 30.0, "Hopper": 30.0, "HalfCheetah": 30.0, "Walker2d": 10.0, "Ant": 300.0,
    "Humanoid": 100.0, "Pendulum": 10.0,
    # The exploration tasks (paper section 5.2): alpha = 0.1.
    "SwimmerFinishLine": 10.0, "AntTwoPassageMaze": 10.0}

#: The preset a task trains with unless one is named (every other task: ``code``).
TASK_PRESETS: dict[str, str] = {
    "MultiGoal": "multigoal", "AntAnyDirection": "pretrain", "AntHallwayWide": "pretrain",
    "AntHallway": "pretrain", "AntHallwayNarrow": "pretrain", "AntUMaze": "pretrain"}


def task_base_name(task: str) -> str:
    """``mjx:Ant-v5``, ``gymnax:Pendulum-v1``, ``sqljax/AntUMaze-v1`` -> ``Ant``,
    ``Pendulum``, ``AntUMaze``: the key of the per-task tables above."""
    name = str(task).strip().split(":")[-1].split("/")[-1]
    return re.sub(r"-v\d+$", "", name)


@dataclasses.dataclass(frozen=True)
class SQLConfig(QLearningConfig):
    """Every hyperparameter of Soft Q-Learning. Frozen and hashable: it is static data of
    `SQLState`, so changing it recompiles, and it never changes inside a compiled step.
    The drivers' fields (batch size, replay, warm-up, updates per step, episode length)
    come from :class:`~sqljax.learners.protocol.DriverConfig`; the networks', discount's
    and target network's (hidden_sizes, discount, target_update_interval, target_tau,
    n_q: the Q-function ensemble, its elementwise minimum in targets) from
    :class:`~sqljax.learners.protocol.QLearningConfig`.

    Invalid values raise ``ValueError`` naming the field and its allowed range.
    """

    # Adam learning rates (the Q-function(s) and the sampler share hidden_sizes).
    qf_lr: float = 3e-4
    policy_lr: float = 3e-4
    # 1 / temperature. Rewards are multiplied by it in the TD target only.
    reward_scale: float = 1.0
    # K_V: uniform action samples for the importance-sampled soft value.
    value_n_particles: int = 16
    # K: sampler particles per state in the SVGD step, split fixed / updated by the ratio.
    kernel_n_particles: int = 16
    kernel_update_ratio: float = 0.5
    # Lower bound of the RBF bandwidth.
    kernel_h_min: float = 1e-3
    # Fine-tuning schedules (off by default; `final_reward_scale` without `anneal_steps` is
    # refused). Over the first `anneal_steps` updates the
    # reward scale moves log-linearly from `reward_scale` to `final_reward_scale`
    # (alpha from 1/reward_scale to 1/final_reward_scale), and, when
    # `noise_bank_size` > 0, acting draws xi from a fixed bank whose active size shrinks
    # linearly from `noise_bank_size` to 1.
    anneal_steps: int = 0
    final_reward_scale: float | None = None
    noise_bank_size: int = 0
    # Units of Q. "scaled" (the authors' code): rewards are multiplied by the reward scale
    # and pi ∝ exp(Q). "reward": Q in reward units, and alpha = 1 / reward scale enters
    # the soft value and the sampler's target, pi ∝ exp(Q / alpha). For a constant alpha
    # the objective is the same (Q_reward = alpha Q_scaled); under an anneal of the
    # reward scale, "reward" keeps the TD targets' scale and only sharpens the policy.
    q_units: str = "scaled"

    def validate(self) -> None:
        super().validate()
        _validate(self)

    # Derived sizes of the SVGD particle split.
    @property
    def n_updated_particles(self) -> int:
        """Particles moved by SVGD: int(K * kernel_update_ratio)."""
        return int(self.kernel_n_particles * self.kernel_update_ratio)

    @property
    def n_fixed_particles(self) -> int:
        """Particles at which the target score is evaluated: K - n_updated."""
        return self.kernel_n_particles - self.n_updated_particles

    @property
    def alpha(self) -> float:
        """Temperature at the start of training, 1 / reward_scale."""
        return 1.0 / self.reward_scale

    @classmethod
    def preset(cls, name: str = "code", task: str | None = None, **overrides: Any) -> "SQLConfig":
        """A named preset, optionally with a task's reward scale, then `overrides`.

        name: "code" (authors' code, the default), "paper" (Appendix D), "modern"
        (twin Q, Polyak target, batch 256, 5000 warm-up steps), "multigoal"
        (the multi-goal experiment) or "pretrain" (the transfer study's pretraining:
        alpha = 0.1).
        task: a key of TASK_REWARD_SCALES (e.g. "Ant", "HalfCheetah-v5"), sets reward_scale.
        """
        return super().preset(name, task, **overrides)


def task_reward_scale(task: str) -> float | None:
    """The authors' reward scale for a task name ("Ant", "Ant-v5", ...), or None."""
    return TASK_REWARD_SCALES.get(task_base_name(task))


def task_preset(task: str) -> str:
    """The preset a task trains with by default ("code" unless the task has its own)."""
    return TASK_PRESETS.get(task_base_name(task), "code")


def task_overrides(task: str, preset: str) -> dict[str, Any]:
    """The task's reward scale, unless the preset sets its own."""
    scale = task_reward_scale(task)
    return {} if scale is None or "reward_scale" in PRESETS[preset] else {"reward_scale": scale}


PRESETS: dict[str, dict[str, Any]] = {
    "code": {},
    "paper": dict(
        hidden_sizes=(200, 200),
        qf_lr=1e-3,
        policy_lr=1e-4,
        batch_size=64,
        value_n_particles=50,
        kernel_n_particles=32,
        learning_starts=10_000,
        max_episode_steps=500,
        reward_scale=10.0,
    ),
    "modern": dict(
        n_q=2,
        target_tau=0.005,
        target_update_interval=1,
        batch_size=256,
        learning_starts=5000,
    ),
    "multigoal": dict(
        hidden_sizes=(128, 128),
        qf_lr=3e-4,
        policy_lr=3e-4,
        batch_size=64,
        value_n_particles=16,
        kernel_n_particles=32,
        kernel_update_ratio=0.5,
        discount=0.99,
        reward_scale=0.1,
        learning_starts=100,
        target_update_interval=1000,
        max_episode_steps=30,
    ),
    "pretrain": dict(reward_scale=10.0),
}


def _validate(c: SQLConfig) -> None:
    def _check(ok: bool, field: str, allowed: str, value: Any) -> None:
        check_field(c, ok, field, allowed, value)

    check_positive_float(c, "qf_lr", "policy_lr", "reward_scale", "kernel_h_min")
    check_positive_int(c, "value_n_particles", "kernel_n_particles")
    _check(isinstance(c.kernel_update_ratio, (int, float)) and 0 < c.kernel_update_ratio < 1,
           "kernel_update_ratio", "in (0, 1)", c.kernel_update_ratio)
    _check(c.n_updated_particles >= 1, "kernel_update_ratio",
           f"large enough that int(kernel_n_particles * ratio) >= 1 "
           f"(kernel_n_particles={c.kernel_n_particles})", c.kernel_update_ratio)
    _check(c.n_fixed_particles >= 2, "kernel_n_particles",
           "large enough to leave at least 2 fixed particles "
           f"(K - int(K * kernel_update_ratio) >= 2, ratio={c.kernel_update_ratio})",
           c.kernel_n_particles)
    _check(isinstance(c.anneal_steps, int) and c.anneal_steps >= 0,
           "anneal_steps", "an integer >= 0", c.anneal_steps)
    if c.final_reward_scale is not None:
        check_positive_float(c, "final_reward_scale")
        _check(c.anneal_steps > 0, "final_reward_scale", "None when anneal_steps = 0 (the "
               "schedule never runs; set anneal_steps > 0 to anneal)", c.final_reward_scale)
    _check(c.q_units in ("scaled", "reward"), "q_units", "'scaled' or 'reward'", c.q_units)
    _check(isinstance(c.noise_bank_size, int) and c.noise_bank_size >= 0,
           "noise_bank_size", "an integer >= 0 (0 = off)", c.noise_bank_size)
