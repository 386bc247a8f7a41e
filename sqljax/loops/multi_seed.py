"""The training driver: N >= 1 seeds in lockstep, on any environment (a single run is
N = 1; seed ``i`` is the same run whatever N is: :mod:`sqljax.seeding`).

:func:`train` runs a :class:`~sqljax.store.run_dir.RunSpec` with one of two programs,
both vmapped over the seed axis and sharded over the devices: for gymnasium envs
:class:`~sqljax.loops.gym_loop.GymProgram` (one device call per env step for all
seeds), for JAX-native envs :class:`~sqljax.loops.scan_loop.JaxProgram` (one compiled
``lax.scan`` per chunk of steps). Everything else is this one loop: at every sync point
(``log_every``, ``eval_every``, ``checkpoint_every``, the end) it fetches the statistics,
stops on the first non-finite loss or parameter (naming seed, env step and update),
evaluates, and writes each seed's metrics row and the checkpoint
(:mod:`sqljax.store.run_dir`). ``resume`` continues from the last complete checkpoint,
bit for bit for the JAX-native loop (gymnasium envs start new episodes); ``init_from``
starts every seed from pretrained learners (:func:`load_init_states`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

import sqljax
from sqljax import learners, seeding
from sqljax.envs import make_jax_env, registry
from sqljax.loops import NonFiniteError, RunError, Stopped, device
from sqljax.loops.run_states import abstract_carry, load_init_states, load_run_state, load_seed_states  # noqa: F401
from sqljax.store import run_dir as rd
from sqljax.store.metrics_log import MetricsLog
from sqljax.store.run_dir import BASE_COLUMNS, RunSpec, latest_checkpoint, read_run


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


def mesh_for(n_seeds: int, n_devices: int | None) -> Mesh:
    """The mesh of a run: the first ``n_devices`` devices (default all), checked."""
    devices = jax.devices()
    if n_devices is not None:
        if not 1 <= n_devices <= len(devices):
            raise RunError(f"--devices {n_devices}: there are {len(devices)} devices "
                           f"({devices[0].platform})")
        devices = devices[:n_devices]
    check_seed_count(n_seeds, len(devices))
    return seeding.seed_mesh(devices)


def make_program(spec: RunSpec, mesh, jax_env: tuple[Any, Any] | None = None):
    """The program that trains ``spec.env_id``: the compiled loop (on ``jax_env``, an
    ``(env, env_params)`` pair, default ``make_jax_env(spec.env_id)``) or the gymnasium
    driver."""
    if jax_env is not None or registry.is_jax_native(spec.env_id):
        from sqljax.loops.scan_loop import JaxProgram

        try:
            env, params = jax_env or make_jax_env(spec.env_id)
            return JaxProgram(spec, mesh, env, params)
        except ValueError as e:
            raise RunError(str(e)) from None
    from sqljax.loops.gym_loop import GymProgram

    return GymProgram(spec, mesh)


class StopSignals:
    """While a run trains: the first SIGINT or SIGTERM asks it to stop at the next env
    step (``stop()`` turns true); a second one interrupts at once. Handlers are set only
    when ``enabled`` and in the main thread, and restored on exit."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.signum, self.old = enabled, None, {}

    def __enter__(self):
        if self.enabled and threading.current_thread() is threading.main_thread():
            self.old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.old.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "a signal"

    def agreed(self) -> bool:
        """Whether any process was asked to stop (every process calls it at each sync)."""
        if jax.process_count() == 1:
            return self()
        from jax.experimental import multihost_utils

        flags = multihost_utils.process_allgather(np.int32(self.signum or 0))
        self.signum = self.signum or int(np.max(flags)) or None
        return self.signum is not None


