"""The run directory: one format for every command (train, bench, transfer, multigoal).

Layout::

    run.json               the run's settings (env, seed ids, base seed, steps, schedule,
                           devices), format tag ``sqljax-run-3`` (``sqljax-run-2``: a run
                           written before the carry held an exploration state; it resumes
                           with that state at zero)
    config.json            the learner's config, with the learner's name under "learner"
                           (none: SQL)
    seed{i}/metrics.csv    per seed: a row per log point, evaluation columns where due
    seed{i}/events.*       per seed: the same numbers as TensorBoard scalars
                           (both written by :mod:`sqljax.store.metrics_log`)
    checkpoints/step_*/    the last few checkpoints (``damaged_step_*``: set aside on resume)
    .lock                  the pid and host of the process writing the run (:func:`hold`)

A checkpoint stores seed position 0's learner as its main item (so
``sqljax.load_checkpoint(ckpt)`` returns a learner any single-learner tool takes) and the
whole stacked carry (learners, the filled part of the replay buffers, keys, counters;
leading seed axis) as its extra item; its metadata holds the run's counters.
Checkpoints are written atomically; half-written ones are never restored.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np

import sqljax
from sqljax import learners, seeding
from sqljax.store import RunError

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
LOCK_FILE = ".lock"
RUN_FORMAT = "sqljax-run-3"
#: Formats this version resumes: its own, and runs whose carry has no exploration state.
RESUMABLE_FORMATS = (RUN_FORMAT, "sqljax-run-2")
_OLD_FORMATS = ("sqljax-run", "sqljax-multi-seed-run")
_CKPT_RE = re.compile(r"^step_(\d+)$")
BASE_COLUMNS = ["step", "updates", "episodes", "episode_return", "episode_length",
                "eval_return", "eval_return_std", "eval_return_det", "eval_return_det_std"]


@dataclasses.dataclass
class RunSpec:
    """A run of N >= 1 seeds in lockstep.

    env_id: environment id (resolved). config: hyperparameters shared by the seeds (any
    learner's config; the learner is the one whose config it is).
    seed_ids: which seed indices run (seed i's key is fold_in(key(base_seed), i)).
    steps: env steps per seed. out: the run directory.
    eval_every, checkpoint_every, log_every: env steps between evaluations, checkpoints
    and metrics rows; 0 means never (a checkpoint and a row are still written at the
    end when the schedule is on). eval_episodes: per mode (stochastic, deterministic)
    and seed. eval_at_start: also evaluate the learners as they start, before the first
    env step (a metrics row and an evaluation at step 0; with ``init_from``, the
    pretrained learners on the new task). keep_checkpoints: how many stay on disk.
    devices: how many of ``jax.devices()`` to use (default all).
    init_from: a checkpoint or run directory to start the learners from (fine-tuning).
    """

    env_id: str
    config: Any
    seed_ids: tuple[int, ...]
    steps: int
    out: Path
    base_seed: int = 0
    eval_every: int = 10_000
    eval_episodes: int = 5
    eval_at_start: bool = False
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    log_every: int = 1_000
    progress: bool = True
    preset: str | None = None
    label: str | None = None
    devices: int | None = None
    init_from: str | None = None

    @property
    def n_seeds(self) -> int:
        return len(self.seed_ids)

    @property
    def periods(self) -> list[int]:
        """Env steps between metrics rows, evaluations and checkpoints, of those that are on."""
        return [e for e in (self.log_every, self.eval_every, self.checkpoint_every) if e > 0]

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("config")
        d["out"] = str(self.out)
        d["seed_ids"] = list(self.seed_ids)
        d["learner"] = learners.of_config(self.config).name
        d["format"] = RUN_FORMAT
        return d


def check_spec(spec: RunSpec) -> None:
    """RunError (one line) for a run that cannot run: a bad schedule, negative seeds, a
    batch larger than the replay or than what is stored before learning starts."""
    for name in ("steps", "eval_episodes", "keep_checkpoints"):
        if int(getattr(spec, name)) < 1:
            raise RunError(f"{name} must be >= 1, got {getattr(spec, name)}")
    for name in ("eval_every", "checkpoint_every", "log_every"):
        if int(getattr(spec, name)) < 0:
            raise RunError(f"{name} must be >= 0 (0: never), got {getattr(spec, name)}")
    if len(set(spec.seed_ids)) != len(spec.seed_ids) or min(spec.seed_ids, default=0) < 0:
        raise RunError(f"seed indices must be distinct and >= 0, got {list(spec.seed_ids)}")
    if spec.base_seed < 0:
        raise RunError(f"the base seed must be >= 0, got {spec.base_seed}")
    cfg, capacity = spec.config, min(spec.config.replay_size, spec.steps)
    if cfg.learning_starts >= spec.steps:  # no update: the batch size does not matter
        return
    if cfg.batch_size > capacity:
        raise RunError(f"batch_size {cfg.batch_size} is larger than the replay capacity {capacity} "
                       "(the smaller of replay_size and steps)")
    if cfg.learning_starts < cfg.batch_size:
        raise RunError(f"learning_starts {cfg.learning_starts} is below batch_size "
                       f"{cfg.batch_size}: the first batches would repeat a few transitions; "
                       f"set learning_starts >= {cfg.batch_size}")


def due(step: int, every: int, last: int) -> bool:
    """Whether a schedule of period ``every`` (0: off) fires at ``step`` of ``last``."""
    return every > 0 and (step % every == 0 or step == last)


def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run.json of a run directory; RunError (one line) if it is not one, or was
    written by an earlier version of sqljax."""
    run_dir = Path(run_dir)
    f = run_dir / RUN_FILE
    if (run_dir / "bench.json").is_file() and not f.is_file():
        raise RunError(f"{run_dir} was written by an earlier version of sqljax (bench.json); "
                       "it cannot be resumed or read by this one")
    if not f.is_file() or not (run_dir / CONFIG_FILE).is_file():
        raise RunError(f"{run_dir} is not a training run (no {RUN_FILE} / {CONFIG_FILE}); pass "
                       "the directory a run was started with (--out)")
    try:
        run = json.loads(f.read_text())
    except ValueError as e:
        raise RunError(f"{f} is unreadable ({e})") from None
    fmt = run.get("format") if isinstance(run, dict) else None
    if fmt in _OLD_FORMATS:
        raise RunError(f"{run_dir} was written by an earlier version of sqljax ({fmt}); it "
                       "cannot be resumed or read by this one")
    if fmt not in RESUMABLE_FORMATS:
        raise RunError(f"{f} is not an sqljax run file")
    return run


def read_config(run_dir: str | os.PathLike) -> Any:
    """The config of a run directory, of the learner config.json names (none: SQL)."""
    return learners.config_from_dict(json.loads((Path(run_dir) / CONFIG_FILE).read_text()))


def holds_run(out: Path) -> bool:
    return any((out / name).exists() for name in (RUN_FILE, "bench.json", CHECKPOINT_DIR))


def _settings(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("env_id", "seed_ids", "base_seed", "steps", "eval_every", "eval_episodes",
            "checkpoint_every", "log_every", "init_from")
    return {**{k: run.get(k) for k in keys}, "eval_at_start": bool(run.get("eval_at_start", False))}


def check_new(spec: RunSpec) -> bool:
    """Whether ``spec.out`` may take a new run: it holds none (False), or it holds this
    run's settings and no checkpoint, a run stopped before its first one, which then
    starts again (True). RunError (one line) otherwise."""
    out = spec.out
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a directory; choose another --out")
    if not holds_run(out):
        return False
    if checkpoint_dirs(out, complete=False):
        raise RunError(f"{out} already holds a run; continue it with --resume {out}, or choose "
                       "another directory with --out")
    try:
        same = (_settings(read_run(out)) == _settings(spec.to_json())
                and read_config(out) == spec.config)
    except (RunError, OSError, ValueError):
        same = False
    if not same:
        raise RunError(f"{out} holds a run with other settings that stopped before its first "
                       "checkpoint; choose another --out, or delete it to start over")
    return True


@contextlib.contextmanager
def hold(out: Path):
    """Hold the run directory ``out`` (created if need be) while the block runs: a lock
    file naming this process, so that a second process that would write there gets a
    RunError (one line) naming the holder. A lock left by a dead process on this host is
    taken over. Under ``jax.distributed`` process 0 holds it for all."""
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a directory; choose another --out")
    if jax.process_index() != 0:
        yield
        return
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    lock, me = out / LOCK_FILE, {"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                                 "command": " ".join(sys.argv)}
    tmp = out / f"{LOCK_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(me))
    try:
        for _ in range(2):
            try:
                os.link(tmp, lock)  # atomic, and the lock is complete when it appears
                break
            except FileExistsError:
                holder = _read_lock(lock)
                if _alive(holder):
                    raise RunError(
                        f"{out} is in use by process {holder['pid']} on {holder['host']} (since "
                        f"{holder.get('since')}: {holder.get('command')}); wait for it or stop it "
                        f"(if it is gone, delete {lock})") from None
                lock.unlink(missing_ok=True)  # a stale lock
        else:
            raise RunError(f"could not lock {out}")
    finally:
        tmp.unlink(missing_ok=True)
    try:
        yield
    finally:
        if _read_lock(lock).get("pid") == os.getpid():
            lock.unlink(missing_ok=True)
        if created and not any(out.iterdir()):  # bad input stopped it: leave no trace
            out.rmdir()


def _read_lock(lock: Path) -> dict[str, Any]:
    try:
        holder = json.loads(lock.read_text())
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def _alive(holder: dict[str, Any]) -> bool:
    """Whether a lock's holder may still run: a live pid on this host, or another host's."""
    if "pid" not in holder:
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_metrics(run_dir: str | os.PathLike, seed_id: int) -> list[dict[str, str]]:
    """Rows of ``seed{seed_id}/metrics.csv`` (strings; empty where not logged)."""
    with open(Path(run_dir) / f"seed{seed_id}" / METRICS_FILE, newline="") as f:
        return list(csv.DictReader(f))


def prepare(spec: RunSpec, resume: bool, n_devices: int, platform: str) -> None:
    """Write run.json (and for a new run config.json); process 0 only."""
    out = spec.out
    if jax.process_index() != 0:
        return
    if not resume:
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps(learners.tagged_config(spec.config), indent=2) + "\n")
    run = dict(spec.to_json(), n_devices=n_devices, platform=platform,
               processes=jax.process_count())
    (out / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")


# ------------------------------------------------------------------------------ checkpoints

def checkpoint_dirs(run_dir: str | os.PathLike, complete: bool = True) -> list[tuple[int, Path]]:
    """(step, path) of a run's checkpoints, oldest first: with ``complete``, those whose
    metadata reads (a damaged one is skipped), else every ``step_*`` directory. Writes in
    progress (hidden temp dirs) are never listed."""
    root = Path(run_dir) / CHECKPOINT_DIR
    return sorted((int(m.group(1)), p) for p in (root.iterdir() if root.is_dir() else ())
                  if (m := _CKPT_RE.match(p.name)) and p.is_dir() and (not complete or _complete(p)))


def _complete(ckpt: Path) -> bool:
    try:
        sqljax.read_checkpoint_metadata(ckpt)
        return True
    except sqljax.CheckpointError:
        return False


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = checkpoint_dirs(run_dir)
    return found[-1][1] if found else None


def checkpoint_path(run_dir: Path, env_steps: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{env_steps:09d}"


def set_aside(ckpt: Path) -> Path:
    """Rename a damaged checkpoint to ``damaged_<name>`` beside it (kept, never listed or
    pruned, so that a new checkpoint can take its name); returns the new path."""
    dest, n = ckpt.with_name(f"damaged_{ckpt.name}"), 1
    while dest.exists():
        dest, n = ckpt.with_name(f"damaged_{ckpt.name}.{n}"), n + 1
    os.rename(ckpt, dest)
    return dest


_SEED_DIR_RE = re.compile(r"^seed(\d+)$")


def seed_learners(path: str | os.PathLike) -> dict[int, Path]:
    """The learner checkpoints of a directory of ``seed{i}/`` exports (the zoo layout),
    by seed index; empty if ``path`` is not such a directory."""
    path = Path(path)
    if not path.is_dir() or (path / "sqljax.json").exists() or (path / RUN_FILE).exists():
        return {}
    found = {}
    for p in path.iterdir():
        m = _SEED_DIR_RE.match(p.name)
        if m and (p / "sqljax.json").exists():
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint directory, a run directory's latest complete checkpoint (a later
    damaged one is named on stderr), or the lowest seed's learner of a directory of
    ``seed{i}/`` exports (:func:`seed_learners`)."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path} does not exist")
    seeds = seed_learners(path)
    if seeds:
        path = next(iter(seeds.values()))
    if (path / "sqljax.json").exists():
        try:
            sqljax.read_checkpoint_metadata(path)
        except sqljax.CheckpointError as e:
            raise RunError(str(e)) from None
        return path
    if (path / CHECKPOINT_DIR).is_dir() or (path / RUN_FILE).exists():
        ckpt = latest_checkpoint(path)
        for _, p in checkpoint_dirs(path, complete=False):
            if ckpt is None or p.name > ckpt.name:
                print(f"note: skipping the damaged checkpoint {p}", file=sys.stderr)
        if ckpt is None:
            raise RunError(f"{path} holds no complete checkpoint (the run stopped before its first "
                           "checkpoint was written)")
        return ckpt
    raise RunError(f"{path} is neither an sqljax checkpoint, a run directory nor a directory "
                   "of seed{i}/ learners")


def prune(run_dir: Path, keep: int) -> None:
    """Keep the last ``keep`` complete checkpoints; drop leftovers of killed writes."""
    root = Path(run_dir) / CHECKPOINT_DIR
    for _, p in checkpoint_dirs(run_dir)[:-max(keep, 1)]:
        shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".step_*"):
        shutil.rmtree(p, ignore_errors=True)


def run_counters(path: Path) -> dict[str, Any]:
    """The counters of a run checkpoint; RunError if it is not one of this format."""
    counters = sqljax.read_checkpoint_metadata(path).get("metadata", {})
    if counters.get("format") in _OLD_FORMATS:
        raise RunError(f"{path} was written by an earlier version of sqljax; it cannot be resumed "
                       "(its learner still loads with sqljax.load_checkpoint, e.g. for --init-from)")
    if counters.get("format") not in RESUMABLE_FORMATS:
        raise RunError(f"{path} is a learner checkpoint, not a training-run checkpoint (no replay "
                       "or counters); use --init-from to start a new run from it")
    return counters


def _map_replay(carry, fn, *others):
    """``carry`` with ``fn`` applied to each replay array (axes: seed, 1, slot, ...)."""
    exp = jax.tree.map(fn, carry.buffer.experience, *(o.buffer.experience for o in others))
    return carry.replace(buffer=carry.buffer.replace(experience=exp))


def save_carry(path: Path, carry, counters: dict[str, Any]) -> None:
    """Write a stacked carry (sharded; every process takes part), its replay cut to the
    filled part, with seed position 0's learner as the main item."""
    n = int(np.asarray(seeding.to_host(jax.vmap(sqljax.replay.size)(carry.buffer))).reshape(-1)[0])
    host = seeding.to_host(_map_replay(carry, lambda x: x[:, :, :n]))
    sqljax.save_checkpoint(path, seeding.unstack(host.agent, 0), extra={"carry": host},
                           metadata=dict(counters, format=RUN_FORMAT, replay_size=n))


def load_carry(path: Path, like, n: int):
    """The stacked carry saved at ``path`` (numpy, on the host): ``like`` (abstract) with
    the replay cut to the ``n`` saved transitions per seed. A carry of the earlier format
    (no exploration state) comes back with the exploration state at zero."""
    cut = _map_replay(like, lambda x: jax.ShapeDtypeStruct(x.shape[:2] + (n,) + x.shape[3:],
                                                           x.dtype))
    try:
        if run_counters(path).get("format") == RUN_FORMAT:
            return jax.device_get(sqljax.load_extra(path, {"carry": cut})["carry"])
        fields = flax.serialization.to_state_dict(cut)
        zeros = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), cut.explore)
        stored = sqljax.load_extra(path, {"carry": {k: v for k, v in fields.items() if k != "explore"}})
        fields = dict(stored["carry"], explore=flax.serialization.to_state_dict(zeros))
        return jax.device_get(flax.serialization.from_state_dict(cut, fields))
    except sqljax.CheckpointError as e:
        raise sqljax.CheckpointError(f"cannot read {path}: {e} (damaged, or written with other "
                                     "settings, seeds or environment?)") from None


