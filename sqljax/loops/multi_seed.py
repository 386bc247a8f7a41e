"""N seeds in lockstep: learner states and replay buffers stacked on a leading seed axis,
one compiled program for all of them, the seed axis sharded over the devices.

Two drivers share the run's bookkeeping (per-seed ``metrics.csv``, evaluation, checkpoints
and resume):

* **gymnasium environments** (:func:`train` with any id ``make_env`` accepts): one env
  per seed, stepped on the host. Per env step the host makes exactly one device call,
  ``jax.vmap`` over seeds of the single-run driver's step
  (:func:`sqljax.loops.host_loop.make_step_fns`): store each seed's transition, run
  ``updates_per_step`` updates on replay samples once ``learning_starts`` transitions are
  stored, and sample the next actions. Only the actions (N, A) come back. An env that
  ends an episode is reset on the host and its transition keeps the true final
  observation as ``next_obs``; only true terminations are stored as ``terminated`` (a
  time-limit truncation bootstraps).
* **JAX-native environments** (``MultiGoal``; see :data:`JAX_NATIVE_ENVS`): the compiled
  ``lax.scan`` loop of :mod:`sqljax.loops.scan_loop`, ``jax.vmap``-ed over the seeds'
  keys; the host sees one call per chunk of steps.

Seeds. Seed ``i`` (an index, not a count) gets the key
``fold_in(jax.random.key(base_seed), i)`` (:func:`seed_keys`), from which its learner
init, acting and replay noise, evaluation noise and env seeds derive; seed ``i`` of an
N-seed run computes what a run of seed ``i`` alone computes (up to float rounding of
batched kernels), whatever N is. ``seed_ids`` picks which indices a run trains, so a
study of seeds 0-7 extends with seeds 8-15.

Devices. Every stacked leaf carries ``NamedSharding(mesh, PartitionSpec("seed"))`` over a
one-axis ``Mesh`` of ``jax.devices()`` (:func:`seed_mesh`): each device holds N / D seeds
and the seeds never communicate. N must be divisible by the number of devices D. Across
hosts, call ``jax.distributed.initialize()`` first: ``jax.devices()`` is then global,
each process steps the gymnasium envs of the seeds its devices hold, and process 0
writes checkpoints (the run directory must be on a shared file system).

Fine-tuning. ``MultiSeedSpec.init_from`` (a checkpoint, or a run directory's latest one)
starts every seed from a pretrained learner with ``sqljax.finetune_state``: Q, target
and sampler parameters copied, optimisers, step and replay fresh, a new noise bank
from the seed's key (:func:`load_init_states`). A multi-seed checkpoint pairs the
seeds: seed ``i`` starts from the pretrained seed ``i``; a single learner (e.g. from
``experiments.train``) starts every seed. Gymnasium environments only.

Checkpoints. A run checkpoint stores the first seed's learner as its main item
(``sqljax.load_checkpoint(ckpt)`` returns that seed, usable by any single-learner tool)
and the whole stacked carry (learners, filled part of the replay buffers, keys, env
states; not the per-metric sums, which are zero at every checkpoint) as its extra item;
:func:`load_seed_states` returns the stacked learners.

Layout of a run directory::

    bench.json             the run's settings (env, seeds, steps, schedule, devices)
    config.json            the SQLConfig
    seed{i}/metrics.csv    per seed: a row per log point, evaluation columns where due
    checkpoints/step_*/    the last few checkpoints
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import sqljax
from sqljax import replay
from sqljax.envs.gym_adapter import make_env, resolve_env_id
from sqljax.loops import host_loop, scan_loop

__all__ = [
    "JAX_NATIVE_ENVS", "MultiSeedSpec", "RunError", "NonFiniteError", "SEED_AXIS",
    "check_seed_count", "checkpoint_dirs", "is_jax_native", "latest_checkpoint",
    "load_init_states", "load_run_state", "load_seed_states", "local_seed_positions",
    "read_metrics", "read_run", "seed_keys",
    "seed_mesh", "seed_sharding", "to_global", "to_host", "train", "unstack",
]

SEED_AXIS = "seed"
RUN_FILE = "bench.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = host_loop.CHECKPOINT_DIR
RUN_FORMAT = "sqljax-multi-seed-run"
_EVAL_TAG = 0xE7A1
_RESET_TAG = 0x5EED

RunError = host_loop.RunError
NonFiniteError = host_loop.NonFiniteError

#: gymnasium ids whose environment also exists as pure JAX functions (module with
#: ``reset(key, params)``, ``step(key, state, action, params)``, ``OBS_DIM``,
#: ``ACTION_DIM``, ``DEFAULT_PARAMS``); these train with the compiled scan loop.
JAX_NATIVE_ENVS: dict[str, str] = {"sqljax/MultiGoal-v0": "sqljax.envs.multigoal"}


# ------------------------------------------------------------------------------ keys

def seed_keys(base_seed: int, seed_ids: Sequence[int]) -> np.ndarray:
    """Raw uint32 keys (len(seed_ids), 2): row j is ``fold_in(key(base_seed), seed_ids[j])``.

    Seed i's key depends only on (base_seed, i), never on how many seeds run with it.
    """
    base = jax.random.key(int(base_seed))
    ids = jnp.asarray(list(seed_ids), jnp.uint32)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(ids)
    return np.asarray(jax.random.key_data(keys))


def _reset_seed(base_seed: int, seed_id: int, env_steps: int) -> int:
    """The env seed of seed ``seed_id``'s first reset after env step ``env_steps``."""
    return int(np.random.SeedSequence([base_seed, seed_id, _RESET_TAG, env_steps]).generate_state(1)[0])


def _eval_seeds(base_seed: int, seed_id: int, eval_index: int, n: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(
        [base_seed, seed_id, _EVAL_TAG, eval_index]).generate_state(n)]


# ------------------------------------------------------------------------------ devices

