"""Checkpoints of any learner's state (SQL's `SQLState`, DDPG's, ...) with
orbax-checkpoint; the only module of the core that touches files.

Layout of a checkpoint directory:
    <path>/sqljax.json   format tag, version, learner name (none: SQL), config, obs_dim,
                         action_dim, user metadata
    <path>/state/        orbax checkpoint of the learner state (arrays only)
    <path>/extra/        optional orbax checkpoint of a caller's pytree (replay, counters)

A learner export (`export_learner`) is the compact form for sharing a trained agent:
    <path>/sqljax.json     as above, with "kind": "learner"
    <path>/learner.msgpack the learner's export fields (SQL: Q, target Q, sampler, noise
                           bank, update count and key), in flax's msgpack encoding (no
                           pickle)
It drops the Adam moments and anything a run keeps beside the learner (replay, env
state, counters); `load_checkpoint` gives it back as a full state whose optimiser
states are fresh, which is what evaluation and fine-tuning (`finetune_state`) need.

A checkpoint is written into a hidden sibling directory and renamed into place once
complete, so a process killed mid-write never leaves a half-written `<path>`.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np
import orbax.checkpoint as ocp

from sqljax import learners
from sqljax.learners.sql import EXPORT_FIELDS

FORMAT = "sqljax-checkpoint"
VERSION = 1
META_FILE = "sqljax.json"
LEARNER_FILE = "learner.msgpack"
#: What an export of an SQL learner keeps (each learner names its own).
LEARNER_FIELDS = EXPORT_FIELDS


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete, or not an sqljax checkpoint."""


def _to_host(tree):
    return jax.tree.map(lambda x: np.asarray(x), tree)


def _save_tree(directory: Path, tree) -> None:
    with _stderr_held(), ocp.StandardCheckpointer() as ckptr:
        ckptr.save(directory, tree)
        ckptr.wait_until_finished()


@contextlib.contextmanager
def _stderr_held():
    """Hold what is written to file descriptor 2 while orbax reads or writes: pass it on
    after success; after a failure, drop it with the tracebacks that orbax's aborted
    operations print from their threads (the failure itself is raised, in one line)."""
    sys.stderr.flush()
    saved = os.dup(2)
    ok = False
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
            ok = True
        finally:
            if not ok:
                time.sleep(0.5)  # the aborted reads report within milliseconds
                gc.collect()  # and asyncio logs their never-retrieved errors when collected
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if ok:
                held.seek(0)
                os.write(2, held.read())


def _restore_tree(directory: Path, like, partial: bool = False):
    """The tree saved in ``directory``, shaped like ``like``; ``partial``: ``like`` names a
    part of the saved tree (a dict with some of its keys), and only that part is read."""
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype)
                            if not isinstance(x, jax.ShapeDtypeStruct) else x, like)
    if partial:
        args = ocp.args.PyTreeRestore(item=abstract, partial_restore=True,
                                      restore_args=ocp.checkpoint_utils.construct_restore_args(abstract))
        with _stderr_held(), ocp.PyTreeCheckpointer() as ckptr:
            restored = ckptr.restore(directory, args=args)
    else:
        with _stderr_held(), ocp.StandardCheckpointer() as ckptr:
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


def _learner_of(state: Any, what: str):
    try:
        return learners.of_state(state)
    except TypeError:
        raise TypeError(f"{what} expects a learner's state (e.g. an SQLState), got "
                        f"{type(state).__name__}") from None


