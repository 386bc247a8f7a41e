"""The run directory: one format for every command (train, bench, transfer, multigoal).

Layout::

    run.json               the run's settings (env, seed ids, base seed, steps, schedule,
                           devices), format tag ``sqljax-run-2``
    config.json            the SQLConfig
    seed{i}/metrics.csv    per seed: a row per log point, evaluation columns where due
    seed{i}/events.*       per seed: the same numbers as TensorBoard scalars
    checkpoints/step_*/    the last few checkpoints

A checkpoint stores seed position 0's learner as its main item (so
``sqljax.load_checkpoint(ckpt)`` returns a learner any single-learner tool takes) and the
whole stacked carry (learners, the filled part of the replay buffers, keys, counters;
leading seed axis) as its extra item; its metadata holds the run's counters.
Checkpoints are written atomically; half-written ones are never restored.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

import sqljax
from sqljax import seeding
from sqljax.loops import RunError

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
RUN_FORMAT = "sqljax-run-2"
_OLD_FORMATS = ("sqljax-run", "sqljax-multi-seed-run")
_CKPT_RE = re.compile(r"^step_(\d+)$")
BASE_COLUMNS = ["step", "updates", "episodes", "episode_return", "episode_length",
                "eval_return", "eval_return_std", "eval_return_det", "eval_return_det_std"]


@dataclasses.dataclass
class RunSpec:
    """A run of N >= 1 seeds in lockstep.

    env_id: environment id (resolved). config: hyperparameters shared by the seeds.
    seed_ids: which seed indices run (seed i's key is fold_in(key(base_seed), i)).
    steps: env steps per seed. out: the run directory.
    eval_every, checkpoint_every, log_every: env steps between evaluations, checkpoints
    and metrics rows; 0 means never (a checkpoint and a row are still written at the
    end when the schedule is on). eval_episodes: per mode (stochastic, deterministic)
    and seed. keep_checkpoints: how many stay on disk.
    devices: how many of ``jax.devices()`` to use (default all).
    init_from: a checkpoint or run directory to start the learners from (fine-tuning).
    """

    env_id: str
    config: sqljax.SQLConfig
    seed_ids: tuple[int, ...]
    steps: int
    out: Path
    base_seed: int = 0
    eval_every: int = 10_000
    eval_episodes: int = 5
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
        d["format"] = RUN_FORMAT
        return d


def check_schedule(spec: RunSpec) -> None:
    """RunError (one line) for a schedule that cannot run."""
    for name in ("steps", "eval_episodes", "keep_checkpoints"):
        if int(getattr(spec, name)) < 1:
            raise RunError(f"{name} must be >= 1, got {getattr(spec, name)}")
    for name in ("eval_every", "checkpoint_every", "log_every"):
        if int(getattr(spec, name)) < 0:
            raise RunError(f"{name} must be >= 0 (0: never), got {getattr(spec, name)}")
    if len(set(spec.seed_ids)) != len(spec.seed_ids) or min(spec.seed_ids, default=0) < 0:
        raise RunError(f"seed indices must be distinct and >= 0, got {list(spec.seed_ids)}")


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
    if fmt != RUN_FORMAT:
        raise RunError(f"{f} is not an sqljax run file")
    return run


def read_config(run_dir: str | os.PathLike) -> sqljax.SQLConfig:
    return sqljax.SQLConfig.from_dict(json.loads((Path(run_dir) / CONFIG_FILE).read_text()))


def holds_run(out: Path) -> bool:
    return any((out / name).exists() for name in (RUN_FILE, "bench.json", CHECKPOINT_DIR))


def read_metrics(run_dir: str | os.PathLike, seed_id: int) -> list[dict[str, str]]:
    """Rows of ``seed{seed_id}/metrics.csv`` (strings; empty where not logged)."""
    with open(Path(run_dir) / f"seed{seed_id}" / METRICS_FILE, newline="") as f:
        return list(csv.DictReader(f))


def prepare(spec: RunSpec, resume: bool, n_devices: int, platform: str) -> None:
    """Create (or, on resume, update) run.json and config.json (process 0 only)."""
    out = spec.out
    if jax.process_index() != 0:
        return
    if not resume:
        if holds_run(out):
            raise RunError(f"{out} already holds a run; continue it with --resume {out}, or choose "
                           "another directory with --out")
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps(spec.config.to_dict(), indent=2) + "\n")
    run = dict(spec.to_json(), n_devices=n_devices, platform=platform,
               processes=jax.process_count())
    (out / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")


# ------------------------------------------------------------------------------ metrics

def truncate_csv(path: Path, step: int, columns: Sequence[str]) -> None:
    """Keep a metrics file's rows up to env step ``step`` (what the checkpoint resumed from
    saw), dropping later rows and a torn last line, under the header ``columns``: cells
    are matched by column name, so a run resumed by a version that logs other metrics
    keeps its history (columns it no longer logs are dropped, new ones start empty)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header = rows[0]
    kept = [dict(zip(header, r)) for r in rows[1:]
            if len(r) == len(header) and r[0].isdigit() and int(r[0]) <= step]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
    os.replace(tmp, path)


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)) and not math.isfinite(float(v)):
        return "nan" if math.isnan(float(v)) else str(float(v))
    return v


