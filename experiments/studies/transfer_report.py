"""Compare fine-tuning protocols: several skill-transfer studies on the same tasks, seeds
and scratch runs, one report.

    python -m experiments.studies.transfer_report runs/transfer/v1 runs/transfer/v1-no-schedules \\
        --names paper no-schedules --out results/transfer/v1-100k
    python -m experiments.studies.transfer_report --curves results/transfer/v1-100k/curves.csv \\
        --out results/transfer/v1-100k                 # again, from the committed curves
    python -m experiments.studies.transfer_report runs/transfer/sql runs/transfer/sql-polyak \\
        --names paper polyak --baseline ddpg=runs/transfer/ddpg \\
        --compare paper ddpg --compare paper ddpg-scratch --out results/transfer/four-seeds

Each STUDY is a directory ``experiments.studies.transfer`` wrote (``<task>/finetune/`` and
``<task>/scratch/`` run directories). Its fine-tuned runs are one arm, named by
``--names`` (default: the directory's name); the scratch arm is the first study's, and
the other studies must hold the same scratch runs (checked on their evaluations).
``--baseline NAME=STUDY`` adds a study with scratch runs of its own, another learner's
(``experiments.studies.transfer --learner ddpg``): its fine-tuned runs are the arm NAME,
its scratch runs NAME-scratch. Tasks are those every study holds. Every arm is compared
with the first study's scratch runs, and ``--compare A B`` adds A minus B (say the
pretrained SQL arm against pretrained DDPG); give the same pairs with ``--curves`` to
rebuild the same report. Writes under ``--out``:

- ``curves.csv``: a row per task, arm, seed and evaluation: the evaluation returns of
  both modes and, from the metrics row of that step, the mean TD target and Q loss;
- ``report.json`` and ``report.md``: per task and evaluation mode, each arm's final
  return and its average over the evaluations (the normalised area under the learning
  curve), mean over seeds with a stratified-bootstrap CI, and every arm minus scratch
  (``minus_scratch``) and each ``--compare`` pair (``minus``: A's entry, keyed by B), with
  the percentile CI of independent bootstrap resamples and a verdict;
- ``report.png``: a column per task; rows: stochastic and deterministic evaluation (mean
  over seeds, CI band), then each seed's mean TD target (symlog).

Everything but ``curves.csv`` is computed from ``curves.csv`` alone (the bootstrap is
seeded), so ``--curves`` redraws a committed report without the run directories.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import plots, stats
from sqljax.store import RunError
from sqljax.store import run_dir as rd

CURVES_FILE, REPORT_FILE, TABLE_FILE, PLOT_FILE = "curves.csv", "report.json", "report.md", "report.png"
COLUMNS = ["task", "arm", "seed", "step", "eval_return", "eval_return_det", "target_mean", "q_loss"]
MODES = {"stochastic": "eval_return", "deterministic": "eval_return_det"}
SCRATCH = "scratch"


def _float(text: str | None) -> float:
    return float(text) if text not in (None, "") else float("nan")


#: where a column is called otherwise in an actor-critic learner's metrics (DDPG, SAC: the
#: critics' TD loss)
OTHER_NAMES = {"q_loss": "critic_loss"}


def _run_rows(run_dir: Path, task: str, arm: str) -> list[dict[str, Any]]:
    """The evaluation rows of every seed of one run directory (``q_loss``: SQL's Q loss or an
    actor-critic learner's critic loss)."""
    out = []
    for sid in rd.read_run(run_dir)["seed_ids"]:
        for r in rd.read_metrics(run_dir, sid):
            if r.get("eval_return"):
                out.append({"task": task, "arm": arm, "seed": int(sid), "step": int(r["step"]),
                            **{k: _float(r.get(k) or r.get(OTHER_NAMES.get(k, k))) for k in COLUMNS[4:]}})
    return out


def _tasks(study: Path) -> list[str]:
    """The tasks of a study with both arms, in the study's order (its summary.json)."""
    if not study.is_dir():
        return []
    try:
        order = json.loads((study / "summary.json").read_text())["settings"]["tasks"]
    except (OSError, ValueError, KeyError, TypeError):
        order = []
    names = list(dict.fromkeys([*order, *sorted(p.name for p in study.iterdir())]))
    return [t for t in names if (study / t / "finetune" / rd.RUN_FILE).is_file()
            and (study / t / SCRATCH / rd.RUN_FILE).is_file()]


def collect(studies: Sequence[Path], names: Sequence[str],
            baselines: Sequence[tuple[str, Path]] = ()) -> list[dict[str, Any]]:
    """curves.csv's rows: each study's fine-tuned runs under its name, the first study's
    scratch runs; each baseline study's fine-tuned runs under its name and its scratch
    runs under ``<name>-scratch``. RunError (one line) if a study holds no task, or other
    scratch runs than the first (baselines aside)."""
    per_study = {s: _tasks(s) for s in [*studies, *(b for _, b in baselines)]}
    for s, tasks in per_study.items():
        if not tasks:
            raise RunError(f"{s} holds no finished transfer task (<task>/finetune and "
                           "<task>/scratch run directories)")
    tasks = [t for t in per_study[studies[0]] if all(t in ts for ts in per_study.values())]
    rows: list[dict[str, Any]] = []
    for task in tasks:
        scratch = _run_rows(studies[0] / task / SCRATCH, task, SCRATCH)
        key = [(r["seed"], r["step"], r["eval_return"]) for r in scratch]
        for study, name in zip(studies, names):
            other = _run_rows(study / task / SCRATCH, task, SCRATCH)
            if [(r["seed"], r["step"], r["eval_return"]) for r in other] != key:
                raise RunError(f"{study / task / SCRATCH} holds other scratch runs than "
                               f"{studies[0] / task / SCRATCH}; compare studies that share them")
            rows += _run_rows(study / task / "finetune", task, name)
        rows += scratch
        for name, study in baselines:
            rows += _run_rows(study / task / "finetune", task, name)
            rows += _run_rows(study / task / SCRATCH, task, f"{name}-{SCRATCH}")
    return rows


def write_curves(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in COLUMNS})