def seed_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named ``"seed"`` over ``devices`` (default: all, ``jax.devices()``)."""
    devs = list(jax.devices() if devices is None else devices)
    if not devs:
        raise RunError("no devices to run on")
    return Mesh(np.asarray(devs, dtype=object), (SEED_AXIS,))


def seed_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (seed) axis split over the mesh, the rest of each array whole."""
    return NamedSharding(mesh, PartitionSpec(SEED_AXIS))


def check_seed_count(n_seeds: int, n_devices: int) -> None:
    """RunError unless ``n_seeds`` >= 1 splits evenly over ``n_devices``."""
    if n_seeds < 1:
        raise RunError(f"the number of seeds must be >= 1, got {n_seeds}")
    if n_seeds % n_devices:
        lower = n_seeds - n_seeds % n_devices
        options = ", ".join(str(k) for k in (lower, lower + n_devices) if k >= 1)
        raise RunError(f"{n_seeds} seeds cannot be split evenly over {n_devices} devices; use a "
                       f"multiple of {n_devices} seeds (e.g. {options}), or fewer devices "
                       "(CUDA_VISIBLE_DEVICES, or --devices)")


def local_seed_positions(sharding: NamedSharding, n_seeds: int) -> list[int]:
    """Positions (0..n-1) along the seed axis held by this process's devices."""
    rows: set[int] = set()
    for index in sharding.addressable_devices_indices_map((n_seeds,)).values():
        rows.update(range(*index[0].indices(n_seeds)))
    return sorted(rows)


def to_global(tree: Any, sharding: NamedSharding) -> Any:
    """Stacked arrays (host or device; leading seed axis) -> arrays sharded over seeds
    (or placed as ``sharding`` says, e.g. replicated).

    With several processes every process passes the full arrays (rows of seeds it does
    not hold may be anything) and contributes the rows its devices hold."""
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx] if x.ndim else x)

    return jax.tree.map(put, tree)


def to_host(tree: Any) -> Any:
    """Sharded arrays -> full numpy arrays on every process (an all-gather across hosts)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def _local_rows(x: jax.Array, n_seeds: int) -> np.ndarray:
    """This process's rows of a seed-sharded array, in a full-size host array (no
    communication; rows of other processes' seeds are zero)."""
    if jax.process_count() == 1:
        return np.asarray(x)
    out = np.zeros(x.shape, x.dtype)
    for shard in x.addressable_shards:
        out[shard.index] = np.asarray(shard.data)
    return out


def unstack(tree: Any, i: int) -> Any:
    """Position ``i`` of every leaf of a stacked pytree (e.g. one seed's SQLState)."""
    return jax.tree.map(lambda x: x[i], tree)


# ------------------------------------------------------------------------------ the spec

@dataclasses.dataclass
class MultiSeedSpec:
    """A multi-seed run.

    env_id: gymnasium id (resolved). config: hyperparameters shared by the seeds.
    seed_ids: which seed indices run (seed i's key is fold_in(key(base_seed), i)).
    steps: env steps per seed. out: the run directory.
    eval_every: env steps between evaluations (0: never). eval_episodes: per mode and
    seed (stochastic and deterministic). checkpoint_every: env steps between checkpoints
    (0: none), one is also written at the end. log_every: env steps between metrics rows
    (the JAX-native loop's chunk is the gcd of log_every, eval_every, checkpoint_every
    and steps).
    devices: how many of ``jax.devices()`` to use (default all).
    init_from: a checkpoint or run directory to start the learners from (fine-tuning;
    see :func:`load_init_states`); ``config`` then keeps its network sizes.
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

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("config")
        d["out"] = str(self.out)
        d["seed_ids"] = list(self.seed_ids)
        d["format"] = RUN_FORMAT
        return d


def is_jax_native(env_id: str) -> bool:
    return resolve_env_id(env_id) in JAX_NATIVE_ENVS


def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The bench.json of a multi-seed run directory; RunError if it is not one."""
    run_dir = Path(run_dir)
    f = run_dir / RUN_FILE
    if not f.is_file() or not (run_dir / CONFIG_FILE).is_file():
        raise RunError(f"{run_dir} is not a multi-seed run (no {RUN_FILE} / {CONFIG_FILE}); pass "
                       "the directory a run was started with (--out)")
    try:
        run = json.loads(f.read_text())
    except ValueError as e:
        raise RunError(f"{f} is unreadable ({e})") from None
    if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
        raise RunError(f"{f} is not an sqljax multi-seed run file")
    return run


def read_metrics(run_dir: str | os.PathLike, seed_id: int) -> list[dict[str, str]]:
    """Rows of ``seed{seed_id}/metrics.csv`` (strings; empty where not logged)."""
    with open(Path(run_dir) / f"seed{seed_id}" / METRICS_FILE, newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------ logging

class _SeedLogs:
    """One metrics.csv per local seed, a row per log point, flushed."""

    def __init__(self, run_dir: Path, seed_ids: Sequence[int], columns: list[str],
                 resume_step: int | None):
        self.columns = columns
        self.files, self.writers = {}, {}
        for sid in seed_ids:
            d = run_dir / f"seed{sid}"
            d.mkdir(parents=True, exist_ok=True)
            path = d / METRICS_FILE
            if resume_step is not None and path.exists():
                host_loop.truncate_csv(path, resume_step, columns)
            new = not path.exists() or path.stat().st_size == 0
            f = open(path, "a", newline="")
            w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            if new:
                w.writeheader()
            self.files[sid], self.writers[sid] = f, w

    def write(self, sid: int, row: dict[str, Any]) -> None:
        self.writers[sid].writerow({k: _cell(v) for k, v in row.items()})

    def flush(self) -> None:
        for f in self.files.values():
            f.flush()

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)) and not math.isfinite(float(v)):
        return "nan" if math.isnan(float(v)) else str(float(v))
    return v


