"""MuJoCo locomotion tasks written in JAX: gymnasium's v5 tasks, stepped by MJX.

``HalfCheetah``, ``Hopper``, ``Walker2d``, ``Ant`` and ``Humanoid`` as JAX-native envs
(the protocol of :mod:`sqljax.envs.jax_env`), built from the model files gymnasium ships
and with v5's definitions (:data:`TASK_PARAMS`): observation, every reward term, healthy
ranges and termination, frame skip, reset noise, the 1000-step time limit. The spaces
are gymnasium's, so a learner trained on ``mjx:Hopper`` evaluates on ``Hopper-v5`` and
the other way round. The physics run in float32 on any JAX device (MuJoCo's in float64;
``docs/mjx.md``: how closely a step agrees). Ant and Humanoid take MuJoCo's contact
frames and RK4 step (:mod:`sqljax.envs.mjx_physics`). Humanoid's model asks for the PGS
solver, which MJX lacks: Newton's method solves it, for the same (unique) constraint
forces up to PGS's unconverged remainder.

Pure functions of explicit arguments: :func:`reset` and :func:`step` (no automatic
reset), :func:`init_state` (a chosen start), :func:`observation`, :func:`is_healthy`,
:func:`reward_terms` (reward and termination without physics); :class:`MjxLocomotion`
puts them behind the protocol (automatic reset, the true last observation in
``info["final_observation"]``). Needs the ``mujoco-mjx`` package and an installed
gymnasium (for its model files only: gymnasium is never imported here).

Shapes: qpos (Q,), qvel (V,), action (A,), observation (O,) with O = Q - 1 + V
(Ant: Q - 2 + V + 6 (B - 1) for B bodies, world included; Humanoid: Q - 2 + V +
22 (B - 1) + V - 6), cfrc_ext (B, 6); under ``vmap`` a leading batch axis is added to
every array.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct

from sqljax.envs.ant_walls import gymnasium_assets_dir
from sqljax.envs.mjx_physics import mjx, rk4_step
from sqljax.envs.spaces import Box, auto_reset

#: gymnasium's time limit for every v5 locomotion task.
MAX_EPISODE_STEPS: int = 1000


@dataclasses.dataclass(frozen=True)
class LocomotionParams:
    """One task's v5 definition (hashable, so it can be a static jit argument).

    ``healthy_*_range`` are open intervals, None where the task has no such check:
    ``healthy_z_range`` on the torso height ``qpos[healthy_z_index]`` (a closed interval
    where ``healthy_z_closed``), ``healthy_angle_range`` on the torso angle ``qpos[2]``,
    ``healthy_state_range`` on every entry of ``concat(qpos, qvel)[2:]``;
    ``healthy_requires_finite``: every entry of ``concat(qpos, qvel)`` finite as well. A
    task with a ``healthy_z_range`` pays ``healthy_reward`` on each step that ends healthy
    and (``terminate_when_unhealthy``) ends the episode on the first that doesn't. Reset:
    ``qpos0 + U(-s, s)`` and ``qvel`` either ``U(-s, s)`` or ``s * N(0, 1)``
    (``qvel_reset_noise``), with ``s = reset_noise_scale``.

    The observation is ``qpos[obs_qpos_start:]``, ``qvel``, and where the task has a
    ``contact_force_range``, the external contact forces ``cfrc_ext[1:]`` (every body
    but the world's) clipped to it, flattened; those clipped forces also cost
    ``contact_cost_weight * sum(clipped ** 2)``, at most ``contact_cost_max``. With
    ``obs_com_terms`` the observation holds ``cinert[1:]``, ``cvel[1:]`` and
    ``qfrc_actuator[6:]`` before the contact forces. The forward velocity is that of
    ``qpos[0]``, or of the ``forward_body``'s ``xpos`` (the free-jointed root body), or
    of the centre of mass (``forward_mass_center``), as MuJoCo leaves them after a step.
    ``mujoco_contact_frames``: step with MuJoCo's contact frames and RK4 step
    (:mod:`sqljax.envs.mjx_physics`). ``solver``: MJX's, in place of the model's.
    ``motion``: for a task that ``tracks_xy``, a pure function ``(xy_before (2,),
    xy_after (2,), dt) -> (term (), info)`` paid in place of the forward velocity (still
    times ``forward_reward_weight``); ``info`` (() arrays) joins the step's. ``bonus``:
    likewise ``(xy_after (2,)) -> (bonus (), info)``, added to the reward as it is.
    ``xml_file``: a file of gymnasium's, or a model's XML text.
    """

    task: str
    xml_file: str
    frame_skip: int
    ctrl_cost_weight: float
    reset_noise_scale: float
    qvel_reset_noise: str = "uniform"
    forward_reward_weight: float = 1.0
    healthy_reward: float = 1.0
    terminate_when_unhealthy: bool = True
    healthy_z_range: tuple[float, float] | None = None
    healthy_angle_range: tuple[float, float] | None = None
    healthy_state_range: tuple[float, float] | None = None
    obs_qvel_clip: float | None = None
    max_episode_steps: int = MAX_EPISODE_STEPS
    obs_qpos_start: int = 1
    healthy_z_index: int = 1
    healthy_z_closed: bool = False
    healthy_requires_finite: bool = False
    contact_cost_weight: float = 0.0
    contact_force_range: tuple[float, float] | None = None
    contact_cost_max: float | None = None
    obs_com_terms: bool = False
    forward_body: int | None = None
    forward_mass_center: bool = False
    mujoco_contact_frames: bool = False
    solver: str | None = None
    motion: Callable[[jax.Array, jax.Array, float], tuple[jax.Array, dict]] | None = None
    bonus: Callable[[jax.Array], tuple[jax.Array, dict]] | None = None

    def __post_init__(self):
        if self.qvel_reset_noise not in ("uniform", "normal"):
            raise ValueError(f"qvel_reset_noise must be 'uniform' or 'normal', got {self.qvel_reset_noise!r}")
        if self.contact_force_range is None and self.contact_cost_weight:
            raise ValueError("a contact_cost_weight needs a contact_force_range")
        if self.frame_skip < 1 or self.max_episode_steps < 1:
            raise ValueError(f"frame_skip and max_episode_steps must be >= 1, got {self.frame_skip}, "
                             f"{self.max_episode_steps}")
        if (self.motion is not None or self.bonus is not None) and not self.tracks_xy:
            raise ValueError("a motion or bonus term needs a forward_body or forward_mass_center")

    @property
    def has_health(self) -> bool:
        """Whether the task has a healthy check (and so a survive reward)."""
        return self.healthy_z_range is not None

    @property
    def tracks_xy(self) -> bool:
        """Whether the forward velocity is a point's planar one (``forward_body`` or
        ``forward_mass_center``), kept in :class:`MainBodyEnvState`."""
        return self.forward_body is not None or self.forward_mass_center


#: v5's definitions (gymnasium/envs/mujoco/<task>_v5.py defaults), by task name.
TASK_PARAMS: dict[str, LocomotionParams] = {
    "HalfCheetah": LocomotionParams(
        task="HalfCheetah", xml_file="half_cheetah.xml", frame_skip=5, ctrl_cost_weight=0.1,
        reset_noise_scale=0.1, qvel_reset_noise="normal", healthy_reward=0.0,
        terminate_when_unhealthy=False),
    "Hopper": LocomotionParams(
        task="Hopper", xml_file="hopper.xml", frame_skip=4, ctrl_cost_weight=1e-3,
        reset_noise_scale=5e-3, healthy_z_range=(0.7, float("inf")),
        healthy_angle_range=(-0.2, 0.2), healthy_state_range=(-100.0, 100.0), obs_qvel_clip=10.0),
    "Walker2d": LocomotionParams(
        task="Walker2d", xml_file="walker2d_v5.xml", frame_skip=4, ctrl_cost_weight=1e-3,
        reset_noise_scale=5e-3, healthy_z_range=(0.8, 2.0), healthy_angle_range=(-1.0, 1.0),
        obs_qvel_clip=10.0),
    "Ant": LocomotionParams(
        task="Ant", xml_file="ant.xml", frame_skip=5, ctrl_cost_weight=0.5,
        reset_noise_scale=0.1, qvel_reset_noise="normal", healthy_z_range=(0.2, 1.0),
        obs_qpos_start=2, healthy_z_index=2, healthy_z_closed=True, healthy_requires_finite=True,
        contact_cost_weight=5e-4, contact_force_range=(-1.0, 1.0), forward_body=1,
        mujoco_contact_frames=True),
    "Humanoid": LocomotionParams(
        task="Humanoid", xml_file="humanoid.xml", frame_skip=5, ctrl_cost_weight=0.1,
        reset_noise_scale=1e-2, forward_reward_weight=1.25, healthy_reward=5.0,
        healthy_z_range=(1.0, 2.0), obs_qpos_start=2, healthy_z_index=2,
        contact_cost_weight=5e-7, contact_force_range=(-float("inf"), float("inf")),
        contact_cost_max=10.0, obs_com_terms=True, forward_mass_center=True,
        mujoco_contact_frames=True, solver="Newton"),
}


@functools.cache
def load_model(xml_file: str, solver: str | None = None) -> tuple[mujoco.MjModel, Any]:
    """``(MjModel, mjx.Model)`` of one of gymnasium's model files or of a model's XML
    text, with the constraint ``solver`` (``"Newton"``, ``"CG"``) in place of the
    model's if given (cached)."""
    if xml_file.lstrip().startswith("<"):
        mj_model = mujoco.MjModel.from_xml_string(xml_file)
    else:
        path = os.path.join(gymnasium_assets_dir(), xml_file)
        if not os.path.isfile(path):
            raise ValueError(f"no model file {path}: is gymnasium >= 1.0 installed?")
        mj_model = mujoco.MjModel.from_xml_path(path)
    if solver is not None:
        mj_model.opt.solver = getattr(mujoco.mjtSolver, f"mjSOL_{solver.upper()}")
    with jax.ensure_compile_time_eval():
        return mj_model, mjx.put_model(mj_model, impl="jax")


