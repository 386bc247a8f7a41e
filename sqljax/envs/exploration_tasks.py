"""The two exploration tasks of the paper's §5.2: a swimmer paid for speed in either
direction with a finish line ahead, and an Ant in a maze whose reward gradient leads
into a dead end.  Both have 500-step episodes when registered
(``sqljax/SwimmerFinishLine-v0``, ``sqljax/AntTwoPassageMaze-v0``).

Swimmer with a finish line (:class:`SwimmerFinishLine`)
------------------------------------------------------

Gymnasium's Swimmer-v5 model and physics (``dt = 4 x 0.01 = 0.04`` s per step, three
1 m capsules, two torques in [-1, 1]).  Per step::

    reward = |v_x| - 1e-4 |a|^2 + (0.1 if x_com >= 1.0 else 0)

* ``x_com`` is the x of the swimmer's centre of mass (MuJoCo's ``subtree_com`` of the
  torso body, the whole swimmer), in metres; ``v_x = (x_com_after - x_com_before) / dt``
  in m/s.  The control cost is Swimmer-v5's.  No termination; truncation at T = 500
  steps (20 s) when registered.
* Before the line the reward is symmetric under the mirror x -> -x (frame x and vx
  negated, heading theta -> pi - theta, joint angles, angular velocities and torques
  negated): swimming backwards pays exactly what swimming forwards pays, so it is a
  real local optimum, and only forward swimming ever reaches the line at x = +1.0 m.
* Past the line (``x_com >= finish_line``) every step adds ``bonus``: a **bonus per
  step**, not a multiplied speed.  The gap between the two optima is then
  ``bonus x (steps left after crossing)``, known in advance and independent of how fast
  the learner swims; with a multiplier it would be ``(k - 1) x v x (steps left)``, which
  vanishes for the slow swimmers measured below (0.02 m/s of centre of mass), so the
  forward optimum would pay hardly more than the backward one.  0.1 per step is what
  swimming at 0.1 m/s pays.
* Observation (12 numbers): qpos (5: torso frame x, y, heading, two joint angles),
  qvel (5) and the centre of mass (x, y), as in the authors' swimmer, which observes
  qpos, qvel and the torso's centre of mass.  The positions must be observed: the
  reward depends on x.  ``info`` has the torso frame's ``x_position`` / ``y_position``
  (Swimmer-v5's), ``com_x``, ``com_y``, ``x_velocity`` (of the centre of mass),
  ``past_finish_line`` and the reward terms.

Why the centre of mass and not the torso frame (Swimmer-v5's ``x_position``, qpos[0]):
bending the body moves the frame by up to ~0.9 m relative to the centre of mass, so
``|dx_frame|`` pays for wiggling in place.  Measured over 500 steps of Swimmer-v5 from
a seeded reset: an in-phase sinusoidal wiggle (both torques ``sin(t / 5)``) moves the
frame 9.9 m in total (sum of ``|dx|``, a return of 247) while its centre of mass moves
0.26 m in total; uniformly random torques: 7.3 m of frame motion against 0.75 m of
centre-of-mass motion; an open-loop travelling wave (period 40 steps, phase pi/4) swims
3.2 m net with 3.23 m of centre-of-mass motion but 16.5 m of frame motion.  With the
centre of mass, ``sum |v_x| dt`` is (nearly) the distance actually swum.

How far SQL swims (the line's position).  The zoo's Swimmer-v5 learners
(``zoo/Swimmer/code/seed{0,1,2}``, 300k steps, returns -2 to 42 per 1000 steps), three
deterministic and three stochastic episodes each, 500 steps:

============  ===============================  =======================================
seed          torso frame dx (Swimmer-v5's x)  centre of mass dx (max over the episode)
============  ===============================  =======================================
0             -0.21 .. +1.27 m (peak ~1.4 m,   +0.33 .. +0.43 m
              back to ~0 by step 1000)
1             +1.40 .. +1.59 m                 +0.36 .. +0.58 m
2             +1.25 .. +1.51 m                 +0.20 .. +0.45 m
============  ===============================  =======================================

So SQL's Swimmer-v5 speed is ~1.4 m per 500 steps (0.07 m/s) as Swimmer-v5 measures
it, reaching 1.0 m after 42-202 steps (in five of six episodes), but most of that is body shape: the centre of
mass moves 0.2-0.6 m, no more than flailing does (uniformly random torques, 40 episodes:
the centre of mass's greatest x has median 0.18 m and maximum 0.60 m; resets put it
within +-0.1 m of 0).  The line must lie beyond what flailing reaches, or crossing it
says nothing about swimming, and within what swimming reaches in 500 steps: **d = 1.0
m** (a third of the body length) is past every random episode's reach (0.60 m), is
crossed after 184 steps by the open-loop wave above swimming forwards (3.1 m in 500
steps, return 107.7; the mirrored wave swims 3.2 m backwards for 80.8), and is where
SQL's Swimmer-v5 learners' frames get to in 42-202 steps; a learner whose centre of mass
moves as fast as those frames crosses it within the episode.  Flailing earns far less:
uniformly random torques ~19 per episode (0.75 m of centre-of-mass motion), SQL's
sampler after 1000-3000 steps 8-15.

Ant two-passage maze (:class:`AntTwoPassageMaze`)
-------------------------------------------------

The ``-v1`` Ant of :mod:`sqljax.envs.ant_tasks` (gymnasium's Ant-v5 model, rllab's
reward weights ``sqljax.envs.registry.RLLAB_ANT_REWARD_WEIGHTS``) in a maze built the
same way (box geoms on the world body, 1.0 m thick; 3.0 m high here, since the
episode does not end on the torso's height).  Geometry, metres, x east, y north:

* free space: the rectangle [-2, 10] x [-7, 2] inside the outer walls, minus
* the divider [2, 6] x [-3, -2] between the two passages, and
* the barrier [5, 6] x [-2, 2], which closes the upper passage's east end.

That leaves a west room x in [-2, 2] (start at (0, 0)), an east room x in [6, 10]
(target at (8, 0)), the upper passage x in [2, 5], y in [-2, 2] (a dead end) and the
lower passage x in [2, 6], y in [-7, -3]; every passage is 4 m wide (as the U-maze's
corridor: the ant fits in any heading).  The straight line from the start to the target
runs along y = 0 into the upper passage and hits the barrier; the shortest way round
(lower passage, wrapping the divider's corners (2, -3) and (6, -3)) is 11.2 m against 8 m
straight.  SQL's Ant learners cover 13-17 m of path in 500 steps with rllab's weights
(``zoo/AntAnyDirection-v1``, 500k steps) and 20-33 m with Ant-v5's (``zoo/Ant``).

Reward per step::

    exp(-|xy - target|^2 / (2 * 4.0^2))     # the bump, in [0, 1]
    + 0.05 (alive) - 0.005 |a|^2 - 5e-4 |clip(cfrc_ext, -1, 1)|^2

with ``xy`` the torso centre (qpos[0:2]).  Width sigma = 4 m, half the start-to-target
distance: the bump is 0.135 at the start (its gradient, 0.068 per m, points straight into
the upper passage), 0.72 at the dead end, 1 at the target, so the dead end is a real
local optimum that pays 72 % of the target, and escaping it means walking back through
0.11-0.19 per step around the divider's west end.  A bump of sigma = 2 m would be 3e-4 at
the start (no gradient to follow, blind search); sigma = 8 m pays 92 % at the dead end
(barely a worse optimum).  Scale 1 per step: the size of the -v1 tasks' motion term
(1 m/s pays 1), twenty times the alive term.  No motion term (``reward_forward`` is 0).

The dead-end distance (:func:`dead_end_distance`): the closest the torso centre gets to
the target without the lower passage, the torso (a 0.25 m sphere) kept 0.25 m off every
wall face: (4.75, 0), **3.25 m** from the target.  The legs usually keep the torso
farther off, so an ant whose torso gets closer than 3.25 m went round.

Termination: the torso flips, i.e. its up axis points below the horizontal (z component
of the torso's local z axis, ``1 - 2 (q_x^2 + q_y^2)`` from the quaternion in
qpos[3:7], below 0; ``info["torso_up"]``), or the state is not finite.  This replaces
Ant-v5's height test, and the alive term is paid while the ant is not flipped.
Truncation at T = 500 steps (25 s) when registered.  The observation is Ant-v5's with
the torso's x and y kept (107 numbers: 15 qpos, 14 qvel, 78 clipped ``cfrc_ext``): the
reward depends on them.  ``info`` adds ``target_distance``, ``reward_target``,
``torso_up`` and ``below_dead_end`` (``target_distance < dead_end_distance()``) to
:mod:`sqljax.envs.ant_tasks`'s keys (``x_position``, ``y_position`` are the torso's).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import mujoco
import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.swimmer_v5 import SwimmerEnv
from gymnasium.spaces import Box

from sqljax.envs.ant_tasks import _AntTask, _build_xml
from sqljax.envs.ant_walls import outer_walls
from sqljax.envs.registry import RLLAB_ANT_REWARD_WEIGHTS

__all__ = [
    "EPISODE_STEPS",
    "FINISH_LINE_X",
    "FINISH_LINE_BONUS",
    "SwimmerFinishLine",
    "MAZE_FREE_SPACE",
    "MAZE_DIVIDER",
    "MAZE_BARRIER",
    "MAZE_START",
    "MAZE_TARGET",
    "MAZE_BUMP_WIDTH",
    "MAZE_BUMP_SCALE",
    "TORSO_RADIUS",
    "AntTwoPassageMaze",
    "maze_walls",
    "target_bump",
    "dead_end_distance",
]

#: Episode length T of both tasks when registered (steps).
EPISODE_STEPS = 500

# ---------------------------------------------------------------------------- swimmer
#: x of the finish line (m, world frame; the centre of mass starts within +-0.1 m of 0).
FINISH_LINE_X = 1.0
#: Reward added on every step that ends with the centre of mass past the line.
FINISH_LINE_BONUS = 0.1


class SwimmerFinishLine(SwimmerEnv):
    """Swimmer-v5 paid ``|v_x|`` of its centre of mass in either direction, plus
    ``bonus`` per step past the line ``x_com >= finish_line`` (see the module docstring).

    Observation (12,): qpos (5), qvel (5), centre of mass (x, y).  Action (2,) in
    [-1, 1].  Never terminates.  ``finish_line`` in m, ``bonus`` per step; other
    keyword arguments are Swimmer-v5's (``forward_reward_weight`` scales ``|v_x|``).
    """

    #: Training metrics per log interval (:mod:`sqljax.loops.gym_loop`): the greatest and
    #: least x of the centre of mass over the training steps, and its mean at episode ends.
    training_columns = {"train_com_x_max": ("com_x", "max"), "train_com_x_min": ("com_x", "min"),
                        "train_com_x_end": ("com_x", "end_mean")}

    def __init__(self, finish_line: float = FINISH_LINE_X, bonus: float = FINISH_LINE_BONUS, **kwargs):
        if "exclude_current_positions_from_observation" in kwargs:
            raise TypeError("SwimmerFinishLine always observes the positions (its reward depends on x)")
        self.finish_line = float(finish_line)
        self.bonus = float(bonus)
        super().__init__(exclude_current_positions_from_observation=False, **kwargs)
        self._torso = self.model.body("torso").id
        n = self.data.qpos.size + self.data.qvel.size + 2
        self.observation_space = Box(low=-np.inf, high=np.inf, shape=(n,), dtype=np.float64)
        self.observation_structure = {**self.observation_structure, "com": 2}
        # Pickle/copy must rebuild this class from its own arguments.
        utils.EzPickle.__init__(self, finish_line=finish_line, bonus=bonus, **kwargs)

    def com_xy(self) -> np.ndarray:
        """Centre of mass of the whole swimmer (x, y) in m, for the current qpos."""
        # After mj_step the position-derived quantities belong to the last substep's
        # start; recompute them from qpos (position stage only: the dynamics are untouched).
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        return self.data.subtree_com[self._torso, :2].copy()

    def _get_obs(self):
        return np.concatenate([self.data.qpos.flat, self.data.qvel.flat, self.com_xy()])

    def step(self, action):
        com_before = self.com_xy()
        self.do_simulation(action, self.frame_skip)
        com_after = self.com_xy()
        x_velocity, y_velocity = (com_after - com_before) / self.dt

        speed = self._forward_reward_weight * abs(float(x_velocity))
        ctrl_cost = float(self.control_cost(action))
        past = bool(com_after[0] >= self.finish_line)
        bonus = self.bonus if past else 0.0
        reward = speed - ctrl_cost + bonus

        observation = self._get_obs()
        info = {
            "x_position": self.data.qpos[0],
            "y_position": self.data.qpos[1],
            "com_x": float(com_after[0]),
            "com_y": float(com_after[1]),
            "x_velocity": float(x_velocity),
            "y_velocity": float(y_velocity),
            "past_finish_line": past,
            "reward_forward": speed,
            "reward_ctrl": -ctrl_cost,
            "reward_finish": bonus,
        }
        if self.render_mode == "human":
            self.render()
        return observation, reward, False, False, info

    def _get_reset_info(self):
        com = self.com_xy()
        return {
            "x_position": self.data.qpos[0],
            "y_position": self.data.qpos[1],
            "com_x": float(com[0]),
            "com_y": float(com[1]),
            "past_finish_line": bool(com[0] >= self.finish_line),
        }


# ------------------------------------------------------------------------------- maze
# Rectangles are (xmin, xmax, ymin, ymax) in metres.
#: Inside of the outer walls.
MAZE_FREE_SPACE = (-2.0, 10.0, -7.0, 2.0)
#: Wall between the upper passage (y in [-2, 2]) and the lower one (y in [-7, -3]).
MAZE_DIVIDER = (2.0, 6.0, -3.0, -2.0)
#: Wall closing the upper passage's east end (the dead end).
MAZE_BARRIER = (5.0, 6.0, -2.0, 2.0)
MAZE_START = (0.0, 0.0)
MAZE_TARGET = (8.0, 0.0)
#: sigma of the Gaussian bump (m) and its height (reward per step at the target).
MAZE_BUMP_WIDTH = 4.0
MAZE_BUMP_SCALE = 1.0
#: Radius of the Ant's torso sphere (ant.xml), the torso centre's least distance to a wall.
TORSO_RADIUS = 0.25
MAZE_WALL_THICKNESS = 1.0
MAZE_WALL_HEIGHT = 3.0
_BARRIER_RGBA = "0.75 0.25 0.2 1"


def maze_walls() -> list[tuple[str, float, float, float, float]]:
    """Every wall box as ``(name, xmin, xmax, ymin, ymax)`` (m): four outer walls,
    the divider and the barrier."""
    return [*outer_walls(MAZE_FREE_SPACE, MAZE_WALL_THICKNESS),
            ("divider", *MAZE_DIVIDER), ("barrier", *MAZE_BARRIER)]


def target_bump(xy, width: float = MAZE_BUMP_WIDTH, scale: float = MAZE_BUMP_SCALE):
    """``scale * exp(-|xy - target|^2 / (2 width^2))`` for positions (..., 2) in m."""
    d2 = np.sum(np.square(np.asarray(xy, dtype=np.float64) - np.asarray(MAZE_TARGET)), axis=-1)
    return scale * np.exp(-d2 / (2.0 * width**2))


def _distance_to_rect(p, rect) -> float:
    xmin, xmax, ymin, ymax = rect
    q = np.clip(np.asarray(p, dtype=np.float64), [xmin, ymin], [xmax, ymax])
    return float(np.linalg.norm(np.asarray(p, dtype=np.float64) - q))


def dead_end_distance(torso_radius: float = TORSO_RADIUS) -> float:
    """The closest the torso centre gets to the target (m) anywhere it can reach from
    the start without the lower passage: the west room and the upper passage, each
    face kept ``torso_radius`` away.  3.25 m with the defaults, at (4.75, 0).

    Those positions are the union of two rectangles: the band y in [-2 + r, 2 - r] from
    the west wall to the barrier (x <= 5 - r), and the west room (x <= 2 - r); the only
    positions left out are the rounded corners around the divider's west end, more than
    6 m from the target.
    """
    r = float(torso_radius)
    xmin, xmax, ymin, ymax = MAZE_FREE_SPACE
    upper = (xmin + r, MAZE_BARRIER[0] - r, MAZE_DIVIDER[3] + r, ymax - r)
    west_room = (xmin + r, MAZE_DIVIDER[0] - r, ymin + r, ymax - r)
    return min(_distance_to_rect(MAZE_TARGET, rect) for rect in (upper, west_room))


def _maze_xml() -> str:
    walls = maze_walls()
    xml = _build_xml(
        walls,
        goal=(MAZE_TARGET, 0.5),
        camera=("fixed", "4 -2.5 17", "1 0 0 0 1 0"),  # straight down on the whole maze
        extent=10.0,
    )
    # Same walls as the transfer tasks' but taller, and a red barrier.
    root = ET.fromstring(xml)
    names = {w[0] for w in walls}
    for geom in root.find("worldbody").findall("geom"):
        if geom.get("name") in names:
            x, y, _ = geom.get("pos").split()
            sx, sy, _ = geom.get("size").split()
            geom.set("pos", f"{x} {y} {MAZE_WALL_HEIGHT / 2}")
            geom.set("size", f"{sx} {sy} {MAZE_WALL_HEIGHT / 2}")
            if geom.get("name") == "barrier":
                geom.set("rgba", _BARRIER_RGBA)
    return ET.tostring(root, encoding="unicode")


class AntTwoPassageMaze(_AntTask):
    """Ant (rllab's reward weights) in the two-passage maze; reward a Gaussian bump
    around the target (see the module docstring).

    Observation (107,) with the defaults: qpos (15, torso x and y included), qvel (14),
    clipped ``cfrc_ext`` (78).  Action (8,) in [-1, 1].  Terminates when the torso flips.
    ``bump_width`` (m) and ``bump_scale`` (reward per step) shape the bump; other keyword
    arguments are Ant-v5's, on top of ``RLLAB_ANT_REWARD_WEIGHTS`` and
    ``exclude_current_positions_from_observation=False``.
    """

    #: Training metrics per log interval (:mod:`sqljax.loops.gym_loop`): the torso's least
    #: distance to the target over the training steps, and its mean at episode ends.
    training_columns = {"train_target_distance_min": ("target_distance", "min"),
                        "train_target_distance_end": ("target_distance", "end_mean")}

    def __init__(self, bump_width: float = MAZE_BUMP_WIDTH, bump_scale: float = MAZE_BUMP_SCALE, **kwargs):
        self.target = np.asarray(MAZE_TARGET, dtype=np.float64)
        self.bump_width = float(bump_width)
        self.bump_scale = float(bump_scale)
        self.dead_end = dead_end_distance()
        kwargs = {**RLLAB_ANT_REWARD_WEIGHTS, "exclude_current_positions_from_observation": False, **kwargs}
        super().__init__(_maze_xml(), {"bump_width": bump_width, "bump_scale": bump_scale}, **kwargs)

    @property
    def torso_up(self) -> float:
        """z component of the torso's up axis (1 upright, 0 on its side, -1 on its back)."""
        _, qx, qy, _ = self.data.qpos[3:7]
        return float(1.0 - 2.0 * (qx * qx + qy * qy))

    @property
    def is_healthy(self) -> bool:
        """Not flipped (up axis at or above the horizontal) and a finite state."""
        return bool(np.isfinite(self.state_vector()).all() and self.torso_up >= 0.0)

    def _motion(self, xy_before, xy_after, xy_velocity):
        return 0.0, {}

    def _target_info(self):
        xy = self.data.qpos[:2]
        distance = float(np.linalg.norm(xy - self.target))
        bump = float(target_bump(xy, self.bump_width, self.bump_scale))
        return bump, {
            "target_distance": distance,
            "reward_target": bump,
            "torso_up": self.torso_up,
            "below_dead_end": bool(distance < self.dead_end),
        }

    def _bonus(self, xy_after):
        return self._target_info()

    def _get_reset_info(self):
        info = super()._get_reset_info()
        info.update(self._target_info()[1])
        return info
