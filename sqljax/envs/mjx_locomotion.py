"""MuJoCo locomotion tasks written in JAX: gymnasium's v5 tasks, stepped by MJX.

``HalfCheetah``, ``Hopper`` and ``Walker2d`` as JAX-native envs (the protocol of
:mod:`sqljax.envs.jax_env`), built from the model files gymnasium ships
(``gymnasium/envs/mujoco/assets/``) and with v5's definitions: the observation (joint
positions without the x position, then joint velocities, clipped to +-10 for Hopper
and Walker2d), every reward term, the healthy ranges and termination, the frame skip,
the reset noise and its distribution, and the 1000-step time limit. Observation and
action spaces are gymnasium's, so a learner trained on ``mjx:Hopper`` evaluates on
``Hopper-v5`` and the other way round. The physics run in float32 on any JAX device
(MuJoCo's own runs in float64): see ``docs/mjx.md`` for how closely one step agrees.

Pure functions of explicit arguments: :func:`reset` and :func:`step` (no automatic
reset), :func:`init_state` (a chosen start), :func:`observation`, :func:`is_healthy`;
:class:`MjxLocomotion` puts them behind the protocol (automatic reset, the true last
observation in ``info["final_observation"]``). Needs the ``mujoco-mjx`` package and an
installed gymnasium (for its model files only: gymnasium is never imported here).

Shapes: qpos (Q,), qvel (V,), action (A,), observation (O,) with O = Q - 1 + V;
under ``vmap`` a leading batch axis is added to every array.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import io
import os
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct

from sqljax.envs.jax_env import Box

with contextlib.redirect_stdout(io.StringIO()):  # mjx prints a line per missing optional backend
    from mujoco import mjx

#: gymnasium's time limit for every v5 locomotion task.
MAX_EPISODE_STEPS: int = 1000


@dataclasses.dataclass(frozen=True)
class LocomotionParams:
    """One task's v5 definition (hashable, so it can be a static jit argument).

    ``healthy_*_range`` are open intervals, None where the task has no such check:
    ``healthy_z_range`` on the torso height ``qpos[1]``, ``healthy_angle_range`` on the
    torso angle ``qpos[2]``, ``healthy_state_range`` on every entry of
    ``concat(qpos, qvel)[2:]``. A task with a ``healthy_z_range`` pays ``healthy_reward``
    on each step that ends healthy and (``terminate_when_unhealthy``) ends the episode
    on the first that doesn't. Reset: ``qpos0 + U(-s, s)`` and ``qvel`` either
    ``U(-s, s)`` or ``s * N(0, 1)`` (``qvel_reset_noise``), with ``s = reset_noise_scale``.
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

    def __post_init__(self):
        if self.qvel_reset_noise not in ("uniform", "normal"):
            raise ValueError(f"qvel_reset_noise must be 'uniform' or 'normal', got {self.qvel_reset_noise!r}")
        if self.frame_skip < 1 or self.max_episode_steps < 1:
            raise ValueError(f"frame_skip and max_episode_steps must be >= 1, got {self.frame_skip}, "
                             f"{self.max_episode_steps}")

    @property
    def has_health(self) -> bool:
        """Whether the task has a healthy check (and so a survive reward)."""
        return self.healthy_z_range is not None


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
}


def gymnasium_assets_dir() -> str:
    """The folder of gymnasium's MuJoCo model files, found without importing gymnasium."""
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the mjx: tasks read gymnasium's model files: pip install 'gymnasium[mujoco]'")
    return os.path.join(list(spec.submodule_search_locations)[0], "envs", "mujoco", "assets")


@functools.cache
def load_model(xml_file: str) -> tuple[mujoco.MjModel, Any]:
    """``(MjModel, mjx.Model)`` of one of gymnasium's model files (cached per file)."""
    path = os.path.join(gymnasium_assets_dir(), xml_file)
    if not os.path.isfile(path):
        raise ValueError(f"no model file {path}: is gymnasium >= 1.0 installed?")
    mj_model = mujoco.MjModel.from_xml_path(path)
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


