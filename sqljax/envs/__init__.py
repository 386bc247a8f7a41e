"""Environments: the task table (:mod:`sqljax.envs.registry`), JAX-native envs behind
gymnax 1.0's interface (:func:`make_jax_env`; no gymnasium import), and the gymnasium
adapter (:mod:`sqljax.envs.gym_adapter`, which registers the ``sqljax/...`` ids)."""

from sqljax.envs.jax_env import make_jax_env
from sqljax.envs.registry import TASKS, Task, find_task, task_kind

__all__ = ["TASKS", "Task", "find_task", "make_jax_env", "task_kind"]
