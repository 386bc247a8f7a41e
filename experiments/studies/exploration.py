"""Exploration with multimodal rewards (the paper's section 5.2): SQL against DDPG on the
finish-line swimmer and the two-passage maze, the same seeds, warm-up and evaluation.

    python -m experiments.studies.exploration run --task SwimmerFinishLine --seeds 5 --steps 100000
    python -m experiments.studies.exploration report --task SwimmerFinishLine
    make exploration TASK=SwimmerFinishLine SEEDS=5 STEPS=100000

``run`` trains each learner's N seeds in lockstep (``experiments.bench``; a run that
exists is resumed, to more steps if asked) under ``runs/exploration/<task>/<learner>``.
Both learners warm up with the same uniform actions for ``--learning-starts`` steps
(seed i draws the same actions whatever the learner) and use their ``code`` presets:
the same network, learning rates and batch; SQL with alpha = 0.1 (reward scale 10, the
paper's), DDPG with OU noise (theta 0.15, sigma 0.3). ``report`` reads what the drivers
recorded of the training episodes (``training_columns`` of the task: per log interval
the greatest and least x of the swimmer's centre of mass, or the ant's least distance to
the target) and writes under ``results/exploration/<task>/``: the per-seed CSV, the
figures (the paper's Figures 3a and 6: the extremes so far per seed against env steps),
the final learners' trajectories, and ``report.md``/``report.json`` with the share of
seeds past the finish line (or below the dead-end distance) per learner and a Fisher
exact test of the difference. The learners go to ``zoo/<task>/<cell>/``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import cli

RUNS_DIR = Path("runs/exploration")
RESULTS_DIR = Path("results/exploration")
LEARNERS = ("sql", "ddpg")
NAMES = {"sql": "SQL", "ddpg": "DDPG"}


def task_facts(task: str) -> dict[str, Any]:
    """What the study measures on ``task``: the env id, the metric columns, and the
    threshold a seed must pass (the finish line, or the dead-end distance)."""
    from sqljax.envs import exploration_tasks as et

    if task == "SwimmerFinishLine":
        return {"env_id": "sqljax/SwimmerFinishLine-v0", "kind": "swimmer",
                "threshold": et.FINISH_LINE_X,
                "columns": ("train_com_x_max", "train_com_x_min", "train_com_x_end")}
    if task == "AntTwoPassageMaze":
        return {"env_id": "sqljax/AntTwoPassageMaze-v0", "kind": "maze",
                "threshold": et.dead_end_distance(),
                "columns": ("train_target_distance_min", "train_target_distance_end")}
    raise cli.RunError(f"unknown exploration task {task!r}; choose SwimmerFinishLine or "
                       "AntTwoPassageMaze")


def bench_argv(task: str, learner: str, seeds: int, steps: int, out: Path, learning_starts: int,
               eval_every: int, log_every: int, progress: bool) -> list[str]:
    """The ``experiments.bench`` command line of one learner's run (new or resumed)."""
    if (out / "run.json").exists():
        argv = ["--resume", str(out), "--steps", str(steps)]
    else:
        argv = ["--learner", learner, "--env", task_facts(task)["env_id"], "--preset", "code",
                "--seeds", str(seeds), "--steps", str(steps), "--out", str(out),
                "--learning-starts", str(learning_starts), "--warmup-actions", "uniform",
                "--eval-every", str(eval_every), "--eval-episodes", "3",
                "--log-every", str(log_every), "--label", f"{learner}-code"]
    return argv + ([] if progress else ["--no-progress"])


# ------------------------------------------------------------------------------ analysis

def read_training_rows(run_dir: Path, columns: Sequence[str]) -> dict[int, dict[str, np.ndarray]]:
    """Per seed id: ``step`` and each column of the run's metrics rows (NaN where empty)."""
    from sqljax.store import run_dir as rd

    run = rd.read_run(run_dir)
    out = {}
    for sid in run["seed_ids"]:
        rows = [r for r in rd.read_metrics(run_dir, int(sid)) if r.get("step") not in (None, "")]
        out[int(sid)] = {"step": np.array([int(float(r["step"])) for r in rows])}
        for c in columns:
            out[int(sid)][c] = np.array([float(r[c]) if r.get(c) not in (None, "") else np.nan
                                         for r in rows])
    return out