# ------------------------------------------------------------------ pure functions

@struct.dataclass
class EnvState:
    """The physics state and the episode clock: ``qpos`` (Q,), ``qvel`` (V,),
    ``qacc_warmstart`` (V,) (the constraint solver's start, as MuJoCo keeps it), all
    float32, and ``time`` () int32 (steps taken)."""

    qpos: jax.Array
    qvel: jax.Array
    qacc_warmstart: jax.Array
    time: jax.Array


@struct.dataclass
class MainBodyEnvState(EnvState):
    """:class:`EnvState` of a task whose forward velocity is a point's
    (``forward_body`` or ``forward_mass_center``), plus ``main_body_xy`` (2,) float32:
    that point's x, y position as MuJoCo's data holds it (after a step, the last
    Runge-Kutta stage's), from which the next step measures the velocity."""

    main_body_xy: jax.Array


def init_state(qpos, qvel, qacc_warmstart=None, params: LocomotionParams | None = None,
               data: Any = None) -> EnvState:
    """An :class:`EnvState` at ``qpos`` (Q,), ``qvel`` (V,) with time 0 (a chosen start,
    as gymnasium's ``set_state``); the warm start defaults to zeros. A task that
    ``tracks_xy`` (pass its ``params``) gets a :class:`MainBodyEnvState`: a
    ``forward_body`` at ``qpos[:2]``, where ``set_state`` puts a free-jointed root body;
    the centre of mass where ``set_state``'s forward pass puts it (``data``: that pass's,
    if already made)."""
    qvel = jnp.asarray(qvel, jnp.float32)
    qpos = jnp.asarray(qpos, jnp.float32)
    warm = jnp.zeros_like(qvel) if qacc_warmstart is None else jnp.asarray(qacc_warmstart, jnp.float32)
    time = jnp.zeros((), jnp.int32)
    if params is None or not params.tracks_xy:
        return EnvState(qpos=qpos, qvel=qvel, qacc_warmstart=warm, time=time)
    xy = qpos[:2]
    if params.forward_mass_center:
        model = load_model(params.xml_file, params.solver)[1]
        xy = forward_xy(params, model, forward_at(model, qpos, qvel) if data is None else data)
    return MainBodyEnvState(qpos=qpos, qvel=qvel, qacc_warmstart=warm, time=time, main_body_xy=xy)


