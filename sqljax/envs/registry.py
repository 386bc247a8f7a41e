"""The task table: every per-task fact in one place (no gymnasium import).

Each :class:`Task` has its id (a gymnasium id, or ``gymnax:<id>`` / ``mjx:<Task>-v5`` /
``sqljax/...`` for JAX-native envs), a short name, the authors' reward scale (1 / alpha;
None: the preset's), the default run length, the default preset and its kind
(``"gym"``: stepped on the host through gymnasium; ``"jax"``: pure JAX functions,
trained by the compiled loop). :func:`find_task` normalises what a user types, once,
for every command: ``Ant``, ``Ant-v5``, ``MultiGoal``, ``MultiGoal-v0``,
``sqljax/MultiGoal-v0``, ``gymnax:Pendulum-v1``, ``mjx:Hopper``, ``mjx:Hopper-v5``. Ids
outside the table are gymnasium ids (``kind`` "gym"), or ``gymnax:<id>`` for any gymnax
env with a continuous action space.
"""

from __future__ import annotations

import dataclasses
import re

GYMNAX_PREFIX = "gymnax:"
#: gymnasium's v5 MuJoCo tasks written in JAX, stepped by MJX (sqljax.envs.mjx_locomotion).
MJX_PREFIX = "mjx:"
#: Prefixes of ids that name a JAX-native env and no gymnasium env.
JAX_ONLY_PREFIXES = (GYMNAX_PREFIX, MJX_PREFIX)


@dataclasses.dataclass(frozen=True)
class Task:
    id: str
    short: str
    reward_scale: float | None
    steps: int
    preset: str = "code"
    kind: str = "gym"


_MUJOCO = ("Swimmer", 30.0, 500_000), ("Hopper", 30.0, 1_000_000), (
    "HalfCheetah", 30.0, 1_000_000), ("Walker2d", 10.0, 1_000_000), (
    "Ant", 300.0, 1_000_000), ("Humanoid", 100.0, 3_000_000)

#: The tasks with facts of their own (reward scales: the authors' code).
TASKS: tuple[Task, ...] = (
    *(Task(f"{name}-v5", name, scale, steps) for name, scale, steps in _MUJOCO),
    Task("Pendulum-v1", "Pendulum", 10.0, 30_000),
    Task("gymnax:Pendulum-v1", "gymnax:Pendulum", 10.0, 30_000, kind="jax"),
    # the same tasks as their gymnasium twins above: same scale, steps and preset
    *(Task(f"{MJX_PREFIX}{name}-v5", f"{MJX_PREFIX}{name}", scale, steps, kind="jax")
      for name, scale, steps in _MUJOCO if name != "Swimmer"),
    Task("sqljax/MultiGoal-v0", "MultiGoal", None, 20_000, "multigoal", kind="jax"),
    Task("sqljax/AntAnyDirection-v0", "AntAnyDirection", None, 1_000_000, "pretrain"),
    Task("sqljax/AntHallwayWide-v0", "AntHallway", None, 1_000_000, "pretrain"),
    Task("sqljax/AntHallwayNarrow-v0", "AntHallwayNarrow", None, 1_000_000, "pretrain"),
    Task("sqljax/AntUMaze-v0", "AntUMaze", None, 1_000_000, "pretrain"),
    *(Task(f"sqljax/{name}-v1", f"{name}-v1", None, 1_000_000, "pretrain")
      for name in ("AntAnyDirection", "AntHallwayWide", "AntHallwayNarrow", "AntUMaze")),
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


def reward_scale(env_id: str) -> float | None:
    """The authors' reward scale of a task (by any name, any version), or None."""
    task = find_task(env_id)
    if task is None:  # another version of a table task: the same scale
        same = [t for t in TASKS if t.short == base_name(env_id)
                and t.id.startswith(GYMNAX_PREFIX) == env_id.startswith(GYMNAX_PREFIX)]
        task = same[0] if same else None
    return None if task is None else task.reward_scale


def default_steps(env_id: str) -> int:
    """A task's default run length: the table's, else 1M for MuJoCo-sized ids (v4/v5),
    else 100k."""
    task = find_task(env_id)
    if task is not None:
        return task.steps
    return 1_000_000 if re.search(r"-v[45]$", env_id) else 100_000


def default_preset(env_id: str) -> str:
    task = find_task(env_id)
    return "code" if task is None else task.preset


def short_name(env_id: str) -> str:
    """A name for directories: ``sqljax/AntUMaze-v0`` -> ``AntUMaze-v0``,
    ``gymnax:Pendulum-v1`` -> ``gymnax-Pendulum-v1``, ``mjx:Hopper-v5`` -> ``mjx-Hopper-v5``."""
    return env_id.replace(GYMNAX_PREFIX, "gymnax-").replace(MJX_PREFIX, "mjx-").split("/")[-1]
