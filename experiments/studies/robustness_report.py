"""The report of a robustness study (:mod:`experiments.studies.robustness`): from the rows
of its per-seed CSV, per learner directory, family and evaluation mode, the return and
the return relative to the same learner unperturbed over the magnitudes (IQM over seeds
with bootstrap intervals), the area under the relative curve, the first directory's area
minus each other's; a figure (families as panels) and a text report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from experiments import plots, stats
from sqljax.envs import perturbations as pt

MODES = ("stochastic", "deterministic")
#: The family name of the unperturbed rows.
UNPERTURBED = "none"


def _magnitude_key(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def row_key(learner_dir: str, seed: int, family: str, magnitude: float | None, mode: str,
            episodes: int) -> tuple:
    return (learner_dir, int(seed), family, None if magnitude is None else float(magnitude), mode, int(episodes))


def key_of(row: dict[str, str]) -> tuple:
    return row_key(row["learner_dir"], int(row["seed"]), row["family"], _magnitude_key(row["magnitude"]),
                   row["mode"], int(row["episodes"]))


def _estimate(values: np.ndarray, reps: int, confidence: float) -> dict[str, float]:
    return stats.interval_estimates(values, ("iqm",), reps, confidence)["iqm"]


def summarize(rows: list[dict[str, str]], dirs: list, grid: dict[str, list[float]], episodes: int,
              reps: int, confidence: float) -> dict[str, Any]:
    """Per directory, family, mode: the curves of return and relative return over the
    magnitudes (IQM over seeds, bootstrap intervals) and the area under the relative
    one; per family and mode the first directory's area minus each other's."""
    value = {key_of(r): float(r["mean_return"]) for r in rows if int(r["episodes"]) == episodes}
    out: dict[str, Any] = {}
    for ld in dirs:
        entry: dict[str, Any] = {"dir": ld.path, "learner": ld.learner, "seeds": list(ld.seed_ids),
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
                if not keep:
                    continue
                ret = np.asarray([got[i] for i in keep], np.float64)  # (S, J)
                r0k = r0[keep][:, None]
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = 1.0 + (ret - r0k) / np.abs(r0k)
                curve: dict[str, Any] = {
                    "magnitude": x, "seeds": [seeds[i] for i in keep],
                    "return": [_estimate(ret[:, j], reps, confidence) for j in range(len(x))],
                    "return_per_seed": ret.tolist()}
                if np.all(np.isfinite(rel)):
                    span = x[-1] - x[0]
                    auc = np.trapezoid(rel, x, axis=1) / span if span > 0 else rel.mean(axis=1)
                    curve["relative"] = [_estimate(rel[:, j], reps, confidence) for j in range(len(x))]
                    curve["relative_per_seed"] = rel.tolist()
                    curve["auc"] = _estimate(auc, reps, confidence)
                    curve["auc_per_seed"] = auc.tolist()
                entry["families"].setdefault(family, {})[mode] = curve
        out[ld.label] = entry
    differences: dict[str, Any] = {}
    first = dirs[0].label
    for family in grid:
        for mode in MODES:
            a = out[first]["families"].get(family, {}).get(mode, {}).get("auc_per_seed")
            for ld in dirs[1:]:
                b = out[ld.label]["families"].get(family, {}).get(mode, {}).get("auc_per_seed")
                if a is None or b is None:
                    continue
                d = stats.difference_ci(a, b, reps, confidence)
                d["verdict"] = stats.verdict(d, first, ld.label, where=True)
                differences.setdefault(family, {}).setdefault(mode, {})[ld.label] = d
    return {"learners": out, "differences": {"first": first, "first_minus": differences}}


def plot(summary: dict[str, Any], path: Path, title: str) -> Path:
    """A panel per family: relative return (IQM over seeds and its band) against the
    magnitude, a line per directory (colour) and mode (solid: stochastic, dashed:
    deterministic)."""
    plt = plots.pyplot()
    families = list(summary["settings"]["magnitudes"])
    cols = min(3, len(families))
    rows_n = math.ceil(len(families) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.6 * cols, 3.6 * rows_n), squeeze=False)
    for k, family in enumerate(families):
        ax = axes[k // cols][k % cols]
        fam = pt.FAMILIES[family]
        for i, (label, entry) in enumerate(summary["learners"].items()):
            for mode, style in zip(MODES, ("-", "--")):
                curve = entry["families"].get(family, {}).get(mode)
                if not curve or "relative" not in curve:
                    continue
                x = np.asarray(curve["magnitude"], float)
                y = np.asarray([e["value"] for e in curve["relative"]])
                lo = np.asarray([e["ci_low"] for e in curve["relative"]])
                hi = np.asarray([e["ci_high"] for e in curve["relative"]])
                ax.plot(x, y, style, color=f"C{i}", marker="o", ms=3, lw=1.6,
                        label=plots.title_text(f"{label} {mode} (area {curve['auc']['value']:.2f})", 48))
                ax.fill_between(x, lo, hi, color=f"C{i}", alpha=0.15, lw=0)
        ax.axhline(1.0, color="k", lw=0.6, alpha=0.5)
        ax.axvline(fam.neutral, color="k", lw=0.6, ls=":", alpha=0.5)
        ax.set_xlabel(f"{family} ({fam.unit})")
        ax.set_ylabel("return relative to unperturbed")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    for k in range(len(families), rows_n * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(plots.title_text(title, 120), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _interval(e: dict[str, float], fmt: str = ".3f") -> str:
    return f"{e['value']:{fmt}} [{e['ci_low']:{fmt}}, {e['ci_high']:{fmt}}]"


def report(summary: dict[str, Any]) -> str:
    """Lines of text: per family, directory and mode the relative return at each
    magnitude and the area; then the differences of the areas."""
    lines = []
    for family in summary["settings"]["magnitudes"]:
        lines.append(f"{family}:")
        for label, entry in summary["learners"].items():
            for mode in MODES:
                curve = entry["families"].get(family, {}).get(mode)
                if not curve:
                    continue
                if "relative" not in curve:
                    lines.append(f"  {label} {mode}: no relative return (an unperturbed return is 0)")
                    continue
                points = ", ".join(f"{m:g}: {e['value']:.2f}" for m, e in zip(curve["magnitude"], curve["relative"]))
                lines.append(f"  {label} {mode}: relative return {points}; area {_interval(curve['auc'])}")
        first = summary["differences"]["first"]
        for mode, others in summary["differences"]["first_minus"].get(family, {}).items():
            for label, d in others.items():
                lines.append(f"  area {mode}: {first} - {label} = {_interval(d, '+.3f')} ({d['verdict']})")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main
