"""The alpha sweep of a pretraining (the paper's Figure 7): direction spread and speed
against env steps, one line per temperature.

    python -m experiments.studies.alpha_sweep 0.01=results/transfer/alpha/scale100 \\
        0.1=results/transfer/alpha/scale10 --out results/transfer/alpha

Each argument is ``ALPHA=DIR``, DIR a folder that ``experiments.studies.locomotion`` wrote
for the learners that ``python -m experiments.results export`` took from one pretraining's
checkpoints (labels ``step_<N>/seed<i>``): its ``direction_spread.json`` (stochastic) and,
if present, ``direction_spread_deterministic.json``, and the ``locomotion*.json`` beside
them (the speed along the path). Writes ``alpha_sweep.png`` (R, the speed along the path
and the net speed against env steps, one colour per alpha, each seed a thin line, their
mean thick; stochastic solid, deterministic dashed) and ``alpha_sweep.md`` (each alpha's
last step, then every alpha, step, seed and mode). An Ant *walks* where its deterministic
episodes' mean speed along the path reaches ``WALKS`` (0.5 m/s); the net speed (distance
from the start over the episode's duration) tells a walk that goes somewhere from one that
circles. The commands that produce the inputs are in docs/transfer.md.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments import cli

SPREAD_FILES = {"stochastic": "direction_spread.json", "deterministic": "direction_spread_deterministic.json"}
SPEED_FILES = {"stochastic": "locomotion.json", "deterministic": "locomotion_deterministic.json"}
_LABEL = re.compile(r"step_(\d+)/seed(\d+)$")
#: the mean speed along the path (m/s, deterministic episodes) from which a pretrained Ant
#: counts as walking (a dotted line)
WALKS = 0.5
#: the per-point measures, as (key in the spread summary, axis title)
MEASURES = (("R", "mean resultant length R of the headings (1: one way, 0: spread)"),
            ("planar_speed", "mean speed along the path (m/s)"),
            ("net_speed_mean", "mean net speed: distance from the start / duration (m/s)"))


def parse_run(text: str) -> tuple[float, Path]:
    """``"ALPHA=DIR"`` -> (alpha, DIR); RunError (one line) unless alpha is a number > 0."""
    alpha, sep, folder = text.partition("=")
    try:
        value = float(alpha)
    except ValueError:
        value = float("nan")
    if not sep or not folder or not np.isfinite(value) or value <= 0:
        raise cli.RunError(f"expected ALPHA=DIR with ALPHA a number > 0, got {text!r}")
    return value, Path(folder)


def read_points(folder: Path) -> list[dict]:
    """Rows (mode, step, seed, R, planar_speed, net_speed_mean, moved, episodes) of one
    alpha's folder, sorted by mode, step and seed (planar_speed None without that mode's
    locomotion file). RunError if it has no stochastic spread file or a learner's label is
    not ``step_<N>/seed<i>``."""
    rows = []
    for mode, name in SPREAD_FILES.items():
        speed_path = folder / SPEED_FILES[mode]
        planar = ({label: d.get("mean_planar_speed") for label, d in
                   json.loads(speed_path.read_text())["learners"].items()}
                  if speed_path.is_file() else {})
        path = folder / name
        if not path.is_file():
            if mode == "stochastic":
                raise cli.RunError(f"{path} is missing: run experiments.studies.locomotion on the "
                                   "exported learners with --out " + str(folder))
            continue
        for label, d in json.loads(path.read_text())["learners"].items():
            m = _LABEL.search(label)
            if m is None:
                raise cli.RunError(f"{path}: learner {label!r} is not labelled step_<N>/seed<i> "
                                   "(export the checkpoints with `python -m experiments.results export`)")
            rows.append({"mode": mode, "step": int(m.group(1)), "seed": int(m.group(2)),
                         "R": d["R"], "planar_speed": planar.get(label), "net_speed_mean": d["net_speed_mean"],
                         "moved": d["moved"], "episodes": d["episodes"]})
    return sorted(rows, key=lambda r: (r["mode"], r["step"], r["seed"]))


def seed_mean(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, mean over seeds of ``key`` at each step); an undefined R (no episode moved)
    is left out of its step's mean."""
    steps = sorted({r["step"] for r in rows})
    means = []
    for s in steps:
        vals = [r[key] for r in rows if r["step"] == s and r[key] is not None]
        means.append(float(np.mean(vals)) if vals else np.nan)
    return np.asarray(steps), np.asarray(means)


