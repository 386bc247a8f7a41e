"""The multi-goal point-mass environment of the Soft Q-Learning paper (Fig. 1).

A point in the plane moves by its (clipped) velocity action, pays for speed and for its
distance to the nearest of four goals, and the episode ends with a bonus when it comes
within one unit of a goal. Four equally good goals make the optimal maximum-entropy
policy multimodal at the origin.

Two front ends share one set of equations (:func:`transition`, written over an array
namespace ``xp`` so that it runs on ``jax.numpy`` and on ``numpy`` alike):

* the JAX-native, functional API (gymnax style), pure and vmappable::

      obs, state = reset(key, params)
      obs, state, reward, terminated, truncated, info = step(key, state, action, params)

* :class:`MultiGoal`, the same functions behind the JAX-native protocol (automatic
  reset), which the compiled training loop takes, with the goals its evaluation
  episodes reached (:func:`eval_metrics`) as extra columns of the run's metrics;
* ``MultiGoalEnv`` (:mod:`sqljax.envs.gym_adapter`), a ``gymnasium.Env`` with the same
  numbers, registered as ``sqljax/MultiGoal-v0``.

Shapes: observation and position ``(2,)``, action ``(2,)``; under ``vmap`` a leading
batch axis is added to every array.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from sqljax.envs.spaces import Box, auto_reset

# --------------------------------------------------------------------------- constants

#: Goal positions, one row per goal: (5, 0), (-5, 0), (0, 5), (0, -5).
GOALS: tuple[tuple[float, float], ...] = ((5.0, 0.0), (-5.0, 0.0), (0.0, 5.0), (0.0, -5.0))
#: The state lives in the box [-POSITION_BOUND, POSITION_BOUND]^2.
POSITION_BOUND: float = 7.0
#: Each action component is clipped to [-ACTION_BOUND, ACTION_BOUND].
ACTION_BOUND: float = 1.0
#: Cost per unit squared speed: 30 * ||a||^2.
ACTION_COST: float = 30.0
#: Cost per unit squared distance to the nearest goal: 1 * min_g ||s' - g||^2.
DISTANCE_COST: float = 1.0
#: A goal is reached when the nearest goal is closer than this.
GOAL_RADIUS: float = 1.0
#: Bonus added to the reward of the step that reaches a goal.
GOAL_REWARD: float = 10.0
#: Standard deviation of the start position s0 ~ N(0, INIT_STD^2 I).
INIT_STD: float = 0.1
#: Episode length; the episode is truncated after this many steps.
MAX_EPISODE_STEPS: int = 30

OBS_DIM: int = 2
ACTION_DIM: int = 2


@dataclasses.dataclass(frozen=True)
class MultiGoalParams:
    """The environment's numbers (hashable, so it can be a static jit argument).

    Defaults are the paper's; a different instance changes the task, not the code.
    """

    goals: tuple[tuple[float, float], ...] = GOALS
    position_bound: float = POSITION_BOUND
    action_bound: float = ACTION_BOUND
    action_cost: float = ACTION_COST
    distance_cost: float = DISTANCE_COST
    goal_radius: float = GOAL_RADIUS
    goal_reward: float = GOAL_REWARD
    init_std: float = INIT_STD
    max_episode_steps: int = MAX_EPISODE_STEPS

    def __post_init__(self):
        if len(self.goals) == 0 or any(len(g) != 2 for g in self.goals):
            raise ValueError(f"goals must be a non-empty sequence of (x, y) pairs, got {self.goals!r}")
        for name in ("position_bound", "action_bound", "goal_radius", "max_episode_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MultiGoalParams.{name} must be positive, got {getattr(self, name)!r}")
        if self.init_std < 0:
            raise ValueError(f"MultiGoalParams.init_std must be >= 0, got {self.init_std!r}")
        # Tuples keep the instance hashable even if lists were passed.
        object.__setattr__(self, "goals", tuple(tuple(float(c) for c in g) for g in self.goals))


DEFAULT_PARAMS = MultiGoalParams()


# ------------------------------------------------------------------- shared equations

def goal_distances_sq(xp, params: MultiGoalParams, position):
    """Squared distance from ``position`` (..., 2) to every goal -> (..., G)."""
    goals = xp.asarray(params.goals, dtype=xp.float32)  # (G, 2)
    diff = position[..., None, :] - goals  # (..., G, 2)
    return xp.sum(diff * diff, axis=-1)


def distance_cost(xp, params: MultiGoalParams, position):
    """The goal-distance cost ``distance_cost * min_g ||position - g||^2``; (..., 2) -> (...)."""
    return params.distance_cost * xp.min(goal_distances_sq(xp, params, position), axis=-1)


def transition(xp, params: MultiGoalParams, position, action):
    """One step of the dynamics and reward, for any array namespace ``xp``.

    Args:
      xp: ``jax.numpy`` or ``numpy``.
      params: the environment's numbers.
      position: current position, float32 (..., 2).
      action: velocity, (..., 2); clipped to the action bounds here.

    Returns:
      ``(next_position (..., 2), reward (...), reached (...) bool, goal (...) int32)``
      where ``next_position = clip(position + clip(action), ±bound)``,
      ``reward = -(action_cost ||a||^2 + distance_cost min_g ||s' - g||^2)``
      ``+ goal_reward`` when ``min_g ||s' - g|| < goal_radius`` (``reached``), and
      ``goal`` is the index of the goal reached, -1 if none.
    """
    action = xp.clip(xp.asarray(action, dtype=xp.float32), -params.action_bound, params.action_bound)
    position = xp.asarray(position, dtype=xp.float32)
    next_position = xp.clip(position + action, -params.position_bound, params.position_bound)
    dist_sq = goal_distances_sq(xp, params, next_position)  # (..., G)
    min_dist_sq = xp.min(dist_sq, axis=-1)
    action_cost = params.action_cost * xp.sum(action * action, axis=-1)
    reward = -(action_cost + params.distance_cost * min_dist_sq)
    reached = min_dist_sq < params.goal_radius ** 2
    reward = reward + xp.where(reached, xp.float32(params.goal_reward), xp.float32(0.0))
    goal = xp.where(reached, xp.argmin(dist_sq, axis=-1), -1).astype(xp.int32)
    return next_position, reward.astype(xp.float32), reached, goal


# ------------------------------------------------------------------ JAX-native API

@struct.dataclass
class EnvState:
    """The environment's state: ``position`` float32 (2,) and ``time`` int32 () (steps taken)."""

    position: jax.Array
    time: jax.Array


def init_state(position) -> EnvState:
    """An :class:`EnvState` at ``position`` (2,) with time 0 (a chosen start state)."""
    return EnvState(position=jnp.asarray(position, dtype=jnp.float32), time=jnp.zeros((), jnp.int32))


def reset(key: jax.Array, params: MultiGoalParams = DEFAULT_PARAMS) -> tuple[jax.Array, EnvState]:
    """Start an episode: s0 ~ N(0, init_std^2 I).

    Returns ``(obs (2,), state)``.
    """
    position = params.init_std * jax.random.normal(key, (OBS_DIM,), dtype=jnp.float32)
    state = init_state(position)
    return state.position, state


def step(
    key: jax.Array,
    state: EnvState,
    action: jax.Array,
    params: MultiGoalParams = DEFAULT_PARAMS,
) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
    """Advance one step (pure; the dynamics are noiseless, ``key`` is unused).

    Args:
      key: PRNG key (kept for the common env signature).
      state: :class:`EnvState` (position (2,), time ()).
      action: (2,) velocity; clipped to [-action_bound, action_bound].

    Returns:
      ``(obs (2,), next_state, reward () f32, terminated () bool, truncated () bool, info)``
      with ``terminated`` when a goal is reached, ``truncated`` once
      ``max_episode_steps`` steps are taken (as gymnasium's TimeLimit: it may be true
      together with ``terminated``), and ``info = {"goal": () int32}``, the index of
      the goal reached, -1 if none. No automatic reset; the caller resets.
    """
    del key
    next_position, reward, reached, goal = transition(jnp, params, state.position, action)
    time = state.time + 1
    truncated = time >= params.max_episode_steps
    next_state = EnvState(position=next_position, time=time)
    return next_position, next_state, reward, reached, truncated, {"goal": goal}


# ------------------------------------------------------------------ evaluation

def eval_columns(params: MultiGoalParams = DEFAULT_PARAMS) -> list[str]:
    """The columns of :func:`eval_metrics`, in order: ``eval_goals`` (how many distinct
    goals the episodes reached), ``eval_goal_<i>`` (the share of episodes that reached
    goal ``i``) for each of the G goals, ``eval_goal_none`` (the share that reached none)."""
    return ["eval_goals"] + [f"eval_goal_{i}" for i in range(len(params.goals))] + ["eval_goal_none"]


def eval_metrics(rollout_out: dict[str, Any], params: MultiGoalParams = DEFAULT_PARAMS
                 ) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """Which goals E evaluation episodes reached (pure; jittable).

    Args:
      rollout_out: :func:`sqljax.loops.evaluation.rollout`'s output on this env: ``alive``
        (E, T) bool and ``info["goal"]`` (E, T) int32 are read.
      params: the environment's numbers (G = ``len(params.goals)``).

    Returns:
      ``(columns, record)``: ``columns`` keyed by :func:`eval_columns`, ``eval_goals`` ()
      int32 and each share () float32; ``record`` holds ``goals`` () float32, the same
      count as ``eval_goals``.
    """
    goals = jnp.max(jnp.where(rollout_out["alive"], rollout_out["info"]["goal"], -1), axis=1)  # (E,)
    hits = goals[:, None] == jnp.arange(len(params.goals))  # (E, G)
    reached = jnp.sum(jnp.any(hits, axis=0))
    shares = jnp.concatenate([jnp.mean(hits, axis=0), jnp.mean(goals < 0)[None]])  # (G + 1,)
    names = eval_columns(params)
    columns = {"eval_goals": reached.astype(jnp.int32),
               **{name: shares[i] for i, name in enumerate(names[1:])}}
    return columns, {"goals": reached.astype(jnp.float32)}


# ------------------------------------------------------------------ the protocol

class MultiGoal:
    """The multi-goal env behind the JAX-native protocol (:mod:`sqljax.envs.jax_env`):
    :func:`reset` and :func:`step` with automatic reset
    (:func:`sqljax.envs.spaces.auto_reset`), the true last observation in
    ``info["final_observation"]``; and the optional evaluation hooks of the compiled loop
    (:func:`eval_metrics`, :func:`eval_columns`): which goals the episodes reached."""

    def reset(self, key: jax.Array, params: MultiGoalParams = DEFAULT_PARAMS):
        return reset(key, params)

    def step(self, key: jax.Array, state: EnvState, action: jax.Array,
             params: MultiGoalParams = DEFAULT_PARAMS):
        k_step, k_reset = jax.random.split(key)
        return auto_reset(step(k_step, state, action, params), reset(k_reset, params))

    def eval_columns(self, params: MultiGoalParams = DEFAULT_PARAMS) -> list[str]:
        return eval_columns(params)

    def eval_metrics(self, rollout_out: dict[str, Any], params: MultiGoalParams = DEFAULT_PARAMS):
        return eval_metrics(rollout_out, params)

    def observation_space(self, params: MultiGoalParams = DEFAULT_PARAMS) -> Box:
        return Box(-params.position_bound, params.position_bound, (OBS_DIM,))

    def action_space(self, params: MultiGoalParams = DEFAULT_PARAMS) -> Box:
        return Box(-params.action_bound, params.action_bound, (ACTION_DIM,))

    def __hash__(self) -> int:  # every instance is the same env
        return hash(MultiGoal)

    def __eq__(self, other) -> bool:
        return isinstance(other, MultiGoal)