def read_curves(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, newline="") as f:
            return [{"task": r["task"], "arm": r["arm"], "seed": int(r["seed"]), "step": int(r["step"]),
                     **{k: _float(r[k]) for k in COLUMNS[4:]}} for r in csv.DictReader(f)]
    except (OSError, KeyError, ValueError) as e:
        raise RunError(f"cannot read {path} as a transfer report's curves ({e})") from None


def curve(rows: list[dict[str, Any]], task: str, arm: str, column: str):
    """(steps (S,), values (N seeds, S)) of one arm on one task; only the steps every
    seed evaluated."""
    mine = [r for r in rows if r["task"] == task and r["arm"] == arm]
    seeds = sorted({r["seed"] for r in mine})
    steps = sorted(set.intersection(*({r["step"] for r in mine if r["seed"] == s} for s in seeds)))
    value = {(r["seed"], r["step"]): r[column] for r in mine}
    return np.asarray(steps), np.asarray([[value[s, t] for t in steps] for s in seeds], float)


def _minus(a: dict[str, np.ndarray], b: dict[str, np.ndarray], names: tuple[str, str], reps: int,
           confidence: float) -> dict[str, Any]:
    out = {}
    for what in ("final", "average"):
        d = stats.difference_ci(a[what], b[what], reps, confidence)
        out[what] = dict(d, verdict=stats.verdict(d, *names))
    return out


