"""Environments: the task table (:mod:`sqljax.envs.registry`), JAX-native envs behind
gymnax 1.0's interface (:func:`make_jax_env`; no gymnasium import), and the gymnasium
adapter (:mod:`sqljax.envs.gym_adapter`, which registers the ``sqljax/...`` ids).

Importing this package (and so ``import sqljax``) makes the ``sqljax/...`` gymnasium ids
(``sqljax/MultiGoal-v0``, the Ant transfer tasks) known to gymnasium, in either order of
imports, without importing gymnasium itself: if gymnasium is already loaded they are
registered at once (:func:`register_gym_envs`), otherwise as soon as gymnasium's own
import completes. So ``import sqljax, gymnasium as gym; gym.make("sqljax/MultiGoal-v0")``
works, and code that never imports gymnasium never loads it.
"""

from __future__ import annotations

import importlib.abc
import sys
import warnings

from sqljax.envs.jax_env import make_jax_env
from sqljax.envs.registry import TASKS, Task, find_task, task_kind

__all__ = ["TASKS", "Task", "find_task", "make_jax_env", "register_gym_envs", "task_kind"]

_GYMNASIUM = "gymnasium"


def register_gym_envs() -> None:
    """Register the ``sqljax/...`` ids with gymnasium (imports it and
    :mod:`sqljax.envs.gym_adapter`, whose import registers them); idempotent."""
    from sqljax.envs import gym_adapter  # noqa: F401


class _RegisterAfterGymnasium(importlib.abc.MetaPathFinder):
    """Finds gymnasium with the other finders and has its loader call
    :func:`register_gym_envs` once gymnasium's module has run; then leaves
    ``sys.meta_path``. Looking gymnasium up without importing it (``find_spec``)
    registers nothing."""

    def find_spec(self, name, path=None, target=None):
        if name != _GYMNASIUM:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader, self)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    """``loader`` that registers the ``sqljax/...`` ids after executing the module (and
    then puts ``loader`` back on the module's spec)."""

    def __init__(self, loader, finder: _RegisterAfterGymnasium):
        self.loader, self.finder = loader, finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        try:
            register_gym_envs()
        except Exception as e:  # importing gymnasium must not fail because of sqljax
            warnings.warn(f"sqljax could not register its gymnasium environments: {e!r}", stacklevel=2)


if _GYMNASIUM in sys.modules:
    register_gym_envs()
elif not any(isinstance(f, _RegisterAfterGymnasium) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterGymnasium())