def forward_at(model: Any, qpos: jax.Array, qvel: jax.Array) -> Any:
    """The mjx data of a forward pass at ``qpos`` (Q,), ``qvel`` (V,) with zero controls
    (as gymnasium's ``set_state`` after a reset)."""
    return mjx.forward(model, mjx.make_data(model, impl="jax").replace(qpos=qpos, qvel=qvel))


def forward_xy(params: LocomotionParams, model: Any, data: Any) -> jax.Array:
    """The x, y position (2,) whose change is the task's forward velocity: the
    ``forward_body``'s ``xpos`` or the centre of mass (``xipos`` weighted by mass)."""
    if params.forward_mass_center:
        return (model.body_mass @ data.xipos / jnp.sum(model.body_mass))[:2]
    return data.xpos[params.forward_body, :2]


def observation(params: LocomotionParams, qpos: jax.Array, qvel: jax.Array,
                cfrc_ext: jax.Array | None = None, data: Any = None) -> jax.Array:
    """v5's observation: ``qpos[obs_qpos_start:]`` then ``qvel`` (clipped to
    +-``obs_qvel_clip`` where the task has it), then for a task with ``obs_com_terms``
    ``data``'s ``cinert[1:]`` (B - 1, 10), ``cvel[1:]`` (B - 1, 6) and
    ``qfrc_actuator[6:]`` (V - 6,), then for a task with a ``contact_force_range`` the
    contact forces ``cfrc_ext[1:]`` clipped to it (``cfrc_ext`` (B, 6) per body, world
    first), each flattened; (Q,), (V,) -> (O,) float32."""
    if params.obs_qvel_clip is not None:
        qvel = jnp.clip(qvel, -params.obs_qvel_clip, params.obs_qvel_clip)
    parts = [qpos[params.obs_qpos_start:], qvel]
    if params.obs_com_terms:
        if data is None:
            raise ValueError(f"the {params.task} observation needs the data of a forward pass")
        parts += [data.cinert[1:].reshape(-1), data.cvel[1:].reshape(-1), data.qfrc_actuator[6:]]
    if params.contact_force_range is not None:
        if cfrc_ext is None:
            raise ValueError(f"the {params.task} observation needs the contact forces cfrc_ext")
        parts.append(clipped_contact_forces(params, cfrc_ext)[1:].reshape(-1))
    return jnp.concatenate(parts).astype(jnp.float32)


