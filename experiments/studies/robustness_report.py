"""The report of a robustness study (:mod:`experiments.studies.robustness`): from the rows
of its per-seed CSV, per learner directory, family and evaluation mode, the return and
the return relative to the same learner unperturbed over the magnitudes (IQM over seeds
with bootstrap intervals), the area under the relative curve, the first directory's area
minus each other's, and the max-entropy learners' (SQL, SAC) area minus the deterministic
ones' (DDPG, TD3); a figure (families as columns, relative and absolute return as rows), a
text report and ``report.md`` (both drawn by :mod:`experiments.studies.robustness_render`).

Everything here reads the study's files only, no learner and no environment, so a study
directory is rebuilt (``summary.json``, ``robustness.png``, ``report.md``) from its
``robustness.csv``, ``settings.json`` and ``obs_std.json`` alone:

    python -m experiments.studies.robustness_report results/robustness/Hopper

(the same as ``python -m experiments.studies.robustness --report-only --out DIR``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import bench, cli, stats
from sqljax.envs import perturbations as pt
from sqljax.envs.gym_adapter import short_name
from sqljax.loops import RunError

MODES = ("stochastic", "deterministic")
#: The family name of the unperturbed rows.
UNPERTURBED = "none"
CSV_FILE = "robustness.csv"
SUMMARY_FILE = "summary.json"
PLOT_FILE = "robustness.png"
REPORT_FILE = "report.md"
SETTINGS_FILE = "settings.json"
OBS_STD_FILE = "obs_std.json"
COLUMNS = ["learner_dir", "learner", "seed", "family", "magnitude", "mode", "mean_return", "episodes",
           "mean_length"]
#: Zoo cells (``zoo/<task>/<cell>``) and the name a figure or table gives them; a cell is
#: ``code`` (SQL's default preset) or ``<learner>-<preset>``.
DISPLAY = {"code": "SQL", "ddpg-code": "DDPG", "ddpg-modern": "TD3", "sac-code": "SAC"}
#: Learners that maximise return plus entropy, and those that learn a deterministic policy.
MAX_ENTROPY = ("sql", "sac")
DETERMINISTIC = ("ddpg",)
GROUP_NAMES = ("max-entropy", "deterministic")


@dataclasses.dataclass
class DirInfo:
    """What the summary needs of a learner directory (the study's ``LearnerDir`` has the same)."""

    path: str
    label: str
    learner: str
    seed_ids: tuple[int, ...]


def _magnitude_key(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def row_key(learner_dir: str, seed: int, family: str, magnitude: float | None, mode: str,
            episodes: int) -> tuple:
    return (learner_dir, int(seed), family, None if magnitude is None else float(magnitude), mode, int(episodes))


def key_of(row: dict[str, str]) -> tuple:
    return row_key(row["learner_dir"], int(row["seed"]), row["family"], _magnitude_key(row["magnitude"]),
                   row["mode"], int(row["episodes"]))


def read_rows(path: Path) -> list[dict[str, str]]:
    """The CSV's rows (none if it does not exist); RunError if it has other columns."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != COLUMNS:
            raise RunError(f"{path} is not a robustness CSV (columns {reader.fieldnames}); choose another --out")
        return list(reader)


# ------------------------------------------------------------------------------ names

def labels(paths: Sequence[str]) -> list[str]:
    """The directories' names, or their paths where two names coincide."""
    names = [Path(p).name for p in paths]
    return names if len(set(names)) == len(names) else [Path(p).as_posix() for p in paths]


def display_name(path: str, learner: str) -> str:
    """SQL, DDPG, TD3 or SAC for a zoo cell of its learner (``code``: sql, ``ddpg-code``,
    ``ddpg-modern``, ``sac-code``); else the directory's name."""
    cell = Path(path).name
    of = "sql" if cell == "code" else cell.split("-")[0]
    return DISPLAY[cell] if cell in DISPLAY and of == learner else cell


def display_names(dirs: Sequence[Any]) -> dict[str, str]:
    """Per label its display name; the labels themselves where two names coincide."""
    names = {ld.label: display_name(ld.path, ld.learner) for ld in dirs}
    return names if len(set(names.values())) == len(names) else {ld.label: ld.label for ld in dirs}


def group_of(learner: str) -> str | None:
    """``max-entropy``, ``deterministic`` or None (a learner of neither kind)."""
    return GROUP_NAMES[0] if learner in MAX_ENTROPY else GROUP_NAMES[1] if learner in DETERMINISTIC else None


# ------------------------------------------------------------------------------ summary

def _estimate(values: np.ndarray, reps: int, confidence: float) -> dict[str, float]:
    return stats.interval_estimates(values, ("iqm",), reps, confidence)["iqm"]


def _curve(ret: np.ndarray, r0: np.ndarray, x: list[float], seeds: list[int], reps: int,
           confidence: float) -> dict[str, Any]:
    """Return (S, J) and unperturbed return (S,) of the seeds -> their curves and area."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 1.0 + (ret - r0[:, None]) / np.abs(r0[:, None])
    curve: dict[str, Any] = {
        "magnitude": x, "seeds": seeds,
        "return": [_estimate(ret[:, j], reps, confidence) for j in range(len(x))],
        "return_per_seed": ret.tolist()}
    if np.all(np.isfinite(rel)):
        span = x[-1] - x[0]
        auc = np.trapezoid(rel, x, axis=1) / span if span > 0 else rel.mean(axis=1)
        curve["relative"] = [_estimate(rel[:, j], reps, confidence) for j in range(len(x))]
        curve["relative_per_seed"] = rel.tolist()
        curve["auc"] = _estimate(auc, reps, confidence)
        curve["auc_per_seed"] = auc.tolist()
    return curve


def _group_difference(out: dict[str, Any], dirs: Sequence[Any], family: str, mode: str, reps: int,
                      confidence: float) -> dict[str, Any] | None:
    """The max-entropy directories' mean area minus the deterministic ones', the seeds of
    each group pooled; None unless both groups have an area."""
    members: dict[str, list[str]] = {g: [] for g in GROUP_NAMES}
    areas: dict[str, list[float]] = {g: [] for g in GROUP_NAMES}
    for ld in dirs:
        group = group_of(ld.learner)
        auc = out[ld.label]["families"].get(family, {}).get(mode, {}).get("auc_per_seed")
        if group is None or auc is None:
            continue
        members[group].append(ld.label)
        areas[group] += auc
    if not all(areas.values()):
        return None
    d = stats.difference_ci(areas[GROUP_NAMES[0]], areas[GROUP_NAMES[1]], reps, confidence)
    d["verdict"] = stats.verdict(d, *GROUP_NAMES, where=True)
    return {**d, "members": members, "seeds": {g: len(a) for g, a in areas.items()}}


def summarize(rows: list[dict[str, str]], dirs: Sequence[Any], grid: dict[str, list[float]], episodes: int,
              reps: int, confidence: float) -> dict[str, Any]:
    """Per directory, family, mode: the curves of return and relative return over the
    magnitudes (IQM over seeds, bootstrap intervals) and the area under the relative
    one; per family and mode the first directory's area minus each other's, and the
    max-entropy group's minus the deterministic group's."""
    value = {key_of(r): float(r["mean_return"]) for r in rows if int(r["episodes"]) == episodes}
    names = display_names(dirs)
    out: dict[str, Any] = {}
    for ld in dirs:
        entry: dict[str, Any] = {"dir": ld.path, "learner": ld.learner, "name": names[ld.label],
                                 "group": group_of(ld.learner), "seeds": list(ld.seed_ids),
                                 "unperturbed": {}, "families": {}}
        for mode in MODES:
            base = {s: value.get(row_key(ld.path, s, UNPERTURBED, None, mode, episodes)) for s in ld.seed_ids}
            seeds = [s for s in ld.seed_ids if base[s] is not None]
            if not seeds:
                continue
            r0 = np.asarray([base[s] for s in seeds])
            entry["unperturbed"][mode] = {**_estimate(r0, reps, confidence), "per_seed": r0.tolist()}
            for family, mags in grid.items():
                neutral = pt.FAMILIES[family].neutral
                x = sorted(set(mags) | {neutral})
                got = [[base[s] if m == neutral else value.get(row_key(ld.path, s, family, m, mode, episodes))
                        for m in x] for s in seeds]
                keep = [i for i, row in enumerate(got) if all(v is not None for v in row)]
                if keep:
                    entry["families"].setdefault(family, {})[mode] = _curve(
                        np.asarray([got[i] for i in keep], np.float64), r0[keep], x, [seeds[i] for i in keep],
                        reps, confidence)
        out[ld.label] = entry
    differences: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    first = dirs[0].label
    for family in grid:
        for mode in MODES:
            a = out[first]["families"].get(family, {}).get(mode, {}).get("auc_per_seed")
            for ld in dirs[1:]:
                b = out[ld.label]["families"].get(family, {}).get(mode, {}).get("auc_per_seed")
                if a is None or b is None:
                    continue
                d = stats.difference_ci(a, b, reps, confidence)
                d["verdict"] = stats.verdict(d, names[first], names[ld.label], where=True)
                differences.setdefault(family, {}).setdefault(mode, {})[ld.label] = d
            g = _group_difference(out, dirs, family, mode, reps, confidence)
            if g is not None:
                groups.setdefault(family, {})[mode] = g
    return {"learners": out, "differences": {"first": first, "first_minus": differences, "groups": groups}}


def build_summary(rows: list[dict[str, str]], dirs: Sequence[Any], grid: dict[str, list[float]],
                  settings: dict[str, Any], episodes: int, obs_std: Sequence[float] | None, reps: int,
                  confidence: float) -> dict[str, Any]:
    """The study's summary: its settings (``settings``: those of ``settings.json``), how
    the statistics are made, and :func:`summarize` of ``rows``."""
    env_id = settings["env_id"]
    summary = {"env_id": env_id, "task": short_name(env_id),
               "settings": {**settings, "episodes": episodes, "modes": list(MODES),
                            "magnitudes": {f: sorted(set(ms) | {pt.FAMILIES[f].neutral}) for f, ms in grid.items()},
                            "learner_dirs": [d.path for d in dirs]},
               "obs_std": None if obs_std is None else [float(v) for v in obs_std],
               "statistics": {
                   "return": f"IQM over seeds of each seed's mean return over the episodes, {confidence:.0%} "
                             f"stratified-bootstrap percentile interval, {reps} replicates",
                   "relative": "per seed 1 + (R - R0) / |R0| (R / R0 when R0 > 0), R0 its unperturbed return in "
                               "the same mode; IQM over seeds and interval as for the return",
                   "auc": "per seed the trapezoid area under the relative return over the magnitudes (the neutral "
                          "one included) divided by their span: its mean relative return over the range",
                   "differences": "first directory's mean area minus another's, percentile interval of "
                                  "independent bootstrap resamples of the two groups of seeds",
                   "groups": "mean area of the seeds of the max-entropy learners (" + ", ".join(MAX_ENTROPY)
                             + ") pooled minus that of the deterministic ones (" + ", ".join(DETERMINISTIC)
                             + "), interval as for the differences",
                   "bootstrap_reps": reps, "confidence": confidence},
               "families": {f: {"description": pt.FAMILIES[f].description, "unit": pt.FAMILIES[f].unit,
                                "neutral": pt.FAMILIES[f].neutral} for f in grid}}
    summary.update(summarize(rows, dirs, grid, episodes, reps, confidence))
    return summary


# ------------------------------------------------------------------------------ outputs

def _interval(e: dict[str, float], fmt: str = ".3f") -> str:
    return f"{e['value']:{fmt}} [{e['ci_low']:{fmt}}, {e['ci_high']:{fmt}}]"


def report(summary: dict[str, Any]) -> str:
    """Lines of text: per family, directory and mode the relative return at each
    magnitude and the area; then the differences of the areas."""
    lines = []
    learners = summary["learners"]
    for family in summary["settings"]["magnitudes"]:
        lines.append(f"{family}:")
        for entry in learners.values():
            name = entry.get("name", entry["dir"])
            for mode in MODES:
                curve = entry["families"].get(family, {}).get(mode)
                if not curve:
                    continue
                if "relative" not in curve:
                    lines.append(f"  {name} {mode}: no relative return (an unperturbed return is 0)")
                    continue
                points = ", ".join(f"{m:g}: {e['value']:.2f}" for m, e in zip(curve["magnitude"], curve["relative"]))
                lines.append(f"  {name} {mode}: relative return {points}; area {_interval(curve['auc'])}")
        first = learners[summary["differences"]["first"]].get("name", summary["differences"]["first"])
        for mode, others in summary["differences"]["first_minus"].get(family, {}).items():
            for label, d in others.items():
                lines.append(f"  area {mode}: {first} - {learners[label].get('name', label)} = "
                             f"{_interval(d, '+.3f')} ({d['verdict']})")
        for mode, d in summary["differences"].get("groups", {}).get(family, {}).items():
            lines.append(f"  area {mode}: max-entropy - deterministic = {_interval(d, '+.3f')} ({d['verdict']})")
    return "\n".join(lines)


def write_outputs(summary: dict[str, Any], out: Path) -> list[Path]:
    """``summary.json``, the figure and ``report.md`` under ``out``; the paths written."""
    from experiments.studies.robustness_render import markdown, plot, title

    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_FILE).write_text(json.dumps(bench.json_safe(summary), indent=2) + "\n")
    (out / REPORT_FILE).write_text(markdown(summary))
    cli.after_run(plot, summary, out / PLOT_FILE, title(summary))
    return [out / SUMMARY_FILE, out / PLOT_FILE, out / REPORT_FILE]


# ------------------------------------------------------------------------------ rebuild from the CSV

def study_episodes(rows: list[dict[str, str]], episodes: int | None = None) -> int:
    """The episodes per seed of the study's rows: ``episodes`` if given (RunError if no
    row has it), else the one count they all have (RunError if they have several)."""
    counts = sorted({int(r["episodes"]) for r in rows})
    if episodes is not None:
        if episodes not in counts:
            raise RunError(f"no row has {episodes} episodes per seed (the rows have {counts})")
        return episodes
    if len(counts) != 1:
        raise RunError(f"the rows were evaluated over {counts} episodes per seed; choose one with --episodes")
    return counts[0]


def dirs_from_rows(rows: list[dict[str, str]], learners: Sequence[str] | None = None) -> list[DirInfo]:
    """The learner directories of ``rows`` in the order they first appear (the study's
    ``--learners`` order), or those of ``learners`` in that order; their seeds as they
    first appear."""
    seeds: dict[str, dict[int, None]] = {}
    kinds: dict[str, set[str]] = {}
    for r in rows:
        seeds.setdefault(r["learner_dir"], {})[int(r["seed"])] = None
        kinds.setdefault(r["learner_dir"], set()).add(r["learner"])
    paths = list(seeds) if not learners else [Path(p).as_posix() for p in learners]
    missing = [p for p in paths if p not in seeds]
    if missing:
        raise RunError(f"the CSV has no rows of {', '.join(missing)} (it has {', '.join(seeds)})")
    if len(set(paths)) < len(paths):
        raise RunError(f"--learners names a directory twice ({', '.join(paths)})")
    for p in paths:
        if len(kinds[p]) > 1:
            raise RunError(f"the rows of {p} are of several learners ({', '.join(sorted(kinds[p]))})")
    return [DirInfo(path=p, label=label, learner=next(iter(kinds[p])), seed_ids=tuple(seeds[p]))
            for p, label in zip(paths, labels(paths))]


def grid_from_rows(rows: list[dict[str, str]], paths: Sequence[str]) -> dict[str, list[float]]:
    """Per family of ``rows`` (in the order they first appear) its magnitudes, sorted."""
    grid: dict[str, set[float]] = {}
    for r in rows:
        if r["family"] != UNPERTURBED and r["learner_dir"] in paths:
            if r["family"] not in pt.FAMILIES:
                raise RunError(f"the CSV has rows of an unknown family {r['family']!r}")
            grid.setdefault(r["family"], set()).add(float(r["magnitude"]))
    return {f: sorted(ms - {pt.FAMILIES[f].neutral}) for f, ms in grid.items()}


def rebuild(out: Path, learners: Sequence[str] | None = None, episodes: int | None = None,
            reps: int = stats.DEFAULT_REPS, confidence: float = 0.95) -> dict[str, Any]:
    """Rebuild the summary, the figure and ``report.md`` of the study under ``out`` from
    its CSV, ``settings.json`` and ``obs_std.json`` alone; returns the summary."""
    out = Path(out)
    if not (out / SETTINGS_FILE).is_file():
        raise RunError(f"{out} holds no {SETTINGS_FILE}: not a robustness study's directory")
    settings = json.loads((out / SETTINGS_FILE).read_text())
    rows = read_rows(out / CSV_FILE)
    if not rows:
        raise RunError(f"{out / CSV_FILE} holds no rows")
    episodes = study_episodes(rows, episodes)
    rows_e = [r for r in rows if int(r["episodes"]) == episodes]
    dirs = dirs_from_rows(rows_e, learners)
    grid = grid_from_rows(rows_e, [d.path for d in dirs])
    obs_std = None
    if (out / OBS_STD_FILE).is_file():
        obs_std = json.loads((out / OBS_STD_FILE).read_text())["obs_std"]
    summary = build_summary(rows, dirs, grid, settings, episodes, obs_std, reps, confidence)
    write_outputs(summary, out)
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m experiments.studies.robustness_report",
                   description="Rebuild a robustness study's summary.json, figure and report.md from its "
                               "robustness.csv, settings.json and obs_std.json (no learner, no env).",
                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("out", help="the study's directory (its --out)")
    p.add_argument("--learners", nargs="+", metavar="DIR", help="directories to report, the first compared "
                   "with each other (default: all of the CSV's, in its order)")
    p.add_argument("--episodes", type=int, help="episodes per seed of the rows to report (default: the CSV's)")
    p.add_argument("--bootstrap-reps", type=int, default=stats.DEFAULT_REPS, help="bootstrap replicates per interval")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals")
    return p


def rebuild_command(out: str | Path, learners: Sequence[str] | None, episodes: int | None, reps: int,
                    confidence: float) -> dict[str, Any]:
    """:func:`rebuild` with checked options, printing the text report and what it wrote."""
    if reps < 1 or (episodes is not None and episodes < 1):
        raise RunError("--bootstrap-reps and --episodes must be integers >= 1")
    if not 0 < confidence < 1:
        raise RunError(f"--confidence must be in (0, 1), got {confidence}")
    summary = rebuild(Path(out), learners, episodes, reps, confidence)
    print(report(summary))
    print("wrote " + ", ".join(str(Path(out) / f) for f in (SUMMARY_FILE, PLOT_FILE, REPORT_FILE)))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> None:
        args = build_parser().parse_args(argv)
        rebuild_command(args.out, args.learners, args.episodes, args.bootstrap_reps, args.confidence)

    return cli.run_main(body, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
