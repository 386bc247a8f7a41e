"""Training on gymnasium environments: the host steps the env, the device does the rest.

Per environment step the host makes exactly one jitted call, ``learn_step`` (or
``collect_step`` before ``learning_starts``)::

    carry, action = learn_step(carry, packed)     # carry donated, updated in place

which stores the transition (obs, action, reward, next_obs, terminated) in the
on-device replay buffer, runs ``updates_per_step`` updates on replay samples (a
``lax.scan``), and samples the action for the next observation. ``packed`` is one small
float32 vector ``[next_obs, reward, terminated, act_obs]`` (``act_obs`` is ``next_obs``,
or the reset observation when the episode ended), and the action (A,) is the only array
copied back. Update metrics are summed on the device and fetched every ``log_every``
steps; the first env step with a non-finite loss or parameter is recorded on the device,
so a divergence is reported with its exact step.

Only true terminations are stored as ``terminated``; a time-limit truncation
bootstraps from the next state's value.

:func:`train` is the whole run around that step: evaluation on a separate env with its
own RNG (stochastic and deterministic, xi = 0), ``metrics.csv`` and a TensorBoard event
file, checkpoints holding the learner, the replay buffer, the RNG key and the counters
(written atomically, the last few kept), and resume from the last complete checkpoint
(``experiments.plots.plot_learning_curve`` draws the run's curves). Its errors are :class:`RunError` (bad input, one readable line)
and :class:`NonFiniteError` (divergence).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import sqljax
from sqljax import replay
from sqljax.envs.gym_adapter import GymEnv, make_env

__all__ = [
    "Carry", "NonFiniteError", "RunError", "RunSpec", "StepFns", "checkpoint_dirs",
    "evaluate", "find_checkpoint", "latest_checkpoint", "load_run_checkpoint",
    "make_act_eval", "make_step_fns", "train", "truncate_csv",
]

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
RUN_FORMAT = "sqljax-run"
_CKPT_RE = re.compile(r"^step_(\d+)$")


class RunError(ValueError):
    """Bad input to a run (directory, checkpoint, sizes); the message is one line."""


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss or parameter; the message names the step."""


# ----------------------------------------------------------------------------- device step

@struct.dataclass
class Carry:
    """What the device keeps from one env step to the next (a pytree).

    agent: the learner. buffer: replay. key: PRNG key for acting and replay sampling.
    obs (O,), action (A,): the observation the pending action was taken at, and that
    action (the next transition's first half).
    env_steps () int32: transitions stored so far.
    metric_sum: per update metric, the sum since the last fetch; n_updates () int32:
    how many steps contributed. first_bad () int32: env step of the first non-finite
    loss or parameter, -1 while all is finite.
    """

    agent: sqljax.SQLState
    buffer: Any
    key: jax.Array
    obs: jax.Array
    action: jax.Array
    env_steps: jax.Array
    metric_sum: dict
    n_updates: jax.Array
    first_bad: jax.Array


class StepFns(NamedTuple):
    """The jitted device functions of a run (see :func:`make_step_fns`)."""

    new_carry: Callable  # (agent, key) -> Carry with an empty buffer of `capacity`
    start: Callable  # (carry, obs (O,)) -> (carry, action (A,))
    collect_step: Callable  # (carry, packed) -> (carry, action): store only
    learn_step: Callable  # (carry, packed) -> (carry, action): store, update, act
    fetch: Callable  # carry -> (carry, means dict, n_updates, first_bad); resets the sums
    act_eval: Callable  # (agent, obs (N, O), deterministic (N,), key, t) -> actions (N, A)
    metric_names: tuple


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _empty_buffer(capacity: int, obs_dim: int, action_dim: int):
    example = sqljax.Batch(obs=jnp.zeros((obs_dim,)), action=jnp.zeros((action_dim,)),
                           reward=jnp.zeros(()), next_obs=jnp.zeros((obs_dim,)),
                           terminated=jnp.zeros(()))
    return replay.init(capacity, example)


