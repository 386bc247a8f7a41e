"""The results table and the zoo of trained agents, built up one cell at a time.

A *cell* is one task, learner and preset trained for N seeds in lockstep
(``experiments.bench``). Its small artifacts live in the repository, under the cell's
name: the preset for SQL (``code``), ``<learner>-<preset>`` for the others (``ddpg-code``):

    results/<task>/<preset>/cell.json    command, config, schedule, hardware, physics,
                                         final returns (mean, IQM, 95 % CIs), throughput
    results/<task>/<preset>/curves.csv   per-seed evaluation returns at every evaluation
                                         point, stochastic and deterministic
    results/<task>/<preset>/curves.png   IQM across seeds with its CI band, and each seed
    results/<task>/<preset>/notes.md     optional, written by hand: why a cell learns less
                                         than the published figures, from its runs
    results/README.md                    the table of all cells (generated)
    zoo/<task>/<preset>/seed<i>/         each seed's final learner (``sqljax.export_learner``)

    python -m experiments.results run --task Hopper --preset code --seeds 3 --steps 300000
    python -m experiments.results run --task Hopper --learner ddpg --preset modern   # TD3
    python -m experiments.results collect runs/results/Hopper/code   # cell files + zoo
    python -m experiments.results export runs/x --out runs/x/learners   # every kept checkpoint
    python -m experiments.results table            # regenerate results/README.md
    python -m experiments.results table --check    # exit 1 if README.md is stale

``run`` trains into ``runs/results/<task>/<preset>`` (resuming it if it holds a checkpoint),
then collects the cell and refreshes the table. The table is a function of the committed
``cell.json`` and ``curves.csv`` files alone (the bootstrap is seeded), so anyone can
regenerate it and a test checks that the committed one is current.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import sqljax
from experiments import cli, stats
from sqljax import learners, seeding

RESULTS_DIR = Path("results")
ZOO_DIR = Path("zoo")
RUNS_DIR = Path("runs") / "results"
EVAL_EVERY = 10_000
EVAL_EPISODES = 5
CHECKPOINT_EVERY = 25_000
MODES = ("stochastic", "deterministic")
CELL_FILE, CURVES_FILE, PLOT_FILE, NOTES_FILE = "cell.json", "curves.csv", "curves.png", "notes.md"
REPS = 20_000
LATE_EVALS = 5  # the table's steadier column: each seed's mean over its last evaluations
#: presets that are an algorithm of their own, named as readers know it
PRESET_TITLES = {("ddpg", "modern"): "TD3"}

#: Published figures to set a cell beside (facts from SQL_SPEC.md's reference section):
#: an independent PyTorch SQL reproduction on gymnasium v4 (5 seeds, stochastic evaluation,
#: read from its plots, about +-10 %) at 100k / 1M / 5M steps, and SAC at 1M on v3/v4.
REFERENCE: dict[str, dict[str, Any]] = {
    "HalfCheetah": {"sql": {100_000: "2500–3500", 1_000_000: "6300", 5_000_000: "7500"},
                    "sac_1m": "9600–12000"},
    "Hopper": {"sql": {100_000: "300–500", 1_000_000: "2500", 5_000_000: "2700"},
               "sac_1m": "2300–3500"},
    "Walker2d": {"sql": {1_000_000: "2500", 5_000_000: "3150"}, "sac_1m": "3600–5000"},
    "Ant": {"sql": {1_000_000: "2000", 5_000_000: "3500"}, "sac_1m": "4600–5850"},
    "Humanoid": {"sql": {1_000_000: "5200", 5_000_000: "unstable"}, "sac_1m": "5000–6200"},
}


# ------------------------------------------------------------------------ collecting a cell

#: Published baselines at short budgets (SQL_SPEC.md, "Baselines at short budgets"):
#: deterministic evaluation, 10 seeds, gym v1/v3, wider networks. F: the TD3 paper's curves,
#: T: Tianshou's benchmark, S: SpinningUp's plots.
BASELINE_REFERENCE: dict[str, dict[str, tuple[str, str, str]]] = {
    "TD3": {"HalfCheetah": ("F 5514, T 5336", "F 7697, T 7546, S ~7600", "F 9567, T 10127"),
            "Hopper": ("F 659, T 597", "F 2410, T 1583, S ~2400", "F 3391, T 3133"),
            "Walker2d": ("F 770, T 483", "F 3335, T 1663, S ~1500", "F 4413, T 3842")},
    "DDPG": {"HalfCheetah": ("T 6308, S ~4300", "T 9137, S ~7750", "T 11653, S ~10100"),
             "Hopper": ("T 904, S ~620", "T 1241, S ~1460", "T 1604, S ~1730"),
             "Walker2d": ("T 113, S ~115", "T 175, S ~480", "T 916, S ~1930")},
    "SAC": {"HalfCheetah": ("T 6515, S ~6000", "T 9059, S ~9150", "T 12122, S ~11500"),
            "Hopper": ("T 2613, S ~1150", "T 3388, S ~2870", "T 3532, S ~3535"),
            "Walker2d": ("T 1305, S ~780", "T 3387, S ~2940", "T 4961, S ~4110")},
}
#: The budgets of BASELINE_REFERENCE's three entries.
BASELINE_BUDGETS = (100_000, 300_000, 1_000_000)


def task_name(env_id: str) -> str:
    """The cell's task name: the task table's short name (``Hopper-v5`` -> ``Hopper``),
    else the id's last part."""
    from sqljax.envs import registry

    task = registry.find_task(env_id)
    return task.short.replace(":", "-") if task is not None else registry.short_name(env_id)


