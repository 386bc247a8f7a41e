"""What a driver needs from a learner, and nothing else: the learner protocol.

A learner is a :class:`Learner` record of pure functions and facts. The drivers
(:mod:`sqljax.loops`), the run directory (:mod:`sqljax.store`) and the checkpoints know a
learner only through it, and never branch on the algorithm:

- ``config_class``: a frozen dataclass deriving from :class:`DriverConfig` (the fields
  the drivers read: batch size, replay size, warm-up, updates per env step, episode
  length), with ``preset``, ``replace``, ``to_dict`` and ``from_dict``;
  ``presets``: preset name -> field values;
- ``init(key, cfg, obs_dim, action_dim) -> state``: a pytree with ``config`` as static
  data and ``step`` (updates done), ``obs_dim``, ``action_dim``;
- ``update(state, batch) -> (state, metrics)``: pure, no static arguments, so that
  ``jax.jit(jax.vmap(update))`` compiles it as is; ``metrics`` holds exactly the
  scalars named in ``metrics``, in that order;
- ``act(state, explore, obs, key, deterministic) -> (action, explore)``: obs (*S, O),
  explore (*S, ...) -> action (*S, A) in [-1, 1]; ``deterministic`` (a Python bool) is
  the evaluation mode;
- ``explore_init(cfg, action_dim)``: one episode's initial exploration state (DDPG's
  Ornstein-Uhlenbeck noise; ``()`` when the learner has none). It lives in the driver's
  per-seed carry, not in the learner's state: it belongs to an episode, is reset where
  one starts (``jnp.where(done, init, x)``), is not exported and is not updated;
- ``params(state)``: the parameters whose finiteness the drivers check after updates;
- ``export_fields``: the state fields a compact export keeps (the rest, optimiser
  states, start fresh on load);
- ``finetune(key, pretrained, cfg) -> state``: a new learner that starts from a
  pretrained one (parameters copied, optimisers fresh);
- ``task_preset(env_id)`` and ``task_overrides(env_id, preset)``: the learner's own
  per-task settings (SQL's reward scales and presets); the task table keeps task facts.

Nothing here knows an environment or touches files.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp


class Batch(NamedTuple):
    """A batch of transitions, leading batch axis B.

    obs (B, O), action (B, A) in [-1, 1], reward (B,) unscaled, next_obs (B, O),
    terminated (B,) 1.0 where the episode truly ended (not a time-limit truncation).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array


def check_batch(batch: Batch, obs_dim: int, action_dim: int, batch_size: int) -> None:
    """Trace-time checks of a batch against a learner (every learner's ``update`` calls
    it): ranks, sizes (obs (B, O), action (B, A), reward and terminated (B,)), B equal to
    the config's batch size, and floating dtypes (a bool `terminated` is accepted)."""
    chex.assert_rank([batch.obs, batch.action, batch.reward, batch.next_obs, batch.terminated],
                     [2, 2, 1, 2, 1])
    b = batch.obs.shape[0]
    if b != batch_size:
        raise ValueError(f"batch has {b} transitions but config.batch_size is {batch_size}: "
                         "sample batches of the config's size (or change batch_size)")
    chex.assert_shape(batch.obs, (b, obs_dim))
    chex.assert_shape(batch.next_obs, (b, obs_dim))
    chex.assert_shape(batch.action, (b, action_dim))
    chex.assert_shape([batch.reward, batch.terminated], (b,))
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        dtype = jnp.asarray(getattr(batch, name)).dtype
        if not (jnp.issubdtype(dtype, jnp.floating) or (name == "terminated" and dtype == jnp.bool_)):
            raise TypeError(f"batch.{name} has dtype {dtype}; update takes floating-point arrays"
                            + (" (or bool)" if name == "terminated" else ""))


