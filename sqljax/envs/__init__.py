"""Environment registrations for gymnasium (importing this module registers them)."""

import gymnasium as gym

if "sqljax/MultiGoal-v0" not in gym.registry:
    gym.register(id="sqljax/MultiGoal-v0", entry_point="sqljax.envs.multigoal:MultiGoalEnv", max_episode_steps=30)

# Ant skill-transfer tasks (sqljax/envs/ant_tasks.py): same observation/action spaces as Ant-v5.
for _id, _entry, _kwargs in (
    ("sqljax/AntAnyDirection-v0", "sqljax.envs.ant_tasks:AntAnyDirection", {}),
    ("sqljax/AntHallwayWide-v0", "sqljax.envs.ant_tasks:AntHallway", {"variant": "wide"}),
    ("sqljax/AntHallwayNarrow-v0", "sqljax.envs.ant_tasks:AntHallway", {"variant": "narrow"}),
    ("sqljax/AntUMaze-v0", "sqljax.envs.ant_tasks:AntUMaze", {}),
):
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=_entry, kwargs=_kwargs, max_episode_steps=1000)
