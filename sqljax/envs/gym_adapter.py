"""Gymnasium environments for the host training loop.

* :func:`resolve_env_id` turns what a user types (``Ant``, ``HalfCheetah-v5``,
  ``Pendulum``, ``MultiGoal``, ``AntHallway``, any registered id) into a gymnasium id,
  or raises :class:`EnvError` with close names (difflib) when there is none.
* :func:`make_env` builds a :class:`GymEnv`: the env with a time limit (the shorter of
  the env's own and ``max_episode_steps``) and episode statistics, whose ``step`` takes
  the sampler's actions in [-1, 1]^A and rescales them to the action space's bounds.
  Only flat continuous (``Box``) action spaces are accepted; anything else raises
  :class:`EnvError` saying so.

Observations come back as flat float32 arrays (O,); learners' evaluation episodes on
such envs: :func:`sqljax.loops.evaluation.evaluate`. Importing this module registers the ``sqljax/...``
environments (``import sqljax.envs``).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sqljax.envs import multigoal, registry

__all__ = ["EnvError", "GymEnv", "SHORT_NAMES", "EnvInfo", "env_info", "make_env",
           "resolve_env_id", "short_name"]

#: Short names of the task table's gymnasium tasks (``Ant`` -> ``Ant-v5``).
SHORT_NAMES: dict[str, str] = {t.short: t.id for t in registry.TASKS if t.kind == "gym"}


class EnvError(ValueError):
    """An environment that cannot be trained on: unknown id, unsupported spaces, or
    a failure to construct it. The message is one readable line."""


def _base_name(env_id: str) -> str:
    """``sqljax/MultiGoal-v0`` -> ``MultiGoal``."""
    name = env_id.split("/")[-1]
    return re.sub(r"-v\d+$", "", name)


def _version(env_id: str) -> int:
    m = re.search(r"-v(\d+)$", env_id)
    return int(m.group(1)) if m else -1


def resolve_env_id(name: str) -> str:
    """The gymnasium id for ``name``.

    Accepted, in this order: a registered id (``Pendulum-v1``, ``sqljax/MultiGoal-v0``);
    a short name of :data:`SHORT_NAMES` (``Ant`` -> ``Ant-v5``); a registered id without
    its namespace (``MultiGoal-v0``); a name without version (``Pendulum``,
    ``AntUMaze``), which picks the newest registered version. Raises :class:`EnvError`
    listing close names otherwise.
    """
    name = str(name).strip()
    task = registry.find_task(name)
    if task is not None:
        return task.id
    if name.startswith(registry.JAX_ONLY_PREFIXES):
        return name
    gym_ids = gym.registry
    if name in gym_ids:
        return name
    same_name = [i for i in gym_ids if i.split("/")[-1] == name]
    if len(same_name) == 1:
        return same_name[0]
    if not re.search(r"-v\d+$", name):
        versions = [i for i in gym_ids if _base_name(i) == name.split("/")[-1]
                    and (("/" not in name) or i.startswith(name.rsplit("/", 1)[0] + "/"))]
        if versions:
            return max(versions, key=_version)
    candidates = sorted(set(gym_ids) | set(SHORT_NAMES))
    close = difflib.get_close_matches(name, candidates, n=4, cutoff=0.6)
    if not close:  # try case-insensitively, and on the names without version
        lowered = {c.lower(): c for c in candidates}
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=4, cutoff=0.6)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise EnvError(f"unknown environment {name!r}{hint} (use a gymnasium id with a continuous "
                   f"action space, e.g. Pendulum-v1, or a short name: {', '.join(sorted(SHORT_NAMES))})")


short_name = registry.short_name


@dataclass(frozen=True)
class EnvInfo:
    """What the learner needs to know about an environment."""

    env_id: str
    obs_dim: int
    action_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    time_limit: int | None  # the registered TimeLimit, None if none


def _space_name(space: spaces.Space) -> str:
    kind = {spaces.Discrete: "discrete", spaces.MultiDiscrete: "multi-discrete",
            spaces.MultiBinary: "multi-binary", spaces.Dict: "dict", spaces.Tuple: "tuple"}
    for cls, word in kind.items():
        if isinstance(space, cls):
            return f"a {word} ({type(space).__name__})"
    return f"a {type(space).__name__}"


def check_spaces(env_id: str, observation_space: spaces.Space, action_space: spaces.Space) -> EnvInfo:
    """Validate the spaces (continuous Box actions with finite bounds, Box observations)
    and return the sizes. Raises :class:`EnvError`."""
    if not isinstance(action_space, spaces.Box):
        raise EnvError(f"{env_id} has {_space_name(action_space)} action space; only continuous "
                       "(Box) action spaces are supported")
    if not np.issubdtype(action_space.dtype, np.floating):
        raise EnvError(f"{env_id} has an integer Box action space ({action_space.dtype}); only "
                       "continuous (floating-point Box) action spaces are supported")
    low = np.asarray(action_space.low, np.float64).reshape(-1)
    high = np.asarray(action_space.high, np.float64).reshape(-1)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise EnvError(f"{env_id} has unbounded actions (low {low}, high {high}); the sampler's "
                       "actions in [-1, 1] are rescaled to the bounds, which must be finite")
    if not isinstance(observation_space, spaces.Box):
        raise EnvError(f"{env_id} has {_space_name(observation_space)} observation space; only "
                       "flat Box observations are supported")
    return EnvInfo(env_id=env_id, obs_dim=int(np.prod(observation_space.shape)),
                   action_dim=int(low.size), action_low=low, action_high=high,
                   time_limit=None)


def _make(env_id: str, **kwargs: Any) -> gym.Env:
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as e:
        raise EnvError(f"could not create {env_id}: {e}") from None
    except ImportError as e:
        raise EnvError(f"could not create {env_id}: a dependency is missing ({e})") from None


def env_info(env_id: str) -> EnvInfo:
    """Sizes and bounds of ``env_id`` (builds the env once to read its spaces)."""
    env = _make(env_id)
    try:
        info = check_spaces(env_id, env.observation_space, env.action_space)
        limit = env.spec.max_episode_steps if env.spec is not None else None
    finally:
        env.close()
    return EnvInfo(info.env_id, info.obs_dim, info.action_dim, info.action_low,
                   info.action_high, limit)


class GymEnv:
    """A gymnasium env speaking the sampler's language.

    ``reset(seed=None) -> obs (O,) float32``;
    ``step(action (A,) in [-1, 1]) -> (next_obs, reward, terminated, truncated, info)``
    with the action rescaled to [low, high]; when the episode ends (either flag),
    ``info["episode"]`` holds its unscaled return ``r`` and length ``l`` (gymnasium's
    RecordEpisodeStatistics). No automatic reset: call ``reset`` after an end.
    ``render()`` returns an RGB frame when made with ``render_mode="rgb_array"``.
    """

    def __init__(self, env_id: str, max_episode_steps: int | None = None,
                 render_mode: str | None = None, **make_kwargs: Any):
        self.env_id = resolve_env_id(env_id)
        limit = gym.spec(self.env_id).max_episode_steps
        if max_episode_steps is not None:
            limit = max_episode_steps if limit is None else min(limit, int(max_episode_steps))
        kwargs = dict(make_kwargs)
        if limit is not None:
            kwargs["max_episode_steps"] = int(limit)
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        env = _make(self.env_id, **kwargs)
        try:
            probe = check_spaces(self.env_id, env.observation_space, env.action_space)
        except EnvError:
            env.close()
            raise
        self.env = gym.wrappers.RecordEpisodeStatistics(env)
        self.info = dataclasses.replace(probe, time_limit=limit)
        self._scale = (probe.action_high - probe.action_low) / 2.0
        self._offset = (probe.action_high + probe.action_low) / 2.0
        self._action_shape = self.env.action_space.shape
        self._action_dtype = self.env.action_space.dtype
        self._follow = False
        self._viewer = None

    @property
    def obs_dim(self) -> int:
        return self.info.obs_dim

    @property
    def training_columns(self) -> dict[str, tuple[str, str]]:
        """The env's ``{column: (info key, how)}`` for the training metrics (none by
        default; :class:`sqljax.loops.gym_loop.EpisodeTracker`)."""
        return dict(getattr(self.env.unwrapped, "training_columns", {}))

    @property
    def action_dim(self) -> int:
        return self.info.action_dim

    @property
    def time_limit(self) -> int | None:
        return self.info.time_limit

    def rescale(self, action: np.ndarray) -> np.ndarray:
        """[-1, 1]^A -> the env's [low, high], clipped to the bounds."""
        a = np.clip(np.asarray(action, np.float64).reshape(-1), -1.0, 1.0)
        a = self._offset + self._scale * a
        a = np.clip(a, self.info.action_low, self.info.action_high)
        return a.astype(self._action_dtype).reshape(self._action_shape)

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.env.reset(seed=seed)
        return np.asarray(obs, np.float32).reshape(-1)

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = self.env.step(self.rescale(action))
        return (np.asarray(obs, np.float32).reshape(-1), float(reward), bool(terminated),
                bool(truncated), info)

    def render(self):
        if self._follow:
            self._follow_root()
        return self.env.render()

    def setup_mujoco_camera(self, follow: bool = True, fast: bool = True) -> bool:
        """For MuJoCo envs rendered as rgb_array: keep the free camera's look-at point on
        the root body (so a running robot stays in the picture), and with ``fast`` turn off
        shadows and reflections, the costly part of CPU rendering. Returns False (and
        does nothing) for other envs."""
        try:
            import mujoco

            unwrapped = self.env.unwrapped
            unwrapped.data, unwrapped.model  # noqa: B018  (MuJoCo envs have both)
            viewer = unwrapped.mujoco_renderer._get_viewer("rgb_array")
            if fast:
                for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                    viewer.scn.flags[flag] = 0
        except Exception:  # noqa: BLE001  (not a MuJoCo env, or another renderer)
            return False
        self._viewer = viewer
        self._follow = follow
        return True

    def _follow_root(self) -> None:
        body = 1 if self.env.unwrapped.model.nbody > 1 else 0
        self._viewer.cam.lookat[:2] = self.env.unwrapped.data.xpos[body][:2]

    def close(self) -> None:
        self.env.close()


