"""Ant tasks for skill transfer (pretrain in an open arena, fine-tune with walls).

All tasks are gymnasium's Ant-v5 (:class:`gymnasium.envs.mujoco.ant_v5.AntEnv`) with
a modified copy of gymnasium's ``ant.xml``: walls are extra box geoms and the goal is
a site, all attached to the world body.  No body, joint or actuator is added, so
every task keeps Ant-v5's observation (105 numbers with the defaults: 13 qpos without
the torso's x/y, 14 qvel, 13 x 6 clipped ``cfrc_ext``) and action (8 torques in
[-1, 1]).  A policy or Q-function trained on one task therefore loads into all of them.

Every reward is the Ant-v5 reward with only the motion term changed::

    reward = motion + healthy - ctrl_cost - contact_cost (+ goal bump in the U-maze)

with Ant-v5's defaults: ``healthy = 1`` per step while the torso height is in
[0.2, 1.0] m, ``ctrl_cost = 0.5 * |a|^2``, ``contact_cost = 5e-4 * |clip(cfrc_ext,
-1, 1)|^2``, ``dt = 5 * 0.01 = 0.05`` s, termination when unhealthy. The ``-v1`` ids
take rllab's Ant weights instead (``healthy = 0.05``, ``ctrl_cost = 0.005 * |a|^2``;
``sqljax.envs.registry.RLLAB_ANT_REWARD_WEIGHTS``), as in the paper's tasks.  The motion term
is computed from the torso position before and after the step divided by ``dt``,
exactly as Ant-v5 computes its forward reward; it is reported as
``info["reward_forward"]`` in every task.  ``info`` also keeps Ant-v5's
``x_position``, ``y_position``, ``x_velocity``, ``y_velocity``.

Tasks (dimensions in metres; the ant starts at the origin, torso 0.75 m up, with
Ant-v5's reset noise):

* :class:`AntAnyDirection` -- open arena, motion = ``|v_xy|`` (speed in any direction).
* :class:`AntHallway` -- walls parallel to x, motion = ``v_x`` (Ant-v5's reward).
  ``wide``: 6.0 m between the walls' inner faces; ``narrow``: 2.5 m.
* :class:`AntUMaze` -- U-shaped corridor 4 m wide, motion = decrease of the geodesic
  distance to the goal per second, plus a bump of +5 per step within 1 m of the goal.

Walls are 1.5 m high and 1.0 m thick (the U-maze's inner wall is a 8 x 4 m block).
Touching a wall adds to ``cfrc_ext``, hence to the (tiny) contact cost, as any contact
does in Ant-v5.  Each model has a ``task_view`` camera for rendering
(``camera_name="task_view"``): it follows the ant in the arena and hallways and shows
the whole U-maze from above.

Scale of the ant, for the widths: with the legs within their joint limits the
torso-to-outermost-leg distance across the direction of travel is at most ~1.02 m
(ant aligned with x) and ~1.14 m (turned 45 degrees); the settled standing pose
reaches ~1.15 m.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.ant_v5 import AntEnv

# The models (and their geometry) are built without gymnasium, for the MJX tasks too.
from sqljax.envs.ant_walls import (
    HALLWAY_WIDTHS,
    UMAZE_FREE_SPACE,
    UMAZE_GOAL,
    UMAZE_GOAL_RADIUS,
    UMAZE_GOAL_REWARD,
    UMAZE_INNER_WALL,
    any_direction_xml,
    hallway_xml,
    umaze_xml,
)
from sqljax.envs.ant_walls import build_xml as _build_xml  # noqa: F401  (exploration_tasks)

__all__ = [
    "AntAnyDirection",
    "AntHallway",
    "AntUMaze",
    "HALLWAY_WIDTHS",
    "UMAZE_GOAL",
    "UMAZE_INNER_WALL",
    "UMAZE_FREE_SPACE",
    "umaze_geodesic_distance",
]

# The two corners of the inner wall that the shortest path to the goal wraps around.
_UMAZE_C1 = np.array([UMAZE_INNER_WALL[1], UMAZE_INNER_WALL[2]])  # (6, 2)
_UMAZE_C2 = np.array([UMAZE_INNER_WALL[1], UMAZE_INNER_WALL[3]])  # (6, 6)


class _AntTask(AntEnv):
    """Ant-v5 on a generated model; subclasses choose the motion term (and extras)."""

    def __init__(self, xml: str, ezpickle_kwargs: dict, **kwargs):
        if "xml_file" in kwargs:
            raise TypeError(f"{type(self).__name__} builds its own model; xml_file is not accepted")
        # MujocoEnv loads the model from a path once, in __init__; the file is not
        # needed afterwards.
        fd, path = tempfile.mkstemp(prefix="sqljax_ant_", suffix=".xml")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(xml)
            super().__init__(xml_file=path, **kwargs)
        finally:
            os.unlink(path)
        # Pickle/copy must rebuild this class from its own arguments, not AntEnv's.
        utils.EzPickle.__init__(self, **ezpickle_kwargs, **kwargs)

    # Subclasses override these two.
    def _motion(self, xy_before: np.ndarray, xy_after: np.ndarray, xy_velocity: np.ndarray):
        """Motion reward term (before its weight) and extra info."""
        return float(xy_velocity[0]), {}

    def _bonus(self, xy_after: np.ndarray):
        """Extra reward added to Ant-v5's and extra info."""
        return 0.0, {}

    def step(self, action):
        xy_before = self.data.body(self._main_body).xpos[:2].copy()
        self.do_simulation(action, self.frame_skip)
        xy_after = self.data.body(self._main_body).xpos[:2].copy()
        xy_velocity = (xy_after - xy_before) / self.dt

        motion, motion_info = self._motion(xy_before, xy_after, xy_velocity)
        # Ant-v5's _get_rew multiplies its first argument by forward_reward_weight.
        reward, reward_info = self._get_rew(motion, action)
        bonus, bonus_info = self._bonus(xy_after)
        reward += bonus

        observation = self._get_obs()
        terminated = (not self.is_healthy) and self._terminate_when_unhealthy
        info = {
            "x_position": self.data.qpos[0],
            "y_position": self.data.qpos[1],
            "distance_from_origin": np.linalg.norm(self.data.qpos[0:2], ord=2),
            "x_velocity": xy_velocity[0],
            "y_velocity": xy_velocity[1],
            "xy_speed": float(np.linalg.norm(xy_velocity)),
            **reward_info,
            **motion_info,
            **bonus_info,
        }
        if self.render_mode == "human":
            self.render()
        return observation, reward, terminated, False, info


