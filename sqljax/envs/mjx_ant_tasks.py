"""The transfer study's tasks in JAX: ``mjx:AntAnyDirection``, ``mjx:AntHallwayWide``,
``mjx:AntHallwayNarrow``, ``mjx:AntUMaze`` (each the ``-v1`` task).

The gymnasium tasks ``sqljax/<Task>-v1`` (:mod:`sqljax.envs.ant_tasks`), stepped by MJX,
so that pretraining and fine-tuning run in the compiled loop
(:mod:`sqljax.loops.scan_loop`), vmapped over seeds, on any JAX device. The pretraining
task, ``mjx:AntAnyDirection``, is ``mjx:Ant`` (:mod:`sqljax.envs.mjx_locomotion`: the
same model file, RK4 step with MuJoCo's contact frames, reset, observation, health) with
two changes, both data in :data:`ANT_ANY_DIRECTION`:

* the motion term is the torso's planar speed ``|v_xy|`` (:func:`xy_speed`) in place of
  its x velocity; ``v_xy`` is the change of the torso's ``xpos[:2]`` over ``dt = 0.05``
  s, as MuJoCo's data holds it before and after the step, as gymnasium's task measures it;
* rllab's reward weights (:data:`sqljax.envs.registry.RLLAB_ANT_REWARD_WEIGHTS`), as the
  ``-v1`` id: ``ctrl_cost = 0.005 |a|^2``, ``healthy = 0.05`` per step, contact cost
  ``5e-4 |clip(cfrc_ext, -1, 1)|^2``.

So, per step::

    reward = |v_xy| + 0.05 (healthy) - 0.005 |a|^2 - 5e-4 |clip(cfrc_ext[1:], -1, 1)|^2

The model is gymnasium's ``ant.xml`` itself: the gymnasium task's generated model adds
only a camera, which takes no part in the physics (the tests compare the two models'
physical fields). Observation (105,) float32: ``qpos[2:]`` (13), ``qvel`` (14) and the
clipped contact forces of the 13 bodies but the world (78), zeros after a reset; action
(8,) in [-1, 1]; reset ``qpos0 + U(+-0.1)``, ``qvel = 0.1 N(0, 1)``; episodes of 1000
steps (truncation). Termination is Ant-v5's: the torso height ``qpos[2]`` outside the
closed interval [0.2, 1.0] m or a non-finite state. The gymnasium task has no flip test
(an ant on its back with its torso in that band goes on and keeps earning the alive
term); the flip termination belongs to the exploration maze
(:mod:`sqljax.envs.exploration_tasks`), not to this task.

How close: float32 physics against MuJoCo's float64. Over 40-step action sequences
from gymnasium's resets (same start, same actions, each step's state carried by each
simulator on its own), ``tests/test_mjx_ant_tasks.py`` measures the observation, reward
and termination against gymnasium's; ``docs/mjx.md`` has the figures. ``info`` carries
gymnasium's keys: the reward terms, ``x_position``, ``y_position``,
``distance_from_origin``, ``x_velocity``, ``y_velocity`` and ``xy_speed``.

The fine-tuning tasks are the same, on the gymnasium tasks' own walled models
(:mod:`sqljax.envs.ant_walls`: the same XML text, loaded by MJX), each with rllab's
weights:

* ``AntHallwayWide``, ``AntHallwayNarrow`` (:data:`ANT_HALLWAY_WIDE`,
  :data:`ANT_HALLWAY_NARROW`): walls along x, 6.0 m and 2.5 m apart; the motion term is
  the torso's x velocity (:func:`x_velocity`), as Ant's.
* ``AntUMaze`` (:data:`ANT_UMAZE`): the motion term is the progress along the geodesic
  distance to the goal, ``(d(xy_before) - d(xy_after)) / dt`` (:func:`umaze_progress`,
  :func:`umaze_geodesic_distance`), and the goal bonus (:func:`umaze_goal_bonus`) adds 5
  on every step that ends with the torso within 1 m of (0, 8); reaching it ends nothing.

``info`` adds ``xy_speed`` in every task and, in the U-maze, ``geodesic_distance``,
``goal_distance``, ``reward_goal`` and ``is_success`` (1.0 or 0.0), as gymnasium's step
does (a reset returns no ``info`` in the protocol). ``tests/test_mjx_ant_walls.py``
compares them with gymnasium's, the ant thrown against a wall among the cases: away
from the walls the two agree as for the open arena; a step in which a leg comes within
MuJoCo's contact margin of a wall differs (MJX's capsule-box collision reports no
contact until the leg touches; ``docs/mjx.md`` has the figures).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from sqljax.envs import ant_walls
from sqljax.envs.mjx_locomotion import TASK_PARAMS, LocomotionParams, MjxLocomotion
from sqljax.envs.registry import RLLAB_ANT_REWARD_WEIGHTS

__all__ = ["ANT_ANY_DIRECTION", "ANT_HALLWAY_NARROW", "ANT_HALLWAY_WIDE", "ANT_UMAZE", "TASKS",
           "make", "umaze_geodesic_distance", "umaze_goal_bonus", "umaze_progress",
           "x_velocity", "xy_speed"]


def xy_speed(xy_before: jax.Array, xy_after: jax.Array, dt: float
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The planar speed of a point that moved from ``xy_before`` (2,) to ``xy_after``
    (2,) in ``dt`` seconds: ``(speed (), {"xy_speed": speed})``, in m/s. Its gradient is
    never taken (a reward), so the norm at zero motion needs no guard."""
    speed = jnp.linalg.norm((xy_after - xy_before) / dt)
    return speed, {"xy_speed": speed}