def make_env(env_id: str, max_episode_steps: int | None = None,
             render_mode: str | None = None, **make_kwargs: Any) -> GymEnv:
    """:class:`GymEnv` for ``env_id`` (any accepted name, see :func:`resolve_env_id`)."""
    return GymEnv(env_id, max_episode_steps=max_episode_steps, render_mode=render_mode,
                  **make_kwargs)


# ------------------------------------------------------------------ registrations

class MultiGoalEnv(gym.Env):
    """``gymnasium.Env`` of the multi-goal task, same equations as the JAX API.

    ``reset(seed=..., options={"position": (x, y)})`` starts at a chosen position
    (otherwise s0 ~ N(0, init_std^2 I)). The raw env never truncates; the registered
    ``sqljax/MultiGoal-v0`` adds a TimeLimit of ``max_episode_steps``.
    ``info["goal"]`` is the index of the goal reached, -1 if none.
    Observation (2,) float32 in [-7, 7]^2, action (2,) float32 in [-1, 1]^2.
    """

    metadata = {"render_modes": []}

    def __init__(self, params: multigoal.MultiGoalParams = multigoal.DEFAULT_PARAMS):
        self.params = params
        b, a = params.position_bound, params.action_bound
        self.observation_space = spaces.Box(-b, b, shape=(multigoal.OBS_DIM,), dtype=np.float32)
        self.action_space = spaces.Box(-a, a, shape=(multigoal.ACTION_DIM,), dtype=np.float32)
        self._position = np.zeros(multigoal.OBS_DIM, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if options is not None and options.get("position") is not None:
            position = np.asarray(options["position"], dtype=np.float32).reshape(multigoal.OBS_DIM)
        else:
            position = self.params.init_std * self.np_random.normal(size=multigoal.OBS_DIM)
        self._position = np.asarray(position, dtype=np.float32)
        return self._position.copy(), {}

    def step(self, action):
        action = np.asarray(action, dtype=np.float32).reshape(multigoal.ACTION_DIM)
        position, reward, reached, goal = multigoal.transition(np, self.params, self._position, action)
        self._position = position
        return position.copy(), float(reward), bool(reached), False, {"goal": int(goal)}


if "sqljax/MultiGoal-v0" not in gym.registry:
    gym.register(id="sqljax/MultiGoal-v0", entry_point="sqljax.envs.gym_adapter:MultiGoalEnv",
                 max_episode_steps=multigoal.MAX_EPISODE_STEPS)

# Ant skill-transfer tasks (sqljax/envs/ant_tasks.py): same observation/action spaces as Ant-v5.
# -v0: Ant-v5's reward weights; -v1: those of rllab's Ant, which the paper's tasks used.
for _name, _entry, _kwargs in (
    ("AntAnyDirection", "sqljax.envs.ant_tasks:AntAnyDirection", {}),
    ("AntHallwayWide", "sqljax.envs.ant_tasks:AntHallway", {"variant": "wide"}),
    ("AntHallwayNarrow", "sqljax.envs.ant_tasks:AntHallway", {"variant": "narrow"}),
    ("AntUMaze", "sqljax.envs.ant_tasks:AntUMaze", {}),
):
    for _v, _weights in ((0, {}), (1, registry.RLLAB_ANT_REWARD_WEIGHTS)):
        if f"sqljax/{_name}-v{_v}" not in gym.registry:
            gym.register(id=f"sqljax/{_name}-v{_v}", entry_point=_entry,
                         kwargs={**_kwargs, **_weights}, max_episode_steps=1000)

# Exploration tasks of the paper's §5.2 (sqljax/envs/exploration_tasks.py), T = 500. The maze's
# Ant takes rllab's reward weights, as the -v1 tasks above.
for _name, _entry, _kwargs in (
    ("SwimmerFinishLine", "sqljax.envs.exploration_tasks:SwimmerFinishLine", {}),
    ("AntTwoPassageMaze", "sqljax.envs.exploration_tasks:AntTwoPassageMaze", registry.RLLAB_ANT_REWARD_WEIGHTS),
):
    if f"sqljax/{_name}-v0" not in gym.registry:
        gym.register(id=f"sqljax/{_name}-v0", entry_point=_entry, kwargs=dict(_kwargs), max_episode_steps=500)
