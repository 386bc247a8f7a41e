"""Learners by name, each under one protocol (:mod:`sqljax.learners.protocol`): ``sql``
(Soft Q-Learning, :mod:`sqljax.update`), ``ddpg`` (DDPG; TD3 is its ``modern``
preset, :mod:`sqljax.learners.ddpg`) and ``sac`` (Soft Actor-Critic with a learned
temperature, :mod:`sqljax.learners.sac`). The drivers find a learner from its config or
state (:func:`of_config`, :func:`of_state`) or by name (:func:`get`)."""

from __future__ import annotations

import importlib
from typing import Any

from sqljax.learners.protocol import Batch, DriverConfig, Learner, QLearningConfig

#: The learner of a checkpoint or config.json without a learner tag.
DEFAULT = "sql"

_BY_NAME: dict[str, Learner] = {}
#: The modules of sqljax's own learners, each with a ``LEARNER``; imported on the first
#: lookup (the SQL modules import the protocol from this package).
_BUILTIN = ("sqljax.learners.sql", "sqljax.learners.ddpg", "sqljax.learners.sac")


def _load_builtin() -> None:
    if len(_BY_NAME) < len(_BUILTIN):
        for module in _BUILTIN:
            register(importlib.import_module(module).LEARNER)


def register(learner: Learner) -> Learner:
    """Add a learner to the registry (its name must be new)."""
    if learner.name in _BY_NAME and _BY_NAME[learner.name] is not learner:
        raise ValueError(f"a learner named {learner.name!r} is already registered")
    _BY_NAME[learner.name] = learner
    return learner


def names() -> list[str]:
    """The registered learners' names."""
    _load_builtin()
    return sorted(_BY_NAME)


def get(name: str | None) -> Learner:
    """The learner called ``name`` (None: the default); ValueError (one line) otherwise."""
    _load_builtin()
    name = DEFAULT if name is None else str(name).strip().lower()
    if name not in _BY_NAME:
        raise ValueError(f"unknown learner {name!r}; choose one of {', '.join(names())}")
    return _BY_NAME[name]


def _by_type(obj: Any, attr: str, what: str) -> Learner:
    _load_builtin()
    for learner in _BY_NAME.values():
        if isinstance(obj, getattr(learner, attr)):
            return learner
    raise TypeError(f"{type(obj).__name__} is not the {what} of a registered learner "
                    f"({', '.join(names())})")


def of_config(cfg: Any) -> Learner:
    """The learner whose config ``cfg`` is (TypeError otherwise)."""
    return _by_type(cfg, "config_class", "config")


def of_config_class(cls: type) -> Learner:
    """The learner whose config class is ``cls`` (TypeError otherwise)."""
    _load_builtin()
    for learner in _BY_NAME.values():
        if learner.config_class is cls:
            return learner
    raise TypeError(f"{cls.__name__} is not the config class of a registered learner")


def of_state(state: Any) -> Learner:
    """The learner whose state ``state`` is (TypeError otherwise)."""
    return _by_type(state, "state_class", "state")


def config_from_dict(d: dict[str, Any], name: str | None = None):
    """A config from a ``config.json``/checkpoint dict: its ``learner`` key (or ``name``;
    neither: the default) picks the class."""
    d = dict(d)
    tagged = d.pop("learner", None)
    return get(name or tagged).config_class.from_dict(d)


def tagged_config(cfg: Any) -> dict[str, Any]:
    """``cfg.to_dict()`` with the learner's name under ``learner``."""
    return {"learner": of_config(cfg).name, **cfg.to_dict()}

__all__ = ["Batch", "DEFAULT", "DriverConfig", "Learner", "QLearningConfig", "config_from_dict", "get",
           "names", "of_config", "of_config_class", "of_state", "register", "tagged_config"]