#: ``sqljax/AntAnyDirection-v1`` as a locomotion task: Ant-v5's definition with the
#: planar speed as motion term and rllab's reward weights.
ANT_ANY_DIRECTION: LocomotionParams = dataclasses.replace(
    TASK_PARAMS["Ant"], task="AntAnyDirection", motion=xy_speed, **RLLAB_ANT_REWARD_WEIGHTS)


def x_velocity(xy_before: jax.Array, xy_after: jax.Array, dt: float
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The x velocity of a point that moved from ``xy_before`` (2,) to ``xy_after`` (2,)
    in ``dt`` seconds, and its planar speed: ``(v_x (), {"xy_speed": speed ()})``, m/s."""
    _, info = xy_speed(xy_before, xy_after, dt)
    return (xy_after[0] - xy_before[0]) / dt, info


def _crosses_box(p: jax.Array, q: jax.Array, box: tuple[float, float, float, float]) -> jax.Array:
    """Whether the segment from ``p`` (2,) to ``q`` (2,) passes through the open interior
    of the axis-aligned ``box`` (xmin, xmax, ymin, ymax); touching its boundary or corners
    does not count. () bool (a slab test: the segment's parameter interval inside both
    slabs must be longer than 1e-9)."""
    lo = jnp.array([box[0], box[2]], p.dtype)
    hi = jnp.array([box[1], box[3]], p.dtype)
    d = q - p
    parallel = jnp.abs(d) < 1e-12  # along an axis: inside that slab or never
    safe_d = jnp.where(parallel, 1.0, d)
    a, b = (lo - p) / safe_d, (hi - p) / safe_d
    t0 = jnp.maximum(0.0, jnp.max(jnp.where(parallel, -jnp.inf, jnp.minimum(a, b))))
    t1 = jnp.minimum(1.0, jnp.min(jnp.where(parallel, jnp.inf, jnp.maximum(a, b))))
    in_slabs = jnp.all(jnp.where(parallel, (lo < p) & (p < hi), True))
    return in_slabs & (t1 - t0 > 1e-9)


def umaze_geodesic_distance(xy: jax.Array) -> jax.Array:
    """Length of the shortest path from ``xy`` (2,) to the U-maze goal (0, 8) that does
    not cross the inner wall [-2, 6] x [2, 6]; () in metres, as
    :func:`sqljax.envs.ant_tasks.umaze_geodesic_distance` computes it in NumPy.

    The path is straight where the goal is in sight, else it wraps around the wall's
    corner (6, 6), else around (6, 2) then (6, 6); the three lengths are computed and
    one chosen (``jnp.where``), so the function jits and vmaps. It is continuous where
    the choice changes (the corner then lies on the straight path), so float32 rounding
    near a corner costs nothing."""
    p = jnp.asarray(xy)[:2]
    goal = jnp.array(ant_walls.UMAZE_GOAL, p.dtype)
    wall = ant_walls.UMAZE_INNER_WALL
    c1 = jnp.array([wall[1], wall[2]], p.dtype)  # (6, 2)
    c2 = jnp.array([wall[1], wall[3]], p.dtype)  # (6, 6)
    c2_to_goal = jnp.linalg.norm(c2 - goal)
    direct = jnp.linalg.norm(p - goal)
    via_c2 = jnp.linalg.norm(p - c2) + c2_to_goal
    via_c1 = jnp.linalg.norm(p - c1) + jnp.linalg.norm(c1 - c2) + c2_to_goal
    return jnp.where(~_crosses_box(p, goal, wall), direct,
                     jnp.where(~_crosses_box(p, c2, wall), via_c2, via_c1))


def umaze_progress(xy_before: jax.Array, xy_after: jax.Array, dt: float
                   ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The U-maze's motion term: the decrease of the geodesic distance to the goal per
    second, ``(d(xy_before) - d(xy_after)) / dt`` (xy (2,) each), and its info: ``(progress
    (), {"geodesic_distance": d(xy_after) (), "xy_speed": speed ()})``."""
    d_after = umaze_geodesic_distance(xy_after)
    _, info = xy_speed(xy_before, xy_after, dt)
    return (umaze_geodesic_distance(xy_before) - d_after) / dt, {"geodesic_distance": d_after, **info}


def umaze_goal_bonus(xy_after: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The U-maze's goal bonus for a torso at ``xy_after`` (2,): ``UMAZE_GOAL_REWARD``
    (5) within ``UMAZE_GOAL_RADIUS`` (1 m, closed) of the goal, else 0; ``(bonus (),
    info)`` with ``goal_distance``, ``reward_goal`` (the bonus) and ``is_success``."""
    goal_distance = jnp.linalg.norm(xy_after - jnp.array(ant_walls.UMAZE_GOAL, xy_after.dtype))
    at_goal = goal_distance <= ant_walls.UMAZE_GOAL_RADIUS
    bonus = jnp.where(at_goal, ant_walls.UMAZE_GOAL_REWARD, 0.0).astype(xy_after.dtype)
    return bonus, {"goal_distance": goal_distance, "reward_goal": bonus, "is_success": at_goal}


def _walled(task: str, xml: str, **changes) -> LocomotionParams:
    """Ant-v5's definition with rllab's weights on a walled model (XML text)."""
    return dataclasses.replace(TASK_PARAMS["Ant"], task=task, xml_file=xml,
                               **RLLAB_ANT_REWARD_WEIGHTS, **changes)


#: ``sqljax/AntHallwayWide-v1``, ``sqljax/AntHallwayNarrow-v1`` and ``sqljax/AntUMaze-v1``
#: as locomotion tasks (their models are built when this module is imported).
ANT_HALLWAY_WIDE: LocomotionParams = _walled(
    "AntHallwayWide", ant_walls.hallway_xml(ant_walls.HALLWAY_WIDTHS["wide"]), motion=x_velocity)
ANT_HALLWAY_NARROW: LocomotionParams = _walled(
    "AntHallwayNarrow", ant_walls.hallway_xml(ant_walls.HALLWAY_WIDTHS["narrow"]), motion=x_velocity)
ANT_UMAZE: LocomotionParams = _walled(
    "AntUMaze", ant_walls.umaze_xml(), motion=umaze_progress, bonus=umaze_goal_bonus)

#: The tasks of this module by name, each with the one version it implements.
TASKS: dict[str, tuple[LocomotionParams, str]] = {
    "AntAnyDirection": (ANT_ANY_DIRECTION, "v1"), "AntHallwayWide": (ANT_HALLWAY_WIDE, "v1"),
    "AntHallwayNarrow": (ANT_HALLWAY_NARROW, "v1"), "AntUMaze": (ANT_UMAZE, "v1")}


def make(name: str) -> tuple[MjxLocomotion, LocomotionParams]:
    """``(env, params)`` of a task of :data:`TASKS` by name, e.g. ``AntUMaze`` or
    ``AntUMaze-v1`` (the version is the gymnasium task's it reproduces; ValueError, one
    line, for another name or version). The env is :class:`~sqljax.envs.mjx_locomotion.MjxLocomotion` on
    ``params``."""
    base, _, version = str(name).partition("-")
    if base not in TASKS:
        raise ValueError(f"no mjx Ant transfer task {name!r}; known: "
                         f"{', '.join(f'{t}-{v}' for t, (_, v) in TASKS.items())}")
    params, have = TASKS[base]
    if version and version != have:
        raise ValueError(f"mjx:{base} is the -{have} task (rllab's reward weights); there is "
                         f"no mjx:{base}-{version}: use sqljax/{base}-{version} (gymnasium)")
    return MjxLocomotion(params), params
