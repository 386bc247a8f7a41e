"""Environment registrations for gymnasium (importing this module registers them)."""

import gymnasium as gym

if "sqljax/MultiGoal-v0" not in gym.registry:
    gym.register(id="sqljax/MultiGoal-v0", entry_point="sqljax.envs.multigoal:MultiGoalEnv", max_episode_steps=30)
