"""Learning curves across seeds: a line (IQM or mean over seeds) and its bootstrap
confidence band per configuration, from the ``summary.json`` that
``python -m experiments.bench`` writes.

    python -m experiments.plots runs/bench/hc                       # -> runs/bench/hc/curves.png
    python -m experiments.plots --compare runs/bench/hc-code runs/bench/hc-paper --out cmp.png

``--compare`` overlays several runs (e.g. the ``code`` and ``paper`` presets) on one
axes, one colour per run, labelled by each run's label. :func:`plot_learning_curve`
draws a single run's ``learning_curve.png`` (``experiments.train`` writes it at the end).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sqljax.loops import RunError
from sqljax.store.run_dir import read_metrics, read_run

SUMMARY_FILE = "summary.json"
CURVE_FILE = "learning_curve.png"  # of a single run (experiments.train)
STAT_NAME = {"iqm": "IQM", "mean": "mean"}


def load_summary(run_dir: str | Path) -> dict:
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `python -m experiments.bench "
                                f"--summarize {run_dir}` first")
    return json.loads(path.read_text())


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def band(ax, curve: dict, stat: str, color, label: str, style: str = "-", alpha: float = 0.2):
    x = np.asarray(curve["step"], float)
    if not len(x):
        return
    y = np.asarray(curve[stat], float)
    ci = np.asarray(curve[stat + "_ci"], float).reshape(-1, 2)
    ax.plot(x, y, style, color=color, lw=1.8, label=title_text(label, 48), marker="o" if len(x) < 3 else None,
            ms=3)
    ax.fill_between(x, ci[:, 0], ci[:, 1], color=color, alpha=alpha, lw=0)


def ci_words(summary: dict) -> str:
    conf = summary.get("statistics", {}).get("confidence", 0.95)
    return f"{conf:.0%} stratified-bootstrap CI"


def title_text(text: str, width: int = 80) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def plot_learning_curve(run_dir: str | Path, title: str = "", seed_id: int | None = None
                        ) -> Path | None:
    """``learning_curve.png`` of one seed of a run (default: its first) from its
    metrics.csv: training episode returns and the stochastic and deterministic evaluation
    returns (± their std over episodes) against env steps. None if the run has no
    metrics yet."""
    try:
        run = read_run(run_dir)
        rows = read_metrics(run_dir, run["seed_ids"][0] if seed_id is None else seed_id)
    except (RunError, FileNotFoundError):
        return None

    def series(col):
        pts = [(int(r["step"]), float(r[col])) for r in rows if r.get(col) not in (None, "")]
        return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    x, y = series("episode_return")
    if len(x):
        ax.plot(x, y, color="0.6", lw=1, label="training episodes (mean per log)")
    for col, style, label in (("eval_return", "o-", "evaluation, stochastic"),
                              ("eval_return_det", "s--", "evaluation, deterministic (ξ = 0)")):
        x, y = series(col)
        if len(x):
            ax.plot(x, y, style, ms=3, label=label)
            x_std, s = series(col + "_std")
            if len(x_std) == len(x):
                ax.fill_between(x, y - s, y + s, alpha=0.15)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return (unscaled)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # nothing to label before the first episode ends
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = Path(run_dir) / CURVE_FILE
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_run(run_dir: str | Path, out: str | Path | None = None, stat: str = "iqm",
             show_seeds: bool = True) -> Path:
    """curves.png of one run (from its summary.json): see :func:`plot_summary`."""
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "curves.png"
    return plot_summary(load_summary(run_dir), out, stat, show_seeds)


def plot_summary(s: dict, out: str | Path, stat: str = "iqm", show_seeds: bool = True) -> Path:
    """Stochastic (solid) and deterministic (dashed) evaluation curves of a summary
    (``experiments.bench``'s summary.json layout): ``stat`` across seeds with its CI band,
    and each seed's curve as a thin line."""
    plt = pyplot()
    out = Path(out)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for mode, color, style in (("stochastic", "C0", "-"), ("deterministic", "C1", "--")):
        curve = s["curves"].get(mode)
        if not curve:
            continue
        if show_seeds:
            xs = np.asarray(curve.get("per_seed_step", []), float)
            for ys in curve.get("per_seed", {}).values():
                if len(xs):
                    ax.plot(xs, ys, style, color=color, lw=0.5, alpha=0.35)
        band(ax, curve, stat, color, f"{mode} evaluation ({STAT_NAME[stat]})", style)
    ax.set_title(title_text(f"SQL on {s['env_id']}: {s['label']}, {s['n_seeds']} seeds") + "\n"
                 f"{STAT_NAME[stat]} across seeds, band: {ci_words(s)}", fontsize=9)
    _finish(ax)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_compare(run_dirs: Sequence[str | Path], out: str | Path, mode: str = "stochastic",
                 stat: str = "iqm", labels: Sequence[str] | None = None) -> Path:
    """Overlay runs on one plot: per run, ``stat`` across its seeds and the CI band."""
    plt = pyplot()
    summaries = [load_summary(d) for d in run_dirs]
    names = list(labels) if labels else [s["label"] for s in summaries]
    if len(set(names)) < len(names):  # same label twice: tell them apart by directory
        names = [f"{n} ({Path(d).name})" for n, d in zip(names, run_dirs)]
    envs = sorted({s["env_id"] for s in summaries})
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for k, (s, name) in enumerate(zip(summaries, names)):
        curve = s["curves"].get(mode)
        if curve:
            band(ax, curve, stat, f"C{k % 10}", f"{name} (n={s['n_seeds']})")
    ax.set_title(f"SQL on {', '.join(envs)}: {mode} evaluation\n{STAT_NAME[stat]} across seeds, "
                 f"band: {ci_words(summaries[0])}", fontsize=9)
    _finish(ax)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


_ARM_STYLE = {"finetune": ("C0", "fine-tuned from the pretrained Ant"),
              "scratch": ("C3", "from scratch")}


def plot_transfer(study_dir: Path, tasks: list[str], n_seeds: int, settings: dict[str, Any],
                  path: Path, stat: str = "iqm") -> Path:
    """transfer.png of a skill-transfer study (``experiments.studies.transfer``): one column per
    task, a row per evaluation mode; in each panel the fine-tuned and scratch curves
    (``stat`` over seeds) with their CI bands; a last row with each seed's mean TD target
    (``target_mean`` of ``metrics.csv``, scaled rewards), where the anneal shows."""
    plt = pyplot()
    names = list(tasks)
    modes = ("stochastic", "deterministic")
    fig, axes = plt.subplots(len(modes) + 1, len(names), figsize=(4.6 * len(names), 3.4 * (len(modes) + 1)),
                             squeeze=False, sharex="col")
    words_ci = None
    for j, name in enumerate(names):
        for arm in ("finetune", "scratch"):
            f = Path(study_dir) / name / arm / SUMMARY_FILE
            if not f.is_file():
                continue
            s = json.loads(f.read_text())
            words_ci = words_ci or ci_words(s)
            color, words = _ARM_STYLE[arm]
            for i, mode in enumerate(modes):
                curve = s["curves"].get(mode)
                if curve:
                    band(axes[i, j], curve, stat, color, f"{words} (n={s['n_seeds']})")
            for k, sid in enumerate(s["seed_ids"]):
                rows = [r for r in read_metrics(f.parent, sid) if r.get("target_mean")]
                axes[-1, j].plot([int(r["step"]) for r in rows], [float(r["target_mean"]) for r in rows],
                                 color=color, lw=0.8, label=words if k == 0 else None)
        for i, what in enumerate([f"{mode} evaluation" for mode in modes] + ["mean TD target"]):
            ax = axes[i, j]
            ax.set_title(f"{name}: {what}", fontsize=9)
            ax.set_xlabel("fine-tuning env steps (per seed)" if i == len(modes) else "")
            ax.set_ylabel(("return (unscaled)" if i < len(modes) else "y, scaled (symlog)") if j == 0 else "")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(loc="best", fontsize=7)
        axes[-1, j].set_yscale("symlog", linthresh=10.0)
    st = settings
    pre = (f"pretrained {st['pretrain_steps']} steps on {st['pretrain_env'].split('/')[-1]}"
           if st["pretrain_steps"] else f"pretrained: {st['pretrained']}")
    sched = f"fine-tuning {schedule_words(st)}"
    fig.suptitle(title_text(f"Skill transfer: {pre}; {sched}; {n_seeds} seeds. "
                       f"{STAT_NAME[stat]} across seeds, band: "
                       f"{words_ci or '95% stratified-bootstrap CI'}", 62 * len(names)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def schedule_words(st: dict[str, Any]) -> str:
    """The fine-tuning schedules of a study's settings, in words."""
    if not st["anneal_steps"]:
        return "without schedules"
    scale = st["config_pretrain"]["reward_scale"]
    parts = [f"reward scale {scale:g} -> {st['final_reward_scale']:g}" if st["final_reward_scale"]
             else f"reward scale kept at {scale:g}",
             f"K_xi {st['noise_bank_size']} -> 1" if st["noise_bank_size"] else "fresh xi"]
    return f"over {st['anneal_steps']} updates: {', '.join(parts)}"


def _finish(ax) -> None:
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel("return (unscaled)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a run without evaluations draws no curve
        ax.legend(loc="best", fontsize=8)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.plots", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", nargs="?", help="a run directory: (re)draw its curves.png")
    p.add_argument("--compare", nargs="+", metavar="RUN_DIR", help="overlay these runs")
    p.add_argument("--labels", nargs="+", help="legend labels for --compare (default: the runs')")
    p.add_argument("--out", help="output image (default: RUN_DIR/curves.png or compare.png)")
    p.add_argument("--mode", choices=("stochastic", "deterministic"), default="stochastic")
    p.add_argument("--stat", choices=("iqm", "mean"), default="iqm")
    args = p.parse_args(argv)
    try:
        if args.compare:
            if args.labels and len(args.labels) != len(args.compare):
                raise ValueError(f"--labels has {len(args.labels)} names for {len(args.compare)} runs")
            out = plot_compare(args.compare, args.out or "compare.png", args.mode, args.stat, args.labels)
        elif args.run_dir:
            out = plot_run(args.run_dir, args.out, args.stat)
        else:
            p.error("give a run directory or --compare RUN_DIR ...")
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