def load_agents(path: Path, like):
    """The stacked learners (numpy, on the host) of the carry saved at ``path``, read
    without the replay buffers: ``like`` (abstract) is the carry's ``agent``."""
    part = {"carry": {"agent": flax.serialization.to_state_dict(like)}}
    try:
        got = sqljax.load_extra(path, part, partial=True)["carry"]["agent"]
    except sqljax.CheckpointError as e:
        raise sqljax.CheckpointError(f"cannot read {path}: {e} (damaged, or written with other "
                                     "settings or seeds?)") from None
    return jax.device_get(flax.serialization.from_state_dict(like, got))


def restore_carry(path: Path, like) -> tuple[Any, dict[str, Any]]:
    """The stacked carry (host) and counters of a run checkpoint, its replay laid into
    buffers of ``like``'s capacity."""
    counters = run_counters(path)
    n, cap = int(counters["replay_size"]), int(like.buffer.experience.obs.shape[-2])
    if n > cap:
        raise RunError(f"the checkpoint holds {n} transitions per seed, more than this run's "
                       f"replay capacity {cap}; resume with at least as many --steps as before")
    saved = load_carry(path, like, n)

    def grow(like, part):
        full = np.zeros(like.shape, like.dtype)
        full[:, :, :n] = part
        return full

    carry, buf = _map_replay(like, grow, saved), saved.buffer
    if cap == int(counters["replay_capacity"]):
        index, full = buf.current_index, buf.is_full
    else:
        index = np.full(np.shape(buf.current_index), n % cap, np.int32)
        full = np.full(np.shape(buf.current_index), n == cap)
    return saved.replace(buffer=buf.replace(experience=carry.buffer.experience,
                                            current_index=index, is_full=full)), counters


def diverged_message(bad: Sequence[tuple[int, int, int]], what: str, stopped_at: int,
                     last_ckpt: Path | None, run_dir: Path) -> str:
    """The one line of a NonFiniteError. ``bad``: (seed id, env step, update) of each
    seed's first non-finite update (the update count including it)."""
    sid, step, update = bad[0]
    others = "".join(f"; seed {s} at env step {e}, update {u}" for s, e, u in bad[1:])
    keep = (f"the last good checkpoint is {last_ckpt} (continue with --resume {run_dir})"
            if last_ckpt is not None else "no checkpoint was written before it")
    return (f"training diverged at env step {step} (seed {sid}, update {update}: {what}{others}); "
            f"stopped at step {stopped_at}; {keep}")
