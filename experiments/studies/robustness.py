"""Robustness of trained learners: their return under perturbed dynamics and noisy
actions or observations, relative to the same learners on the unperturbed task.

    python -m experiments.studies.robustness --learners zoo/HalfCheetah/code zoo/HalfCheetah/ddpg-code \\
        --families mass friction push action_noise obs_noise --episodes 30 --out results/robustness/HalfCheetah
    python -m experiments.studies.robustness --report-only --out results/robustness/HalfCheetah

Every seed learner (``seed<i>/``) of each ``--learners`` directory is evaluated on the
unperturbed task and under every magnitude of every family
(:mod:`sqljax.envs.perturbations`: ``mass``, ``friction``, ``push``, ``action_noise``,
``obs_noise``; ``--mass 0.5 2`` and the like change a family's grid), in both evaluation
modes, ``--episodes`` episodes per seed and mode. One grid point of one directory is one
call of :func:`sqljax.loops.evaluation.evaluate`: all its seeds and episodes in lockstep,
one policy call per step. Every policy meets the same episodes: the same reset seeds,
pushes and noise draws (from ``--seed``), and the same acting keys at every grid point.
``obs_noise`` scales its noise by the observations' per-dimension std over the
unperturbed episodes of all the given directories, kept in ``obs_std.json``.

Writes under ``--out`` (default ``results/robustness/<task>``):

* ``robustness.csv``: a row per (directory, seed, family, magnitude, mode) with the mean
  return and length over the episodes, appended after each grid point; the same command
  again skips the rows it holds (a study is resumable; the unperturbed rows have family
  ``none`` and no magnitude);
* ``summary.json``: per directory, family, magnitude and mode the IQM over seeds of the
  return and of the relative return, each seed's ``1 + (R - R0) / |R0|`` (``R0``: its
  unperturbed return; ``R / R0`` when ``R0 > 0``), with stratified-bootstrap intervals;
  per family the area under each seed's relative-return curve (trapezoid over the
  magnitudes, the neutral one included, divided by their span: the mean relative
  return over the range), and the difference of its mean between the first directory
  and each other with a bootstrap interval, and of the mean area of the max-entropy
  learners' seeds (SQL, SAC) minus the deterministic ones' (DDPG, TD3);
* ``robustness.png``: a column per family, magnitude on x, the relative return (top) and
  the return (bottom) on y, a line per directory and mode with its band;
* ``report.md``: per family and mode a table of the learners' returns, relative returns
  and areas, and the differences with their intervals and verdicts.

Learners are named SQL, DDPG, TD3 and SAC after their zoo cells (``code``, ``ddpg-code``,
``ddpg-modern``, ``sac-code``), other directories by their names. ``--report-only`` rebuilds
``summary.json``, the figure and ``report.md`` from the CSV, ``settings.json`` and
``obs_std.json`` under ``--out`` alone, loading no learner and no env (as
``python -m experiments.studies.robustness_report DIR``).

Bad input (a directory without learners, learners of different tasks, an unknown family,
a magnitude out of range, a family the task cannot take) ends with one ``error:`` line
and exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

import sqljax
from experiments import cli, stats
from experiments.studies.robustness_report import (
    COLUMNS,
    CSV_FILE,
    MODES,
    OBS_STD_FILE,
    PLOT_FILE,
    REPORT_FILE,
    SETTINGS_FILE,
    SUMMARY_FILE,
    UNPERTURBED,
    build_summary,
    key_of,
    labels,
    read_rows,
    rebuild_command,
    report,
    row_key,
    write_outputs,
)
from sqljax import learners, seeding
from sqljax.envs import perturbations as pt
from sqljax.envs.gym_adapter import resolve_env_id, short_name
from sqljax.loops import RunError, evaluation
from sqljax.store import run_dir as rd

__all__ = ["COLUMNS", "CSV_FILE", "OBS_STD_FILE", "PLOT_FILE", "REPORT_FILE", "ROBUSTNESS_TAG", "SETTINGS_FILE",
           "SUMMARY_FILE", "LearnerDir", "build_parser", "load_learner_dirs", "main", "read_rows", "run_study"]
#: Folded into the seeds' keys and episode seeds of this study.
ROBUSTNESS_TAG = 0x0B57


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m experiments.studies.robustness",
                   description="Evaluate the seed learners of each directory under perturbed dynamics, "
                               "pushes and action or observation noise; a CSV per seed, a summary with "
                               "bootstrap intervals and a figure under --out.",
                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--learners", nargs="+", metavar="DIR",
                   help="directories of seed<i>/ learner exports of one task (zoo/<task>/<cell>); "
                        "the first is compared with each other (required unless --report-only; with it, the "
                        "directories of the CSV to report, default all)")
    p.add_argument("--report-only", action="store_true",
                   help="evaluate nothing: rebuild summary.json, the figure and report.md under --out from its "
                        "robustness.csv, settings.json and obs_std.json (no learner or env is loaded)")
    p.add_argument("--families", nargs="+", choices=list(pt.FAMILIES), default=list(pt.FAMILIES),
                   help="perturbation families")
    p.add_argument("--episodes", type=int, help="episodes per seed, mode and magnitude (default 30; with "
                   "--report-only, the CSV's)")
    grids = p.add_argument_group("magnitudes (default grids; the neutral value is the unperturbed "
                                 "evaluation, always done)")
    for fam in pt.FAMILIES.values():
        default = ("0, 1/4, 1/2, 1, 2 times the robot's weight" if fam.name == "push"
                   else ", ".join(f"{g:g}" for g in fam.grid))
        grids.add_argument(cli.flag(fam.name), dest=f"grid_{fam.name}", type=float, nargs="+", metavar="X",
                           help=f"{fam.description} ({fam.unit}; neutral {fam.neutral:g}; default {default})")
    grids.add_argument("--push-duration", type=float, default=pt.PUSH_DURATION, help="seconds each push lasts "
                       "(rounded to whole control steps, at least one)")
    grids.add_argument("--push-gap", type=int, nargs=2, default=list(pt.PUSH_GAP), metavar=("LO", "HI"),
                       help="control steps between pushes, drawn uniformly")
    p.add_argument("--seed", type=int, default=0, help="seed of the episodes' starts, pushes, noise and the "
                   "learners' acting keys")
    p.add_argument("--max-episode-steps", type=int, help="time limit (default: the shortest of the learners' "
                   "configs, capped by the env's own)")
    p.add_argument("--out", help="output directory (default results/robustness/<task>)")
    p.add_argument("--bootstrap-reps", type=int, default=stats.DEFAULT_REPS, help="bootstrap replicates per interval")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


# ------------------------------------------------------------------------------ learners

@dataclasses.dataclass
class LearnerDir:
    """The seed learners of one directory, stacked: ``agents`` (N, ...) on ``mesh``,
    ``keys`` (N, 2) raw acting keys, in the order of ``seed_ids``."""

    path: str
    label: str
    learner: str
    seed_ids: tuple[int, ...]
    env_id: str
    max_steps: int
    agents: Any
    keys: np.ndarray


def load_learner_dir(path: str, mesh, base_seed: int) -> LearnerDir:
    """Load and stack the ``seed<i>/`` learners of ``path``; RunError (one line) if it holds
    none, or its seeds differ in learner, config, sizes or task."""
    where = Path(path)
    if not where.exists():
        raise RunError(f"{path} does not exist")
    found = rd.seed_learners(where)
    if not found:
        raise RunError(f"{path} holds no learners: --learners takes directories of seed<i>/ learner "
                       "exports (e.g. zoo/Hopper/code)")
    states, envs = [], set()
    for ckpt in found.values():
        meta = sqljax.read_checkpoint_metadata(ckpt)
        env_id = meta.get("metadata", {}).get("env_id")
        if not env_id:
            raise RunError(f"{ckpt} does not record the task it was trained on")
        envs.add(resolve_env_id(env_id))
        states.append(sqljax.load_checkpoint(ckpt))
    first = states[0]
    for ckpt, state in zip(found.values(), states):
        if (learners.of_state(state) is not learners.of_state(first) or state.config != first.config
                or (state.obs_dim, state.action_dim) != (first.obs_dim, first.action_dim)):
            raise RunError(f"{ckpt} is not the same learner as {next(iter(found.values()))} (learner, config "
                           "or sizes differ); a directory's seeds are evaluated together")
    if len(envs) > 1:
        raise RunError(f"the seeds of {path} were trained on different tasks ({', '.join(sorted(envs))})")
    stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *states)
    seed_ids = tuple(found)
    keys = seeding.fold_keys(seeding.seed_keys(base_seed, seed_ids), ROBUSTNESS_TAG)
    return LearnerDir(path=Path(path).as_posix(), label=Path(path).name, learner=learners.of_state(first).name,
                      seed_ids=seed_ids, env_id=envs.pop(), max_steps=int(first.config.max_episode_steps),
                      agents=seeding.to_global(stacked, seeding.seed_sharding(mesh)), keys=keys)


def load_learner_dirs(paths: Sequence[str], mesh, base_seed: int) -> list[LearnerDir]:
    """Every directory's learners; RunError if a directory repeats or the tasks differ.
    Labels are the directories' names, or their paths where two names coincide."""
    norm = [Path(p).as_posix() for p in paths]
    if len(set(norm)) < len(norm):
        raise RunError(f"--learners names a directory twice ({', '.join(norm)})")
    dirs = [load_learner_dir(p, mesh, base_seed) for p in paths]
    tasks = {d.env_id for d in dirs}
    if len(tasks) > 1:
        raise RunError("the learners are of different tasks: " + ", ".join(f"{d.path} ({d.env_id})" for d in dirs)
                       + "; a study compares learners of one task")
    for d, label in zip(dirs, labels([d.path for d in dirs])):
        d.label = label
    return dirs