def running(values: np.ndarray, how: str) -> np.ndarray:
    """The greatest (``how="max"``) or least (``"min"``) value so far, ignoring NaNs."""
    fill = -np.inf if how == "max" else np.inf
    acc = (np.maximum if how == "max" else np.minimum).accumulate(np.where(np.isnan(values), fill, values))
    return np.where(np.isinf(acc), np.nan, acc)


#: Log intervals a commitment must have held (with episode ends) to count: 4 x 2500 steps.
MIN_COMMITTED_INTERVALS = 4


def committed_at(steps: np.ndarray, end_x: np.ndarray, margin: float,
                 min_intervals: int = MIN_COMMITTED_INTERVALS) -> tuple[int | None, int]:
    """When a swimmer committed to a direction: the first logged step from which every
    later interval's mean end-of-episode x has the same sign and ``|x| >= margin``, if
    that has held for at least ``min_intervals`` intervals. Returns (step or None,
    direction +1 / -1 / 0). Intervals without an episode end (NaN) neither break nor
    make a commitment."""
    seen = ~np.isnan(end_x)
    if not seen.any():
        return None, 0
    x, s = end_x[seen], steps[seen]
    direction = int(np.sign(x[-1])) if abs(x[-1]) >= margin else 0
    if direction == 0:
        return None, 0
    ok = (np.sign(x) == direction) & (np.abs(x) >= margin)
    bad = np.flatnonzero(~ok)
    first = bad[-1] + 1 if bad.size else 0
    if len(x) - first < min_intervals:
        return None, 0
    return int(s[first]), direction


def fisher_exact(a_yes: int, a_n: int, b_yes: int, b_n: int) -> float:
    """Two-sided Fisher exact p of the 2x2 table (yes/no by group)."""
    from scipy import stats

    return float(stats.fisher_exact([[a_yes, a_n - a_yes], [b_yes, b_n - b_yes]])[1])


def seed_summary(kind: str, rows: dict[str, np.ndarray], threshold: float,
                 margin: float) -> dict[str, Any]:
    """One seed's outcome: for the swimmer the greatest forward and backward x of its
    centre of mass over training, whether and when it crossed the line, when it committed
    to a direction; for the maze the least distance to the target and whether and when it
    got below the dead-end distance."""
    steps = rows["step"]
    if kind == "swimmer":
        fwd, back = running(rows["train_com_x_max"], "max"), -running(rows["train_com_x_min"], "min")
        crossed = np.flatnonzero(fwd >= threshold)
        at, direction = committed_at(steps, rows["train_com_x_end"], margin)
        return {"forward_max": float(np.nanmax(fwd)) if np.isfinite(fwd).any() else None,
                "backward_max": float(np.nanmax(back)) if np.isfinite(back).any() else None,
                "passed": bool(crossed.size), "passed_at": int(steps[crossed[0]]) if crossed.size else None,
                "committed_at": at, "direction": {1: "forward", -1: "backward", 0: None}[direction]}
    least = running(rows["train_target_distance_min"], "min")
    below = np.flatnonzero(least < threshold)
    return {"least_distance": float(np.nanmin(least)) if np.isfinite(least).any() else None,
            "passed": bool(below.size), "passed_at": int(steps[below[0]]) if below.size else None}


def summarize(task: str, runs: dict[str, Path], margin: float = 0.25) -> dict[str, Any]:
    """Per learner and seed the outcome (:func:`seed_summary`), the share of seeds that
    passed, and Fisher's exact p of SQL against each other learner; on the swimmer also
    the seeds committed forward (``forward``) and Fisher's p of that share."""
    facts = task_facts(task)
    out: dict[str, Any] = {"task": task, "env_id": facts["env_id"], "threshold": facts["threshold"],
                           "commit_margin": margin, "learners": {}}
    for name, run_dir in runs.items():
        per_seed = {sid: seed_summary(facts["kind"], rows, facts["threshold"], margin)
                    for sid, rows in read_training_rows(run_dir, facts["columns"]).items()}
        steps = max(int(r["step"][-1]) for r in read_training_rows(run_dir, facts["columns"]).values())
        passed = sum(s["passed"] for s in per_seed.values())
        out["learners"][name] = {"run_dir": str(run_dir), "env_steps": steps, "seeds": per_seed,
                                 "passed": passed, "n": len(per_seed)}
        if facts["kind"] == "swimmer":
            out["learners"][name]["forward"] = sum(s["direction"] == "forward" for s in per_seed.values())
    if "sql" in out["learners"]:
        a = out["learners"]["sql"]
        for name, b in out["learners"].items():
            if name != "sql":
                b["fisher_p_vs_sql"] = fisher_exact(a["passed"], a["n"], b["passed"], b["n"])
                if "forward" in b:
                    b["forward_fisher_p_vs_sql"] = fisher_exact(a["forward"], a["n"], b["forward"], b["n"])
    return out