def init_state(qpos, qvel, qacc_warmstart=None) -> EnvState:
    """An :class:`EnvState` at ``qpos`` (Q,), ``qvel`` (V,) with time 0 (a chosen start,
    as gymnasium's ``set_state``); the warm start defaults to zeros."""
    qvel = jnp.asarray(qvel, jnp.float32)
    warm = jnp.zeros_like(qvel) if qacc_warmstart is None else jnp.asarray(qacc_warmstart, jnp.float32)
    return EnvState(qpos=jnp.asarray(qpos, jnp.float32), qvel=qvel, qacc_warmstart=warm,
                    time=jnp.zeros((), jnp.int32))


def observation(params: LocomotionParams, qpos: jax.Array, qvel: jax.Array) -> jax.Array:
    """v5's observation: ``qpos[1:]`` then ``qvel`` (clipped to +-``obs_qvel_clip``
    where the task has it); (Q,), (V,) -> (Q - 1 + V,) float32."""
    if params.obs_qvel_clip is not None:
        qvel = jnp.clip(qvel, -params.obs_qvel_clip, params.obs_qvel_clip)
    return jnp.concatenate([qpos[1:], qvel]).astype(jnp.float32)


def _inside(x, bounds) -> jax.Array:
    low, high = bounds
    return jnp.all((low < x) & (x < high))


def is_healthy(params: LocomotionParams, qpos: jax.Array, qvel: jax.Array) -> jax.Array:
    """v5's healthy check (open intervals, see :class:`LocomotionParams`); () bool,
    always True for a task without one."""
    healthy = jnp.array(True)
    if params.healthy_z_range is not None:
        healthy &= _inside(qpos[1], params.healthy_z_range)
    if params.healthy_angle_range is not None:
        healthy &= _inside(qpos[2], params.healthy_angle_range)
    if params.healthy_state_range is not None:
        healthy &= _inside(jnp.concatenate([qpos, qvel])[2:], params.healthy_state_range)
    return healthy


def simulate(model: Any, params: LocomotionParams, state: EnvState, action: jax.Array) -> EnvState:
    """``frame_skip`` MuJoCo steps with ``ctrl = action`` (A,), as gymnasium's
    ``do_simulation`` (MuJoCo clamps the controls to their ranges); time unchanged."""
    data = mjx.make_data(model, impl="jax").replace(
        qpos=state.qpos, qvel=state.qvel, qacc_warmstart=state.qacc_warmstart,
        ctrl=jnp.asarray(action, jnp.float32))
    data = jax.lax.fori_loop(0, params.frame_skip, lambda _, d: mjx.step(model, d), data)
    return state.replace(qpos=data.qpos, qvel=data.qvel, qacc_warmstart=data.qacc_warmstart)


def reset(model: Any, params: LocomotionParams, key: jax.Array) -> tuple[jax.Array, EnvState]:
    """Start an episode at ``qpos0`` plus v5's reset noise (see :class:`LocomotionParams`);
    ``(obs (O,), state)``."""
    k_qpos, k_qvel = jax.random.split(key)
    s = params.reset_noise_scale
    qpos = model.qpos0 + jax.random.uniform(k_qpos, model.qpos0.shape, jnp.float32, -s, s)
    if params.qvel_reset_noise == "normal":
        qvel = s * jax.random.normal(k_qvel, (model.nv,), jnp.float32)
    else:
        qvel = jax.random.uniform(k_qvel, (model.nv,), jnp.float32, -s, s)
    state = init_state(qpos, qvel)
    return observation(params, state.qpos, state.qvel), state