def check_field(config: Any, ok: bool, field: str, allowed: str, value: Any) -> None:
    """ValueError ``<Config>.<field> must be <allowed>, got <value>`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{type(config).__name__}.{field} must be {allowed}, got {value!r}")


def check_positive_int(config: Any, *names: str) -> None:
    for name in names:
        v = getattr(config, name)
        check_field(config, isinstance(v, int) and not isinstance(v, bool) and v >= 1, name,
                    "an integer >= 1", v)


def check_positive_float(config: Any, *names: str) -> None:
    for name in names:
        v = getattr(config, name)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        check_field(config, ok, name, "a finite number > 0", v)


@dataclasses.dataclass(frozen=True)
class DriverConfig:
    """The fields every learner's config shares, read by the drivers (not by ``update``).

    batch_size: transitions per update. replay_size: replay capacity. learning_starts:
    env steps stored before the first update. updates_per_step: updates per env step.
    max_episode_steps: the time limit (the shorter of this and the env's).
    warmup_actions: how the first ``learning_starts`` env steps act: ``"policy"`` (the
    learner's exploration, as the authors' SQL code does) or ``"uniform"`` (uniform in
    [-1, 1]^A from the seed's loop key, the same for every learner: the baselines' way).
    """

    batch_size: int = 128
    replay_size: int = 1_000_000
    learning_starts: int = 1000
    updates_per_step: int = 1
    max_episode_steps: int = 1000
    warmup_actions: str = "policy"

    def __post_init__(self) -> None:
        if "hidden_sizes" in {f.name for f in dataclasses.fields(self)}:
            object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        check_positive_int(self, "batch_size", "replay_size", "updates_per_step",
                           "max_episode_steps")
        check_field(self, isinstance(self.learning_starts, int) and self.learning_starts >= 0,
                    "learning_starts", "an integer >= 0", self.learning_starts)
        check_field(self, self.warmup_actions in ("policy", "uniform"), "warmup_actions",
                    "'policy' or 'uniform'", self.warmup_actions)
        self.validate()

    def validate(self) -> None:
        """The learner's own checks (ValueError naming the field); called on creation."""

    @classmethod
    def preset(cls, name: str = "code", task: str | None = None, **overrides: Any):
        """A named preset of this config's learner, with the task's settings for it (SQL:
        its reward scale), then ``overrides``; ValueError for an unknown preset."""
        from sqljax import learners

        return learners.of_config_class(cls).make_config(name, task, **overrides)

    def replace(self, **changes: Any):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of the fields."""
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """Inverse of ``to_dict``, also of a ``config.json`` (whose ``learner`` key must name
        this config's learner); unknown keys raise ValueError."""
        d = dict(d)
        tag = d.pop("learner", None)
        if tag is not None:
            from sqljax import learners

            if learners.get(tag).config_class is not cls:
                raise ValueError(f"this is the config of a {tag} learner, not a {cls.__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(fields)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s): {sorted(unknown)}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class QLearningConfig(DriverConfig):
    """The fields of learners built on Q-functions with target networks (SQL, DDPG/TD3).

    hidden_sizes: hidden layers of every network (ReLU). discount: gamma. Targets: every
    ``target_update_interval`` updates, target <- target_tau * Q + (1 - target_tau) *
    target (tau = 1 is a hard copy; tau < 1 needs interval 1, Polyak averaging). n_q: the
    number of Q-functions (2: targets use their elementwise minimum).
    """

    hidden_sizes: tuple[int, ...] = (128, 128)
    discount: float = 0.99
    target_update_interval: int = 1000
    target_tau: float = 1.0
    n_q: int = 1

    def validate(self) -> None:
        def real(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        check_field(self, len(self.hidden_sizes) >= 1 and all(h >= 1 for h in self.hidden_sizes),
                    "hidden_sizes", "a non-empty tuple of integers >= 1", self.hidden_sizes)
        check_positive_int(self, "target_update_interval")
        check_field(self, real(self.discount) and 0 < self.discount <= 1, "discount", "in (0, 1]",
                    self.discount)
        check_field(self, real(self.target_tau) and 0 < self.target_tau <= 1, "target_tau",
                    "in (0, 1]", self.target_tau)
        check_field(self, self.n_q in (1, 2) and not isinstance(self.n_q, bool), "n_q", "1 or 2",
                    self.n_q)
        # a pair that would silently do something else than it says:
        check_field(self, self.target_tau == 1 or self.target_update_interval == 1, "target_tau",
                    "1 (a hard copy) when target_update_interval > 1 (a soft update every "
                    f"{self.target_update_interval} updates barely moves the target; set "
                    "target_update_interval=1 for Polyak averaging)", self.target_tau)


@dataclasses.dataclass(frozen=True)
class Learner:
    """A learner as the drivers see it (see the module docstring for each entry)."""

    name: str
    title: str
    config_class: type
    state_class: type
    presets: Mapping[str, Mapping[str, Any]]
    init: Callable
    update: Callable
    act: Callable
    explore_init: Callable
    params: Callable
    metrics: tuple[str, ...]
    export_fields: tuple[str, ...]
    finetune: Callable
    task_preset: Callable[[str], str] = lambda env_id: "code"
    task_overrides: Callable[[str, str], dict] = lambda env_id, preset: {}
    #: What the two evaluation modes mean for this learner (for reports).
    eval_modes: Mapping[str, str] = dataclasses.field(default_factory=lambda: {
        "stochastic": "the learner's exploring actions", "deterministic": "its evaluation mode"})

    def make_config(self, preset: str | None = None, task: str | None = None,
                    **overrides: Any):
        """A preset (default: the task's, else ``code``) with the task's settings for this
        learner, then ``overrides``. ValueError for an unknown preset or a bad value."""
        name = preset or (self.task_preset(task) if task is not None else "code")
        if name not in self.presets:
            raise ValueError(f"unknown preset {name!r} of {self.name}; choose one of "
                             f"{sorted(self.presets)}")
        fields = dict(self.presets[name])
        if task is not None:
            fields.update(self.task_overrides(task, name))
        fields.update(overrides)
        return self.config_class(**fields)