class AntAnyDirection(_AntTask):
    """Open arena; the ant is paid for its torso's speed in any horizontal direction.

    ``reward = |v_xy| + 1 (healthy) - 0.5 |a|^2 - 5e-4 |clip(cfrc_ext)|^2`` per step,
    where ``v_xy = (torso_xy_after - torso_xy_before) / 0.05`` (m/s).  Geometry:
    Ant-v5's unchanged, a plane floor and nothing else.  Terminates when unhealthy
    (torso height outside [0.2, 1.0] m); 1000-step episodes when registered.
    Keyword arguments are Ant-v5's (``forward_reward_weight`` scales the speed term).
    """

    def __init__(self, **kwargs):
        super().__init__(any_direction_xml(), {}, **kwargs)

    def _motion(self, xy_before, xy_after, xy_velocity):
        return float(np.linalg.norm(xy_velocity)), {}


class AntHallway(_AntTask):
    """Straight hallway along +x; the ant is paid for its forward (+x) speed.

    Two walls, 1.5 m high and 1.0 m thick, run from x = -10 to x = 500 m parallel to
    the x axis; the distance between their inner faces is ``width``:

    * ``variant="wide"``: 6.0 m (inner faces at y = +-3.0).  The ant (half-span up to
      ~1.15 m) has ~1.85 m of sideways room on each side and can turn freely.
    * ``variant="narrow"``: 2.5 m (inner faces at y = +-1.25).  The ant fits in any
      heading with ~0.1-0.2 m to spare but cannot drift sideways; turning 45 degrees
      brings its feet to the walls.

    The ends are open.  ``reward = v_x + 1 (healthy) - 0.5 |a|^2 - 5e-4
    |clip(cfrc_ext)|^2`` (Ant-v5's reward) with ``v_x = dx / 0.05`` of the torso.
    Terminates when unhealthy; 1000-step episodes when registered.
    ``corridor_width`` overrides the variant's width.  Other keyword arguments are Ant-v5's.
    """

    def __init__(self, variant: str = "wide", corridor_width: float | None = None, **kwargs):
        # (Not named `width`: MujocoEnv takes `width`/`height` for the rendered image.)
        if corridor_width is None:
            if variant not in HALLWAY_WIDTHS:
                raise ValueError(f"variant must be one of {sorted(HALLWAY_WIDTHS)}, got {variant!r}")
            corridor_width = HALLWAY_WIDTHS[variant]
        self.variant = variant
        self.half_width = float(corridor_width) / 2.0
        xml = hallway_xml(corridor_width)
        super().__init__(xml, {"variant": variant, "corridor_width": corridor_width}, **kwargs)

    def _motion(self, xy_before, xy_after, xy_velocity):
        return float(xy_velocity[0]), {}