def _mean_or_none(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


# ------------------------------------------------------------------------------ checkpoints

# The run directory's checkpoints/step_N layout is the single-run driver's.
checkpoint_dirs = host_loop.checkpoint_dirs
latest_checkpoint = host_loop.latest_checkpoint


def _prune(run_dir: Path, keep: int) -> None:
    host_loop._prune(Path(run_dir), max(keep, 1))


def _filled(carry) -> int:
    """Transitions stored per seed (the same for every seed: they run in lockstep)."""
    size = np.asarray(to_host(jax.vmap(replay.size)(carry.buffer)))
    return int(size.reshape(-1)[0])


def _save(path: Path, carry, counters: dict[str, Any], kind: str) -> None:
    """The stacked carry (replay cut to its filled part, without the per-metric sums, which
    are zero at a sync point and would tie the checkpoint to the list of logged metrics)
    as the extra item, seed 0's learner as the main item."""
    n = _filled(carry)
    cap = int(carry.buffer.experience.obs.shape[-2])
    cut = _without_metric_sums(carry.replace(buffer=carry.buffer.replace(
        experience=jax.tree.map(lambda x: x[:, :, :n], carry.buffer.experience))))
    host = to_host(cut)
    meta = dict(counters, format=RUN_FORMAT, kind=kind, replay_size=n, replay_capacity=cap)
    if jax.process_index() == 0:
        sqljax.save_checkpoint(path, unstack(host.agent, 0), extra={"carry": host}, metadata=meta)


def _restore(path: Path, empty_like, sharding: NamedSharding) -> tuple[Any, dict[str, Any]]:
    """A stacked carry shaped like ``empty_like`` (abstract, full replay capacity) from a
    run checkpoint, sharded; and the checkpoint's counters."""
    meta = sqljax.read_checkpoint_metadata(path)
    counters = meta.get("metadata", {})
    if counters.get("format") != RUN_FORMAT:
        raise RunError(f"{path} is not a multi-seed run checkpoint")
    n, saved_cap = int(counters["replay_size"]), int(counters["replay_capacity"])
    exp_like = empty_like.buffer.experience
    cap = int(exp_like.obs.shape[-2])
    if n > cap:
        raise RunError(f"{path} holds {n} transitions per seed, more than this run's replay "
                       f"capacity {cap}; resume with at least as many --steps as before")
    try:
        saved = _load_carry(path, _cut_like(empty_like, n))
    except sqljax.CheckpointError as e:
        raise RunError(f"cannot resume from {path}: {e} (was it written with other settings, "
                       "seeds or environment?)") from None

    def grow(like, part):
        full = np.zeros(like.shape, like.dtype)
        full[:, :, :n] = part
        return full

    experience = jax.tree.map(grow, exp_like, saved.buffer.experience)
    if cap == saved_cap:
        index, full = saved.buffer.current_index, saved.buffer.is_full
    else:
        shape = saved.buffer.current_index.shape
        index = np.full(shape, n % cap, np.int32)
        full = np.full(shape, n == cap)
    carry = saved.replace(buffer=saved.buffer.replace(experience=experience, current_index=index,
                                                      is_full=full))
    return _match_weak_types(to_global(carry, sharding), empty_like), counters


def _without_metric_sums(carry):
    """The carry with empty per-metric sums (the gymnasium driver's carry has them, the
    JAX-native one doesn't)."""
    return carry.replace(metric_sum={}) if hasattr(carry, "metric_sum") else carry


def _load_carry(path: Path, like):
    """The stacked carry saved at ``path`` (on the host), shaped like the abstract ``like``,
    with zero metric sums in the shape of ``like``'s. Checkpoints that stored the sums
    (older runs) restore too, as long as they logged the same metrics."""
    try:
        saved = sqljax.load_extra(path, {"carry": _without_metric_sums(like)})["carry"]
    except sqljax.CheckpointError:
        if _without_metric_sums(like) is like:
            raise
        saved = sqljax.load_extra(path, {"carry": like})["carry"]
    saved = jax.device_get(saved)
    if hasattr(like, "metric_sum"):
        saved = saved.replace(metric_sum=jax.tree.map(lambda x: np.zeros(x.shape, x.dtype),
                                                       like.metric_sum))
    return saved


def _match_weak_types(tree, like):
    """Give restored arrays the weak types of a fresh carry (flashbax's buffer index is
    weakly typed), so the compiled step functions are reused instead of recompiled."""
    try:
        from jax._src.lax.lax import _convert_element_type
    except ImportError:  # only a recompilation is lost
        return tree
    return jax.tree.map(lambda x, l: _convert_element_type(x, l.dtype, weak_type=True)
                        if getattr(l, "weak_type", False) else x, tree, like)


def _gym_init_fn(cfg: sqljax.SQLConfig, obs_dim: int, action_dim: int, capacity: int,
                 metric_names: tuple[str, ...]) -> Callable:
    """key -> one seed's gymnasium-driver carry (the single-run driver's ``Carry``)."""
    def init_one(key):
        k_agent, k_loop = jax.random.split(key)
        agent = sqljax.init(k_agent, cfg, obs_dim, action_dim)
        return host_loop.init_carry(agent, k_loop, capacity, metric_names)

    return init_one


def _abstract_carry(kind: str, cfg: sqljax.SQLConfig, env_id: str, obs_dim: int,
                    action_dim: int, n_seeds: int, capacity: int):
    """Shapes of a stacked carry of either driver, replay capacity ``capacity``."""
    keys = jax.ShapeDtypeStruct((n_seeds, 2), jnp.uint32)
    if kind == "gym":
        names = sqljax.UPDATE_METRICS
        return jax.eval_shape(jax.vmap(_gym_init_fn(cfg, obs_dim, action_dim, capacity, names)), keys)
    import importlib

    env = importlib.import_module(JAX_NATIVE_ENVS[env_id])
    fns = scan_loop.make_train(cfg.replace(replay_size=max(capacity, 1)), env.DEFAULT_PARAMS,
                               total_steps=max(capacity, 1), chunk_steps=max(capacity, 1), env=env)
    return jax.eval_shape(jax.vmap(fns.init_carry), keys)


def load_run_state(path: str | os.PathLike):
    """The stacked carry (learners, filled part of the replay buffers, keys, ...; leading
    seed axis, on the host) of a multi-seed checkpoint directory, or of a run
    directory's latest checkpoint."""
    path = Path(path)
    if not (path / "sqljax.json").exists():
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise RunError(f"{path} is neither a checkpoint nor a run directory with one")
        path = ckpt
    meta = sqljax.read_checkpoint_metadata(path)
    counters = meta.get("metadata", {})
    if counters.get("format") != RUN_FORMAT:
        raise RunError(f"{path} is not a multi-seed run checkpoint")
    cfg = sqljax.SQLConfig.from_dict(meta["config"])
    n = int(counters["replay_size"])
    like = _abstract_carry(counters["kind"], cfg, counters["env_id"], int(meta["obs_dim"]),
                           int(meta["action_dim"]), len(counters["seed_ids"]), max(n, 1))
    return _load_carry(path, _cut_like(like, n))


def load_init_states(path: str | os.PathLike, seed_ids: Sequence[int], env_id: str,
                     obs_dim: int, action_dim: int) -> sqljax.SQLState:
    """The pretrained learners that seeds ``seed_ids`` start from, stacked (leading seed
    axis, on the host): from a multi-seed checkpoint, the rows of the same seed indices;
    from a single learner's checkpoint, that learner for every seed. ``path``: a
    checkpoint or a run directory (its latest checkpoint). RunError (one line) if the
    sizes differ from the env's (``obs_dim``, ``action_dim``) or a seed is missing."""
    ckpt = host_loop.find_checkpoint(path)
    meta = sqljax.read_checkpoint_metadata(ckpt)
    sizes = (int(meta["obs_dim"]), int(meta["action_dim"]))
    if sizes != (int(obs_dim), int(action_dim)):
        raise RunError(f"--init-from checkpoint {ckpt} has observation size {sizes[0]} and action "
                       f"size {sizes[1]}, but {env_id} has observation size {obs_dim} and action "
                       f"size {action_dim}; pretrain on an env with the same spaces")
    counters = meta.get("metadata", {})
    if counters.get("format") == RUN_FORMAT:
        stacked = load_seed_states(ckpt)
        have = [int(s) for s in counters["seed_ids"]]
        missing = [s for s in seed_ids if s not in have]
        if missing:
            raise RunError(f"--init-from {ckpt} holds seeds {have}, not seed(s) {missing}; fine-tune "
                           "those seeds, or start from a single learner's checkpoint")
        rows = np.asarray([have.index(s) for s in seed_ids])
        return jax.tree.map(lambda x: np.asarray(x)[rows], stacked)
    one = jax.device_get(sqljax.load_checkpoint(ckpt))
    if np.ndim(one.step):
        raise RunError(f"--init-from {ckpt} holds stacked learners without seed indices")
    return jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (len(seed_ids),) + np.shape(x)), one)


