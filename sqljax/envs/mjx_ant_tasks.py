"""The transfer study's pretraining task in JAX: ``mjx:AntAnyDirection`` (``-v1``).

The gymnasium task ``sqljax/AntAnyDirection-v1`` (:mod:`sqljax.envs.ant_tasks`), stepped
by MJX, so that pretraining runs in the compiled loop (:mod:`sqljax.loops.scan_loop`),
vmapped over seeds, on any JAX device. It is ``mjx:Ant``
(:mod:`sqljax.envs.mjx_locomotion`: the same model file, RK4 step with MuJoCo's contact
frames, reset, observation, health) with two changes, both data in
:data:`ANT_ANY_DIRECTION`:

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

The walled tasks (hallways, U-maze) are not here: see ``docs/mjx.md`` for what they take.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from sqljax.envs.mjx_locomotion import TASK_PARAMS, LocomotionParams, MjxLocomotion
from sqljax.envs.registry import RLLAB_ANT_REWARD_WEIGHTS

__all__ = ["ANT_ANY_DIRECTION", "TASKS", "make", "xy_speed"]


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

#: The tasks of this module by name, each with the one version it implements.
TASKS: dict[str, tuple[LocomotionParams, str]] = {"AntAnyDirection": (ANT_ANY_DIRECTION, "v1")}


def make(name: str) -> tuple[MjxLocomotion, LocomotionParams]:
    """``(env, params)`` of ``AntAnyDirection`` or ``AntAnyDirection-v1`` (the version
    is the gymnasium task's it reproduces; ValueError, one line, for another name or
    version). The env is :class:`~sqljax.envs.mjx_locomotion.MjxLocomotion` on
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