def step(model: Any, params: LocomotionParams, state: EnvState, action: jax.Array
         ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
    """One v5 step (pure; no automatic reset).

    Returns ``(obs (O,), next_state, reward (), terminated () bool, truncated () bool,
    info)``: ``reward = reward_forward + reward_ctrl (+ reward_survive)`` with
    ``reward_forward = forward_reward_weight * x_velocity`` (the x position's change over
    ``dt = timestep * frame_skip``), ``reward_ctrl = -ctrl_cost_weight * ||action||^2``
    (of the action as given), ``reward_survive = healthy_reward`` when the new state is
    healthy (tasks with a healthy check only); ``terminated`` when it isn't (and
    ``terminate_when_unhealthy``); ``truncated`` once ``max_episode_steps`` steps are
    taken (as gymnasium's TimeLimit, possibly together with ``terminated``). ``info``
    holds the reward terms, ``x_position``, ``x_velocity`` (and
    ``z_distance_from_origin`` for tasks with a healthy check), each () float32.
    """
    action = jnp.asarray(action, jnp.float32)
    after = simulate(model, params, state, action)
    dt = float(model.opt.timestep) * params.frame_skip
    x_velocity = (after.qpos[0] - state.qpos[0]) / dt
    reward_forward = params.forward_reward_weight * x_velocity
    reward_ctrl = -params.ctrl_cost_weight * jnp.sum(jnp.square(action))
    info = {"x_position": after.qpos[0], "x_velocity": x_velocity,
            "reward_forward": reward_forward, "reward_ctrl": reward_ctrl}
    reward = reward_forward + reward_ctrl
    terminated = jnp.array(False)
    if params.has_health:
        healthy = is_healthy(params, after.qpos, after.qvel)
        reward_survive = jnp.where(healthy, jnp.float32(params.healthy_reward), jnp.float32(0.0))
        reward = reward + reward_survive
        info.update(reward_survive=reward_survive,
                    z_distance_from_origin=after.qpos[1] - model.qpos0[1])
        if params.terminate_when_unhealthy:
            terminated = ~healthy
    after = after.replace(time=state.time + 1)
    truncated = after.time >= params.max_episode_steps
    info = {k: jnp.asarray(v, jnp.float32) for k, v in info.items()}
    return (observation(params, after.qpos, after.qvel), after, jnp.asarray(reward, jnp.float32),
            terminated, truncated, info)


# ------------------------------------------------------------------ the protocol

class MjxLocomotion:
    """A v5 locomotion task behind the JAX-native protocol (:mod:`sqljax.envs.jax_env`):
    :func:`reset`, and :func:`step` with automatic reset and the true last observation
    in ``info["final_observation"]``. Instances of the same task compare equal (the
    compiled loop caches programs by env)."""

    def __init__(self, params: LocomotionParams):
        self.params = params
        self.mj_model, self.model = load_model(params.xml_file)

    def _check(self, params: LocomotionParams) -> None:
        if params.xml_file != self.params.xml_file:
            raise ValueError(f"params for {params.xml_file} given to the {self.params.task} env "
                             f"({self.params.xml_file})")

    def reset(self, key: jax.Array, params: LocomotionParams):
        self._check(params)
        return reset(self.model, params, key)

    def step(self, key: jax.Array, state: EnvState, action: jax.Array, params: LocomotionParams):
        self._check(params)
        obs, state, reward, terminated, truncated, info = step(self.model, params, state, action)
        done = terminated | truncated
        obs_reset, state_reset = reset(self.model, params, key)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_reset, state)
        info = dict(info, final_observation=obs)
        return jnp.where(done, obs_reset, obs), state, reward, terminated, truncated, info

    def observation_space(self, params: LocomotionParams) -> Box:
        return Box(-np.inf, np.inf, (self.mj_model.nq - 1 + self.mj_model.nv,))

    def action_space(self, params: LocomotionParams) -> Box:
        low, high = self.mj_model.actuator_ctrlrange.astype(np.float32).T
        return Box(low, high, (self.mj_model.nu,))

    def __hash__(self) -> int:
        return hash((MjxLocomotion, self.params))

    def __eq__(self, other) -> bool:
        return isinstance(other, MjxLocomotion) and other.params == self.params


def make(task: str) -> tuple[MjxLocomotion, LocomotionParams]:
    """``(env, params)`` of a task by name (``HalfCheetah``, ``Hopper``, ``Walker2d``)."""
    if task not in TASK_PARAMS:
        raise ValueError(f"no mjx task {task!r}; known: {', '.join(TASK_PARAMS)}")
    params = TASK_PARAMS[task]
    return MjxLocomotion(params), params
