"""MuJoCo's step in MJX where the two differ: contact frames and the RK4 integrator.

MJX (mujoco-mjx 3.17) frames a capsule-on-plane contact from the normal alone once the
capsule stands steeper than 60 degrees, where MuJoCo always takes the capsule's axis
projected onto the plane; with the pyramidal friction cone (MuJoCo's default) the
friction forces follow the frame. :func:`forward` runs ``mjx.forward``'s public stages
with :func:`mujoco_contact_frames` between collision detection and the constraint
set-up, and :func:`rk4_step` is MuJoCo's RK4 step over it. Used by the ``mjx:Ant`` task
(:mod:`sqljax.envs.mjx_locomotion`); MJX itself is not changed.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import jax
import jax.numpy as jnp
import mujoco

with contextlib.redirect_stdout(io.StringIO()):  # mjx prints a line per missing optional backend
    from mujoco import mjx

# ------------------------------------------------------------------ MuJoCo's contact frames

#: MuJoCo's smallest norm it normalises (mjMINVAL); below it a vector becomes (1, 0, 0).
_MJ_MINVAL = 1e-15
_GEOM_PLANE = int(mujoco.mjtGeom.mjGEOM_PLANE)
_GEOM_CAPSULE = int(mujoco.mjtGeom.mjGEOM_CAPSULE)


def mujoco_contact_frames(model: Any, data: Any) -> Any:
    """``data`` with MuJoCo's contact frames for plane-capsule contacts (the others as MJX
    made them).

    A contact frame is (3, 3): the normal, then two tangents, rows. For a capsule on a
    plane MuJoCo takes the first tangent along the capsule's axis projected onto the
    plane, ``normalize(axis - n (n . axis))`` (``(1, 0, 0)`` if that vanishes), and the
    second ``n x t1``. MJX (3.17) does the same only while the projection is at least
    half the axis: for a capsule steeper than 60 degrees it takes a tangent from the
    normal alone. With the pyramidal friction cone (MuJoCo's default, Ant's) the
    pyramid's facets follow the tangents, so the two frames give different friction
    forces. Spheres on a plane get a frame from the normal alone in both libraries.

    This is the one place that reads MJX's internals: the contacts live in
    ``data._impl.contact`` (``geom`` (C, 2) with the plane first, ``frame`` (C, 3, 3)),
    as in mujoco-mjx 3.17; ``tests/test_mjx.py`` checks both against MuJoCo.
    """
    contact = data._impl.contact
    if contact.geom.shape[0] == 0:
        return data
    geom_type = jnp.asarray(model.geom_type)
    plane_capsule = ((geom_type[contact.geom[:, 0]] == _GEOM_PLANE)
                     & (geom_type[contact.geom[:, 1]] == _GEOM_CAPSULE))
    normal = contact.frame[:, 0]
    axis = data.geom_xmat[contact.geom[:, 1]][:, :, 2]  # a capsule's axis: its local z
    tangent = axis - normal * jnp.sum(normal * axis, axis=-1, keepdims=True)
    norm = jnp.linalg.norm(tangent, axis=-1, keepdims=True)
    tangent = jnp.where(norm < _MJ_MINVAL, jnp.array([1.0, 0.0, 0.0], tangent.dtype),
                        tangent / jnp.where(norm < _MJ_MINVAL, 1.0, norm))
    frame = jnp.stack([normal, tangent, jnp.cross(normal, tangent)], axis=1)
    frame = jnp.where(plane_capsule[:, None, None], frame, contact.frame)
    return data.tree_replace({"_impl.contact.frame": frame})


def forward(model: Any, data: Any, contact_frames=mujoco_contact_frames) -> Any:
    """MuJoCo's forward dynamics as ``mjx.forward`` computes them, stage by stage (MJX's
    public stages), with ``contact_frames(model, data)`` applied to the contacts between
    collision detection and the constraint set-up; ``contact_frames=None`` gives
    ``mjx.forward`` itself. Fills ``qacc`` (V,) and everything on the way."""
    d = data
    for stage in (mjx.kinematics, mjx.com_pos, mjx.camlight, mjx.tendon, mjx.crb,
                  mjx.tendon_armature, mjx.factor_m, mjx.collision):
        d = stage(model, d)
    if contact_frames is not None:
        d = contact_frames(model, d)
    for stage in (mjx.make_constraint, mjx.transmission, mjx.sensor_pos, mjx.fwd_velocity,
                  mjx.sensor_vel, mjx.fwd_actuation, mjx.fwd_acceleration):
        d = stage(model, d)
    if d._impl.efc_J.size == 0:  # no constraints: nothing to solve
        return d.replace(qacc=d.qacc_smooth)
    return mjx.sensor_acc(model, mjx.solve(model, d))


def _quat_integrate(quat: jax.Array, angular_velocity: jax.Array, dt) -> jax.Array:
    """A unit quaternion (4,) turned by a local angular velocity (3,) for ``dt``."""
    speed = jnp.linalg.norm(angular_velocity)
    axis = jnp.where(speed < _MJ_MINVAL, jnp.array([1.0, 0.0, 0.0], quat.dtype),
                     angular_velocity / jnp.where(speed < _MJ_MINVAL, 1.0, speed))
    half_angle = 0.5 * dt * speed
    quat = quat / jnp.linalg.norm(quat)
    w1, v1 = quat[0], quat[1:]
    w2, v2 = jnp.cos(half_angle), axis * jnp.sin(half_angle)  # the turn, as a quaternion
    return jnp.concatenate([(w1 * w2 - v1 @ v2)[None], w1 * v2 + w2 * v1 + jnp.cross(v1, v2)])


def integrate_positions(mj_model: mujoco.MjModel, qpos: jax.Array, qvel: jax.Array, dt
                        ) -> jax.Array:
    """``qpos`` (Q,) moved by ``qvel`` (V,) for ``dt``, joint by joint (a free joint's
    position by its world velocity, every quaternion by its local angular velocity)."""
    parts = []
    for j in range(mj_model.njnt):
        kind, q, v = mj_model.jnt_type[j], mj_model.jnt_qposadr[j], mj_model.jnt_dofadr[j]
        if kind == mujoco.mjtJoint.mjJNT_FREE:
            parts += [qpos[q:q + 3] + dt * qvel[v:v + 3],
                      _quat_integrate(qpos[q + 3:q + 7], qvel[v + 3:v + 6], dt)]
        elif kind == mujoco.mjtJoint.mjJNT_BALL:
            parts.append(_quat_integrate(qpos[q:q + 4], qvel[v:v + 3], dt))
        else:  # hinge, slide
            parts.append(qpos[q:q + 1] + dt * qvel[v:v + 1])
    return jnp.concatenate(parts)


#: The classic Runge-Kutta 4 tableau (MuJoCo's RK4): stage i's state is the start plus
#: dt * _RK4_STAGE[i - 1] times stage i-1's derivative; the step is the start plus
#: dt * sum(_RK4_SUM[i] * derivative i).
_RK4_STAGE = (0.5, 0.5, 1.0)
_RK4_SUM = (1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0)


def rk4_step(mj_model: mujoco.MjModel, model: Any, data: Any) -> Any:
    """One step of MuJoCo's RK4 integrator with :func:`forward` (MuJoCo's contact
    frames) at each of its four stages. As MuJoCo leaves it, the returned data holds the
    new ``qpos``, ``qvel`` and time, ``qacc_warmstart`` the last stage's ``qacc``, and
    everything else (``xpos``, contacts, constraint forces, ...) from the last stage.
    Models without activations only."""
    if mj_model.na:
        raise ValueError("rk4_step: models with activations are not supported")
    dt = model.opt.timestep
    d = forward(model, data)
    qpos0, qvel0, time0 = d.qpos, d.qvel, d.time

    def stage(carry, weights):
        qvel_sum, qacc_sum, qvel_prev, qacc_prev, d = carry
        a, b = weights
        d = d.replace(qpos=integrate_positions(mj_model, qpos0, a * qvel_prev, dt),
                      qvel=qvel0 + (a * dt) * qacc_prev, time=time0 + a * dt)
        d = forward(model, d)
        return (qvel_sum + b * d.qvel, qacc_sum + b * d.qacc, d.qvel, d.qacc, d), None

    weights = jnp.array([_RK4_STAGE, _RK4_SUM[1:]], d.qvel.dtype).T  # (3, 2): a, b per stage
    carry = (_RK4_SUM[0] * qvel0, _RK4_SUM[0] * d.qacc, qvel0, d.qacc, d)
    (qvel_sum, qacc_sum, _, _, d), _ = jax.lax.scan(stage, carry, weights)
    return d.replace(qpos=integrate_positions(mj_model, qpos0, qvel_sum, dt),
                     qvel=qvel0 + dt * qacc_sum, qacc_warmstart=d.qacc, time=time0 + dt)
