"""The states a run leaves behind, read back: the shapes of a stacked carry of either
training program (:func:`abstract_carry`), a run checkpoint's carry and learners
(:func:`load_run_state`, :func:`load_seed_states`), and the pretrained learners a
fine-tuning run starts each seed from (:func:`load_init_states`)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import sqljax
from sqljax import learners
from sqljax.envs import make_jax_env
from sqljax.loops import RunError, device
from sqljax.store import run_dir as rd


def abstract_carry(kind: str, cfg: Any, env_id: str, obs_dim: int, action_dim: int,
                   n_seeds: int, capacity: int, jax_env: tuple[Any, Any] | None = None):
    """Shapes of a stacked carry (N seeds, replay of ``capacity``) of either program."""
    if kind == "gym":
        init_one = device.init_fn(cfg, obs_dim, action_dim, capacity)
    else:
        from sqljax.loops.scan_loop import make_train

        env, params = jax_env or make_jax_env(env_id)
        init_one = make_train(cfg, env, params, capacity).init_carry
    return jax.eval_shape(jax.vmap(init_one), jax.ShapeDtypeStruct((n_seeds, 2), jnp.uint32))


def _checkpoint_carry(ckpt, capacity: int | None = None):
    """Counters and abstract carry of a run checkpoint (replay of ``capacity``, default the
    saved transitions)."""
    counters = rd.run_counters(ckpt)
    meta = sqljax.read_checkpoint_metadata(ckpt)
    cfg = learners.config_from_dict(meta["config"], meta.get("learner"))
    n = int(counters["replay_size"]) if capacity is None else capacity
    return counters, abstract_carry(counters["kind"], cfg, counters["env_id"], int(meta["obs_dim"]),
                                    int(meta["action_dim"]), len(counters["seed_ids"]), max(n, 1))


def load_run_state(path: str | os.PathLike):
    """The stacked carry (learners, filled part of the replay buffers, keys, counters;
    leading seed axis, on the host) of a run checkpoint, or of a run directory's latest."""
    ckpt = rd.find_checkpoint(path)
    counters, like = _checkpoint_carry(ckpt)
    return rd.load_carry(ckpt, like, int(counters["replay_size"]))


def load_seed_states(path: str | os.PathLike) -> Any:
    """The stacked learners (leading seed axis, on the host) of a run checkpoint, or of a
    run directory's latest checkpoint; the replay buffers stay on disk."""
    ckpt = rd.find_checkpoint(path)
    return rd.load_agents(ckpt, _checkpoint_carry(ckpt, capacity=1)[1].agent)


def config_differences(a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    """The fields in which two learner configs (dataclasses) differ, as ``(name, value in
    a, value in b)``, in field order; ``[("learner", class name of a, of b)]`` if they are
    of different classes."""
    if type(a) is not type(b):
        return [("learner", type(a).__name__, type(b).__name__)]
    return [(f.name, getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
            if getattr(a, f.name) != getattr(b, f.name)]


def load_init_states(path: str | os.PathLike, seed_ids: Sequence[int], env_id: str,
                     obs_dim: int, action_dim: int, learner: str | None = None) -> Any:
    """The pretrained learners (stacked, on the host) that seeds ``seed_ids`` start from:
    the same seed indices' rows of a run checkpoint of several seeds or of a directory of
    ``seed{i}/`` learners (the zoo layout), or else its one learner for every seed.
    ``path``: a checkpoint, a run directory (its latest) or a directory of seed learners.
    RunError (one line) if the sizes differ from the env's, a seed is missing, the seed
    learners of a directory were trained with different configs, or the checkpoint holds
    another learner than ``learner`` (a name; None: any)."""
    ckpt = rd.find_checkpoint(path)
    meta = sqljax.read_checkpoint_metadata(ckpt)
    saved = meta.get("learner", learners.DEFAULT)
    if learner is not None and saved != learner:
        raise RunError(f"--init-from {ckpt} holds a {saved} learner, not {learner}; start a "
                       f"{learner} run from a {learner} checkpoint (or pass --learner {saved})")
    sizes = (int(meta["obs_dim"]), int(meta["action_dim"]))
    if sizes != (int(obs_dim), int(action_dim)):
        raise RunError(f"--init-from checkpoint {ckpt} has observation size {sizes[0]} and action "
                       f"size {sizes[1]}, but {env_id} has observation size {obs_dim} and action "
                       f"size {action_dim}; pretrain on an env with the same spaces")
    counters = meta.get("metadata", {})
    if counters.get("format") == "sqljax-multi-seed-run":  # its seeds could not be paired
        raise RunError(f"--init-from {ckpt} was written by an earlier version of sqljax; "
                       "start from a checkpoint of this version")
    if counters.get("format") in rd.RESUMABLE_FORMATS and len(counters["seed_ids"]) > 1:
        stacked = load_seed_states(ckpt)
        have = [int(s) for s in counters["seed_ids"]]
        missing = [s for s in seed_ids if s not in have]
        if missing:
            raise RunError(f"--init-from {ckpt} holds seeds {have}, not seed(s) {missing}; fine-tune "
                           "those seeds, or start from a single learner's checkpoint")
        rows = np.asarray([have.index(s) for s in seed_ids])
        return jax.tree.map(lambda x: np.asarray(x)[rows], stacked)
    by_seed = rd.seed_learners(path)
    if by_seed:
        missing = [s for s in seed_ids if s not in by_seed]
        if missing:
            raise RunError(f"--init-from {path} holds seeds {list(by_seed)}, not seed(s) {missing}")
        for s in seed_ids:  # same sizes as the first (checked above)
            if sqljax.read_checkpoint_metadata(by_seed[s])["obs_dim"] != meta["obs_dim"]:
                raise RunError(f"--init-from {by_seed[s]} has another observation size than "
                               f"{ckpt}")
        loaded = [jax.device_get(sqljax.load_checkpoint(by_seed[s])) for s in seed_ids]
        for s, other in zip(seed_ids[1:], loaded[1:]):
            differ = config_differences(loaded[0].config, other.config)
            if differ:
                raise RunError(f"--init-from {path}: seed{s}'s learner was trained with "
                               f"{differ[0][0]}={differ[0][2]!r}, seed{seed_ids[0]}'s with "
                               f"{differ[0][0]}={differ[0][1]!r}"
                               + (f" ({len(differ) - 1} more field(s) differ)" if len(differ) > 1 else "")
                               + "; start every seed from learners of one configuration")
        return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *loaded)
    one = jax.device_get(sqljax.load_checkpoint(ckpt))
    if np.ndim(one.step):
        raise RunError(f"--init-from {ckpt} holds stacked learners without seed indices")
    return jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (len(seed_ids),) + np.shape(x)), one)
