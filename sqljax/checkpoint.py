"""Checkpoints of `SQLState` with orbax-checkpoint; the only module of the core that
touches files.

Layout of a checkpoint directory:
    <path>/sqljax.json   format tag, version, config, obs_dim, action_dim, user metadata
    <path>/state/        orbax checkpoint of the learner state (arrays only)
    <path>/extra/        optional orbax checkpoint of a caller's pytree (replay, counters)

A checkpoint is written into a hidden sibling directory and renamed into place once
complete, so a process killed mid-write never leaves a half-written `<path>`.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np
import orbax.checkpoint as ocp

from sqljax.config import SQLConfig
from sqljax.update import SQLState, init

FORMAT = "sqljax-checkpoint"
VERSION = 1
META_FILE = "sqljax.json"


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete, or not an sqljax checkpoint."""


def _to_host(tree):
    return jax.tree.map(lambda x: np.asarray(x), tree)


def _save_tree(directory: Path, tree) -> None:
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(directory, tree)
        ckptr.wait_until_finished()


def _restore_tree(directory: Path, like):
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype)
                            if not isinstance(x, jax.ShapeDtypeStruct) else x, like)
    with ocp.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(directory, abstract)
    want = jax.tree_util.tree_flatten_with_path(abstract)[0]
    got = jax.tree.leaves(restored)
    if len(want) != len(got):
        raise ValueError(f"stored tree has {len(got)} arrays, expected {len(want)}")
    for (keypath, w), g in zip(want, got):
        if tuple(np.shape(g)) != tuple(w.shape):
            raise ValueError(f"array {jax.tree_util.keystr(keypath)} has shape {np.shape(g)}, "
                             f"expected {tuple(w.shape)}")
    return restored


def save_checkpoint(path: str | os.PathLike, state: SQLState, extra: Any = None,
                    metadata: dict[str, Any] | None = None) -> Path:
    """Write `state` (and optionally a pytree `extra` and JSON `metadata`) to `path`,
    replacing any checkpoint there, atomically. Returns the path.

    Under ``jax.distributed`` every process calls it with the same (host) values: orbax
    writes the arrays from the primary process while all take part, and process 0
    renames the finished directory into place before any process returns."""
    if not isinstance(state, SQLState):
        raise TypeError(f"save_checkpoint expects an SQLState, got {type(state).__name__}")
    path = Path(path).absolute()
    multi = jax.process_count() > 1
    lead = jax.process_index() == 0
    # every process must name the same temporary directory
    token = f"p{jax.process_count()}" if multi else uuid.uuid4().hex[:8]
    tmp = path.parent / f".{path.name}.partial-{token}"
    if lead:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # a leftover of a killed write
    _sync("sqljax_checkpoint_start")
    try:
        _save_tree(tmp / "state", _to_host(flax.serialization.to_state_dict(state)))
        if extra is not None:
            _save_tree(tmp / "extra", _to_host(flax.serialization.to_state_dict(extra)))
        if lead:
            _finish(path, tmp, state, extra is not None, metadata)
        _sync("sqljax_checkpoint_done")
    finally:
        if lead and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _sync(name: str) -> None:
    """A barrier of all processes (nothing with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _finish(path: Path, tmp: Path, state: SQLState, has_extra: bool,
            metadata: dict[str, Any] | None) -> None:
    """Write the metadata into ``tmp`` and rename it to ``path``."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": state.config.to_dict(),
        "obs_dim": state.obs_dim,
        "action_dim": state.action_dim,
        "batch_shape": list(state.step.shape),
        "has_extra": has_extra,
        "metadata": metadata or {},
    }
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    _fsync_dir(tmp)
    if path.exists():
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON beside a checkpoint (config, sizes, user metadata); CheckpointError if
    `path` is not a complete sqljax checkpoint."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: the directory does not exist")
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint at {path}: it is a file, not a checkpoint directory")
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise CheckpointError(f"{path} is not an sqljax checkpoint (no {META_FILE})")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{meta_file} is unreadable or truncated: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an sqljax checkpoint (wrong format tag)")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {meta.get('version')}, "
                              f"this sqljax reads version {VERSION}")
    if not (path / "state").is_dir():
        raise CheckpointError(f"{path} is incomplete: the state/ directory is missing")
    return meta


def load_checkpoint(path: str | os.PathLike) -> SQLState:
    """Restore the `SQLState` saved at `path`, with its own config and sizes, as the same
    pytree types `init` makes (optax states included). A state saved with leading seed
    axes (a vmapped learner) comes back with the same axes."""
    meta = read_checkpoint_metadata(path)
    try:
        config = SQLConfig.from_dict(meta["config"])
        obs_dim, action_dim = int(meta["obs_dim"]), int(meta["action_dim"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}/{META_FILE} has an invalid config or sizes: {e}") from None
    batch_shape = tuple(int(n) for n in meta.get("batch_shape", []))
    template = jax.eval_shape(lambda: _stacked_init(config, obs_dim, action_dim, batch_shape))
    like = flax.serialization.to_state_dict(template)
    try:
        restored = _restore_tree(Path(path).absolute() / "state", like)
    except Exception as e:  # orbax raises many types for damaged data
        raise CheckpointError(f"could not restore the state from {path}: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    state = flax.serialization.from_state_dict(template, restored)
    return jax.tree.map(jax.numpy.asarray, state)


def _stacked_init(config: SQLConfig, obs_dim: int, action_dim: int, batch_shape: tuple[int, ...]):
    """`init`'s state with leading axes `batch_shape` (e.g. (n_seeds,) for vmapped seeds)."""
    def make(key):
        return init(key, config, obs_dim, action_dim)

    for _ in batch_shape:
        make = jax.vmap(make)
    keys = jax.random.split(jax.random.PRNGKey(0), int(np.prod(batch_shape, dtype=int)))
    return make(keys.reshape(batch_shape + (2,)))


def load_extra(path: str | os.PathLike, like: Any) -> Any:
    """Restore the `extra` pytree saved with a checkpoint, shaped and typed like `like`
    (arrays or jax.ShapeDtypeStruct leaves)."""
    meta = read_checkpoint_metadata(path)
    if not meta.get("has_extra"):
        raise CheckpointError(f"{path} holds no extra data")
    like_dict = flax.serialization.to_state_dict(like)
    try:
        restored = _restore_tree(Path(path).absolute() / "extra", like_dict)
    except Exception as e:
        raise CheckpointError(f"could not restore extra data from {path}: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    out = flax.serialization.from_state_dict(like, restored)
    return jax.tree.map(jax.numpy.asarray, out)