def write_seed_csv(path: Path, task: str, runs: dict[str, Path]) -> Path:
    """One row per learner, seed and logged step: the interval's columns and the extremes
    so far (the CSV the figures are drawn from)."""
    facts = task_facts(task)
    fields = ["learner", "seed", "step", *facts["columns"]]
    fields += (["forward_so_far", "backward_so_far"] if facts["kind"] == "swimmer"
               else ["least_distance_so_far"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for name, run_dir in runs.items():
            for sid, rows in read_training_rows(run_dir, facts["columns"]).items():
                extra = ({"forward_so_far": running(rows["train_com_x_max"], "max"),
                          "backward_so_far": -running(rows["train_com_x_min"], "min")}
                         if facts["kind"] == "swimmer" else
                         {"least_distance_so_far": running(rows["train_target_distance_min"], "min")})
                for i, step in enumerate(rows["step"]):
                    row = {"learner": name, "seed": sid, "step": int(step)}
                    for c, v in [*((c, rows[c]) for c in facts["columns"]), *extra.items()]:
                        row[c] = "" if np.isnan(v[i]) else round(float(v[i]), 4)
                    w.writerow(row)
    return path


# ------------------------------------------------------------------------------- command

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.studies.exploration",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("run", "report"):
        s = sub.add_parser(name)
        s.add_argument("--task", default="SwimmerFinishLine",
                       help="SwimmerFinishLine or AntTwoPassageMaze")
        s.add_argument("--learners", nargs="+", default=list(LEARNERS), choices=LEARNERS)
        s.add_argument("--runs", type=Path, default=RUNS_DIR, help="runs root")
    run = sub.choices["run"]
    run.add_argument("--seeds", type=int, default=5)
    run.add_argument("--steps", type=int, default=100_000, help="env steps per seed")
    run.add_argument("--learning-starts", type=int, default=10_000,
                     help="uniform warm-up steps (the paper's 10,000)")
    run.add_argument("--eval-every", type=int, default=10_000)
    run.add_argument("--log-every", type=int, default=2500,
                     help="env steps per metrics row (the resolution of the extremes)")
    run.add_argument("--no-progress", action="store_true")
    rep = sub.choices["report"]
    rep.add_argument("--out", type=Path, default=None, help="default results/exploration/<task>")
    rep.add_argument("--commit-margin", type=float, default=0.25,
                     help="|mean end x| (m) an interval needs to count for a direction")
    rep.add_argument("--trajectory-episodes", type=int, default=10)
    rep.add_argument("--zoo", type=Path, default=Path("zoo"),
                     help="where the final learners go (<zoo>/<task>/<cell>/seed<i>)")
    return p


def run_study(args) -> int:
    from experiments import bench

    task_facts(args.task)
    cli.check_at_least(args, {"seeds": 1, "steps": 1, "learning_starts": 0, "log_every": 1})
    for learner in args.learners:
        out = args.runs / args.task / learner
        print(f"exploration {args.task}: {NAMES[learner]}, {args.seeds} seeds x {args.steps} steps "
              f"-> {out}", flush=True)
        rc = bench.main(bench_argv(args.task, learner, args.seeds, args.steps, out,
                                   args.learning_starts, args.eval_every, args.log_every,
                                   not args.no_progress))
        if rc:
            return rc
    return 0


def report(args) -> int:
    from experiments.studies import exploration_report

    runs = {name: args.runs / args.task / name for name in args.learners
            if (args.runs / args.task / name / "run.json").exists()}
    if not runs:
        raise cli.RunError(f"no exploration runs of {args.task} under {args.runs}; "
                           "run `python -m experiments.studies.exploration run` first")
    out = args.out or RESULTS_DIR / args.task
    summary = summarize(args.task, runs, args.commit_margin)
    write_seed_csv(out / "seeds.csv", args.task, runs)
    exploration_report.write(summary, out, runs, args.trajectory_episodes, args.zoo)
    print(exploration_report.markdown(summary))
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: list[int] = []
    rc = cli.run_main(lambda: status.append(run_study(args) if args.command == "run" else report(args)),
                      "interrupted: each run keeps its last checkpoint; the same command resumes it")
    return rc or (status[0] if status else 0)


if __name__ == "__main__":
    sys.exit(main())