def save_checkpoint(path: str | os.PathLike, state: Any, extra: Any = None,
                    metadata: dict[str, Any] | None = None) -> Path:
    """Write `state` (and optionally a pytree `extra` and JSON `metadata`) to `path`,
    replacing an earlier sqljax checkpoint there, atomically. Returns the path.

    Under ``jax.distributed`` every process calls it with the same (host) values: orbax
    writes the arrays from the primary process while all take part, and process 0
    renames the finished directory into place before any process returns."""
    _learner_of(state, "save_checkpoint")
    path = Path(path).absolute()
    multi = jax.process_count() > 1
    lead = jax.process_index() == 0
    # every process must name the same temporary directory
    token = f"p{jax.process_count()}" if multi else uuid.uuid4().hex[:8]
    tmp = path.parent / f".{path.name}.partial-{token}"
    trees = [_to_host(flax.serialization.to_state_dict(t)) for t in (state, extra)]
    if lead:
        _check_replaceable(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # a leftover of a killed write
        _check_space(path, sum(x.nbytes for x in jax.tree.leaves(trees)))
    _sync("sqljax_checkpoint_start")
    try:
        _save_tree(tmp / "state", trees[0])
        if extra is not None:
            _save_tree(tmp / "extra", trees[1])
        if lead:
            _write_meta(tmp, state, metadata, has_extra=extra is not None)
            _rename_into_place(tmp, path)
        _sync("sqljax_checkpoint_done")
    except ValueError as e:  # how orbax reports a failed write (tensorstore's status)
        code = re.search(r"os_error_code='(\d+)'", str(e))
        if code is None:
            raise CheckpointError(f"could not write the checkpoint {path}: {e}") from None
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from None
    finally:
        if lead and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _check_space(path: Path, nbytes: int) -> None:
    """OSError (ENOSPC) before writing if ``path``'s file system has too little room for
    ``nbytes`` of arrays (plus a margin for metadata): a checkpoint that cannot fit is
    not started, and the earlier ones stay as they are."""
    need = int(nbytes * 1.05) + (1 << 20)
    free = shutil.disk_usage(path.parent).free
    if need > free:
        raise OSError(errno.ENOSPC, f"No space left on device: the checkpoint needs about "
                      f"{need / 2**20:.1f} MB, {free / 2**20:.1f} MB are free", str(path))


def _sync(name: str) -> None:
    """A barrier of all processes (nothing with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def export_learner(path: str | os.PathLike, state: Any,
                   metadata: dict[str, Any] | None = None) -> Path:
    """Write the compact export of one learner (see the module docstring) to `path`,
    atomically, replacing any checkpoint there. `state` must be a single learner (no
    leading seed axis: index a vmapped state first). Returns the path. It is written by
    the calling process alone (under ``jax.distributed``, call it from one process).

    For the default network sizes an export is a few hundred kB (HalfCheetah ~0.25 MB,
    Ant ~0.45 MB): the parameters three times over (Q, target, sampler), nothing else.
    """
    learner = _learner_of(state, "export_learner")
    if np.ndim(state.step):
        raise ValueError(f"export_learner takes one learner; this state has leading axes "
                         f"{tuple(np.shape(state.step))} (select one seed first)")
    arrays = _to_host({f: getattr(state, f) for f in learner.export_fields})

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        (tmp / LEARNER_FILE).write_bytes(flax.serialization.msgpack_serialize(arrays))
        _write_meta(tmp, state, metadata, has_extra=False, kind="learner")

    return _write_atomically(Path(path), write)


def _write_meta(directory: Path, state: Any, metadata: dict[str, Any] | None,
                has_extra: bool, kind: str = "state") -> None:
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "learner": learners.of_state(state).name,
        "config": state.config.to_dict(),
        "obs_dim": state.obs_dim,
        "action_dim": state.action_dim,
        "batch_shape": list(np.shape(state.step)),
        "has_extra": has_extra,
        "metadata": metadata or {},
    }
    (directory / META_FILE).write_text(json.dumps(meta, indent=2))


def _write_atomically(path: Path, write) -> Path:
    """Run `write(tmp)` on a hidden sibling directory of `path`, then rename it into place
    (replacing an earlier checkpoint at `path`), so that `path` is always absent or
    complete."""
    path = path.absolute()
    _check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        write(tmp)
        _rename_into_place(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _rename_into_place(tmp: Path, path: Path) -> None:
    """Move the finished directory `tmp` to `path`, replacing what is there."""
    _fsync_dir(tmp)
    if path.exists():
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, path)
    _fsync_dir(path.parent)


def _check_replaceable(path: Path) -> None:
    """CheckpointError unless `path` is absent, an empty directory, or an earlier sqljax
    checkpoint: saving never deletes what sqljax did not write."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink():
        if not any(path.iterdir()):
            return
        try:
            meta = json.loads((path / META_FILE).read_text())
        except (OSError, ValueError):
            meta = None
        if isinstance(meta, dict) and meta.get("format") == FORMAT:
            return
        raise CheckpointError(f"refusing to save to {path}: it holds files that are not an sqljax "
                              "checkpoint (pick another path or move them away)")
    raise CheckpointError(f"refusing to save to {path}: it exists and is not a directory")


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
    if meta.get("kind", "state") == "learner":
        if not (path / LEARNER_FILE).is_file():
            raise CheckpointError(f"{path} is incomplete: {LEARNER_FILE} is missing")
    elif not (path / "state").is_dir():
        raise CheckpointError(f"{path} is incomplete: the state/ directory is missing")
    return meta


def load_checkpoint(path: str | os.PathLike) -> Any:
    """Restore the learner state saved at `path` (an `SQLState` for SQL, the checkpoint's
    learner otherwise), with its own config and sizes, as the same pytree types the
    learner's `init` makes (optax states included). A state saved with leading seed axes
    (a vmapped learner) comes back with the same axes."""
    meta = read_checkpoint_metadata(path)
    try:
        learner = learners.get(meta.get("learner"))
        config = learner.config_class.from_dict(meta["config"])
        obs_dim, action_dim = int(meta["obs_dim"]), int(meta["action_dim"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}/{META_FILE} has an invalid learner, config or sizes: "
                              f"{e}") from None
    batch_shape = tuple(int(n) for n in meta.get("batch_shape", []))
    if meta.get("kind", "state") == "learner":
        return _load_learner(Path(path), learner, config, obs_dim, action_dim)
    template = jax.eval_shape(lambda: _stacked_init(learner, config, obs_dim, action_dim,
                                                    batch_shape))
    like = flax.serialization.to_state_dict(template)
    try:
        restored = _restore_tree(Path(path).absolute() / "state", like)
    except Exception as e:  # orbax raises many types for damaged data
        raise CheckpointError(f"could not restore the state from {path}: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    state = flax.serialization.from_state_dict(template, restored)
    return jax.tree.map(jax.numpy.asarray, state)


def _load_learner(path: Path, learner, config: Any, obs_dim: int, action_dim: int) -> Any:
    """A full learner state from an export: stored arrays, fresh optimiser states (Adam's
    initial state does not depend on the parameters' values)."""
    fields = learner.export_fields
    fresh = learner.init(jax.random.PRNGKey(0), config, obs_dim, action_dim)
    try:
        stored = flax.serialization.msgpack_restore((path / LEARNER_FILE).read_bytes())
        like = {f: flax.serialization.to_state_dict(getattr(fresh, f)) for f in fields}
        if not isinstance(stored, dict) or set(stored) != set(fields):
            raise ValueError(f"expected the fields {', '.join(fields)}")
        for name in fields:
            want = jax.tree_util.tree_flatten_with_path(like[name])[0]
            got = jax.tree_util.tree_flatten_with_path(stored[name])[0]
            if [k for k, _ in want] != [k for k, _ in got]:
                raise ValueError(f"{name} has a different structure than the config's networks")
            for (keypath, w), (_, g) in zip(want, got):
                if np.shape(g) != np.shape(w) or np.asarray(g).dtype != np.asarray(w).dtype:
                    raise ValueError(f"{name}{jax.tree_util.keystr(keypath)} is {np.asarray(g).dtype}"
                                     f"{list(np.shape(g))}, expected {np.asarray(w).dtype}{list(np.shape(w))}")
    except Exception as e:  # msgpack raises several types for damaged data
        raise CheckpointError(f"could not restore the learner from {path}: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    parts = {f: jax.tree.map(jax.numpy.asarray, flax.serialization.from_state_dict(
        getattr(fresh, f), stored[f])) for f in fields}
    return fresh.replace(**parts)