def init_carry(agent: sqljax.SQLState, key: jax.Array, capacity: int,
               metric_names: tuple[str, ...], buffer: Any = None, env_steps: int = 0) -> Carry:
    """A carry with an empty buffer (or ``buffer``), zero metric sums, no action yet."""
    o, a = agent.obs_dim, agent.action_dim
    return Carry(
        agent=agent,
        buffer=_empty_buffer(capacity, o, a) if buffer is None else buffer,
        key=jnp.asarray(key),
        obs=jnp.zeros((o,), jnp.float32),
        action=jnp.zeros((a,), jnp.float32),
        env_steps=jnp.asarray(env_steps, jnp.int32),
        metric_sum={k: jnp.zeros((), jnp.float32) for k in metric_names},
        n_updates=jnp.zeros((), jnp.int32),
        first_bad=jnp.asarray(-1, jnp.int32),
    )


def _tree_finite(tree) -> jax.Array:
    return jnp.isfinite(optax.tree.norm(tree))


def make_act_eval() -> Callable:
    """Jitted ``(agent, obs (N, O), deterministic (N,) bool, key, t) -> actions (N, A)``:
    row i acts with xi = 0 where ``deterministic[i]``, else with fresh noise from
    ``fold_in(key, t)``. Evaluation's only device call per step."""
    def act_eval(agent, obs, deterministic, key, t):
        k = jax.random.fold_in(key, t)
        stochastic = sqljax.sample_actions(agent, obs, k)
        frozen = sqljax.sample_actions(agent, obs, k, deterministic=True)
        return jnp.where(deterministic[:, None], frozen, stochastic)

    return jax.jit(act_eval)


def make_step_fns(cfg: sqljax.SQLConfig, obs_dim: int, action_dim: int,
                  capacity: int = 1) -> StepFns:
    """Build and jit the per-step device functions for a learner of this config and size
    (``capacity``: replay size of ``new_carry``'s buffer).

    ``packed`` is float32 (2 O + 2,): ``[next_obs (O), reward, terminated, act_obs (O)]``.
    """
    o = int(obs_dim)
    names = sqljax.UPDATE_METRICS

    def unpack(packed):
        return packed[:o], packed[o], packed[o + 1], packed[o + 2:]

    def store(carry: Carry, packed) -> tuple[Carry, jax.Array]:
        next_obs, reward, terminated, act_obs = unpack(packed)
        buffer = replay.add(carry.buffer, sqljax.Batch(
            obs=carry.obs, action=carry.action, reward=reward, next_obs=next_obs,
            terminated=terminated))
        return carry.replace(buffer=buffer, env_steps=carry.env_steps + 1), act_obs

    def act(carry: Carry, obs) -> tuple[Carry, jax.Array]:
        key, k_act = jax.random.split(carry.key)
        action = sqljax.sample_actions(carry.agent, obs, k_act)
        return carry.replace(key=key, obs=obs, action=action), action

    def start(carry: Carry, obs):
        return act(carry, jnp.asarray(obs, jnp.float32))

    def collect_step(carry: Carry, packed):
        carry, act_obs = store(carry, packed)
        return act(carry, act_obs)

    def learn_step(carry: Carry, packed):
        carry, act_obs = store(carry, packed)
        key, k_learn = jax.random.split(carry.key)
        buffer = carry.buffer

        def one(agent, k):
            return sqljax.update(agent, replay.sample(buffer, k, cfg.batch_size))

        agent, metrics = jax.lax.scan(one, carry.agent, jax.random.split(k_learn, cfg.updates_per_step))
        metrics = {k: jnp.mean(v) for k, v in metrics.items()}
        finite = (jnp.all(jnp.stack([jnp.isfinite(v) for v in metrics.values()]))
                  & _tree_finite(agent.q_params) & _tree_finite(agent.sampler_params))
        first_bad = jnp.where((carry.first_bad < 0) & ~finite, carry.env_steps, carry.first_bad)
        carry = carry.replace(
            agent=agent, key=key, first_bad=first_bad, n_updates=carry.n_updates + 1,
            metric_sum={k: carry.metric_sum[k] + metrics[k] for k in names})
        return act(carry, act_obs)

    def fetch(carry: Carry):
        n = carry.n_updates
        means = {k: jnp.where(n > 0, v / jnp.maximum(n, 1), jnp.nan) for k, v in carry.metric_sum.items()}
        carry = carry.replace(metric_sum={k: jnp.zeros_like(v) for k, v in carry.metric_sum.items()},
                              n_updates=jnp.zeros_like(n))
        return carry, means, n, carry.first_bad

    def new_carry(agent, key):
        return init_carry(agent, key, capacity, names)

    return StepFns(
        new_carry=jax.jit(new_carry),
        start=jax.jit(start, donate_argnums=0),
        collect_step=jax.jit(collect_step, donate_argnums=0),
        learn_step=jax.jit(learn_step, donate_argnums=0),
        fetch=jax.jit(fetch, donate_argnums=0),
        act_eval=make_act_eval(),
        metric_names=names,
    )