def next_sync(step: int, spec: RunSpec) -> int:
    """The next env step at which a schedule fires (or the end)."""
    return min([spec.steps] + [(step // every + 1) * every for every in spec.periods])


@functools.lru_cache(maxsize=8)
def stats_fns(mesh, n_seeds: int, names: tuple[str, ...] | None = None):
    """Jitted ``() -> zero stats (N, ...)`` and ``stats -> (summary, zero stats)`` for
    the update metrics ``names`` (default: the default learner's)."""
    sh = seeding.seed_sharding(mesh)
    fresh = jax.jit(lambda: jax.vmap(lambda _: device.new_stats(names))(jnp.arange(n_seeds)),
                    out_shardings=sh)
    fetch = jax.jit(jax.vmap(lambda s: (device.summarize(s), device.new_stats(names))),
                    in_shardings=(sh,), out_shardings=(sh, sh), donate_argnums=0)
    return fresh, fetch


def train(spec: RunSpec, resume: bool = False, log: Callable[[str], None] = print,
          jax_env: tuple[Any, Any] | None = None, handle_signals: bool = True,
          deadline: float | None = None) -> dict[str, Any]:
    """Train ``spec.seed_ids`` in lockstep (or continue with ``resume``). ``jax_env``: an
    ``(env, env_params)`` pair of any JAX-native env (gymnax 1.0's interface) to train on
    with the compiled loop; ``spec.env_id`` then only names it.

    The run directory is held by this process while it runs (:func:`run_dir.hold`). With
    ``handle_signals`` (in the main thread), SIGINT and SIGTERM stop the run at the next
    env step: a checkpoint there, the logs flushed, then :class:`Stopped`; a second
    signal interrupts at once. ``deadline`` (a ``time.monotonic()`` time): the run ends at
    the first sync point past it as at its last step (a metrics row, and an evaluation and
    a checkpoint where those schedules are on), short of ``spec.steps``. ``resume`` falls
    back from a damaged checkpoint to the previous one (the damaged one is renamed
    ``damaged_step_*`` and kept); a directory without any checkpoint starts again from
    step 0.

    Returns: ``env_steps`` (per seed), ``seed_ids``, ``updates`` and ``episodes`` (per
    seed), ``evals`` (per evaluation: ``step`` and per-seed mean returns under
    ``stochastic``, ``deterministic``), ``steps_per_sec`` (per seed, each log interval),
    ``agents`` (the stacked learners, on the host), ``checkpoint``, ``run_dir``,
    ``n_devices``, ``out_of_time`` (ended by ``deadline``). Raises RunError (bad input,
    one line), NonFiniteError (divergence; the last good checkpoint is kept).
    """
    rd.check_spec(spec)
    if jax_env is None and not registry.is_jax_native(spec.env_id):
        from sqljax.envs.gym_adapter import resolve_env_id

        spec = dataclasses.replace(spec, env_id=resolve_env_id(spec.env_id))
    elif registry.find_task(spec.env_id) is not None:
        spec = dataclasses.replace(spec, env_id=registry.find_task(spec.env_id).id)
    mesh = mesh_for(spec.n_seeds, spec.devices)
    with rd.hold(spec.out):
        prog = make_program(spec, mesh, jax_env)
        try:
            with StopSignals(handle_signals) as stop:
                return _train(spec, prog, resume, log, mesh, stop, deadline)
        finally:
            prog.close()


def _train(spec: RunSpec, prog, resume: bool, log, mesh, stop: StopSignals,
           deadline: float | None = None) -> dict[str, Any]:
    n = spec.n_seeds
    sh = seeding.seed_sharding(mesh)
    local = seeding.local_seed_positions(sh, n)
    keys = seeding.seed_keys(spec.base_seed, spec.seed_ids)
    eval_keys = seeding.fold_keys(keys, seeding.EVAL_TAG)
    names = list(learners.of_config(spec.config).metrics)
    columns = BASE_COLUMNS + prog.extra_columns + names + ["steps_per_sec", "wall_time"]
    restart = False
    if resume and not rd.checkpoint_dirs(spec.out, complete=False):
        log(f"{spec.out} holds no checkpoint (it stopped before its first): starting it again")
        resume = False
    if resume:
        run = read_run(spec.out)
        if list(run["seed_ids"]) != list(spec.seed_ids):
            raise RunError(f"{spec.out} was run with seeds {run['seed_ids']}; resume it with the "
                           "same seeds")
        ckpt, carry, counters = _restore_latest(spec, prog, sh, log)
        env_steps, eval_index = int(counters["env_steps"]), int(counters["eval_index"])
        wall_before, evals = float(counters["wall_time"]), list(counters["evals"])
        log(f"resuming {spec.out} from {ckpt.name}: {env_steps} env steps per seed"
            + (" (the environments start new episodes)" if prog.kind == "gym" else ""))
    else:
        restart = rd.check_new(spec)
        pretrained = None
        if spec.init_from is not None:
            pretrained = load_init_states(spec.init_from, spec.seed_ids, spec.env_id,
                                          prog.obs_dim, prog.action_dim,
                                          learners.of_config(spec.config).name)
        keys_g = seeding.to_global(keys, sh)
        if pretrained is None:
            carry = prog.fns["init"](keys_g)
        else:
            try:
                carry = prog.fns["finetune"](keys_g, seeding.to_global(pretrained, sh))
            except ValueError as e:  # network sizes differ
                raise RunError(f"--init-from {spec.init_from}: {e}") from None
            log(f"seeds start from the learners in {spec.init_from} (optimisers fresh)")
        env_steps, eval_index, wall_before, evals = 0, 0, 0.0, []
    rd.prepare(spec, resume, int(mesh.devices.size), mesh.devices.flat[0].platform)
    if resume and jax.process_index() == 0:
        rd.prune(spec.out, spec.keep_checkpoints)
    if env_steps >= spec.steps:
        log(f"{spec.out} already has {env_steps} env steps per seed (>= --steps {spec.steps})")
    # a run started again drops every row, the step-0 evaluation's included
    logs = MetricsLog(spec.out, [spec.seed_ids[p] for p in local], columns,
                      env_steps if resume else (-1 if restart else None))
    last_ckpt = latest_checkpoint(spec.out)
    fresh_stats, fetch = stats_fns(mesh, n, tuple(names))
    stats = fresh_stats()
    rates: list[float] = []
    bar = _progress(spec, env_steps)
    single = jax.process_count() == 1
    out_of_time = False
    try:
        carry = prog.begin(carry, env_steps)
        if spec.eval_at_start and spec.eval_every > 0 and not resume:
            res = prog.evaluate(carry.agent, eval_keys, eval_index)
            eval_index += 1
            evals.append(_record_eval(0, res))
            rows = {p: {"step": 0, "updates": 0, "episodes": 0, "wall_time": 0.0} for p in local}
            for p in local:
                _eval_columns(rows[p], res, p)
            logs.write({spec.seed_ids[p]: rows[p] for p in local})
        t0 = t_row = time.perf_counter()
        steps_row = env_steps
        while env_steps < spec.steps:
            target = next_sync(env_steps, spec)
            carry, stats, reached = prog.advance(carry, stats, env_steps, target,
                                                 stop if single else lambda: False)
            bar.update(reached - env_steps)
            moved, env_steps, stopping = reached > env_steps, reached, stop.agreed()
            out_of_time = deadline is not None and _any_process(time.monotonic() >= deadline)
            last = env_steps if out_of_time else spec.steps  # the run ends here
            summary, stats = fetch(stats)
            summary, updates, episodes = seeding.to_host((summary, carry.agent.step, carry.episodes))
            now = time.perf_counter()
            rate = (env_steps - steps_row) / max(now - t_row, 1e-9)
            rates.append(rate)
            rows = {p: {**_row(env_steps, summary, p, int(updates[p]), int(episodes[p]), rate,
                               names), **prog.train_columns(p)} for p in local}
            bad = [p for p in range(n) if summary["bad_step"][p] >= 0]
            if not bad and not stopping and rd.due(env_steps, spec.eval_every, last):
                res = prog.evaluate(carry.agent, eval_keys, eval_index)
                eval_index += 1
                evals.append(_record_eval(env_steps, res))
                for p in local:
                    _eval_columns(rows[p], res, p)
            wall = wall_before + time.perf_counter() - t0
            if moved:  # (a stop right after a sync point has nothing new to log)
                logs.write({spec.seed_ids[p]: dict(rows[p], wall_time=wall) for p in local})
            if bad:
                what = [k for k in names if not np.isfinite(summary[k][bad[0]])
                        and summary["n_learn"][bad[0]] > 0]
                raise NonFiniteError(rd.diverged_message(
                    [(spec.seed_ids[p], int(summary["bad_step"][p]), int(summary["bad_update"][p]))
                     for p in bad],
                    f"non-finite {', '.join(what)}" if what else "a non-finite parameter",
                    env_steps, last_ckpt, spec.out))
            if stopping and env_steps == 0:
                raise Stopped(stop.signum, f"stopped by {stop.name} before the first env step; "
                              "nothing to save (the same command starts it again)")
            saved = last_ckpt == rd.checkpoint_path(spec.out, env_steps)
            if (moved and rd.due(env_steps, spec.checkpoint_every, last)) or (
                    stopping and not saved):
                last_ckpt = rd.checkpoint_path(spec.out, env_steps)
                rd.save_carry(last_ckpt, carry, dict(
                    env_steps=env_steps, episodes=[int(e) for e in episodes],
                    updates=[int(u) for u in updates], eval_index=eval_index, wall_time=wall,
                    evals=evals, seed_ids=list(spec.seed_ids), env_id=spec.env_id,
                    base_seed=spec.base_seed, kind=prog.kind, replay_capacity=prog.capacity))
                if jax.process_index() == 0:
                    rd.prune(spec.out, spec.keep_checkpoints)
            if stopping:
                raise Stopped(stop.signum, f"stopped by {stop.name} at env step {env_steps}; "
                              f"checkpoint {last_ckpt}; continue with --resume {spec.out}")
            if evals:
                bar.set_postfix_str(f"eval {np.mean(evals[-1]['stochastic']):.1f}/"
                                    f"{np.mean(evals[-1]['deterministic']):.1f} (mean over seeds)",
                                    refresh=False)
            t_row, steps_row = time.perf_counter(), env_steps
            if out_of_time:
                log(f"out of time at env step {env_steps} of {spec.steps}")
                break
    except BaseException:
        bar.close()
        with contextlib.suppress(OSError):  # the first error is the one to report
            logs.close()
        raise
    bar.close()
    logs.close()
    agents = seeding.to_host(carry.agent)
    return {"env_steps": env_steps, "seed_ids": list(spec.seed_ids),
            "updates": [int(u) for u in np.asarray(agents.step).reshape(-1)],
            "episodes": [int(e) for e in np.asarray(seeding.to_host(carry.episodes)).reshape(-1)],
            "evals": evals, "steps_per_sec": rates, "agents": agents,
            "checkpoint": str(last_ckpt) if last_ckpt else None, "run_dir": str(spec.out),
            "n_devices": int(mesh.devices.size), "out_of_time": out_of_time}


def _any_process(flag: bool) -> bool:
    """Whether ``flag`` holds in any process (every process calls it at the same sync)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.max(multihost_utils.process_allgather(np.int32(flag))))


def _finite_or_none(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _row(step: int, summary, p: int, updates: int, episodes: int, rate: float, names) -> dict:
    return {"step": step, "updates": updates, "episodes": episodes,
            "episode_return": _finite_or_none(summary["episode_return"][p]),
            "episode_length": _finite_or_none(summary["episode_length"][p]),
            **{k: (float(summary[k][p]) if summary["n_learn"][p] > 0 else None) for k in names},
            "steps_per_sec": rate}


def _record_eval(step: int, res: dict[str, Any]) -> dict[str, Any]:
    ev = {"step": step, "stochastic": [float(x) for x in res["stochastic"].mean(axis=1)],
          "deterministic": [float(x) for x in res["deterministic"].mean(axis=1)]}
    ev.update({k: [float(x) for x in v] for k, v in res.get("record", {}).items()})
    return ev


def _eval_columns(row: dict[str, Any], res: dict[str, Any], p: int) -> None:
    stoch, det = res["stochastic"][p], res["deterministic"][p]
    row.update(eval_return=float(np.mean(stoch)), eval_return_std=float(np.std(stoch)),
               eval_return_det=float(np.mean(det)), eval_return_det_std=float(np.std(det)))
    row.update({k: np.asarray(v[p]).item() for k, v in res.get("columns", {}).items()})


def _progress(spec: RunSpec, initial: int):
    from tqdm.auto import tqdm

    seeds_text = f"seed {spec.seed_ids[0]}" if spec.n_seeds == 1 else f"{spec.n_seeds} seeds"
    return tqdm(total=spec.steps, initial=initial, unit="step", dynamic_ncols=True,
                disable=not spec.progress or jax.process_index() != 0, smoothing=0.05,
                desc=f"{spec.label + ', ' if spec.label else ''}{seeds_text}")


# ------------------------------------------------------------------------------ checkpoints

def _restore_latest(spec: RunSpec, prog, sharding, log):
    """(checkpoint, carry, counters) of the latest usable checkpoint of a run. One that
    cannot be read (sqljax.CheckpointError) is named in one line and set aside
    (``damaged_step_*``, kept); the previous one is tried. RunError if none can be, or
    if the run has done more than ``spec.steps``."""
    failures, run_dir = [], spec.out
    for _, ckpt in reversed(rd.checkpoint_dirs(run_dir, complete=False)):
        try:
            done = int(rd.run_counters(ckpt)["env_steps"])
            if done > spec.steps:
                raise RunError(f"{run_dir} has done {done} env steps per seed, more than --steps "
                               f"{spec.steps}; resume with --steps >= {done}")
            return (ckpt, *_restore(ckpt, prog, sharding))
        except sqljax.CheckpointError as e:
            failures.append(f"{ckpt.name}: {e}")
            kept = rd.set_aside(ckpt) if jax.process_count() == 1 else ckpt
            log(f"checkpoint {ckpt} is unusable ({e}); kept as {kept.name}, trying the previous one")
    raise RunError(f"cannot resume {run_dir}: no usable checkpoint ({'; '.join(failures)})")


def _restore(path: Path, prog, sharding) -> tuple[Any, dict[str, Any]]:
    like = abstract_carry(prog.kind, prog.cfg, prog.spec.env_id, prog.obs_dim, prog.action_dim,
                          prog.spec.n_seeds, prog.capacity, getattr(prog, "jax_env", None))
    carry, counters = rd.restore_carry(path, like)
    return seeding.to_global(carry, sharding), counters