def _stacked_init(learner, config: Any, obs_dim: int, action_dim: int,
                  batch_shape: tuple[int, ...]):
    """`init`'s state with leading axes `batch_shape` (e.g. (n_seeds,) for vmapped seeds)."""
    def make(key):
        return learner.init(key, config, obs_dim, action_dim)

    for _ in batch_shape:
        make = jax.vmap(make)
    keys = jax.random.split(jax.random.PRNGKey(0), int(np.prod(batch_shape, dtype=int)))
    return make(keys.reshape(batch_shape + (2,)))


def load_extra(path: str | os.PathLike, like: Any, partial: bool = False) -> Any:
    """Restore the `extra` pytree saved with a checkpoint, shaped and typed like `like`
    (arrays or jax.ShapeDtypeStruct leaves). ``partial``: `like` is a part of it (nested
    dicts with some of the saved keys), and only that part is read from disk."""
    meta = read_checkpoint_metadata(path)
    if not meta.get("has_extra"):
        raise CheckpointError(f"{path} holds no extra data")
    like_dict = flax.serialization.to_state_dict(like)
    try:
        restored = _restore_tree(Path(path).absolute() / "extra", like_dict, partial)
    except Exception as e:
        raise CheckpointError(f"could not restore extra data from {path}: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    out = flax.serialization.from_state_dict(like, restored)
    return jax.tree.map(jax.numpy.asarray, out)