def pack(next_obs: np.ndarray, reward: float, terminated: bool, act_obs: np.ndarray) -> np.ndarray:
    """The per-step host-to-device vector (a fresh array every call)."""
    return np.concatenate([next_obs, np.array([reward, float(terminated)], np.float32), act_obs]).astype(
        np.float32, copy=False)


# ------------------------------------------------------------------------------ evaluation

def evaluate(agent: sqljax.SQLState, act_eval: Callable, env_id: str, n_episodes: int,
             key: jax.Array, seeds: list[int], max_episode_steps: int | None,
             modes: tuple[str, ...] = ("stochastic", "deterministic"),
             record: str | None = None, envs: list[GymEnv] | None = None) -> dict[str, Any]:
    """Run ``n_episodes`` per mode in lockstep (one dispatch per step for all episodes).

    modes: "stochastic" (fresh xi per step) and/or "deterministic" (xi = 0). Episode i of
    every mode starts from ``reset(seed=seeds[i])``. Actions use ``key`` only (folded
    with the step index), so evaluation never touches the training RNG or env.
    record: a mode whose first episode is rendered (rgb_array) into ``frames``.
    envs: reusable envs (len(modes) * n_episodes; the recording env, if any, first).
    Returns per mode: ``{mode: np.array of returns}``, plus ``lengths`` and ``frames``.
    """
    total = len(modes) * n_episodes
    own = envs is None
    if own:
        envs = []
        for j in range(total):
            render = "rgb_array" if (record is not None and j == 0) else None
            envs.append(make_env(env_id, max_episode_steps, render_mode=render))
    order = list(modes)
    if record is not None:  # the recorded mode's episodes come first
        order = [record] + [m for m in modes if m != record]
    mode_of = np.repeat(np.arange(len(order)), n_episodes)
    deterministic = np.array([order[m] == "deterministic" for m in mode_of])
    obs = np.stack([env.reset(seed=int(seeds[j % n_episodes])) for j, env in enumerate(envs)])
    frames = [envs[0].render()] if record is not None else []
    alive = np.ones(total, bool)
    returns = np.zeros(total)
    lengths = np.zeros(total, np.int64)
    t = 0
    det = jnp.asarray(deterministic)
    while alive.any():
        actions = np.asarray(act_eval(agent, jnp.asarray(obs, jnp.float32), det, key, t))
        t += 1
        for j in np.flatnonzero(alive):
            o, r, term, trunc, _ = envs[j].step(actions[j])
            obs[j] = o
            returns[j] += r
            lengths[j] += 1
            if term or trunc:
                alive[j] = False
            if j == 0 and record is not None:
                frames.append(envs[0].render())
    if own:
        for env in envs:
            env.close()
    out: dict[str, Any] = {order[m]: returns[mode_of == m] for m in range(len(order))}
    out["lengths"] = {order[m]: lengths[mode_of == m] for m in range(len(order))}
    out["frames"] = frames
    return out