def analyse(rows: list[dict[str, Any]], reps: int, confidence: float,
            pairs: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """report.json: per task, mode and arm the final and average returns; per arm its
    difference from scratch, and per pair (A, B) of ``pairs`` A minus B (in A's entry)."""
    report: dict[str, Any] = {"statistics": {
        "final": "each seed's return at the last evaluation (mean of its episodes)",
        "average": "each seed's return averaged over its evaluations (normalised area under the "
                   "learning curve: how fast it learns)",
        "ci": f"{confidence:.0%} stratified-bootstrap CI of the mean over seeds; differences: "
              f"percentile CI of independent bootstrap resamples of both arms, {reps} replicates"},
        "tasks": {}}
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    for task in dict.fromkeys(r["task"] for r in rows):
        t: dict[str, Any] = {}
        for mode, column in MODES.items():
            per_arm, m = {}, {}
            for arm in arms:
                steps, y = curve(rows, task, arm, column)
                if not len(steps):
                    continue
                per_arm[arm] = {"final": y[:, -1], "average": y.mean(axis=1)}
                m[arm] = {"final_step": int(steps[-1]), "n_seeds": int(y.shape[0]), **{
                    what: {"per_seed": [float(x) for x in v],
                           **stats.interval_estimates(v, ("mean",), reps, confidence)["mean"]}
                    for what, v in per_arm[arm].items()}}
            for arm in per_arm:
                if arm != SCRATCH and SCRATCH in per_arm:
                    m[arm]["minus_scratch"] = _minus(per_arm[arm], per_arm[SCRATCH], (arm, SCRATCH),
                                                     reps, confidence)
            for a, b in pairs:
                if a in per_arm and b in per_arm:
                    m[a].setdefault("minus", {})[b] = _minus(per_arm[a], per_arm[b], (a, b), reps,
                                                             confidence)
            t[mode] = m
        report["tasks"][task] = t
    return report


def table(report: dict[str, Any]) -> str:
    """report.md: one row per task, mode, arm and arm it is compared with (scratch, then
    the ``--compare`` pairs)."""
    lines = ["| task | evaluation | arm | against | final | against: final | arm − against, final | "
             "average | against: average | arm − against, average |", "|---|---|---|---|" + "---:|" * 2
             + "---|" + "---:|" * 2 + "---|"]
    for task, t in report["tasks"].items():
        for mode, m in t.items():
            for arm, e in m.items():
                against = {**({SCRATCH: e["minus_scratch"]} if "minus_scratch" in e else {}),
                           **e.get("minus", {})}
                for other, diff in against.items():
                    cells = []
                    for what in ("final", "average"):
                        d = diff[what]
                        cells += [f"{e[what]['value']:.1f}", f"{m[other][what]['value']:.1f}",
                                  f"{stats.describe(d)} ({d['verdict']})"]
                    lines.append(f"| {task} | {mode} | {arm} | {other} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(rows: list[dict[str, Any]], path: Path, title: str, reps: int, confidence: float) -> Path:
    plt = plots.pyplot()
    tasks, arms = list(dict.fromkeys(r["task"] for r in rows)), list(dict.fromkeys(r["arm"] for r in rows))
    palette = iter(f"C{k}" for k in (0, 1, 2, 4, 5, 6, 7, 8, 9))  # C3 (red) is scratch
    colors = {arm: "C3" if arm == SCRATCH else next(palette, "k") for arm in arms}
    fig, axes = plt.subplots(3, len(tasks), figsize=(4.6 * len(tasks), 10.2), squeeze=False, sharex="col")
    for j, task in enumerate(tasks):
        for arm in arms:
            for i, column in enumerate(MODES.values()):
                steps, y = curve(rows, task, arm, column)
                if len(steps):
                    c = stats.summarize_curve(steps, y, ("mean",), reps, confidence)
                    plots.band(axes[i, j], c, "mean", colors[arm], f"{arm} (n={c['n_seeds']})")
            steps, y = curve(rows, task, arm, "target_mean")
            for k, seed_curve in enumerate(y):
                axes[2, j].plot(steps, seed_curve, color=colors[arm], lw=0.8, label=arm if k == 0 else None)
        for i, what in enumerate([*MODES, "mean TD target"]):
            ax = axes[i, j]
            ax.set_title(f"{task}: {what}" + (" evaluation" if i < 2 else ""), fontsize=9)
            ax.set_ylabel(("return (unscaled)" if i < 2 else "y, scaled (symlog)") if j == 0 else "")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(loc="best", fontsize=7)
        axes[2, j].set_yscale("symlog", linthresh=10.0)
        axes[2, j].set_xlabel("fine-tuning env steps (per seed)")
    fig.suptitle(plots.title_text(f"{title}. Mean over seeds, band: {confidence:.0%} "
                                  "stratified-bootstrap CI", 62 * len(tasks)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _baseline(text: str) -> tuple[str, Path]:
    name, sep, study = text.partition("=")
    if not sep or not name or not study:
        raise RunError(f"--baseline {text}: expected NAME=STUDY_DIR, e.g. ddpg=runs/transfer/ddpg")
    return name, Path(study)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.studies.transfer_report",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("studies", nargs="*", metavar="STUDY", help="transfer study directories")
    p.add_argument("--names", nargs="+", help="one arm name per study (default: the directory names)")
    p.add_argument("--baseline", action="append", default=[], metavar="NAME=STUDY",
                   help="a study with scratch runs of its own (another learner's): arms NAME and "
                        "NAME-scratch (repeatable)")
    p.add_argument("--compare", action="append", nargs=2, default=[], metavar=("A", "B"),
                   help="also report arm A minus arm B (repeatable)")
    p.add_argument("--curves", help="redraw from this curves.csv instead of reading studies")
    p.add_argument("--out", required=True, help="directory for curves.csv, report.json/.md/.png")
    p.add_argument("--title", default="Skill transfer: fine-tuned arms against scratch")
    p.add_argument("--bootstrap-reps", type=int, default=stats.DEFAULT_REPS)
    p.add_argument("--confidence", type=float, default=0.95)
    args = p.parse_args(argv)
    try:
        if bool(args.curves) == bool(args.studies):
            raise RunError("give transfer study directories, or --curves CSV (not both)")
        out = Path(args.out)
        if args.curves:
            rows = read_curves(Path(args.curves))
        else:
            studies = [Path(s) for s in args.studies]
            names = args.names or [s.name for s in studies]
            if len(names) != len(studies) or len(set(names)) != len(names) or SCRATCH in names:
                raise RunError(f"--names needs {len(studies)} distinct names other than "
                               f"'{SCRATCH}', one per study; got {names}")
            baselines = [_baseline(b) for b in args.baseline]
            arms = [*names, SCRATCH, *(a for n, _ in baselines for a in (n, f"{n}-{SCRATCH}"))]
            if len(set(arms)) != len(arms):
                raise RunError(f"the arms' names must differ; got {arms}")
            rows = collect(studies, names, baselines)
        if not rows:
            raise RunError("no evaluations to report")
        have = list(dict.fromkeys(r["arm"] for r in rows))
        for a, b in args.compare:
            if a == b or a not in have or b not in have:
                raise RunError(f"--compare {a} {b}: needs two different arms among {have}")
        out.mkdir(parents=True, exist_ok=True)
        if not args.curves or Path(args.curves).resolve() != (out / CURVES_FILE).resolve():
            write_curves(out / CURVES_FILE, rows)
            rows = read_curves(out / CURVES_FILE)  # the report is what the csv alone gives
        report = analyse(rows, args.bootstrap_reps, args.confidence, [tuple(c) for c in args.compare])
        (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
        (out / TABLE_FILE).write_text(table(report))
        figure(rows, out / PLOT_FILE, args.title, args.bootstrap_reps, args.confidence)
    except (RunError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(report), end="")
    print(f"wrote {out / CURVES_FILE}, {REPORT_FILE}, {TABLE_FILE}, {PLOT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
