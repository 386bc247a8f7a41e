"""The task table: every per-task fact in one place (no gymnasium import).

Each :class:`Task` has its id (a gymnasium id, or ``gymnax:<id>`` / ``mjx:<Task>-v5`` /
``mjx:AntAnyDirection-v1`` (and the other Ant transfer tasks) / ``sqljax/...`` for
JAX-native envs), a short name, the default run length and its kind
(``"gym"``: stepped on the host through gymnasium; ``"jax"``: pure JAX functions,
trained by the compiled loop). Task facts only: what a learner sets per task (SQL's
reward scales and presets) lives with the learner (:mod:`sqljax.config`). :func:`find_task` normalises what a user types, once,
for every command: ``Ant``, ``Ant-v5``, ``MultiGoal``, ``MultiGoal-v0``,
``sqljax/MultiGoal-v0``, ``gymnax:Pendulum-v1``, ``mjx:Hopper``, ``mjx:Hopper-v5``. Ids
outside the table are gymnasium ids (``kind`` "gym"), or ``gymnax:<id>`` for any gymnax
env with a continuous action space.
"""

from __future__ import annotations

import dataclasses
import re

GYMNAX_PREFIX = "gymnax:"
#: gymnasium's v5 MuJoCo tasks written in JAX, stepped by MJX (sqljax.envs.mjx_locomotion),
#: and the transfer study's Ant tasks (sqljax.envs.mjx_ant_tasks).
MJX_PREFIX = "mjx:"
#: Prefixes of ids that name a JAX-native env and no gymnasium env.
JAX_ONLY_PREFIXES = (GYMNAX_PREFIX, MJX_PREFIX)


@dataclasses.dataclass(frozen=True)
class Task:
    id: str
    short: str
    steps: int
    kind: str = "gym"


_MUJOCO = ("Swimmer", 500_000), ("Hopper", 1_000_000), ("HalfCheetah", 1_000_000), (
    "Walker2d", 1_000_000), ("Ant", 1_000_000), ("Humanoid", 3_000_000)

#: The tasks with facts of their own.
TASKS: tuple[Task, ...] = (
    *(Task(f"{name}-v5", name, steps) for name, steps in _MUJOCO),
    Task("Pendulum-v1", "Pendulum", 30_000),
    Task("gymnax:Pendulum-v1", "gymnax:Pendulum", 30_000, kind="jax"),
    # the same tasks as their gymnasium twins above, with the same run length
    *(Task(f"{MJX_PREFIX}{name}-v5", f"{MJX_PREFIX}{name}", steps, kind="jax")
      for name, steps in _MUJOCO if name != "Swimmer"),
    # sqljax/<Ant transfer task>-v1 stepped by MJX (sqljax.envs.mjx_ant_tasks)
    *(Task(f"{MJX_PREFIX}{name}-v1", f"{MJX_PREFIX}{name}", 1_000_000, kind="jax")
      for name in ("AntAnyDirection", "AntHallwayWide", "AntHallwayNarrow", "AntUMaze")),
    Task("sqljax/MultiGoal-v0", "MultiGoal", 20_000, kind="jax"),
    Task("sqljax/AntAnyDirection-v0", "AntAnyDirection", 1_000_000),
    Task("sqljax/AntHallwayWide-v0", "AntHallway", 1_000_000),
    Task("sqljax/AntHallwayNarrow-v0", "AntHallwayNarrow", 1_000_000),
    Task("sqljax/AntUMaze-v0", "AntUMaze", 1_000_000),
    *(Task(f"sqljax/{name}-v1", f"{name}-v1", 1_000_000)
      for name in ("AntAnyDirection", "AntHallwayWide", "AntHallwayNarrow", "AntUMaze")),
    # the exploration tasks of the paper's §5.2 (sqljax/envs/exploration_tasks.py)
    Task("sqljax/SwimmerFinishLine-v0", "SwimmerFinishLine", 500_000),
    Task("sqljax/AntTwoPassageMaze-v0", "AntTwoPassageMaze", 1_000_000),
)

#: The skill-transfer tasks' -v1 reward weights (Ant-v5 keyword arguments): those of
#: rllab's Ant, on which the paper's tasks were built: control cost 0.005 |a|^2 (Ant-v5:
#: 0.5), 0.05 per step alive (Ant-v5: 1), contact cost 5e-4 (the same), so the motion
#: term dominates the reward.
RLLAB_ANT_REWARD_WEIGHTS: dict[str, float] = {
    "ctrl_cost_weight": 0.005, "healthy_reward": 0.05, "contact_cost_weight": 5e-4}

_BY_NAME: dict[str, Task] = {}
for _t in TASKS:  # a name without version is the first task listed (AntUMaze: -v0)
    for _name in (_t.id, _t.short, _t.id.split("/")[-1], _t.id.split("/")[-1].rsplit("-v", 1)[0]):
        _BY_NAME.setdefault(_name, _t)


def base_name(env_id: str) -> str:
    """``sqljax/AntUMaze-v0`` -> ``AntUMaze``; ``gymnax:Pendulum-v1`` -> ``Pendulum``;
    ``mjx:Hopper-v5`` -> ``Hopper``."""
    for prefix in JAX_ONLY_PREFIXES:
        env_id = env_id.removeprefix(prefix)
    return re.sub(r"-v\d+$", "", env_id.split("/")[-1])


def find_task(name: str) -> Task | None:
    """The table's task for any of its names, or None."""
    return _BY_NAME.get(str(name).strip())


def task_kind(env_id: str) -> str:
    task = find_task(env_id)
    if task is not None:
        return task.kind
    return "jax" if str(env_id).startswith(JAX_ONLY_PREFIXES) else "gym"


def is_jax_native(env_id: str) -> bool:
    """Whether ``env_id`` is trained by the compiled loop (its kind is ``"jax"``)."""
    return task_kind(env_id) == "jax"


def default_steps(env_id: str) -> int:
    """A task's default run length: the table's, else 1M for MuJoCo-sized ids (v4/v5),
    else 100k."""
    task = find_task(env_id)
    if task is not None:
        return task.steps
    return 1_000_000 if re.search(r"-v[45]$", env_id) else 100_000


def short_name(env_id: str) -> str:
    """A name for directories: ``sqljax/AntUMaze-v0`` -> ``AntUMaze-v0``,
    ``gymnax:Pendulum-v1`` -> ``gymnax-Pendulum-v1``, ``mjx:Hopper-v5`` -> ``mjx-Hopper-v5``."""
    return env_id.replace(GYMNAX_PREFIX, "gymnax-").replace(MJX_PREFIX, "mjx-").split("/")[-1]