def clipped_contact_forces(params: LocomotionParams, cfrc_ext: jax.Array) -> jax.Array:
    """``cfrc_ext`` (B, 6) clipped to the task's ``contact_force_range``; (B, 6)."""
    low, high = params.contact_force_range
    return jnp.clip(cfrc_ext, low, high)


def _inside(x, bounds, closed: bool = False) -> jax.Array:
    low, high = bounds
    if closed:
        return jnp.all((low <= x) & (x <= high))
    return jnp.all((low < x) & (x < high))


def is_healthy(params: LocomotionParams, qpos: jax.Array, qvel: jax.Array) -> jax.Array:
    """v5's healthy check (see :class:`LocomotionParams`); () bool, always True for a
    task without one."""
    healthy = jnp.array(True)
    if params.healthy_requires_finite:
        healthy &= jnp.all(jnp.isfinite(qpos)) & jnp.all(jnp.isfinite(qvel))
    if params.healthy_z_range is not None:
        healthy &= _inside(qpos[params.healthy_z_index], params.healthy_z_range,
                           params.healthy_z_closed)
    if params.healthy_angle_range is not None:
        healthy &= _inside(qpos[2], params.healthy_angle_range)
    if params.healthy_state_range is not None:
        healthy &= _inside(jnp.concatenate([qpos, qvel])[2:], params.healthy_state_range)
    return healthy


def simulate(model: Any, params: LocomotionParams, state: EnvState, action: jax.Array,
             mj_model: mujoco.MjModel | None = None) -> tuple[EnvState, Any]:
    """``frame_skip`` MuJoCo steps with ``ctrl = action`` (A,), as gymnasium's
    ``do_simulation`` (MuJoCo clamps the controls to their ranges); time unchanged.
    Returns ``(state, data)``: ``data`` is the mjx data the last step leaves (for a
    task with ``mujoco_contact_frames``, stepped by :func:`rk4_step`, which needs the
    ``mj_model``; and ``main_body_xy`` then follows its ``forward_body``)."""
    data = mjx.make_data(model, impl="jax").replace(
        qpos=state.qpos, qvel=state.qvel, qacc_warmstart=state.qacc_warmstart,
        ctrl=jnp.asarray(action, jnp.float32))
    if params.mujoco_contact_frames:
        if mj_model is None or mj_model.opt.integrator != mujoco.mjtIntegrator.mjINT_RK4:
            raise ValueError(f"{params.task}: MuJoCo's contact frames need the RK4 model's mj_model")
        one_step = functools.partial(rk4_step, mj_model, model)
    else:
        one_step = functools.partial(mjx.step, model)
    data = jax.lax.fori_loop(0, params.frame_skip, lambda _, d: one_step(d), data)
    state = state.replace(qpos=data.qpos, qvel=data.qvel, qacc_warmstart=data.qacc_warmstart)
    if params.tracks_xy:
        state = state.replace(main_body_xy=forward_xy(params, model, data))
    return state, data


