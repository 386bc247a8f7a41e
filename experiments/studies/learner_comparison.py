"""SQL (``results/<task>/code``) beside every ``results/<task>/<learner>-<preset>`` cell
(``ddpg-code``: DDPG, ``ddpg-modern``: TD3, ``sac-code``: SAC), from the committed cells alone.

    python -m experiments.studies.learner_comparison [--tasks HalfCheetah Hopper Walker2d]
        [--results results] [--reps 50000] [--window 3]

Writes per task ``comparison.png`` (IQM over seeds with a 95 % stratified-bootstrap band,
against env steps and against estimated wall-clock hours) and ``comparison.md`` (SQL minus
each baseline at 100k / 200k / 300k with bootstrap intervals and verdicts, each cell's cost,
the published reference figures), and ``results/comparison.md``: every task's SQL ξ = 0
minus each baseline at each checkpoint in one table, with a tally of the verdicts at
300k. The bootstraps are seeded: the files are reproducible.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments import plots, stats
from experiments.results import (
    BASELINE_REFERENCE,
    CELL_FILE,
    CURVES_FILE,
    NOTES_FILE,
    REFERENCE,
    _steps_words,
    load_curves,
)

TASKS = ("HalfCheetah", "Hopper", "Walker2d")
SQL_CELL = "code"
CHECKPOINTS = (100_000, 200_000, 300_000)
WINDOW = 3
CONFIDENCE = 0.95
DISPLAY = {SQL_CELL: "SQL", "ddpg-code": "DDPG", "ddpg-modern": "TD3", "sac-code": "SAC"}
ORDER = ("ddpg-code", "ddpg-modern", "sac-code")
GREEDY_WORDS = {"sql": "ξ = 0", "ddpg": "μ(s)", "sac": "tanh(mean)"}
#: (key, SQL's mode, words); the baseline is always evaluated deterministically.
COMPARISONS = (("greedy", "deterministic", "SQL ξ = 0 − baseline greedy"),
               ("sampler", "stochastic", "SQL sampler − baseline greedy"))
class NoSQLCell(ValueError):
    """A task directory without the SQL cell every comparison is made against."""


@dataclass(frozen=True)
class Cell:
    name: str          # the directory: code, ddpg-code, ...
    display: str       # SQL, DDPG, TD3, SAC or the cell's label
    learner: str       # sql, ddpg, sac
    steps: np.ndarray  # (S,) evaluation steps
    seeds: list[int]
    returns: dict[str, np.ndarray]  # mode -> (num_seeds, S)
    target: int        # the steps the cell was meant to run
    done: int          # env steps it ran (per seed)
    wall_time_s: float | None
    rate: float | None  # median env steps/s per seed (cell.json's throughput)
    cores: int | None
    notes: bool = False  # the cell has a notes.md (how it ran, what it learned)

    @property
    def reached(self) -> int:
        """The last evaluation step at which every seed has both modes (0: none)."""
        ok = np.all([np.all(np.isfinite(r), axis=0) for r in self.returns.values()], axis=0)
        return int(self.steps[ok][-1]) if ok.any() else 0

    @property
    def partial(self) -> bool:
        return self.reached < self.target

    def legend(self, words: str) -> str:
        stop = f" (to {_steps_words(self.reached)} of {_steps_words(self.target)})" if self.partial else ""
        return f"{self.display}, {words}{stop}, n={len(self.seeds)}"


# ------------------------------------------------------------------ pure functions

def display_name(name: str, label: str | None = None) -> str:
    return DISPLAY.get(name, label or name)


def cell_learner(name: str, meta: dict[str, Any]) -> str | None:
    """The learner of a comparison cell (SQL's ``code`` or a ``<learner>-<preset>`` cell),
    None for any other cell (other SQL presets, pretraining runs)."""
    learner = str(meta.get("learner") or "sql")
    if learner == "sql":
        return "sql" if name == SQL_CELL else None
    return learner if name.startswith(f"{learner}-") else None


def hours(steps, wall_time_s: float, env_steps_done: int) -> np.ndarray:
    """Estimated wall-clock hours at each step: step × (wall time / env steps) of the run."""
    return np.asarray(steps, np.float64) * (float(wall_time_s) / float(env_steps_done)) / 3600.0


def window_means(steps: np.ndarray, returns: np.ndarray, at: int, window: int) -> np.ndarray | None:
    """Each seed's mean over its last ``window`` evaluations up to step ``at`` (None when
    the cell has no evaluation of every seed at ``at``)."""
    idx = np.flatnonzero(np.asarray(steps) <= at)
    if not len(idx) or int(steps[idx[-1]]) != at:
        return None
    cols = returns[:, idx[-window:]]
    return cols.mean(axis=1) if np.all(np.isfinite(cols)) else None


def compare(sql: Cell, base: Cell, checkpoints: Sequence[int] = CHECKPOINTS, window: int = WINDOW,
            reps: int = stats.DEFAULT_REPS, confidence: float = CONFIDENCE) -> list[dict[str, Any]]:
    """SQL minus the baseline's deterministic evaluation at every checkpoint both reached,
    for SQL's greedy policy and its sampler: rows with the two means, the difference and
    its bootstrap interval (:func:`experiments.stats.difference_ci`) and the verdict."""
    rows = []
    for at in checkpoints:
        b = window_means(base.steps, base.returns["deterministic"], at, window)
        for key, mode, words in COMPARISONS:
            a = window_means(sql.steps, sql.returns[mode], at, window)
            if a is None or b is None:
                continue
            diff = stats.difference_ci(a, b, reps, confidence, seed=0)
            rows.append({"baseline": base.display, "step": at, "comparison": key, "words": words,
                         "sql": float(a.mean()), "base": float(b.mean()), "diff": diff,
                         "verdict": stats.verdict(diff, "SQL", base.display)})
    return rows


def summary_sentence(base: Cell, rows: list[dict[str, Any]]) -> str:
    """One sentence on a baseline: the verdicts of both comparisons over the checkpoints."""
    head = f"**{base.display}** ({GREEDY_WORDS.get(base.learner, 'deterministic')}"
    head += f", stopped at {_steps_words(base.reached)} of {_steps_words(base.target)} steps)" if base.partial else ")"
    if not rows:
        return f"{head}: no checkpoint that both cells reached, nothing to compare yet."
    parts = []
    for key, _, _ in COMPARISONS:
        runs: list[tuple[str, list[str]]] = []
        for r in (r for r in rows if r["comparison"] == key):
            if runs and runs[-1][0] == r["verdict"]:
                runs[-1][1].append(_steps_words(r["step"]))
            else:
                runs.append((r["verdict"], [_steps_words(r["step"])]))
        said = "; ".join(f"{v} at {', '.join(at)}" for v, at in runs)
        words = "greedy against greedy" if key == "greedy" else f"SQL's sampler against {base.display}'s greedy"
        parts.append(f"{words}: {said}")
    return f"{head}: " + "; ".join(parts) + "."


def narrower(rows: list[dict[str, Any]], single: list[dict[str, Any]]) -> tuple[int, int]:
    """How many intervals of ``rows`` are narrower than those of the same comparison from
    a single evaluation (``single``), and of how many."""
    width = {(r["baseline"], r["step"], r["comparison"]): r["diff"]["ci_high"] - r["diff"]["ci_low"] for r in single}
    pairs = [(r["diff"]["ci_high"] - r["diff"]["ci_low"], width.get((r["baseline"], r["step"], r["comparison"])))
             for r in rows]
    pairs = [(w, w1) for w, w1 in pairs if w1 is not None]
    return sum(w < w1 for w, w1 in pairs), len(pairs)


def render_markdown(task: str, cells: list[Cell], rows: list[dict[str, Any]], window: int,
                    confidence: float, reps: int, steadier: tuple[int, int] = (0, 0)) -> str:
    bases = cells[1:]
    seeds = sorted({len(c.seeds) for c in cells})
    few = " (with fewer than 4 seeds the IQM trims none: it is the mean)" if seeds[0] < 4 else ""
    when = ("e.g. 280k, 290k and 300k for 300k" if window == 3 else f"{window} evaluation(s), 10k apart")
    gain = (f"; averaging narrows {steadier[0]} of the {steadier[1]} intervals against using the single "
            f"evaluation at the checkpoint" if window > 1 and steadier[1] else "")
    out = [f"# {task}: SQL beside its baselines\n",
           f"From the committed cells in `results/{task}/` ({'/'.join(map(str, seeds))} seeds per cell). "
           f"Figure: [comparison.png](comparison.png), IQM over seeds{few} with a {confidence:.0%} "
           f"stratified-bootstrap band, against env steps and against wall-clock hours estimated as "
           f"step × (wall time ÷ env steps) of each run. SQL is the `code` preset; its greedy policy is "
           f"ξ = 0, its sampler the stochastic evaluation; every baseline is evaluated deterministically "
           f"(DDPG/TD3: μ(s), SAC: tanh(mean)).\n",
           f"Each entry uses every seed's **mean over its last {window} evaluations up to the checkpoint** "
           f"({when}; 5 episodes each){gain}. The difference is of the means over seeds, with the "
           f"{confidence:.0%} percentile interval of independent bootstrap resamples of each cell's seeds "
           f"({reps} resamples). With {seeds[0]} seeds a cell the bootstrap only recombines {seeds[0]} values, "
           f"so the interval is rough (likely too narrow): a guide, not a test.\n"]
    if not bases:
        out.append("No baseline cells for this task yet.\n")
    else:
        out.append("| baseline | step | comparison | SQL | baseline | SQL − baseline "
                   f"[{confidence:.0%} CI] | verdict |\n|---|---|---|---|---|---|---|")
        for r in rows:
            d = r["diff"]
            out.append(f"| {r['baseline']} | {_steps_words(r['step'])} | {r['words']} | {r['sql']:.0f} | "
                       f"{r['base']:.0f} | {d['value']:+.0f} [{d['ci_low']:+.0f}, {d['ci_high']:+.0f}] | "
                       f"{r['verdict']} |")
        out.append("")
        for base in bases:
            out.append("- " + summary_sentence(base, [r for r in rows if r["baseline"] == base.display]))
        out.append("")
    out.append("## Cost\n\n| cell | learner | env steps per seed | wall time | average env steps/s per seed "
               "(figure's rate) | median env steps/s per seed | hardware | notes |\n|---|---|---|---|---|---|---|---|")
    for c in cells:
        wall = f"{c.wall_time_s / 3600:.2f} h" if c.wall_time_s else "—"
        avg = f"{c.done / c.wall_time_s:.0f}" if c.wall_time_s else "—"
        rate = f"{c.rate:.0f}" if c.rate else "—"
        cpu = f"{c.cores}-core CPU" if c.cores else "—"
        notes = f"[{NOTES_FILE}]({c.name}/{NOTES_FILE})" if c.notes else "—"
        out.append(f"| `{c.name}` | {c.display} | {c.done} of {c.target} | {wall} | {avg} | {rate} | {cpu} | {notes} |")
    out.append("\nThe average rate (env steps ÷ wall time) includes compilation and evaluation; the "
               "median rate excludes evaluation. Each is one run's time on "
               "its machine, which other work may have shared (a cell's notes say when it ran beside another "
               "cell, the two then sharing the cores); compare orders of magnitude, not small differences.\n")
    out.append("## Published reference (not our runs)\n")
    ref = REFERENCE.get(task, {})
    if ref:
        sql_ref = ", ".join(f"~{v} at {_steps_words(k)}" for k, v in sorted(ref["sql"].items()))
        out.append(f"- SQL, an independent PyTorch reproduction on gymnasium v4 (5 seeds, stochastic "
                   f"evaluation, ±10 %): {sql_ref}; SAC at 1M (v3/v4): ~{ref['sac_1m']}.")
    for name, per_task in BASELINE_REFERENCE.items():
        if task in per_task:
            at = "; ".join(f"{b}: {v}" for b, v in zip(("100k", "300k", "1M"), per_task[task]))
            out.append(f"- {name}, deterministic evaluation, 10 seeds, gym v1/v3, wider networks: {at}.")
    if ref or any(task in t for t in BASELINE_REFERENCE.values()):
        out.append("\nF: the TD3 paper's released curves, T: Tianshou's benchmark, S: SpinningUp's plots "
                   "(from SQL_SPEC.md). Our cells run the v5 tasks with "
                   "their presets' networks, fewer seeds and at most 300k steps; compare orders of magnitude.")
    else:
        out.append("None for this task.")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ files and figure

def load_cell(cell_dir: Path, learner: str, meta: dict[str, Any]) -> Cell | None:
    """The cell at ``cell_dir`` (None when it has no evaluations yet)."""
    if not (cell_dir / CURVES_FILE).is_file():
        return None
    steps, seeds, returns = load_curves(cell_dir / CURVES_FILE)
    if not len(steps):
        return None
    hw = meta.get("hardware") or {}
    return Cell(name=cell_dir.name, display=display_name(cell_dir.name, meta.get("label")), learner=learner,
                steps=steps, seeds=seeds, returns=returns, target=int(meta.get("steps") or steps[-1]),
                done=int(meta.get("env_steps_done") or steps[-1]), wall_time_s=meta.get("wall_time_s"),
                rate=(meta.get("throughput") or {}).get("env_steps_per_sec_per_seed"),
                cores=hw.get("cpu_cores") if hw.get("platform") == "cpu" else None,
                notes=(cell_dir / NOTES_FILE).is_file())


def discover(task_dir: Path) -> list[Cell]:
    """SQL's cell first, then the baselines (DDPG, TD3, SAC, then others by name).
    Raises :class:`NoSQLCell` when the SQL cell is missing or has no evaluations."""
    cells = {}
    for d in sorted(p for p in Path(task_dir).iterdir() if (p / CELL_FILE).is_file()):
        meta = json.loads((d / CELL_FILE).read_text())
        learner = cell_learner(d.name, meta)
        cell = load_cell(d, learner, meta) if learner else None
        if cell is not None:
            cells[d.name] = cell
    if SQL_CELL not in cells:
        raise NoSQLCell(f"{task_dir} has no SQL cell with evaluations ({Path(task_dir) / SQL_CELL / CURVES_FILE}); "
                        f"nothing to compare against")
    rank = {n: i for i, n in enumerate(ORDER)}
    bases = sorted((n for n in cells if n != SQL_CELL), key=lambda n: (rank.get(n, len(ORDER)), n))
    return [cells[SQL_CELL]] + [cells[n] for n in bases]


def plot(task: str, cells: list[Cell], path: Path, reps: int, confidence: float) -> Path:
    from matplotlib.ticker import FuncFormatter

    plt = plots.pyplot()
    fig, (ax_s, ax_t) = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    lines = []
    for k, c in enumerate(cells):
        color = f"C{k % 10}"
        modes = ([("stochastic", "-", "sampler"), ("deterministic", "--", GREEDY_WORDS["sql"])]
                 if c.learner == "sql" else [("deterministic", "-", GREEDY_WORDS.get(c.learner, "deterministic"))])
        for mode, style, words in modes:
            keep = c.steps <= c.reached
            curve = stats.summarize_curve(c.steps[keep], c.returns[mode][:, keep], ("iqm",), reps, confidence)
            lines.append((c, curve, color, style, c.legend(words)))
    for c, curve, color, style, label in lines:
        plots.band(ax_s, curve, "iqm", color, label, style)
        if c.wall_time_s and c.done:
            plots.band(ax_t, {**curve, "step": hours(curve["step"], c.wall_time_s, c.done)}, "iqm", color, label,
                       style)
    cores = {c.cores for c in cells}
    cpu = f"a {cores.pop()}-core CPU" if len(cores) == 1 and None not in cores else "each run's machine"
    ax_s.set_xlabel("environment steps (per seed)")
    ax_s.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:.0f}k"))
    ax_t.set_xlabel(f"hours on {cpu}, at the run's average rate\n"
                    "(step × wall time ÷ env steps of the run; per-evaluation times are not stored)")
    ax_s.set_ylabel("evaluation return (unscaled)")
    for ax, title in ((ax_s, "(a) against env steps"), (ax_t, "(b) against wall-clock time, estimated")):
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    ax_s.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"{task}: SQL beside its baselines. IQM over seeds, band: {confidence:.0%} stratified-"
                 f"bootstrap CI; SQL sampler (solid) and ξ = 0 (dashed), baselines greedy", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def task_rows(cells: list[Cell], reps: int, window: int = WINDOW,
              confidence: float = CONFIDENCE) -> list[dict[str, Any]]:
    """Every baseline cell compared with the SQL cell (``cells[0]``), as :func:`compare`."""
    return [r for base in cells[1:] for r in compare(cells[0], base, CHECKPOINTS, window, reps, confidence)]


def overview_markdown(per_task: dict[str, tuple[list[Cell], list[dict[str, Any]]]], window: int,
                      confidence: float = CONFIDENCE) -> str:
    """results/comparison.md: per task and checkpoint, SQL ξ = 0 and SQL ξ = 0 minus each
    baseline's greedy policy (``per_task``: the task's cells and :func:`compare`'s rows),
    then the verdicts at the last checkpoint counted per baseline."""
    greedy = {t: [r for r in rows if r["comparison"] == "greedy"] for t, (_, rows) in per_task.items()}
    baselines = list(dict.fromkeys(c.display for cells, _ in per_task.values() for c in cells[1:]))
    last = CHECKPOINTS[-1]
    out = ["# SQL beside its baselines, every task", "",
           f"SQL's greedy policy (ξ = 0) minus each baseline's greedy policy, each seed averaged over its "
           f"last {window} evaluations up to the checkpoint, {confidence:.0%} bootstrap interval of the "
           "difference and its verdict (bold: the interval excludes 0); 3 seeds a cell, so the intervals "
           "are rough. Per task, the details, SQL's sampler and each cell's cost are in "
           "`<task>/comparison.md`; — where a cell has not reached the checkpoint.", "",
           "| task | step | SQL ξ = 0 | " + " | ".join(f"SQL − {b}" for b in baselines) + " |",
           "|---|---|---:|" + "---|" * len(baselines)]
    tally = {b: {} for b in baselines}
    for task, rows in greedy.items():
        for at in CHECKPOINTS:
            here = {r["baseline"]: r for r in rows if r["step"] == at}
            if not here:
                continue
            cells = []
            for b in baselines:
                r = here.get(b)
                if r is None:
                    cells.append("—")
                    continue
                decided = r["diff"]["ci_low"] > 0 or r["diff"]["ci_high"] < 0
                d = r["diff"]
                text = (f"{d['value']:+.0f} [{d['ci_low']:+.0f}, {d['ci_high']:+.0f}] "
                        f"{r['verdict'] if decided else 'level'}")
                cells.append(f"**{text}**" if decided else text)
                if at == last:
                    key = r["verdict"] if decided else "level"
                    tally[b][key] = tally[b].get(key, 0) + 1
            sql = next(iter(here.values()))["sql"]
            out.append(f"| [{task}]({task}/comparison.md) | {_steps_words(at)} | {sql:.0f} | "
                       + " | ".join(cells) + " |")
    out += ["", f"At {_steps_words(last)}, over the tasks:", ""]
    for b in baselines:
        counts = tally[b]
        said = ", ".join(f"{k} on {n} task{'s' if n > 1 else ''}" for k, n in
                         sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        out.append(f"- against {b}: {said or 'no task has reached it yet'}.")
    return "\n".join(out) + "\n"


def write_overview(results_dir: Path, reps: int, window: int = WINDOW, confidence: float = CONFIDENCE,
                   tasks: Sequence[str] = TASKS,
                   done: dict[str, tuple[list[Cell], list[dict[str, Any]]]] | None = None) -> Path | None:
    """results/comparison.md from every task of ``tasks`` with an SQL cell (None if none
    has); ``done``: tasks whose cells and rows are already computed."""
    per_task = {}
    for task in tasks:
        if done and task in done:
            per_task[task] = done[task]
            continue
        try:
            cells = discover(Path(results_dir) / task)
        except (NoSQLCell, OSError):
            continue
        per_task[task] = (cells, task_rows(cells, reps, window, confidence))
    if not per_task:
        return None
    path = Path(results_dir) / "comparison.md"
    path.write_text(overview_markdown(per_task, window, confidence))
    return path


def write_task(task_dir: Path, reps: int, window: int = WINDOW, confidence: float = CONFIDENCE,
               done: dict[str, tuple[list[Cell], list[dict[str, Any]]]] | None = None) -> tuple[Path, Path]:
    """A task's comparison.md and comparison.png; its cells and rows go into ``done``."""
    task_dir = Path(task_dir)
    cells = discover(task_dir)

    def rows_of(w: int) -> list[dict[str, Any]]:
        return task_rows(cells, reps, w, confidence)

    rows = rows_of(window)
    if done is not None:
        done[task_dir.name] = (cells, rows)
    steadier = narrower(rows, rows_of(1)) if window > 1 else (0, 0)
    md = task_dir / "comparison.md"
    md.write_text(render_markdown(task_dir.name, cells, rows, window, confidence, reps, steadier))
    return plot(task_dir.name, cells, task_dir / "comparison.png", reps, confidence), md


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.studies.learner_comparison",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), help=f"tasks (default {' '.join(TASKS)})")
    p.add_argument("--results", default="results", help="the results directory (default results)")
    p.add_argument("--reps", type=int, default=stats.DEFAULT_REPS, help="bootstrap resamples (default 50000)")
    p.add_argument("--window", type=int, default=WINDOW,
                   help=f"evaluations averaged per seed up to each checkpoint (default {WINDOW})")
    args = p.parse_args(argv)
    if args.reps < 1 or args.window < 1:
        p.error("--reps and --window must be at least 1")
    status, done = 0, {}
    for task in args.tasks:
        task_dir = Path(args.results) / task
        try:
            if not task_dir.is_dir():
                raise NoSQLCell(f"{task_dir} does not exist; no SQL cell to compare against")
            png, md = write_task(task_dir, args.reps, args.window, done=done)
        except NoSQLCell as e:
            print(f"error: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"{task}: wrote {png} and {md}")
    overview = write_overview(Path(args.results), args.reps, args.window, done=done)
    if overview is not None:
        print(f"every task: wrote {overview}")
    return status


if __name__ == "__main__":
    sys.exit(main())