class MetricsLog:
    """Per seed: ``seed{i}/metrics.csv`` (a row per log point, flushed at every write) and
    a TensorBoard event file with the same numbers."""

    def __init__(self, run_dir: Path, seed_ids: Sequence[int], columns: list[str],
                 resume_step: int | None):
        from tensorboardX import SummaryWriter

        self.columns = columns
        self.files, self.writers, self.boards = {}, {}, {}
        for sid in seed_ids:
            d = run_dir / f"seed{sid}"
            d.mkdir(parents=True, exist_ok=True)
            path = d / METRICS_FILE
            if resume_step is not None and path.exists():
                truncate_csv(path, resume_step, columns)
            new = not path.exists() or path.stat().st_size == 0
            f = open(path, "a", newline="")
            w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            if new:
                w.writeheader()
            self.files[sid], self.writers[sid] = f, w
            self.boards[sid] = SummaryWriter(logdir=str(d), purge_step=resume_step, flush_secs=30)

    def write(self, rows: dict[int, dict[str, Any]]) -> None:
        """One row per seed id (``rows``: seed id -> column -> value)."""
        for sid, row in rows.items():
            self.writers[sid].writerow({k: _cell(v) for k, v in row.items()})
            step = int(row["step"])
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self.boards[sid].add_scalar(k, v, step)
        for f in self.files.values():
            f.flush()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        for b in self.boards.values():
            b.close()


# ------------------------------------------------------------------------------ checkpoints

def checkpoint_dirs(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints of a run, oldest first. Half-written
    ones (hidden temp dirs, or dirs without complete metadata) are skipped."""
    root = Path(run_dir) / CHECKPOINT_DIR
    return sorted((int(m.group(1)), p) for p in (root.iterdir() if root.is_dir() else ())
                  if (m := _CKPT_RE.match(p.name)) and p.is_dir() and _complete(p))


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


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint directory, or a run directory's latest complete checkpoint."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path} does not exist")
    if (path / "sqljax.json").exists():
        try:
            sqljax.read_checkpoint_metadata(path)
        except sqljax.CheckpointError as e:
            raise RunError(str(e)) from None
        return path
    if (path / CHECKPOINT_DIR).is_dir() or (path / RUN_FILE).exists():
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise RunError(f"{path} holds no complete checkpoint (the run stopped before its first "
                           "checkpoint was written)")
        return ckpt
    raise RunError(f"{path} is neither an sqljax checkpoint nor a run directory")


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
    if counters.get("format") != RUN_FORMAT:
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
    the replay cut to the ``n`` saved transitions per seed."""
    cut = _map_replay(like, lambda x: jax.ShapeDtypeStruct(x.shape[:2] + (n,) + x.shape[3:],
                                                           x.dtype))
    try:
        return jax.device_get(sqljax.load_extra(path, {"carry": cut})["carry"])
    except sqljax.CheckpointError as e:
        raise RunError(f"cannot read {path}: {e} (was it written with other settings, seeds or "
                       "environment?)") from None


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