def plot(points: dict[float, list[dict]], out: Path) -> Path:
    from experiments.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(5.2 * len(MEASURES), 4.2))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(points)))
    for (key, title), ax in zip(MEASURES, axes):
        for color, (alpha, rows) in zip(colors, sorted(points.items(), reverse=True)):
            for mode, style, face in (("stochastic", "-", color), ("deterministic", "--", "none")):
                these = [r for r in rows if r["mode"] == mode]
                if not these:
                    continue
                for seed in sorted({r["seed"] for r in these}):
                    mine = [r for r in these if r["seed"] == seed and r[key] is not None]
                    ax.plot([r["step"] for r in mine], [r[key] for r in mine], style, color=color,
                            lw=0.6, alpha=0.5, marker=".", ms=3)
                x, y = seed_mean(these, key)
                ax.plot(x, y, style, color=color, lw=2, marker="o", ms=5, mfc=face,  # a lone step shows too
                        label=f"α = {alpha:g}, {mode}" if key == MEASURES[0][0] else None)
        ax.set_xlim(left=0)
        ax.xaxis.set_major_formatter(lambda v, _: f"{v / 1000:g}k")
        ax.set_xlabel("pretraining env steps (per seed)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, 1.02)
    top = max(1.15 * WALKS, *(ax.get_ylim()[1] for ax in axes[1:]))
    for ax in axes[1:]:  # the speeds on one scale
        ax.set_ylim(0, top)
    axes[1].axhline(WALKS, color="grey", lw=0.8, ls=":")
    axes[1].annotate(f"walks: ≥ {WALKS:g} m/s deterministic", (0, WALKS), xytext=(3, -10),
                     textcoords="offset points", fontsize=8, color="grey")
    # one legend under the panels, a column per temperature, so no curve is hidden
    fig.legend(loc="lower center", ncol=len(points), fontsize=8, frameon=False)
    fig.suptitle("AntAnyDirection pretraining: direction spread and speed by temperature "
                 "(thin: seeds, thick: their mean)", fontsize=11)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def last_step_summary(points: dict[float, list[dict]]) -> list[dict]:
    """Per alpha (hottest first), its seed means at the last step with a stochastic point:
    ``alpha``, ``step``, ``seeds``; ``R``, ``planar`` (speed along the path) and ``speed``
    (net speed) per mode as ``R_stochastic`` etc. (None where that mode has no point there,
    no episode moved, or no locomotion file); ``walks``: the deterministic mean speed along
    the path >= ``WALKS`` (None without it)."""
    out = []
    for alpha, rows in sorted(points.items(), reverse=True):
        step = max(r["step"] for r in rows if r["mode"] == "stochastic")
        entry = {"alpha": alpha, "step": step,
                 "seeds": len({r["seed"] for r in rows if r["step"] == step})}
        for mode in SPREAD_FILES:
            these = [r for r in rows if r["mode"] == mode and r["step"] == step]
            for key, name in (("R", "R"), ("planar_speed", "planar"), ("net_speed_mean", "speed")):
                vals = [r[key] for r in these if r[key] is not None]
                entry[f"{name}_{mode}"] = float(np.mean(vals)) if vals else None
        planar = entry["planar_deterministic"]
        entry["walks"] = None if planar is None else bool(planar >= WALKS)
        out.append(entry)
    return out


def summary_table(points: dict[float, list[dict]]) -> str:
    def f(x):
        return "—" if x is None else f"{x:.2f}"

    lines = ["| α | env steps | seeds | R stochastic | R deterministic | speed along the path, "
             "stochastic / deterministic (m/s) | net speed, stochastic / deterministic (m/s) | "
             f"walks (deterministic, >= {WALKS:g} m/s along the path) |",
             "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for e in last_step_summary(points):
        walks = "—" if e["walks"] is None else ("yes" if e["walks"] else "no")
        lines.append(f"| {e['alpha']:g} | {e['step']} | {e['seeds']} | {f(e['R_stochastic'])} | "
                     f"{f(e['R_deterministic'])} | {f(e['planar_stochastic'])} / "
                     f"{f(e['planar_deterministic'])} | {f(e['speed_stochastic'])} / "
                     f"{f(e['speed_deterministic'])} | {walks} |")
    return "\n".join(lines) + "\n"


def table(points: dict[float, list[dict]]) -> str:
    def f(x, spec):
        return "—" if x is None else format(x, spec)

    lines = ["| α | env steps | seed | mode | R | speed along the path (m/s) | net speed (m/s) | "
             "moved / episodes |",
             "|---:|---:|---:|---|---:|---:|---:|---|"]
    for alpha, rows in sorted(points.items(), reverse=True):
        for r in sorted(rows, key=lambda r: (r["step"], r["seed"], r["mode"])):
            lines.append(f"| {alpha:g} | {r['step']} | {r['seed']} | {r['mode']} | {f(r['R'], '.2f')} | "
                         f"{f(r['planar_speed'], '.2f')} | {f(r['net_speed_mean'], '.2f')} | "
                         f"{r['moved']} / {r['episodes']} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.Parser(prog="python -m experiments.studies.alpha_sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="ALPHA=DIR", help="a temperature and the locomotion "
                   "folder of its pretraining's exported checkpoints")
    p.add_argument("--out", default="results/transfer/alpha", help="output directory")
    try:
        args = p.parse_args(argv)
        points: dict[float, list[dict]] = {}
        for text in args.runs:
            alpha, folder = parse_run(text)
            if alpha in points:
                raise cli.RunError(f"alpha {alpha:g} is given twice")
            points[alpha] = read_points(folder)
    except cli.HANDLED_ERRORS as e:
        return cli.report_error(e, "interrupted")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "alpha_sweep.md").write_text(
        "# Direction spread and speed by temperature\n\nAt each temperature's last step, the means "
        "over seeds:\n\n" + summary_table(points) + "\nEvery step, seed and mode:\n\n" + table(points))
    print(f"wrote {plot(points, out / 'alpha_sweep.png')} and {out / 'alpha_sweep.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