def load_seed_states(path: str | os.PathLike) -> sqljax.SQLState:
    """The stacked learners (leading seed axis, on the host) of a multi-seed checkpoint
    directory, or of a run directory's latest checkpoint."""
    return load_run_state(path).agent


def _cut_like(like, n: int):
    """An abstract carry with the replay cut to its first ``n`` transitions."""
    exp = like.buffer.experience
    return like.replace(buffer=like.buffer.replace(experience=jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape[:2] + (n,) + x.shape[3:], x.dtype), exp)))


# ------------------------------------------------------------------------------ the run

def _prepare_run_dir(spec: MultiSeedSpec, resume: bool, mesh: Mesh) -> None:
    out = spec.out
    if jax.process_index() != 0:
        return
    if not resume:
        if (out / RUN_FILE).exists() or (out / CHECKPOINT_DIR).exists():
            raise RunError(f"{out} already holds a run; continue it with --resume {out}, or choose "
                           "another directory with --out")
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps(spec.config.to_dict(), indent=2) + "\n")
    run = dict(spec.to_json(), n_devices=int(mesh.devices.size),
               platform=mesh.devices.flat[0].platform, processes=jax.process_count())
    (out / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")


def _mesh_for(spec: MultiSeedSpec) -> tuple[Mesh, NamedSharding, NamedSharding]:
    devices = jax.devices()
    if spec.devices is not None:
        if not 1 <= spec.devices <= len(devices):
            raise RunError(f"--devices {spec.devices}: there are {len(devices)} devices "
                           f"({devices[0].platform})")
        devices = devices[:spec.devices]
    check_seed_count(spec.n_seeds, len(devices))
    mesh = seed_mesh(devices)
    return mesh, seed_sharding(mesh), NamedSharding(mesh, PartitionSpec())


def _check_schedule(spec: MultiSeedSpec) -> None:
    for name in ("steps", "log_every", "eval_episodes"):
        if int(getattr(spec, name)) < 1:
            raise RunError(f"{name} must be >= 1, got {getattr(spec, name)}")
    for name in ("eval_every", "checkpoint_every"):
        if int(getattr(spec, name)) < 0:
            raise RunError(f"{name} must be >= 0 (0: never), got {getattr(spec, name)}")
    if jax.process_count() > 1 and spec.checkpoint_every > 0:
        raise RunError("checkpoints of a multi-process run are not supported yet (sqljax."
                       "save_checkpoint writes from one process, and orbax waits for all); "
                       "use --checkpoint-every 0")
    if len(set(spec.seed_ids)) != len(spec.seed_ids) or min(spec.seed_ids, default=0) < 0:
        raise RunError(f"seed indices must be distinct and >= 0, got {list(spec.seed_ids)}")


def _due(step: int, every: int, last: int) -> bool:
    return every > 0 and (step % every == 0 or step == last)


def train(spec: MultiSeedSpec, resume: bool = False,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``spec.seed_ids`` in lockstep (or continue with ``resume``).

    Returns a summary: ``env_steps`` (per seed), ``seed_ids``, ``updates`` (per seed),
    ``evals`` (one dict per evaluation: ``step``, ``stochastic`` and ``deterministic``
    lists of per-seed mean returns), ``steps_per_sec`` (per-seed env steps per second
    of each log interval), ``agents`` (the stacked learners, on the host),
    ``checkpoint`` and ``run_dir``, ``n_devices``.
    """
    _check_schedule(spec)
    spec = dataclasses.replace(spec, env_id=resolve_env_id(spec.env_id))
    mesh, sh, rep = _mesh_for(spec)
    if spec.env_id in JAX_NATIVE_ENVS:
        if spec.init_from is not None:
            raise RunError(f"--init-from is supported for gymnasium envs only, not {spec.env_id} "
                           "(it runs the compiled JAX loop)")
        return _train_jax(spec, resume, log, mesh, sh, rep)
    return _train_gym(spec, resume, log, mesh, sh, rep)


class _Run:
    """Bookkeeping shared by both drivers: directories, CSVs, checkpoints, progress."""

    def __init__(self, spec: MultiSeedSpec, resume: bool, kind: str, columns: list[str],
                 local: list[int], log: Callable[[str], None], mesh: Mesh):
        self.spec, self.kind, self.log, self.mesh = spec, kind, log, mesh
        self.local = local
        self.resume_step: int | None = None
        self.ckpt = None
        if resume:
            run = read_run(spec.out)
            if list(run["seed_ids"]) != list(spec.seed_ids):
                raise RunError(f"{spec.out} was run with seeds {run['seed_ids']}; resume it with "
                               "the same seeds")
            self.ckpt = latest_checkpoint(spec.out)
            if self.ckpt is None:
                raise RunError(f"cannot resume {spec.out}: it holds no complete checkpoint (the run "
                               "stopped before its first checkpoint); start it again")
        self.columns = columns
        self.evals: list[dict[str, Any]] = []
        self.rates: list[float] = []

    def restore(self, init_one: Callable, sharding: NamedSharding):
        """The stacked carry of the checkpoint resumed from (``init_one``: key -> one
        seed's fresh carry, for the shapes), its counters, and from them the env steps
        per seed, the evaluation index and the wall time so far."""
        keys = jax.ShapeDtypeStruct((self.spec.n_seeds, 2), jnp.uint32)
        carry, counters = _restore(self.ckpt, jax.eval_shape(jax.vmap(init_one), keys), sharding)
        return (carry, counters, int(counters["env_steps"]), int(counters.get("eval_index", 0)),
                float(counters.get("wall_time", 0.0)))

    def open(self, counters: dict[str, Any] | None) -> None:
        spec = self.spec
        if counters is not None:
            self.resume_step = int(counters["env_steps"])
            self.evals = list(counters.get("evals", []))
        _prepare_run_dir(spec, self.resume_step is not None, self.mesh)
        if self.resume_step is not None and jax.process_index() == 0:
            _prune(spec.out, spec.keep_checkpoints)
        self.logs = _SeedLogs(spec.out, [spec.seed_ids[p] for p in self.local], self.columns,
                              self.resume_step)
        self.last_ckpt = latest_checkpoint(spec.out)

    def check_finite(self, first_bad: np.ndarray, step: int) -> None:
        bad = [(self.spec.seed_ids[p], int(b)) for p, b in enumerate(first_bad) if b >= 0]
        if not bad:
            return
        self.logs.flush()
        where = ", ".join(f"seed {s} at env step {b}" for s, b in bad)
        keep = (f"the last good checkpoint is {self.last_ckpt} (continue with --resume "
                f"{self.spec.out})" if self.last_ckpt else "no checkpoint was written before it")
        raise NonFiniteError(f"training diverged ({where}); stopped at step {step}; {keep}")

    def checkpoint(self, carry, counters: dict[str, Any]) -> None:
        counters = dict(counters, seed_ids=list(self.spec.seed_ids), evals=self.evals,
                        env_id=self.spec.env_id, base_seed=self.spec.base_seed)
        path = self.spec.out / CHECKPOINT_DIR / f"step_{counters['env_steps']:09d}"
        _save(path, carry, counters, self.kind)
        self.last_ckpt = path
        if jax.process_index() == 0:
            _prune(self.spec.out, self.spec.keep_checkpoints)

    def record_eval(self, step: int, stoch: np.ndarray, det: np.ndarray, **extra) -> dict[str, Any]:
        ev = {"step": step, "stochastic": [float(x) for x in stoch],
              "deterministic": [float(x) for x in det]}
        ev.update({k: [float(x) for x in v] for k, v in extra.items()})
        self.evals.append(ev)
        return ev

    def close(self) -> None:
        if hasattr(self, "logs"):
            self.logs.close()


def _eval_columns(row: dict[str, Any], stoch: np.ndarray, det: np.ndarray) -> None:
    row.update(eval_return=float(np.mean(stoch)), eval_return_std=float(np.std(stoch)),
               eval_return_det=float(np.mean(det)), eval_return_det_std=float(np.std(det)))


_BASE_COLUMNS = ["step", "updates", "episodes", "episode_return", "episode_length",
                 "eval_return", "eval_return_std", "eval_return_det", "eval_return_det_std"]


def _progress(spec: MultiSeedSpec, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=spec.steps, initial=initial, unit="step", dynamic_ncols=True,
                disable=not spec.progress or jax.process_index() != 0, smoothing=0.05,
                desc=f"{spec.label + ', ' if spec.label else ''}{spec.n_seeds} seeds")


# ------------------------------------------------------------------------------ gymnasium

@functools.lru_cache(maxsize=8)
def _gym_program(cfg: sqljax.SQLConfig, obs_dim: int, action_dim: int, capacity: int,
                 mesh: Mesh) -> SimpleNamespace:
    """The jitted, seed-vmapped, seed-sharded device functions of the gymnasium driver
    (cached: runs with the same settings in one process compile once). Each step
    function donates the carry and returns (carry, actions (N, A))."""
    sh = seed_sharding(mesh)
    rep = NamedSharding(mesh, PartitionSpec())
    fns = host_loop.make_step_fns(cfg, obs_dim, action_dim)
    init_one = _gym_init_fn(cfg, obs_dim, action_dim, capacity, fns.metric_names)

    def finetune_one(key, pretrained):  # the same key split as init_one
        k_agent, k_loop = jax.random.split(key)
        agent = sqljax.finetune_state(k_agent, pretrained, cfg)
        return host_loop.init_carry(agent, k_loop, capacity, fns.metric_names)

    def stepper(fn):
        return jax.jit(jax.vmap(fn), in_shardings=(sh, sh), out_shardings=(sh, sh), donate_argnums=0)

    return SimpleNamespace(
        metric_names=fns.metric_names,
        init_one=init_one,
        init_all=jax.jit(jax.vmap(init_one), in_shardings=sh, out_shardings=sh),
        # (keys (N, 2), pretrained learners (N, ...)) -> carry
        finetune_all=jax.jit(jax.vmap(finetune_one), in_shardings=(sh, sh), out_shardings=sh),
        start=stepper(fns.start),
        collect=stepper(fns.collect_step),
        learn=stepper(fns.learn_step),
        fetch=jax.jit(jax.vmap(fns.fetch), in_shardings=(sh,), out_shardings=sh, donate_argnums=0),
        # (agents, obs (N, E, O), deterministic (E,), keys (N, 2), t) -> actions (N, E, A)
        act_eval=jax.jit(jax.vmap(fns.act_eval, in_axes=(0, 0, None, 0, None)),
                         in_shardings=(sh, sh, rep, sh, rep), out_shardings=sh),
    )


def _train_gym(spec, resume, log, mesh, sh, rep) -> dict[str, Any]:
    cfg = spec.config
    n = spec.n_seeds
    local = local_seed_positions(sh, n)
    envs = {p: make_env(spec.env_id, cfg.max_episode_steps) for p in local}
    env0 = envs[local[0]]
    o, a = env0.obs_dim, env0.action_dim
    capacity = int(min(cfg.replay_size, spec.steps))
    pretrained = None
    if spec.init_from is not None and not resume:
        pretrained = load_init_states(spec.init_from, spec.seed_ids, spec.env_id, o, a)
    prog = _gym_program(cfg, o, a, capacity, mesh)
    names = prog.metric_names
    init_all, start, collect, learn = prog.init_all, prog.start, prog.collect, prog.learn
    fetch, act_eval = prog.fetch, prog.act_eval
    keys = seed_keys(spec.base_seed, spec.seed_ids)
    eval_keys = np.asarray(jax.vmap(lambda k: jax.random.fold_in(k, _EVAL_TAG))(keys))

    columns = _BASE_COLUMNS + list(names) + ["steps_per_sec", "wall_time"]
    run = _Run(spec, resume, "gym", columns, local, log, mesh)
    eval_envs: dict[int, list] = {}
    bar = None
    try:
        if resume:
            carry, counters, env_steps, eval_index, wall_before = run.restore(prog.init_one, sh)
            episodes = [int(e) for e in counters["episodes"]]
            log(f"resuming {spec.out} from {run.ckpt.name}: {env_steps} env steps per seed "
                "(the environments start new episodes)")
            run.open(counters)
        else:
            if pretrained is not None:
                try:  # network sizes must match; checked before any file is written
                    carry = prog.finetune_all(to_global(keys, sh), to_global(pretrained, sh))
                except ValueError as e:
                    raise RunError(f"--init-from {spec.init_from}: {e}") from None
                log(f"seeds start from the learners in {spec.init_from} (optimisers fresh)")
            else:
                carry = init_all(to_global(keys, sh))
            run.open(None)
            env_steps, episodes, eval_index, wall_before = 0, [0] * n, 0, 0.0
        if env_steps >= spec.steps:
            log(f"{spec.out} already has {env_steps} env steps per seed (>= --steps {spec.steps})")

        obs = np.zeros((n, o), np.float32)
        for p in local:
            obs[p] = envs[p].reset(seed=_reset_seed(spec.base_seed, spec.seed_ids[p], env_steps))
        carry, actions = start(carry, to_global(obs, sh))
        actions = _local_rows(actions, n)
        learn_from = max(cfg.learning_starts, 1)
        ep_returns: dict[int, list[float]] = {p: [] for p in local}
        ep_lengths: dict[int, list[int]] = {p: [] for p in local}
        bar = _progress(spec, env_steps)
        t0 = t_row = time.perf_counter()
        steps_row, bar_pending = env_steps, 0
        while env_steps < spec.steps:
            packed = np.zeros((n, 2 * o + 2), np.float32)  # fresh: the device may alias it
            for p in local:
                next_obs, reward, terminated, truncated, info = envs[p].step(actions[p])
                if terminated or truncated:
                    episodes[p] += 1
                    ep_returns[p].append(float(info["episode"]["r"]))
                    ep_lengths[p].append(int(info["episode"]["l"]))
                    act_obs = envs[p].reset()
                else:
                    act_obs = next_obs
                packed[p, :o] = next_obs
                packed[p, o] = reward
                packed[p, o + 1] = float(terminated)
                packed[p, o + 2:] = act_obs
            env_steps += 1
            step_fn = learn if env_steps >= learn_from else collect
            carry, actions = step_fn(carry, to_global(packed, sh))
            actions = _local_rows(actions, n)  # the step's one device-to-host copy
            bar_pending += 1
            if bar_pending >= 100:
                bar.update(bar_pending)
                bar_pending = 0

            eval_due = _due(env_steps, spec.eval_every, spec.steps)
            ckpt_due = _due(env_steps, spec.checkpoint_every, spec.steps)
            if not (eval_due or ckpt_due or _due(env_steps, spec.log_every, spec.steps)):
                continue

            # ---- sync point
            carry, means, n_upd, first_bad = fetch(carry)
            means, n_upd, first_bad = to_host((means, n_upd, first_bad))
            now = time.perf_counter()
            rate = (env_steps - steps_row) / max(now - t_row, 1e-9)
            run.rates.append(rate)
            updates = np.asarray(to_host(carry.agent.step))
            rows = {}
            for p in local:
                rows[p] = {
                    "step": env_steps, "updates": int(updates[p]), "episodes": episodes[p],
                    "episode_return": _mean_or_none(ep_returns[p]),
                    "episode_length": _mean_or_none(ep_lengths[p]),
                    **{k: (float(means[k][p]) if n_upd[p] > 0 else None) for k in names},
                    "steps_per_sec": rate,
                }
                ep_returns[p], ep_lengths[p] = [], []
            if (np.asarray(first_bad) >= 0).any():
                for p in local:
                    run.logs.write(spec.seed_ids[p], dict(rows[p], wall_time=wall_before + now - t0))
                run.check_finite(np.asarray(first_bad), env_steps)
            if eval_due:
                if not eval_envs:
                    eval_envs = {p: [make_env(spec.env_id, cfg.max_episode_steps)
                                     for _ in range(2 * spec.eval_episodes)] for p in local}
                stoch, det = _evaluate_gym(carry.agent, act_eval, eval_envs, eval_keys,
                                           eval_index, spec, n, sh, rep, env0.time_limit)
                eval_index += 1
                run.record_eval(env_steps, stoch.mean(axis=1), det.mean(axis=1))
                for p in local:
                    _eval_columns(rows[p], stoch[p], det[p])
            wall = wall_before + time.perf_counter() - t0
            for p in local:
                run.logs.write(spec.seed_ids[p], dict(rows[p], wall_time=wall))
            run.logs.flush()
            if ckpt_due:
                all_episodes = _gather_counts(episodes, local)
                run.checkpoint(carry, {"env_steps": env_steps, "episodes": all_episodes,
                                       "eval_index": eval_index, "wall_time": wall})
            bar.update(bar_pending)
            bar_pending = 0
            if run.evals:
                ev = run.evals[-1]
                bar.set_postfix_str(f"eval {np.mean(ev['stochastic']):.1f}/"
                                    f"{np.mean(ev['deterministic']):.1f} (mean over seeds)",
                                    refresh=False)
            t_row, steps_row = time.perf_counter(), env_steps
    finally:
        if bar is not None:
            bar.close()
        run.close()
        for e in list(envs.values()) + [e for es in eval_envs.values() for e in es]:
            e.close()
    return _result(spec, run, env_steps, carry.agent, mesh)


def _gather_counts(values: list[int], local: list[int]) -> list[int]:
    """Per-seed host counters (each process knows its own seeds') as a full list."""
    if jax.process_count() > 1:
        values = _gather_rows(np.asarray(values, np.int64), local)
    return [int(v) for v in values]


def _evaluate_gym(agents, act_eval, eval_envs, eval_keys, eval_index, spec, n, sh, rep,
                  time_limit) -> tuple[np.ndarray, np.ndarray]:
    """``eval_episodes`` stochastic and deterministic episodes per seed, all in lockstep
    (one device call per step for every seed and episode). Returns per-seed returns
    (N, E) for each mode. Seed i's episodes reset from its own seeds and act with its
    own key (folded with the evaluation index), apart from its training env and RNG."""
    e = spec.eval_episodes
    local = sorted(eval_envs)
    det_mask = np.array([False] * e + [True] * e)
    obs = np.zeros((n, 2 * e, agents.obs_dim), np.float32)
    alive = np.zeros((n, 2 * e), bool)
    returns = np.zeros((n, 2 * e))
    for p in local:
        seeds = _eval_seeds(spec.base_seed, spec.seed_ids[p], eval_index, e)
        for j, env in enumerate(eval_envs[p]):
            obs[p, j] = env.reset(seed=seeds[j % e])
            alive[p, j] = True
    keys = np.asarray(jax.vmap(lambda k: jax.random.fold_in(k, eval_index))(eval_keys))
    keys_g = to_global(keys, sh)
    mask_g = to_global(det_mask, rep)
    multi = jax.process_count() > 1
    limit = time_limit or spec.config.max_episode_steps
    t = 0
    # Several processes must make the same calls: they run to the time limit together.
    while (alive.any() and not multi) or (multi and t < limit):
        actions = _local_rows(act_eval(agents, to_global(obs, sh), mask_g, keys_g,
                                               to_global(np.int32(t), rep)), n)
        t += 1
        for p in local:
            for j in np.flatnonzero(alive[p]):
                o, r, term, trunc, _ = eval_envs[p][j].step(actions[p, j])
                obs[p, j] = o
                returns[p, j] += r
                if term or trunc:
                    alive[p, j] = False
    if multi:
        returns = _gather_rows(returns, local)
    return returns[:, :e], returns[:, e:]


def _gather_rows(x: np.ndarray, local: list[int]) -> np.ndarray:
    """Rows computed by each process on the host (zero elsewhere), summed over processes."""
    from jax.experimental import multihost_utils

    mine = np.zeros_like(x)
    mine[local] = x[local]
    return np.sum(multihost_utils.process_allgather(mine), axis=0)


def _result(spec, run: _Run, env_steps: int, agents, mesh) -> dict[str, Any]:
    return {"env_steps": env_steps, "seed_ids": list(spec.seed_ids),
            "updates": [int(u) for u in np.asarray(to_host(agents.step)).reshape(-1)],
            "evals": run.evals, "steps_per_sec": run.rates, "agents": to_host(agents),
            "checkpoint": str(run.last_ckpt) if run.last_ckpt else None,
            "run_dir": str(spec.out), "n_devices": int(mesh.devices.size)}


# ------------------------------------------------------------------------------ JAX-native

def _chunk_steps(spec: MultiSeedSpec) -> int:
    chunk = spec.log_every
    for every in (spec.eval_every, spec.checkpoint_every, spec.steps):
        if every > 0:
            chunk = math.gcd(chunk, every)
    return chunk


@functools.lru_cache(maxsize=8)
def _jax_program(cfg: sqljax.SQLConfig, env_id: str, steps: int, chunk: int, eval_episodes: int,
                 mesh: Mesh) -> SimpleNamespace:
    """The jitted, seed-vmapped, seed-sharded functions of the JAX-native driver (cached)."""
    import importlib

    env = importlib.import_module(JAX_NATIVE_ENVS[env_id])
    params = env.DEFAULT_PARAMS
    sh = seed_sharding(mesh)
    fns = scan_loop.make_train(cfg, params, total_steps=steps, chunk_steps=chunk, env=env)
    has_goals = hasattr(params, "goals")

    def eval_one(agent, key):
        k_s, k_d = jax.random.split(key)
        s = scan_loop.rollout(agent, k_s, eval_episodes, params, env=env)
        d = scan_loop.rollout(agent, k_d, eval_episodes, params, env=env, deterministic=True)
        out = {"stochastic": s["episode_return"], "deterministic": d["episode_return"]}
        if has_goals:  # how many distinct goals the stochastic episodes reached
            goals = jnp.max(jnp.where(s["alive"], s["info"]["goal"], -1), axis=1)  # (E,)
            reached = jnp.any(goals[:, None] == jnp.arange(len(params.goals)), axis=0)
            out["goals"] = jnp.sum(reached).astype(jnp.float32)
        return out

    return SimpleNamespace(
        has_goals=has_goals,
        metric_names=sqljax.UPDATE_METRICS,
        init_one=fns.init_carry,
        init_all=jax.jit(jax.vmap(fns.init_carry), in_shardings=sh, out_shardings=sh),
        run_chunk=jax.jit(jax.vmap(fns.run_chunk), in_shardings=sh, out_shardings=sh,
                          donate_argnums=0),
        # (agents, keys (N, 2)) -> per seed: stochastic, deterministic returns (N, E), goals
        evaluate=jax.jit(jax.vmap(eval_one), in_shardings=(sh, sh), out_shardings=sh),
    )


def _train_jax(spec, resume, log, mesh, sh, rep) -> dict[str, Any]:
    cfg = spec.config
    n = spec.n_seeds
    chunk = _chunk_steps(spec)
    prog = _jax_program(cfg, spec.env_id, spec.steps, chunk, spec.eval_episodes, mesh)
    init_all, run_chunk, evaluate, names = prog.init_all, prog.run_chunk, prog.evaluate, prog.metric_names
    keys = seed_keys(spec.base_seed, spec.seed_ids)
    eval_keys = np.asarray(jax.vmap(lambda k: jax.random.fold_in(k, _EVAL_TAG))(keys))
    columns = (_BASE_COLUMNS + (["eval_goals"] if prog.has_goals else []) + list(names)
               + ["steps_per_sec", "wall_time"])
    run = _Run(spec, resume, "jax", columns, local_seed_positions(sh, n), log, mesh)
    bar = None
    try:
        if resume:
            carry, counters, env_steps, eval_index, wall_before = run.restore(prog.init_one, sh)
            episodes = np.asarray(counters["episodes"], np.int64)
            if env_steps % chunk:
                raise RunError(f"cannot resume at env step {env_steps} with chunks of {chunk} steps; "
                               "keep --log-every, --eval-every and --checkpoint-every as before")
            log(f"resuming {spec.out} from {run.ckpt.name}: {env_steps} env steps per seed")
            run.open(counters)
        else:
            run.open(None)
            carry = init_all(to_global(keys, sh))
            env_steps, episodes, eval_index, wall_before = 0, np.zeros(n, np.int64), 0, 0.0
        bar = _progress(spec, env_steps)
        t0 = t_row = time.perf_counter()
        steps_row = env_steps
        while env_steps < spec.steps:
            carry, metrics = run_chunk(carry)
            metrics = to_host(metrics)
            env_steps += chunk
            now = time.perf_counter()
            rate = (env_steps - steps_row) / max(now - t_row, 1e-9)
            run.rates.append(rate)
            episodes += np.asarray(metrics["episodes"], np.int64)
            bad = ~np.all([np.isfinite(np.asarray(metrics[k])) | ~(np.asarray(metrics["updates"]) > 0)
                           for k in names], axis=0)
            rows = {}
            for p in run.local:
                rows[p] = {"step": env_steps, "updates": None, "episodes": int(episodes[p]),
                           "episode_return": _finite_or_none(metrics["episode_return"][p]),
                           "episode_length": _finite_or_none(metrics["episode_length"][p]),
                           **{k: _finite_or_none(metrics[k][p]) for k in names},
                           "steps_per_sec": rate}
            updates = np.asarray(to_host(carry.agent.step))
            for p in run.local:
                rows[p]["updates"] = int(updates[p])
            if bad.any():
                for p in run.local:
                    run.logs.write(spec.seed_ids[p], dict(rows[p], wall_time=wall_before + now - t0))
                run.check_finite(np.where(bad, env_steps, -1), env_steps)
            if _due(env_steps, spec.eval_every, spec.steps):
                keys_k = np.asarray(jax.vmap(lambda k: jax.random.fold_in(k, eval_index))(eval_keys))
                res = to_host(evaluate(carry.agent, to_global(keys_k, sh)))
                eval_index += 1
                stoch, det = np.asarray(res["stochastic"]), np.asarray(res["deterministic"])
                extra = {"goals": np.asarray(res["goals"])} if "goals" in res else {}
                run.record_eval(env_steps, stoch.mean(axis=1), det.mean(axis=1), **extra)
                for p in run.local:
                    _eval_columns(rows[p], stoch[p], det[p])
                    if extra:
                        rows[p]["eval_goals"] = int(extra["goals"][p])
            wall = wall_before + time.perf_counter() - t0
            for p in run.local:
                run.logs.write(spec.seed_ids[p], dict(rows[p], wall_time=wall))
            run.logs.flush()
            if _due(env_steps, spec.checkpoint_every, spec.steps):
                run.checkpoint(carry, {"env_steps": env_steps, "episodes": [int(x) for x in episodes],
                                       "eval_index": eval_index, "wall_time": wall})
            bar.update(chunk)
            t_row, steps_row = time.perf_counter(), env_steps
    finally:
        if bar is not None:
            bar.close()
        run.close()
    return _result(spec, run, env_steps, carry.agent, mesh)


def _finite_or_none(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None