def bench_command(run: dict[str, Any]) -> list[str]:
    """The ``experiments.bench`` arguments that reproduce a run from its run record."""
    seeds = list(run["seed_ids"])
    learner = run.get("learner", learners.DEFAULT)
    argv = [] if learner == learners.DEFAULT else ["--learner", learner]
    argv += ["--env", str(run["env_id"]), "--seeds", str(len(seeds)), "--steps", str(run["steps"]),
            "--preset", str(run["preset"]), "--eval-every", str(run["eval_every"]),
            "--eval-episodes", str(run["eval_episodes"])]
    if seeds[0]:
        argv += ["--first-seed", str(seeds[0])]
    if run.get("base_seed"):
        argv += ["--seed", str(run["base_seed"])]
    return argv


def read_curves(run_dir: Path, seed_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Rows (step, seed, stochastic, deterministic) at the evaluation points of every seed."""
    from experiments.bench import eval_table

    tables = {mode: eval_table(run_dir, seed_ids, mode) for mode in MODES}
    by_step = {mode: dict(zip(steps.tolist(), returns.T)) for mode, (steps, returns) in tables.items()}
    common = sorted(set(by_step["stochastic"]) & set(by_step["deterministic"]))
    return [{"step": int(step), "seed": int(sid),
             **{mode: float(by_step[mode][step][j]) for mode in MODES}}
            for step in common for j, sid in enumerate(seed_ids)]


def write_curves_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["step", "seed", *MODES])
        for r in rows:
            w.writerow([r["step"], r["seed"], *(f"{r[m]:.2f}" for m in MODES)])


def load_curves(path: Path) -> tuple[np.ndarray, list[int], dict[str, np.ndarray]]:
    """Evaluation steps (S,), seed ids, and per mode the returns (num_seeds, S)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    steps = sorted({int(r["step"]) for r in rows})
    seeds = sorted({int(r["seed"]) for r in rows})
    out = {m: np.full((len(seeds), len(steps)), np.nan) for m in MODES}
    for r in rows:
        i, j = seeds.index(int(r["seed"])), steps.index(int(r["step"]))
        for m in MODES:
            out[m][i, j] = float(r[m])
    return np.asarray(steps, np.int64), seeds, out


def hardware() -> dict[str, Any]:
    """What the cell ran on (:func:`experiments.machine.hardware`)."""
    from experiments import machine

    return machine.hardware()


def physics(env_id: str) -> str:
    from sqljax.envs import registry

    if registry.task_kind(env_id) == "jax":
        import jax

        return f"{env_id}, JAX-native, stepped on the {jax.devices()[0].platform.upper()}"
    import gymnasium
    import mujoco

    return f"gymnasium {gymnasium.__version__} {env_id}, MuJoCo {mujoco.__version__} on the host CPU"


def collect(run_dir: str | os.PathLike, results_dir: Path = RESULTS_DIR,
            zoo_dir: Path = ZOO_DIR, runner: str | None = None) -> Path:
    """Write a finished (or stopped) run's cell files and export its seeds' final learners
    to the zoo. Returns the cell directory."""

    from experiments import bench
    from sqljax.loops import multi_seed as ms
    from sqljax.store import run_dir as rd

    run_dir = Path(run_dir)
    run = rd.read_run(run_dir)
    seed_ids = [int(s) for s in run["seed_ids"]]
    learner = learners.of_config(rd.read_config(run_dir))
    task, preset = task_name(run["env_id"]), str(run.get("preset") or run_dir.name)
    name = cli.run_name(learner, preset)
    rows = read_curves(run_dir, seed_ids)
    if not rows:
        raise cli.RunError(f"{run_dir} has no evaluation of every seed yet; nothing to collect")
    cell_dir = results_dir / task / name
    cell_dir.mkdir(parents=True, exist_ok=True)
    write_curves_csv(cell_dir / CURVES_FILE, rows)

    states = ms.load_seed_states(run_dir)
    env_steps = int(rd.run_counters(rd.find_checkpoint(run_dir))["env_steps"])
    wall = [float(r["wall_time"]) for r in rd.read_metrics(run_dir, seed_ids[0]) if r.get("wall_time")]
    cell = {
        "task": task, "env_id": run["env_id"], "learner": learner.name, "preset": preset,
        "label": run.get("label"),
        "seed_ids": seed_ids, "base_seed": int(run.get("base_seed", 0)),
        "steps": int(run["steps"]), "env_steps_done": env_steps,
        "command": "python -m experiments.bench " + " ".join(bench_command(run)),
        "runner": runner,
        "evaluation": {"every": int(run["eval_every"]), "episodes_per_seed": int(run["eval_episodes"]),
                       **learner.eval_modes, "returns": "unscaled, separate eval envs"},
        "config": json.loads((run_dir / rd.CONFIG_FILE).read_text()),
        "physics": physics(run["env_id"]), "hardware": hardware(),
        "throughput": bench.throughput(run_dir, seed_ids),
        "wall_time_s": max(wall) if wall else None,
        "collected": time.strftime("%Y-%m-%d"),
    }
    (cell_dir / CELL_FILE).write_text(json.dumps(cell, indent=2) + "\n")
    plot_cell(cell_dir)

    def eval_return(sid: int) -> dict[str, Any]:
        at_export = {m: r[m] for r in rows if r["seed"] == sid and r["step"] == env_steps for m in MODES}
        return {"eval_return": at_export or None}

    export_seed_learners(zoo_dir / task / name, states, seed_ids, {
        "env_id": run["env_id"], "env_steps": env_steps, "preset": preset, "results": str(cell_dir),
        "command": cell["command"]}, eval_return)
    return cell_dir


def export_seed_learners(folder: Path, states: Any, seed_ids: Sequence[int], metadata: dict[str, Any],
                         per_seed=lambda sid: {}) -> None:
    """Export each seed's learner of ``states`` (stacked, leading seed axis) as
    ``folder/seed<i>/`` with ``metadata``, its ``seed`` and ``per_seed(i)``'s entries."""
    for position, sid in enumerate(seed_ids):
        sqljax.export_learner(folder / f"seed{sid}", seeding.unstack(states, position),
                              metadata={**metadata, "seed": sid, **per_seed(sid)})


def export_checkpoints(run_dir: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Export every seed's learner of each complete checkpoint a run has kept as
    ``out/step_<N>/seed<i>/`` (the zoo layout, one folder per checkpoint), for measures
    taken along a run (``experiments.studies.locomotion`` on the learners every 100k
    steps, say). Returns the step folders, oldest first; RunError if the run kept none."""

    from sqljax.loops import multi_seed as ms
    from sqljax.store import run_dir as rd

    run_dir, out = Path(run_dir), Path(out)
    run = rd.read_run(run_dir)
    seed_ids = [int(s) for s in run["seed_ids"]]
    kept = rd.checkpoint_dirs(run_dir)
    if not kept:
        raise cli.RunError(f"{run_dir} holds no complete checkpoint to export")
    folders = []
    for _, ckpt in kept:
        env_steps = int(rd.run_counters(ckpt)["env_steps"])
        folders.append(out / f"step_{env_steps:09d}")
        export_seed_learners(folders[-1], ms.load_seed_states(ckpt), seed_ids, {
            "env_id": run["env_id"], "env_steps": env_steps, "preset": run.get("preset"),
            "checkpoint": str(ckpt)})
    return folders


def plot_cell(cell_dir: Path) -> Path:
    """curves.png of a cell from its curves.csv."""
    from experiments import plots

    steps, seeds, returns = load_curves(cell_dir / CURVES_FILE)
    cell = json.loads((cell_dir / CELL_FILE).read_text())
    curves = {}
    for m in MODES:
        curve = stats.summarize_curve(steps, returns[m], ("mean", "iqm"), REPS)
        curve["per_seed"] = {str(s): returns[m][i].tolist() for i, s in enumerate(seeds)}
        curve["per_seed_step"] = steps.tolist()
        curves[m] = curve
    summary = {"env_id": cell["env_id"], "label": cell["preset"], "n_seeds": len(seeds),
               "statistics": {"confidence": 0.95}, "curves": curves}
    return plots.plot_summary(summary, cell_dir / PLOT_FILE)


# ------------------------------------------------------------------------ the table

def _fmt(est: dict[str, float]) -> str:
    return f"{est['value']:.0f} [{est['ci_low']:.0f}, {est['ci_high']:.0f}]"


def _steps_words(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _reference(task: str, steps: int) -> str:
    """The published SQL figures at the budgets around ``steps``."""
    ref = REFERENCE.get(task)
    if not ref:
        return "—"
    budgets = sorted(ref["sql"])
    below = [b for b in budgets if b <= steps][-1:]
    above = [b for b in budgets if b > steps][:1]
    return "; ".join(f"{ref['sql'][b]} at {_steps_words(b)}" for b in below + above)


def _baseline_reference(title: str, task: str, steps: int) -> str:
    """A baseline's published figures at the budget nearest ``steps`` (— for SQL, whose
    reproduction has its own column, and for tasks without figures)."""
    ref = BASELINE_REFERENCE.get(title, {}).get(task)
    if not ref:
        return "—"
    i = int(np.argmin([abs(np.log(b / steps)) for b in BASELINE_BUDGETS]))
    return f"{ref[i]} at {_steps_words(BASELINE_BUDGETS[i])}"


def cell_row(cell_dir: Path) -> tuple[list[str], str | None]:
    """One table row of a cell, and its notes (if any)."""
    cell = json.loads((cell_dir / CELL_FILE).read_text())
    steps, seeds, returns = load_curves(cell_dir / CURVES_FILE)
    final = {m: stats.interval_estimates(returns[m][:, -1], ("iqm",), REPS)["iqm"] for m in MODES}
    late = returns["stochastic"][:, -LATE_EVALS:].mean(axis=1)
    late_est = stats.interval_estimates(late, ("iqm",), REPS)["iqm"]
    hw = cell["hardware"]
    where = f"{hw['platform'].upper()}" + (f" ({hw['cpu_cores']} cores)" if hw["platform"] == "cpu" else
                                            f" ({hw['device']})")
    phys = "gymnasium (host MuJoCo)" if cell["physics"].startswith("gymnasium") else cell["physics"]
    task, name = cell["task"], cell_dir.name
    done = _steps_words(int(steps[-1]))
    if int(cell["steps"]) > int(steps[-1]):  # a cell stopped before its planned length
        done += f" (of {_steps_words(int(cell['steps']))})"
    learner = learners.get(cell.get("learner"))
    title = PRESET_TITLES.get((cell.get("learner"), cell["preset"]), learner.title)
    row = [task, title, cell["preset"], done, str(len(seeds)),
           _fmt(final["stochastic"]), _fmt(final["deterministic"]), _fmt(late_est),
           _reference(task, int(steps[-1])), REFERENCE.get(task, {}).get("sac_1m", "—"),
           _baseline_reference(title, task, int(steps[-1])), f"{phys}, {where}", f"[curves]({task}/{name}/{PLOT_FILE})"]
    notes = cell_dir / NOTES_FILE
    return row, notes.read_text().strip() if notes.is_file() else None


HEADER = ["task", "learner", "preset", "steps", "seeds", "stochastic IQM [95 % CI]",
          "deterministic IQM [95 % CI]", f"stochastic, last {LATE_EVALS} evaluations",
          "SQL reproduction (v4)", "SAC at 1M", "this learner, published (deterministic)",
          "physics, hardware",
          "plot"]


def render_table(results_dir: Path = RESULTS_DIR) -> str:
    """results/README.md's text, from the cells' committed files alone."""
    cells = sorted(p.parent for p in results_dir.glob(f"*/*/{CELL_FILE}"))
    out = io.StringIO()
    out.write("# Results\n\n<!-- generated by `make results-table` from the cells' cell.json and "
              "curves.csv; do not edit by hand -->\n\n")
    out.write("Evaluation return (unscaled) at the last evaluation point of each cell: the "
              "interquartile mean over seeds of each seed's mean over its evaluation episodes, with "
              "a 95 % stratified-bootstrap interval (with 2 or 3 seeds, the IQM is the mean and the "
              "interval spans the seeds); a cell stopped early shows its planned length too. *Stochastic*: SQL's sampler with fresh ξ every step, the "
              "authors' protocol and the one the published figures use (DDPG/TD3: μ(s) plus their "
              "exploration noise; SAC: a sample of its policy); *deterministic*: ξ = 0 (DDPG/TD3: "
              "μ(s); SAC: tanh of its mean). "
              f"One evaluation of a few episodes is noisy, so the *last {LATE_EVALS} evaluations* "
              "column averages each seed's stochastic returns over its last "
              f"{LATE_EVALS} evaluation points before the IQM across seeds. "
              "Each cell's `cell.json` holds its command, config, schedule, hardware and wall "
              "time; `curves.csv` every seed's curve; the trained learners are in "
              "[`zoo/`](../zoo) (`make eval CKPT=zoo/<task>/<cell>/seed<i>`, the cell being the preset "
              "for SQL and `<learner>-<preset>` for the others).\n\n")
    out.write("| " + " | ".join(HEADER) + " |\n|" + "---|" * len(HEADER) + "\n")
    notes = []
    for cell_dir in cells:
        row, note = cell_row(cell_dir)
        out.write("| " + " | ".join(row) + " |\n")
        if note:
            notes.append(f"**{row[0]}, {row[1]}, {row[2]}.** {note}")
    if not cells:
        out.write("| (no cells yet) |" + " |" * (len(HEADER) - 1) + "\n")
    out.write("\nThe reference columns are not our runs: an independent PyTorch SQL reproduction "
              "on gymnasium **v4** tasks (5 seeds, stochastic evaluation, read from its plots, "
              "about ±10 %) at the budgets on either side of the cell's, and SAC at 1M steps on "
              "v3/v4, for scale; for DDPG, TD3 and SAC cells, that learner's published "
              "deterministic returns at the nearest of 100k, 300k and 1M (10 seeds, gym v1/v3, "
              "wider networks; F: the TD3 paper's curves, T: Tianshou's benchmark, S: SpinningUp's "
              "plots). Our cells run the **v5** tasks (same models and rewards as v4 up to "
              "v5's fixes), with fewer seeds and fewer steps; compare shapes and orders of "
              "magnitude, not digits.\n")
    if notes:
        out.write("\n## Notes on the cells\n\n" + "\n\n".join(notes) + "\n")
    return out.getvalue()


def write_table(results_dir: Path = RESULTS_DIR) -> Path:
    path = results_dir / "README.md"
    results_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(render_table(results_dir))
    return path


# ------------------------------------------------------------------------ running a cell

def run_cell(task: str, preset: str, seeds: int, steps: int, run_dir: Path | None = None,
             progress: bool = True, bench_args: Sequence[str] = (), learner: str | None = None) -> Path:
    """Train a cell (or resume it), collect it, export its learners and refresh the table.
    ``bench_args``: further ``experiments.bench`` flags for a new run (they override the
    cell schedule: evaluation every 10k steps, 5 episodes, a checkpoint every 25k)."""
    from experiments import bench
    from sqljax.envs.gym_adapter import resolve_env_id
    from sqljax.store import run_dir as rd

    env_id = resolve_env_id(task)
    chosen = learners.get(learner)
    name = cli.run_name(chosen, preset)
    run_dir = run_dir or RUNS_DIR / task_name(env_id) / name
    flags = [] if progress else ["--no-progress"]
    if (run_dir / rd.RUN_FILE).exists():
        run = rd.read_run(run_dir)
        held = (run["env_id"], cli.run_name(learners.get(run.get("learner")), str(run.get("preset"))),
                len(run["seed_ids"]))
        if held != (env_id, name, seeds):
            raise cli.RunError(f"{run_dir} holds {held[0]}/{held[1]} with {held[2]} seeds, not "
                               f"{env_id}/{name} with {seeds}; move it away or pick another --run-dir")
        argv = ["--resume", str(run_dir), "--steps", str(steps), *flags]
    else:
        argv = ["--learner", chosen.name, "--env", env_id, "--seeds", str(seeds), "--steps", str(steps),
                "--preset", preset,
                "--out", str(run_dir), "--eval-every", str(EVAL_EVERY), "--eval-episodes",
                str(EVAL_EPISODES), "--checkpoint-every", str(CHECKPOINT_EVERY), *flags, *bench_args]
    status = bench.main(argv)
    if status:
        raise SystemExit(status)
    runner = f"make results TASK={task} PRESET={preset} SEEDS={seeds} STEPS={steps}" + (
        f" LEARNER={chosen.name}" if chosen.name != learners.DEFAULT else "")
    cell_dir = collect(run_dir, runner=runner)
    write_table()
    return cell_dir


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m experiments.results",
                   description="Results cells (task x preset, N seeds), the zoo of trained "
                               "learners and the generated results table.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train (or resume) a cell, then collect it and refresh the table")
    r.add_argument("--task", required=True, help="task short name or gymnasium id (Hopper, Walker2d, ...)")
    r.add_argument("--learner", choices=learners.names(), default=learners.DEFAULT,
                   help=f"the algorithm (default {learners.DEFAULT}; ddpg --preset modern is TD3)")
    r.add_argument("--preset", default="code", help="hyperparameter preset (default code)")
    r.add_argument("--seeds", type=int, default=3, help="seeds in lockstep (default 3)")
    r.add_argument("--steps", type=int, default=300_000, help="env steps per seed (default 300000)")
    r.add_argument("--run-dir", help="run directory (default runs/results/<task>/<cell name>)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    c = sub.add_parser("collect", help="write a run's cell files and zoo exports")
    c.add_argument("run_dir", help="an experiments.bench run directory")
    c.add_argument("--runner", help="the command that produced the run, recorded in cell.json")
    e = sub.add_parser("export", help="export each seed's learner of every checkpoint a run has kept")
    e.add_argument("run_dir", help="an experiments.bench run directory")
    e.add_argument("--out", required=True, help="folder of step_<N>/seed<i>/ exports")
    t = sub.add_parser("table", help="regenerate results/README.md from the committed cells")
    t.add_argument("--check", action="store_true", help="exit 1 if results/README.md is not current")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "run":
            cli.check_at_least(args, {"seeds": 1, "steps": 1})
            cell = run_cell(args.task, args.preset, args.seeds, args.steps,
                            Path(args.run_dir) if args.run_dir else None, not args.no_progress,
                            learner=args.learner)
            print(f"cell {cell}; table {RESULTS_DIR / 'README.md'}")
        elif args.command == "export":
            for folder in export_checkpoints(args.run_dir, args.out):
                print(f"exported {folder}")
        elif args.command == "collect":
            print(f"cell {collect(args.run_dir, runner=args.runner)}")
            print(f"table {write_table()}")
        else:
            path = RESULTS_DIR / "README.md"
            if args.check:
                current = path.read_text() if path.is_file() else ""
                if current != render_table():
                    print(f"{path} is stale: run `make results-table`", file=sys.stderr)
                    return 1
                print(f"{path} is current")
            else:
                print(f"wrote {write_table()}")
    except cli.HANDLED_ERRORS as e:
        return cli.report_error(e, "interrupted; `make results` again resumes the cell")
    return 0


if __name__ == "__main__":
    sys.exit(main())