def reset(model: Any, params: LocomotionParams, key: jax.Array) -> tuple[jax.Array, EnvState]:
    """Start an episode at ``qpos0`` plus v5's reset noise (see :class:`LocomotionParams`);
    ``(obs (O,), state)``. The contact forces observed are zeros (as gymnasium's after a
    reset, which computes none)."""
    k_qpos, k_qvel = jax.random.split(key)
    s = params.reset_noise_scale
    qpos = model.qpos0 + jax.random.uniform(k_qpos, model.qpos0.shape, jnp.float32, -s, s)
    if params.qvel_reset_noise == "normal":
        qvel = s * jax.random.normal(k_qvel, (model.nv,), jnp.float32)
    else:
        qvel = jax.random.uniform(k_qvel, (model.nv,), jnp.float32, -s, s)
    data = forward_at(model, qpos, qvel) if params.obs_com_terms or params.forward_mass_center else None
    state = init_state(qpos, qvel, params=params, data=data)
    cfrc_ext = jnp.zeros((model.nbody, 6), jnp.float32)
    return observation(params, state.qpos, state.qvel, cfrc_ext, data), state


def reward_terms(params: LocomotionParams, dt: float, before: EnvState, after: EnvState,
                 action: jax.Array, cfrc_ext: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
    """v5's reward and termination of a step from ``before`` to ``after`` (no physics).

    Returns ``(reward (), terminated () bool, info)``: ``reward = reward_forward +
    reward_ctrl (+ bonus) (+ reward_survive) (+ reward_contact)``; ``reward_forward =
    forward_reward_weight * x_velocity`` (of ``qpos[0]``, or of ``main_body_xy``, over
    ``dt``; the ``motion`` term in its place where the task has one); ``reward_ctrl =
    -ctrl_cost_weight * ||action||^2`` (action (A,) as given); ``reward_survive =
    healthy_reward`` while ``after`` is healthy; ``reward_contact = -min(contact_cost_weight
    * sum(clipped cfrc_ext ** 2), contact_cost_max)`` (``cfrc_ext`` (B, 6));
    ``terminated`` when unhealthy (with ``terminate_when_unhealthy``). ``info``: the reward
    terms, ``x_position``, ``x_velocity``, the ``motion`` and ``bonus`` terms' own, (``tracks_xy``)
    ``y_position``, ``distance_from_origin``, ``y_velocity``, each () float32.
    """
    action = jnp.asarray(action, jnp.float32)
    if params.tracks_xy:
        xy_velocity = (after.main_body_xy - before.main_body_xy) / dt
        x_velocity = xy_velocity[0]
    else:
        x_velocity = (after.qpos[0] - before.qpos[0]) / dt
    motion, info = x_velocity, {}
    if params.motion is not None:
        motion, info = params.motion(before.main_body_xy, after.main_body_xy, dt)
    reward_forward = params.forward_reward_weight * motion
    reward_ctrl = -params.ctrl_cost_weight * jnp.sum(jnp.square(action))
    info = {**info, "x_position": after.qpos[0], "x_velocity": x_velocity,
            "reward_forward": reward_forward, "reward_ctrl": reward_ctrl}
    if params.tracks_xy:
        info.update(y_position=after.qpos[1], y_velocity=xy_velocity[1],
                    distance_from_origin=jnp.linalg.norm(after.qpos[:2]))
    reward = reward_forward + reward_ctrl
    if params.bonus is not None:
        bonus, bonus_info = params.bonus(after.main_body_xy)
        reward, info = reward + bonus, {**info, **bonus_info}
    if params.contact_force_range is not None:
        if cfrc_ext is None:
            raise ValueError(f"the {params.task} reward needs the contact forces cfrc_ext")
        contact_cost = params.contact_cost_weight * jnp.sum(
            jnp.square(clipped_contact_forces(params, cfrc_ext)))
        if params.contact_cost_max is not None:
            contact_cost = jnp.minimum(contact_cost, params.contact_cost_max)
        reward = reward - contact_cost
        info.update(reward_contact=-contact_cost)
    terminated = jnp.array(False)
    if params.has_health:
        healthy = is_healthy(params, after.qpos, after.qvel)
        reward_survive = jnp.where(healthy, jnp.float32(params.healthy_reward), jnp.float32(0.0))
        reward = reward + reward_survive
        info.update(reward_survive=reward_survive)
        if params.terminate_when_unhealthy:
            terminated = ~healthy
    info = {k: jnp.asarray(v, jnp.float32) for k, v in info.items()}
    return jnp.asarray(reward, jnp.float32), terminated, info


def step(model: Any, params: LocomotionParams, state: EnvState, action: jax.Array,
         mj_model: mujoco.MjModel | None = None
         ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
    """One v5 step (pure; no automatic reset): :func:`simulate`, then :func:`reward_terms`
    (``dt = timestep * frame_skip``; the contact forces gymnasium computes after the step).

    Returns ``(obs (O,), next_state, reward (), terminated () bool, truncated () bool,
    info)``: ``truncated`` once ``max_episode_steps`` steps are taken (as gymnasium's
    TimeLimit); ``info`` as :func:`reward_terms`, plus where gymnasium's task has them
    ``z_distance_from_origin`` and ``tendon_length``, ``tendon_velocity`` (T,).
    ``mj_model``: needed by tasks with ``mujoco_contact_frames``.
    """
    action = jnp.asarray(action, jnp.float32)
    after, data = simulate(model, params, state, action, mj_model)
    dt = float(model.opt.timestep) * params.frame_skip
    cfrc_ext = (None if params.contact_force_range is None  # as gymnasium, after the step
                else mjx.rne_postconstraint(model, data).cfrc_ext)
    reward, terminated, info = reward_terms(params, dt, state, after, action, cfrc_ext)
    if params.has_health and not params.tracks_xy:
        info.update(z_distance_from_origin=after.qpos[1] - model.qpos0[1])
    if model.ntendon:
        info.update(tendon_length=data.ten_length, tendon_velocity=data.ten_velocity)
    info = {k: jnp.asarray(v, jnp.float32) for k, v in info.items()}
    after = after.replace(time=state.time + 1)
    truncated = after.time >= params.max_episode_steps
    return (observation(params, after.qpos, after.qvel, cfrc_ext, data), after,
            reward, terminated, truncated, info)


# ------------------------------------------------------------------ the protocol

class MjxLocomotion:
    """A v5 locomotion task behind the JAX-native protocol (:mod:`sqljax.envs.jax_env`):
    :func:`reset`, and :func:`step` with automatic reset and the true last observation
    in ``info["final_observation"]``. Instances of the same task compare equal (the
    compiled loop caches programs by env)."""

    def __init__(self, params: LocomotionParams):
        self.params = params
        self.mj_model, self.model = load_model(params.xml_file, params.solver)
        if params.forward_body is not None:  # set_state must put it at qpos[:2]
            joint = self.mj_model.body_jntadr[params.forward_body]
            if (self.mj_model.body_parentid[params.forward_body] != 0 or joint < 0
                    or self.mj_model.jnt_type[joint] != mujoco.mjtJoint.mjJNT_FREE
                    or self.mj_model.jnt_qposadr[joint] != 0):
                raise ValueError(f"{params.task}: forward_body must be the free-jointed root body")

    def _check(self, params: LocomotionParams) -> None:
        if params.xml_file != self.params.xml_file:
            raise ValueError(f"params of {params.task} given to the {self.params.task} env "
                             "(another model)")

    def reset(self, key: jax.Array, params: LocomotionParams):
        self._check(params)
        return reset(self.model, params, key)

    def step(self, key: jax.Array, state: EnvState, action: jax.Array, params: LocomotionParams):
        self._check(params)
        return auto_reset(step(self.model, params, state, action, self.mj_model),
                          reset(self.model, params, key))

    def observation_space(self, params: LocomotionParams) -> Box:
        obs = jax.eval_shape(lambda k: reset(self.model, params, k)[0], jax.random.key(0))
        return Box(-np.inf, np.inf, obs.shape)

    def action_space(self, params: LocomotionParams) -> Box:
        low, high = self.mj_model.actuator_ctrlrange.astype(np.float32).T
        return Box(low, high, (self.mj_model.nu,))

    def __hash__(self) -> int:
        return hash((MjxLocomotion, self.params))

    def __eq__(self, other) -> bool:
        return isinstance(other, MjxLocomotion) and other.params == self.params


def make(task: str) -> tuple[MjxLocomotion, LocomotionParams]:
    """``(env, params)`` of a task by name (``HalfCheetah``, ``Hopper``, ``Walker2d``,
    ``Ant``, ``Humanoid``)."""
    if task not in TASK_PARAMS:
        raise ValueError(f"no mjx task {task!r}; known: {', '.join(TASK_PARAMS)}")
    params = TASK_PARAMS[task]
    return MjxLocomotion(params), params