# ------------------------------------------------------------------------------ checkpoints

def checkpoint_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints of a run, oldest first. Half-written
    ones (hidden temp dirs, or dirs without complete metadata) are skipped."""
    root = Path(run_dir) / CHECKPOINT_DIR
    found = []
    if root.is_dir():
        for p in root.iterdir():
            m = _CKPT_RE.match(p.name)
            if not m or not p.is_dir():
                continue
            try:
                sqljax.read_checkpoint_metadata(p)
            except sqljax.CheckpointError:
                continue
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = checkpoint_dirs(run_dir)
    return found[-1][1] if found else None


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


def _save(path: Path, carry: Carry, counters: dict[str, Any]) -> None:
    n = int(replay.size(carry.buffer))
    exp = jax.tree.map(lambda x: x[:, :n], carry.buffer.experience)
    extra = {"replay": exp, "replay_index": carry.buffer.current_index,
             "replay_full": carry.buffer.is_full, "key": carry.key}
    meta = dict(counters, format=RUN_FORMAT, replay_size=n,
                replay_capacity=replay.capacity(carry.buffer))
    sqljax.save_checkpoint(path, carry.agent, extra=extra, metadata=meta)


def load_run_checkpoint(path: Path, capacity: int, metric_names: tuple[str, ...]
                        ) -> tuple[Carry, dict[str, Any]]:
    """Restore a carry (learner, replay, key, counters) from a run checkpoint. The replay
    grows to ``capacity`` if that is larger than the saved one."""
    meta = sqljax.read_checkpoint_metadata(path)
    counters = meta.get("metadata", {})
    if counters.get("format") != RUN_FORMAT:
        raise RunError(f"{path} is a learner checkpoint, not a training-run checkpoint (no replay "
                       "or counters); use --init-from to start a new run from it")
    agent = sqljax.load_checkpoint(path)
    n, saved_cap = int(counters["replay_size"]), int(counters["replay_capacity"])
    capacity = max(int(capacity), n)
    empty = _empty_buffer(capacity, agent.obs_dim, agent.action_dim)
    like = {
        "replay": jax.tree.map(lambda x: jax.ShapeDtypeStruct((1, n) + x.shape[2:], x.dtype), empty.experience),
        "replay_index": jax.ShapeDtypeStruct((), jnp.int32),
        "replay_full": jax.ShapeDtypeStruct((), jnp.bool_),
        "key": jax.ShapeDtypeStruct((2,), jnp.uint32),
    }
    extra = sqljax.load_extra(path, like)
    experience = jax.tree.map(lambda full, part: full.at[:, :n].set(part), empty.experience, extra["replay"])
    if capacity == saved_cap:
        index, full = extra["replay_index"], extra["replay_full"]
    else:
        index, full = jnp.asarray(n % capacity, jnp.int32), jnp.asarray(n == capacity)
    buffer = empty.replace(experience=experience, current_index=index, is_full=full)
    carry = init_carry(agent, extra["key"], capacity, metric_names, buffer=buffer,
                       env_steps=int(counters["env_steps"]))
    return carry, counters


def _prune(run_dir: Path, keep: int) -> None:
    root = run_dir / CHECKPOINT_DIR
    for _, p in checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
    # leftovers of writes killed midway (save_checkpoint's hidden temp dirs)
    for p in root.glob(".step_*"):
        shutil.rmtree(p, ignore_errors=True)


# ------------------------------------------------------------------------------ the run

@dataclasses.dataclass
class RunSpec:
    """Everything a run needs besides the learner's hyperparameters.

    env_id: gymnasium id (resolved). steps: total env steps. out: the run directory.
    eval_every, checkpoint_every, log_every: in env steps. eval_episodes: per mode.
    keep_checkpoints: how many recent checkpoints stay on disk.
    init_from: a checkpoint to start Q and the sampler from (fine-tuning).
    """

    env_id: str
    config: sqljax.SQLConfig
    seed: int
    steps: int
    out: Path
    eval_every: int = 10_000
    eval_episodes: int = 5
    checkpoint_every: int = 50_000
    keep_checkpoints: int = 3
    log_every: int = 1_000
    progress: bool = True
    init_from: str | None = None
    preset: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("config")
        d["out"] = str(self.out)
        d["format"] = RUN_FORMAT
        return d


def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run.json of a run directory; RunError if it is not one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"cannot resume {run_dir}: no such directory")
    f = run_dir / RUN_FILE
    if not f.is_file() or not (run_dir / CONFIG_FILE).is_file():
        raise RunError(f"cannot resume {run_dir}: it is not a training run (no {RUN_FILE} / "
                       f"{CONFIG_FILE}); pass the directory a run was started with (--out)")
    try:
        run = json.loads(f.read_text())
    except ValueError as e:
        raise RunError(f"cannot resume {run_dir}: {f} is unreadable ({e})") from None
    if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
        raise RunError(f"cannot resume {run_dir}: {f} is not an sqljax run file")
    return run


def check_sizes(what: str, obs_dim: int, action_dim: int, env: GymEnv) -> None:
    if (obs_dim, action_dim) != (env.obs_dim, env.action_dim):
        raise RunError(f"{what} has observation size {obs_dim} and action size {action_dim}, but "
                       f"{env.env_id} has observation size {env.obs_dim} and action size "
                       f"{env.action_dim}")


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
    kept = []
    for r in rows[1:]:
        if len(r) != len(header):
            continue
        try:
            if int(r[0]) <= step:
                kept.append(dict(zip(header, r)))
        except ValueError:
            continue
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
    os.replace(tmp, path)


class _MetricsLog:
    """metrics.csv (a row per sync point, flushed) and a TensorBoard event file."""

    def __init__(self, run_dir: Path, columns: list[str], resume_step: int | None):
        self.path = run_dir / METRICS_FILE
        self.columns = columns
        if resume_step is not None and self.path.exists():
            truncate_csv(self.path, resume_step, columns)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.file = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=columns, extrasaction="ignore")
        if new:
            self.writer.writeheader()
            self.file.flush()
        from tensorboardX import SummaryWriter

        self.tb = SummaryWriter(logdir=str(run_dir), purge_step=resume_step, flush_secs=30)

    def write(self, row: dict[str, Any]) -> None:
        self.writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        self.file.flush()
        step = int(row["step"])
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        self.file.close()
        self.tb.close()


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _reset_seed(seed: int, env_steps: int) -> int:
    return int(np.random.SeedSequence([seed, 0x5EED, env_steps]).generate_state(1)[0])


def _eval_seeds(seed: int, eval_index: int, n: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence([seed, 0xE7A1, eval_index]).generate_state(n)]


def prepare_run_dir(spec: RunSpec, resume: bool) -> None:
    out = spec.out
    if not resume:
        if (out / RUN_FILE).exists() or (out / CHECKPOINT_DIR).exists():
            raise RunError(f"{out} already holds a run; continue it with --resume {out}, or choose "
                           "another directory with --out")
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps(spec.config.to_dict(), indent=2) + "\n")
    (out / RUN_FILE).write_text(json.dumps(spec.to_json(), indent=2) + "\n")


def train(spec: RunSpec, resume: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or continue, with ``resume``) a training run described by ``spec``.

    Returns a summary: final counters, the last evaluation, the last checkpoint.
    Raises RunError for bad input, NonFiniteError when training diverges (the last good
    checkpoint is kept), EnvError for an unusable environment.
    """
    cfg = spec.config
    env = make_env(spec.env_id, cfg.max_episode_steps)
    run_dir = spec.out
    capacity = int(min(cfg.replay_size, spec.steps))
    fns = make_step_fns(cfg, env.obs_dim, env.action_dim, capacity)
    base_key = jax.random.PRNGKey(spec.seed)
    k_agent, k_loop = jax.random.split(base_key)
    eval_key = jax.random.fold_in(base_key, 0xE7A1)

    resume_step = None
    if resume:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise RunError(f"cannot resume {run_dir}: it holds no complete checkpoint (the run stopped "
                           "before its first checkpoint); start it again without --resume")
        meta = sqljax.read_checkpoint_metadata(ckpt)
        check_sizes(f"checkpoint {ckpt}", int(meta["obs_dim"]), int(meta["action_dim"]), env)
        carry, counters = load_run_checkpoint(ckpt, capacity, fns.metric_names)
        env_steps, episodes = int(counters["env_steps"]), int(counters["episodes"])
        eval_index = int(counters.get("eval_index", 0))
        wall_before = float(counters.get("wall_time", 0.0))
        last_eval = counters.get("last_eval")
        resume_step = env_steps
        log(f"resuming {run_dir} from {ckpt.name}: {env_steps} env steps, {episodes} episodes, "
            f"{int(carry.agent.step)} updates, replay {counters['replay_size']} transitions "
            "(the environment starts a new episode)")
    else:
        if spec.init_from is not None:
            src = find_checkpoint(spec.init_from)
            meta = sqljax.read_checkpoint_metadata(src)
            check_sizes(f"--init-from checkpoint {src}", int(meta["obs_dim"]), int(meta["action_dim"]), env)
            pretrained = sqljax.load_checkpoint(src)
            try:
                agent = jax.jit(sqljax.finetune_state, static_argnums=2)(k_agent, pretrained, cfg)
            except ValueError as e:
                raise RunError(f"--init-from {src}: {e}") from None
            log(f"initialised Q and the sampler from {src} (optimisers fresh)")
        else:
            agent = jax.jit(sqljax.init, static_argnums=(1, 2, 3))(k_agent, cfg, env.obs_dim, env.action_dim)
        carry = fns.new_carry(agent, k_loop)
        env_steps = episodes = eval_index = 0
        wall_before = 0.0
        last_eval = None
    prepare_run_dir(spec, resume)
    if resume:  # drop leftovers of a write the previous process was killed in
        _prune(run_dir, max(spec.keep_checkpoints, 1))

    columns = (["step", "updates", "episodes", "episode_return", "episode_length",
                "eval_return", "eval_return_std", "eval_return_det", "eval_return_det_std"]
               + list(fns.metric_names) + ["steps_per_sec", "wall_time"])
    logger = _MetricsLog(run_dir, columns, resume_step)
    eval_envs = None

    def counters_now(wall):
        return {"env_steps": env_steps, "episodes": episodes, "updates": int(carry.agent.step),
                "eval_index": eval_index, "wall_time": wall, "seed": spec.seed,
                "env_id": spec.env_id, "last_eval": last_eval}

    last_ckpt = latest_checkpoint(run_dir)
    bar = None
    try:
        from tqdm.auto import tqdm

        bar = tqdm(total=spec.steps, initial=env_steps, unit="step", dynamic_ncols=True,
                   disable=not spec.progress, smoothing=0.05)
        obs = env.reset(seed=_reset_seed(spec.seed, env_steps))
        carry, action = fns.start(carry, obs)
        action = np.asarray(action)
        t0 = time.perf_counter()
        t_row, steps_row, loop_time = t0, env_steps, 0.0
        ep_returns: list[float] = []
        ep_lengths: list[int] = []
        last_return = None
        bar_pending = 0
        learn_from = max(cfg.learning_starts, 1)
        while env_steps < spec.steps:
            next_obs, reward, terminated, truncated, info = env.step(action)
            env_steps += 1
            if terminated or truncated:
                episodes += 1
                last_return = float(info["episode"]["r"])
                ep_returns.append(last_return)
                ep_lengths.append(int(info["episode"]["l"]))
                act_obs = env.reset()
            else:
                act_obs = next_obs
            step_fn = fns.learn_step if env_steps >= learn_from else fns.collect_step
            carry, action = step_fn(carry, pack(next_obs, reward, terminated, act_obs))
            action = np.asarray(action)  # the step's one device-to-host copy
            bar_pending += 1
            if bar_pending >= 100:
                bar.update(bar_pending)
                bar_pending = 0

            eval_due = env_steps % spec.eval_every == 0 or env_steps == spec.steps
            ckpt_due = env_steps % spec.checkpoint_every == 0 or env_steps == spec.steps
            if not (eval_due or ckpt_due or env_steps % spec.log_every == 0):
                continue

            # ---- sync point: metrics, divergence check, evaluation, row, checkpoint
            now = time.perf_counter()
            loop_time = now - t_row
            carry, means, n_upd, first_bad = fns.fetch(carry)
            means = {k: float(v) for k, v in jax.device_get(means).items()}
            first_bad = int(first_bad)
            row: dict[str, Any] = {
                "step": env_steps, "updates": int(carry.agent.step), "episodes": episodes,
                "episode_return": float(np.mean(ep_returns)) if ep_returns else None,
                "episode_length": float(np.mean(ep_lengths)) if ep_lengths else None,
                **{k: (v if int(n_upd) > 0 else None) for k, v in means.items()},
                "steps_per_sec": (env_steps - steps_row) / max(loop_time, 1e-9),
            }
            ep_returns, ep_lengths = [], []
            if first_bad >= 0:
                row["wall_time"] = wall_before + now - t0
                logger.write(row)
                bad = [k for k, v in means.items() if not math.isfinite(v)]
                what = f"non-finite {', '.join(bad)}" if bad else "a non-finite parameter"
                keep = (f"the last good checkpoint is {last_ckpt} (continue with --resume {run_dir})"
                        if last_ckpt is not None else "no checkpoint was written before it")
                raise NonFiniteError(f"training diverged at env step {first_bad} ({what}); "
                                     f"stopped at step {env_steps}; {keep}")
            if eval_due:
                if eval_envs is None:
                    eval_envs = [make_env(spec.env_id, cfg.max_episode_steps)
                                 for _ in range(2 * spec.eval_episodes)]
                res = evaluate(carry.agent, fns.act_eval, spec.env_id, spec.eval_episodes,
                               jax.random.fold_in(eval_key, eval_index),
                               _eval_seeds(spec.seed, eval_index, spec.eval_episodes),
                               cfg.max_episode_steps, envs=eval_envs)
                eval_index += 1
                last_eval = {"step": env_steps,
                             "stochastic": float(np.mean(res["stochastic"])),
                             "stochastic_std": float(np.std(res["stochastic"])),
                             "deterministic": float(np.mean(res["deterministic"])),
                             "deterministic_std": float(np.std(res["deterministic"]))}
                row.update(eval_return=last_eval["stochastic"], eval_return_std=last_eval["stochastic_std"],
                           eval_return_det=last_eval["deterministic"],
                           eval_return_det_std=last_eval["deterministic_std"])
            wall = wall_before + time.perf_counter() - t0
            row["wall_time"] = wall
            logger.write(row)
            if ckpt_due:
                last_ckpt = run_dir / CHECKPOINT_DIR / f"step_{env_steps:09d}"
                _save(last_ckpt, carry, counters_now(wall))
                _prune(run_dir, max(spec.keep_checkpoints, 1))
            bar.update(bar_pending)
            bar_pending = 0
            bar.set_postfix_str(f"ret={_fmt(last_return)} eval={_fmt(last_eval and last_eval['stochastic'])}"
                                f"/{_fmt(last_eval and last_eval['deterministic'])} "
                                f"q_loss={_fmt(means.get('q_loss'), 3)}", refresh=False)
            t_row, steps_row = time.perf_counter(), env_steps
    finally:
        if bar is not None:
            bar.close()
        logger.close()
        env.close()
        for e in eval_envs or []:
            e.close()
    return {"env_steps": env_steps, "episodes": episodes, "updates": int(carry.agent.step),
            "last_eval": last_eval, "checkpoint": str(last_ckpt) if last_ckpt else None,
            "run_dir": str(run_dir)}
