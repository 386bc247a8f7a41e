"""The exploration study's report (:mod:`experiments.studies.exploration`): figures of the
training extremes per seed, the final learners' trajectories, ``report.md`` /
``report.json``, and the learners exported to the zoo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from experiments import plots
from experiments.studies import exploration as ex

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")


def _p(x: float | None) -> str:
    return "—" if x is None else f"{x:.2g}"


def _m(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _k(step: int | None) -> str:
    return "never" if step is None else f"{step / 1000:g}k"


def markdown(summary: dict[str, Any]) -> str:
    """The report's text: per learner and seed the outcome, the shares, Fisher's p."""
    swimmer = summary["task"] == "SwimmerFinishLine"
    thr = summary["threshold"]
    lines = [f"# Exploration: {summary['env_id']}", ""]
    if swimmer:
        lines += [f"Per seed, over all training episodes so far: the greatest x of the swimmer's centre "
                  f"of mass forward and backward (m), when it first passed the finish line (x >= {thr:g} m), "
                  f"and from when every later log interval's mean end-of-episode x kept one sign with "
                  f"|x| >= {summary['commit_margin']:g} m (committed; counted once it has held for "
                  f"{ex.MIN_COMMITTED_INTERVALS} log intervals). Last column: the final learner's "
                  f"stochastic episodes ending at least {summary['commit_margin']:g} m forward / backward.", "",
                  "| learner | seed | env steps | forward max | backward max | past the line | committed "
                  "| final learner's episodes forward / backward |",
                  "|---|---|---|---|---|---|---|---|"]
    else:
        lines += [f"Per seed, over all training episodes so far: the torso's least distance to the target "
                  f"(m), and when it first got closer than the dead end allows ({thr:.2f} m).", "",
                  "| learner | seed | env steps | least distance | below the dead end "
                  "| final learner's least distance |", "|---|---|---|---|---|---|"]
    final = summary.get("final_episodes", {})
    for name, r in summary["learners"].items():
        for sid, s in r["seeds"].items():
            f = final.get(name, {}).get(str(sid))
            if swimmer:
                committed = "no" if s["direction"] is None else f"{s['direction']} from {_k(s['committed_at'])}"
                lines.append(f"| {ex.NAMES.get(name, name)} | {sid} | {_k(r['env_steps'])} | {_m(s['forward_max'])} "
                             f"| {_m(s['backward_max'])} | {_k(s['passed_at'])} | {committed} "
                             f"| {'—' if f is None else str(f['forward']) + ' / ' + str(f['backward']) + ' of ' + str(f['n'])} |")
            else:
                lines.append(f"| {ex.NAMES.get(name, name)} | {sid} | {_k(r['env_steps'])} | "
                             f"{_m(s['least_distance'])} | {_k(s['passed_at'])} | "
                             f"{'—' if f is None else _m(f['least_distance'])} |")
    what = "passed the finish line" if swimmer else "got below the dead-end distance"
    lines += ["", f"Seeds that {what}:", ""]
    for name, r in summary["learners"].items():
        extra = ""
        if "fisher_p_vs_sql" in r:
            extra = f"; against SQL, Fisher's exact test (two-sided) p = {_p(r['fisher_p_vs_sql'])}"
        if swimmer:
            dirs = [s["direction"] for s in r["seeds"].values()]
            forward_p = ("" if "forward_fisher_p_vs_sql" not in r else
                         f"; committed forward against SQL's, p = {_p(r['forward_fisher_p_vs_sql'])}")
            extra = (f" (committed forward {dirs.count('forward')}, backward {dirs.count('backward')}, "
                     f"not yet {dirs.count(None)})") + extra + forward_p
        lines.append(f"- {ex.NAMES.get(name, name)}: {r['passed']} of {r['n']}{extra}")
    return "\n".join(lines) + "\n"


def plot_extremes(summary: dict[str, Any], seeds_csv: Path, out: Path) -> Path:
    """The paper's Figures 3a / 6: one row per seed, one column per learner; against env
    steps the greatest forward and backward x of the centre of mass so far (swimmer; the
    backward one drawn below zero, each log interval's own extremes faint) or the least
    distance to the target so far (maze), the finish line or the dead-end distance drawn."""
    import csv

    with open(seeds_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    swimmer = summary["task"] == "SwimmerFinishLine"
    names = list(summary["learners"])
    n_rows = max(len(r["seeds"]) for r in summary["learners"].values())
    plt = plots.pyplot()
    fig, axes = plt.subplots(n_rows, len(names), figsize=(4.6 * len(names), 1.55 * n_rows + 1.0),
                             sharex=True, sharey=True, squeeze=False)
    thr = summary["threshold"]
    for j, name in enumerate(names):
        r = summary["learners"][name]
        axes[0][j].set_title(f"{ex.NAMES.get(name, name)}: {r['passed']} of {r['n']} seeds "
                             + ("past the line" if swimmer else "below the dead end"), fontsize=10)
        for i, sid in enumerate(r["seeds"]):
            ax = axes[i][j]
            mine = [row for row in rows if row["learner"] == name and int(row["seed"]) == int(sid)]
            step = np.array([int(row["step"]) for row in mine]) / 1000

            def col(c, mine=mine):
                return np.array([float(row[c]) if row[c] != "" else np.nan for row in mine])

            if swimmer:
                ax.fill_between(step, col("train_com_x_min"), col("train_com_x_max"), color="#1f77b4",
                                alpha=0.15, lw=0, step="pre")
                ax.plot(step, col("forward_so_far"), color="#1f77b4", lw=1.6)
                ax.plot(step, -col("backward_so_far"), color="#d62728", lw=1.6)
                ax.axhline(0, color="grey", lw=0.6)
            else:
                ax.plot(step, col("least_distance_so_far"), color="#1f77b4", lw=1.6)
            ax.axhline(thr, color="black", ls=":", lw=1.2)
            ax.text(0.01, 0.92, f"seed {sid}", transform=ax.transAxes, fontsize=8, va="top")
            ax.grid(alpha=0.3)
        axes[-1][j].set_xlabel("env steps (thousands)")
    what = ("centre of mass x (m): greatest so far forward (blue) and backward (red); band: each "
            f"log interval's range; dotted: finish line {thr:g} m" if swimmer else
            f"least distance to the target so far (m); dotted: dead end {thr:.2f} m")
    fig.suptitle(plots.title_text(f"{summary['env_id']}, training episodes: {what}", 40 * len(names)),
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def trajectories(run_dir: Path, env_id: str, kind: str, episodes: int, seed: int = 0) -> dict[int, list]:
    """Per seed id, ``episodes`` stochastic episodes of the run's final learners: the
    xy path (T, 2) of the swimmer's centre of mass or of the ant's torso."""
    import jax

    from sqljax import seeding
    from sqljax.envs.gym_adapter import make_env
    from sqljax.loops import evaluation
    from sqljax.loops import multi_seed as ms
    from sqljax.store import run_dir as rd

    run = rd.read_run(run_dir)
    seed_ids = [int(s) for s in run["seed_ids"]]
    agents = ms.load_seed_states(run_dir)
    mesh = seeding.seed_mesh(jax.devices()[:1])
    envs = {p: [make_env(env_id) for _ in range(episodes)] for p in range(len(seed_ids))}
    keys = seeding.fold_keys(seeding.seed_keys(seed, seed_ids), 7)
    env_seeds = {p: [10_000 * sid + j for j in range(episodes)] for p, sid in enumerate(seed_ids)}
    trace = (lambda info: (info["com_x"], info["com_y"])) if kind == "swimmer" else (
        lambda info: (info["x_position"], info["y_position"]))
    res = evaluation.evaluate(jax.device_put(agents), mesh, envs, env_seeds, keys,
                              np.zeros(episodes, bool), trace=trace)
    for es in envs.values():
        for e in es:
            e.close()
    return {sid: res["traces"][p] for p, sid in enumerate(seed_ids)}


def plot_trajectories(summary: dict[str, Any], paths: dict[str, dict[int, list]], out: Path) -> Path:
    """Top-down paths of the final learners, a panel per learner, a colour per seed."""
    swimmer = summary["task"] == "SwimmerFinishLine"
    names = list(paths)
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2), squeeze=False,
                             sharex=swimmer, sharey=swimmer)
    for ax, name in zip(axes[0], names):
        if not swimmer:
            from experiments.studies.exploration_maze_plot import draw_maze

            draw_maze(ax, bump=False)
        for i, (sid, eps) in enumerate(paths[name].items()):
            for j, p in enumerate(eps):
                if len(p):
                    ax.plot(p[:, 0], p[:, 1], color=COLORS[i % len(COLORS)], lw=0.9, alpha=0.7,
                            label=f"seed {sid}" if j == 0 else None)
        if swimmer:
            ax.axvline(summary["threshold"], color="black", ls=":", lw=1.2, label="finish line")
            ax.axvline(0, color="grey", lw=0.6)
            ax.set_xlabel("x of the centre of mass (m)")
            ax.set_ylabel("y (m)")
        n_eps = len(next(iter(paths[name].values())))
        ax.set_title(f"{ex.NAMES.get(name, name)}: final learners, {n_eps} stochastic episodes each")
        if swimmer:
            ax.legend(fontsize=7, loc="best")
        else:  # outside the maze
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def final_outcome(kind: str, paths: list[np.ndarray], summary: dict[str, Any]) -> dict[str, Any]:
    """What a seed's final learner did in its trajectory episodes: the swimmer's end x
    per episode and how many ended forward / backward by at least the commitment margin;
    the ant's least distance to the target over the episodes."""
    paths = [p for p in paths if len(p)]
    if kind == "swimmer":
        end = [round(float(p[-1, 0]), 3) for p in paths]
        m = summary["commit_margin"]
        return {"end_x": end, "forward": sum(x >= m for x in end), "backward": sum(x <= -m for x in end),
                "n": len(end)}
    from sqljax.envs import exploration_tasks as et

    target = np.asarray(et.MAZE_TARGET, float)
    least = min(float(np.min(np.linalg.norm(p[:, :2] - target, axis=1))) for p in paths)
    return {"least_distance": round(least, 3), "n": len(paths)}


def write(summary: dict[str, Any], out: Path, runs: dict[str, Path], episodes: int,
          zoo: Path) -> None:
    """Everything of the report under ``out`` (and the learners in the zoo)."""
    from experiments import results

    out.mkdir(parents=True, exist_ok=True)
    kind = ex.task_facts(summary["task"])["kind"]
    if episodes > 0:
        paths = {name: trajectories(run_dir, summary["env_id"], kind, episodes)
                 for name, run_dir in runs.items()}
        plot_trajectories(summary, paths, out / "trajectories.png")
        summary["final_episodes"] = {name: {str(sid): final_outcome(kind, eps, summary)
                                            for sid, eps in by_seed.items()}
                                     for name, by_seed in paths.items()}
    plot_extremes(summary, out / "seeds.csv", out / "extremes.png")
    (out / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "report.md").write_text(markdown(summary))
    for run_dir in runs.values():
        results.collect(run_dir, results_dir=out.parent, zoo_dir=zoo,
                        runner=f"python -m experiments.studies.exploration run --task {summary['task']}")