def _segment_crosses_box(p: np.ndarray, q: np.ndarray, box) -> bool:
    """Whether the segment p-q passes through the open interior of an axis-aligned box
    (touching its boundary or corners does not count)."""
    xmin, xmax, ymin, ymax = box
    t0, t1 = 0.0, 1.0
    d = q - p
    for lo, hi, p_i, d_i in ((xmin, xmax, p[0], d[0]), (ymin, ymax, p[1], d[1])):
        if abs(d_i) < 1e-12:
            if not (lo < p_i < hi):
                return False
            continue
        a, b = (lo - p_i) / d_i, (hi - p_i) / d_i
        if a > b:
            a, b = b, a
        t0, t1 = max(t0, a), min(t1, b)
        if t1 - t0 <= 1e-9:
            return False
    return True


def umaze_geodesic_distance(xy) -> float:
    """Length of the shortest path from ``xy`` to the U-maze goal (0, 8) that does not
    cross the inner wall [-2, 6] x [2, 6] (in metres; 1-Lipschitz, hence continuous).

    The path is straight if the goal is in sight, otherwise it wraps around the wall's
    corner (6, 6), or around (6, 2) then (6, 6).  From the start (0, 0) it is
    2 sqrt(40) + 4 ~= 16.65 m.  Points outside the free space are treated the same
    way (the walls keep the torso out of them).
    """
    p = np.asarray(xy, dtype=np.float64)[:2]
    g = np.asarray(UMAZE_GOAL)
    wall = UMAZE_INNER_WALL
    if not _segment_crosses_box(p, g, wall):
        return float(np.linalg.norm(p - g))
    c2_to_g = float(np.linalg.norm(_UMAZE_C2 - g))
    if not _segment_crosses_box(p, _UMAZE_C2, wall):
        return float(np.linalg.norm(p - _UMAZE_C2)) + c2_to_g
    return float(np.linalg.norm(p - _UMAZE_C1)) + float(np.linalg.norm(_UMAZE_C1 - _UMAZE_C2)) + c2_to_g


class AntUMaze(_AntTask):
    """U-shaped corridor; the ant must walk around the U to a goal.

    Geometry (metres; walls 1.5 m high): the free space is the square [-2, 10] x
    [-2, 10] enclosed by 1.0 m thick outer walls, minus the inner wall block
    [-2, 6] x [2, 6].  That leaves a 4 m wide corridor: the bottom arm (y in [-2, 2])
    from the start at (0, 0) east to x = 10, the side arm (x in [6, 10]) north, and the
    top arm (y in [6, 10]) west to the goal at (0, 8), a dead end.  The corridor
    centre line is 24 m long; the shortest path hugging the inner corners is 16.65 m.

    Reward per step::

        forward_reward_weight * (d_before - d_after) / 0.05   # progress, m/s
        + 5.0 if |torso_xy - (0, 8)| <= 1.0 else 0             # goal bump
        + 1 (healthy) - 0.5 |a|^2 - 5e-4 |clip(cfrc_ext)|^2

    where ``d`` is :func:`umaze_geodesic_distance` of the torso.  The progress term
    is a difference of potentials, so it telescopes: walking to the goal pays
    16.65 / 0.05 ~= 333 in total whatever the route, and dithering earns nothing.
    Reaching the goal does **not** end the episode: the bump is paid on every step
    spent within the radius, so arriving early and staying there is best.
    Terminates only when unhealthy; 1000-step episodes when registered.
    ``info`` adds ``goal_distance`` (Euclidean), ``geodesic_distance``,
    ``reward_goal`` and ``is_success`` (within the radius).
    """

    def __init__(
        self,
        goal_radius: float = UMAZE_GOAL_RADIUS,
        goal_reward: float = UMAZE_GOAL_REWARD,
        **kwargs,
    ):
        self.goal = np.asarray(UMAZE_GOAL, dtype=np.float64)
        self.goal_radius = float(goal_radius)
        self.goal_reward = float(goal_reward)
        xml = umaze_xml(self.goal_radius)
        super().__init__(xml, {"goal_radius": goal_radius, "goal_reward": goal_reward}, **kwargs)

    def _motion(self, xy_before, xy_after, xy_velocity):
        d_before = umaze_geodesic_distance(xy_before)
        d_after = umaze_geodesic_distance(xy_after)
        return (d_before - d_after) / self.dt, {"geodesic_distance": d_after}

    def _bonus(self, xy_after):
        goal_distance = float(np.linalg.norm(xy_after - self.goal))
        at_goal = goal_distance <= self.goal_radius
        bonus = self.goal_reward if at_goal else 0.0
        return bonus, {"goal_distance": goal_distance, "reward_goal": bonus, "is_success": bool(at_goal)}

    def _get_reset_info(self):
        info = super()._get_reset_info()
        xy = self.data.body(self._main_body).xpos[:2]
        info["goal_distance"] = float(np.linalg.norm(xy - self.goal))
        info["geodesic_distance"] = umaze_geodesic_distance(xy)
        info["is_success"] = bool(info["goal_distance"] <= self.goal_radius)
        return info