# ------------------------------------------------------------------------------ the grid

def magnitude_grid(args: argparse.Namespace, probe: pt.PerturbedEnv) -> dict[str, list[float]]:
    """Per family its magnitudes to evaluate (sorted, the neutral one left out: the
    unperturbed evaluation stands for it). Each is checked on ``probe``
    (PerturbationError: out of range, or a family the task cannot take)."""
    grid = {}
    for family in dict.fromkeys(args.families):
        why = probe.supports(family)
        if why is not None:
            raise pt.PerturbationError(why)
        given = getattr(args, f"grid_{family}")
        mags = given if given is not None else pt.default_magnitudes(family, probe)
        for m in mags:
            probe.perturb(pt.Perturbation(family, m, obs_std=np.ones(probe.obs_dim),
                                          push_duration=args.push_duration, push_gap=tuple(args.push_gap)))
        probe.perturb(None)
        neutral = pt.FAMILIES[family].neutral
        grid[family] = sorted({float(m) for m in mags} - {neutral})
    return grid


# ------------------------------------------------------------------------------ the CSV

def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to the CSV (its header first if it is new) and flush them to disk."""
    new = not path.is_file()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerows(rows)


# ------------------------------------------------------------------------------ evaluation

def evaluate_point(ld: LearnerDir, pool: dict[int, list[pt.PerturbedEnv]], perturbation: pt.Perturbation | None,
                   episode_seeds: list[int], mesh) -> tuple[dict[tuple[int, str], tuple[float, float]], int]:
    """One grid point of one directory: every seed, both modes, ``len(episode_seeds)``
    episodes each, in one :func:`evaluation.evaluate`. Returns {(seed id, mode): (mean
    return, mean length)} and the env steps taken."""
    e = len(episode_seeds)
    positions = range(len(ld.seed_ids))
    envs = {p: pool[p][:2 * e] for p in positions}
    for p in positions:
        for env in envs[p]:
            env.perturb(perturbation)
    deterministic = np.repeat([m == "deterministic" for m in MODES], e)
    out = evaluation.evaluate(ld.agents, mesh, envs, {p: list(episode_seeds) * len(MODES) for p in positions},
                              ld.keys, deterministic)
    result = {}
    for p, seed in enumerate(ld.seed_ids):
        for i, mode in enumerate(MODES):
            sl = slice(i * e, (i + 1) * e)
            result[(seed, mode)] = (float(np.mean(out["returns"][p, sl])), float(np.mean(out["lengths"][p, sl])))
    return result, int(np.sum(out["lengths"]))


def _check_settings(out: Path, settings: dict[str, Any]) -> None:
    path = out / SETTINGS_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        differ = [k for k in settings if saved.get(k) != settings[k]]
        if differ:
            raise RunError(f"{out} holds a study with other settings ({', '.join(differ)} differ: "
                           f"{', '.join(f'{k} {saved.get(k)} here, {settings[k]} asked' for k in differ)}); "
                           "choose another --out, or remove it")
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2) + "\n")


# ------------------------------------------------------------------------------ summary

def run_study(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The study of the command line ``argv``: every grid point not in the CSV yet, then
    the summary and the figure. Returns the summary; errors as exceptions."""
    start = time.perf_counter()
    args = build_parser().parse_args(argv)
    cli.check_at_least(args, {"episodes": 1, "max_episode_steps": 1, "bootstrap_reps": 1, "seed": 0})
    if not 0 < args.confidence < 1:
        raise RunError(f"--confidence must be in (0, 1), got {args.confidence}")
    if args.report_only:
        if not args.out:
            raise RunError("--report-only needs --out, the study's directory")
        return rebuild_command(args.out, args.learners, args.episodes, args.bootstrap_reps, args.confidence)
    if not args.learners:
        raise RunError("the following arguments are required: --learners (unless --report-only)")
    args.episodes = args.episodes or 30
    mesh = seeding.seed_mesh(jax.devices()[:1])
    dirs = load_learner_dirs(args.learners, mesh, args.seed)
    env_id = dirs[0].env_id
    limit = args.max_episode_steps or min(d.max_steps for d in dirs)
    probe = pt.PerturbedEnv(env_id, max_episode_steps=limit)
    try:
        if (probe.obs_dim, probe.action_dim) != (dirs[0].agents.obs_dim, dirs[0].agents.action_dim):
            raise RunError(f"{dirs[0].path} has observation size {dirs[0].agents.obs_dim} and action size "
                           f"{dirs[0].agents.action_dim}, but {env_id} has {probe.obs_dim} and {probe.action_dim}")
        grid = magnitude_grid(args, probe)
        limit = probe.time_limit or limit
    finally:
        probe.close()
    task = short_name(env_id)
    out = Path(args.out) if args.out else Path("results/robustness") / task
    settings = {"env_id": env_id, "seed": args.seed, "max_episode_steps": limit,
                "push_duration": args.push_duration, "push_gap": list(args.push_gap)}
    _check_settings(out, settings)
    csv_path = out / CSV_FILE
    done = {key_of(r) for r in read_rows(csv_path)}
    obs_std = None
    if (out / OBS_STD_FILE).is_file():
        obs_std = np.asarray(json.loads((out / OBS_STD_FILE).read_text())["obs_std"], np.float64)
        if obs_std.shape != (dirs[0].agents.obs_dim,):
            raise RunError(f"{out / OBS_STD_FILE} holds {obs_std.size} stds, not {dirs[0].agents.obs_dim}; "
                           "remove it to measure them again")
    need_std = "obs_noise" in grid and obs_std is None
    episode_seeds = seeding.eval_env_seeds(args.seed, 0, ROBUSTNESS_TAG, args.episodes)

    points: list[tuple[LearnerDir, str, float | None]] = [(d, UNPERTURBED, None) for d in dirs]
    points += [(d, family, m) for family, mags in grid.items() for m in mags for d in dirs]
    print(f"robustness of {', '.join(f'{d.label} ({d.learner}, {len(d.seed_ids)} seeds)' for d in dirs)} on "
          f"{env_id}: {args.episodes} episode(s) per seed and mode, time limit {limit}; "
          + "; ".join(f"{f} {', '.join(f'{m:g}' for m in ms)}" for f, ms in grid.items()) + f" -> {out}")
    pool = {p: [pt.PerturbedEnv(env_id, max_episode_steps=limit) for _ in range(len(MODES) * args.episodes)]
            for p in range(max(len(d.seed_ids) for d in dirs))}
    envs = [env for group in pool.values() for env in group]
    count = {"evaluated": 0, "env_steps": 0}

    def run_point(d: LearnerDir, family: str, magnitude: float | None, record: bool = False) -> None:
        keys = [row_key(d.path, s, family, magnitude, mode, args.episodes) for s in d.seed_ids for mode in MODES]
        if all(k in done for k in keys) and not record:
            return
        for env in envs:
            env.record_observations = record
        perturbation = None if family == UNPERTURBED else pt.Perturbation(
            family, magnitude, args.seed, obs_std if family == "obs_noise" else None, args.push_duration,
            tuple(args.push_gap))
        result, steps = evaluate_point(d, pool, perturbation, episode_seeds, mesh)
        count["evaluated"] += 1
        count["env_steps"] += steps
        append_rows(csv_path, [
            {"learner_dir": d.path, "learner": d.learner, "seed": s, "family": family,
             "magnitude": "" if magnitude is None else repr(float(magnitude)), "mode": mode,
             "mean_return": repr(result[(s, mode)][0]), "episodes": args.episodes,
             "mean_length": repr(result[(s, mode)][1])}
            for s in d.seed_ids for mode in MODES
            if row_key(d.path, s, family, magnitude, mode, args.episodes) not in done])
        done.update(keys)

    from tqdm import tqdm

    try:
        with tqdm(total=len(points), disable=args.no_progress, desc=task, unit="point", file=sys.stderr) as bar:
            for k, (d, family, magnitude) in enumerate(points):
                bar.set_postfix_str(f"{d.label} {family}{'' if magnitude is None else f' {magnitude:g}'}")
                run_point(d, family, magnitude, record=need_std and family == UNPERTURBED)
                if need_std and k == len(dirs) - 1:  # the last unperturbed point: measure obs_noise's scale
                    obs_std = pt.pooled_std(env.observation_moments() for env in envs)
                    (out / OBS_STD_FILE).write_text(json.dumps(
                        {"obs_std": obs_std.tolist(), "measured_over": [x.path for x in dirs],
                         "episodes": args.episodes, "modes": list(MODES)}, indent=2) + "\n")
                    need_std = False
                bar.update(1)
    finally:
        for env in envs:
            env.close()

    summary = build_summary(read_rows(csv_path), dirs, grid, settings, args.episodes,
                            None if obs_std is None else obs_std.tolist(), args.bootstrap_reps, args.confidence)
    written = write_outputs(summary, out)
    print(report(summary))
    wall = time.perf_counter() - start
    print(f"wrote {csv_path}, " + ", ".join(str(p) for p in written))
    print(f"wall time {wall:.1f} s ({count['evaluated']} of {len(points)} grid points evaluated, "
          f"{count['env_steps']} env steps)")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_main(lambda: run_study(argv), "interrupted; run the same command again to continue "
                                                 "(the rows written so far are kept)")


if __name__ == "__main__":
    sys.exit(main())
