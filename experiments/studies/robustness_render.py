"""The figure and ``report.md`` of a robustness study, from its summary
(:mod:`experiments.studies.robustness_report`). The figure: a column per family, the
relative return (top) and the return (bottom) against the magnitude. The report: per
family and evaluation mode a table of each learner's return and relative return at every
magnitude and the area under its relative curve, then the first learner's area minus each
other's and the max-entropy learners' minus the deterministic ones', with bootstrap
intervals and verdicts. Made from ``summary.json`` alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments import plots
from experiments.studies.robustness_report import DETERMINISTIC, MAX_ENTROPY, MODES
from sqljax.envs import perturbations as pt

#: How each learner acts in each mode (by display name, else by learner).
STOCHASTIC_WORDS = {"SQL": "its sampler's action for a random ξ", "DDPG": "μ(s) plus Ornstein-Uhlenbeck noise",
                    "TD3": "μ(s) plus Gaussian noise", "SAC": "a sample of its tanh-Gaussian policy",
                    "sql": "its sampler's action for a random ξ", "ddpg": "μ(s) plus its exploration noise",
                    "sac": "a sample of its tanh-Gaussian policy"}
DETERMINISTIC_WORDS = {"sql": "the sampler at ξ = 0", "ddpg": "μ(s)", "sac": "tanh(mean)"}
#: The order of the modes in the report: the like-for-like comparison first.
ORDER = ("deterministic", "stochastic")


# ------------------------------------------------------------------------------ figure

def title(summary: dict[str, Any]) -> str:
    conf = summary["statistics"].get("confidence", 0.95)
    return (f"{summary['task']}: return under perturbations, relative to unperturbed (top) and absolute (bottom); "
            f"IQM over seeds, {summary['settings']['episodes']} episodes per seed; bands {conf:.0%} bootstrap CI")


def plot(summary: dict[str, Any], path: Path, title: str) -> Path:
    """A column per family, magnitude on x; top row the relative return, bottom row the
    return (IQM over seeds and its band); a line per directory (colour) and mode (solid:
    stochastic, dashed: deterministic)."""
    plt = plots.pyplot()
    families = list(summary["settings"]["magnitudes"])
    cols = len(families)
    fig, axes = plt.subplots(2, cols, figsize=(4.0 * cols + 0.6, 7.4), squeeze=False, sharex="col")
    for k, family in enumerate(families):
        fam = pt.FAMILIES[family]
        top, bottom = axes[0][k], axes[1][k]
        for i, entry in enumerate(summary["learners"].values()):
            for mode, style in zip(MODES, ("-", "--")):
                curve = entry["families"].get(family, {}).get(mode)
                if not curve:
                    continue
                x = np.asarray(curve["magnitude"], float)
                for ax, key in ((top, "relative"), (bottom, "return")):
                    if key not in curve:
                        continue
                    label = (f"{entry.get('name', entry['dir'])} {mode[:5]}." if key == "return" else
                             f"{entry.get('name', entry['dir'])} {mode[:5]}. (area {curve['auc']['value']:.2f})")
                    ax.plot(x, [e["value"] for e in curve[key]], style, color=f"C{i}", marker="o", ms=3, lw=1.6,
                            label=label)
                    ax.fill_between(x, [e["ci_low"] for e in curve[key]], [e["ci_high"] for e in curve[key]],
                                    color=f"C{i}", alpha=0.15, lw=0)
        top.axhline(1.0, color="k", lw=0.6, alpha=0.5)
        for ax in (top, bottom):
            ax.axvline(fam.neutral, color="k", lw=0.6, ls=":", alpha=0.5)
            ax.grid(alpha=0.3)
        top.set_title(plots.title_text(f"{family}: {fam.description.split(' (')[0]}", 44), fontsize=9)
        top.legend(fontsize=6, loc="best")
        bottom.set_xlabel(f"{family} ({fam.unit})")
    axes[0][0].set_ylabel("return relative to unperturbed")
    axes[1][0].set_ylabel("return (IQM over seeds)")
    fig.suptitle(plots.title_text(title, 160), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------ report.md

def _number(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 1 else f"{v:.3g}"


def _interval(e: dict[str, float], fmt: str = ".2f") -> str:
    return f"{e['value']:{fmt}} [{e['ci_low']:{fmt}}, {e['ci_high']:{fmt}}]"


def _names(summary: dict[str, Any], labels: list[str]) -> str:
    return ", ".join(summary["learners"][label].get("name", label) for label in labels)


def _stochastic_words(entry: dict[str, Any]) -> str:
    words = STOCHASTIC_WORDS.get(entry.get("name", ""))
    return words or STOCHASTIC_WORDS.get(entry["learner"], "its stochastic policy")


def _header(summary: dict[str, Any]) -> list[str]:
    st, learners = summary["settings"], summary["learners"]
    conf = summary["statistics"].get("confidence", 0.95)
    reps = summary["statistics"].get("bootstrap_reps")
    who = "; ".join(f"**{e.get('name', label)}**: `{e['dir']}` ({e['learner']}, seeds "
                    f"{', '.join(str(s) for s in e['seeds'])})" for label, e in learners.items())
    kinds = {e["learner"] for e in learners.values()}
    stochastic = "; ".join(f"{e.get('name', label)}: {_stochastic_words(e)}" for label, e in learners.items())
    deterministic = "; ".join(f"{e.get('name', label)}: {DETERMINISTIC_WORDS.get(e['learner'], 'its greedy action')}"
                              for label, e in learners.items())
    lines = [
        f"# Robustness on {summary['env_id']}",
        "",
        f"Learners: {who}. {st['episodes']} episodes per seed, magnitude and mode (the same episode starts, "
        f"pushes and noise draws for every learner, study seed {st['seed']}); time limit "
        f"{st['max_episode_steps']} steps. Values are IQMs over seeds of each seed's mean return; intervals are "
        f"{conf:.0%} stratified-bootstrap percentile intervals"
        + (f" ({reps} replicates)." if reps else "."),
        "",
        "**Relative return**: per seed 1 + (R − R0) / |R0| (R / R0 when R0 > 0), R0 the same seed's unperturbed "
        "return in the same mode; 1 = unchanged. **Area**: the trapezoid area under a seed's relative curve over "
        "the magnitudes (the neutral one included) divided by their span, i.e. its mean relative return over the "
        "range. In the tables R is the return and rel the relative return at each magnitude, both IQMs over "
        "seeds, and the area its IQM over seeds [CI]; the differences below a table are differences of the mean "
        "areas.",
        "",
        "**How to read it.** Conclusions about a learner *keeping its return* under a perturbation rest on the "
        "relative curves and their areas; conclusions about *which learner scores more* rest on the absolute "
        "returns. The two can disagree: a learner that starts higher may lose a larger share and still score more.",
        "",
        f"**Modes.** Deterministic: {deterministic}. Stochastic: {stochastic}. The stochastic modes differ in kind "
        "(SQL's sampler against DDPG's OU noise, for instance), so the **deterministic rows are the like-for-like "
        "comparison**; the stochastic rows compare each learner acting as it explores.",
    ]
    if kinds & set(MAX_ENTROPY) and kinds & set(DETERMINISTIC):
        def members(group):
            return ", ".join(e.get("name", label) for label, e in learners.items() if e["learner"] in group)

        lines += ["", f"**Groups.** Max-entropy learners ({members(MAX_ENTROPY)}) against deterministic ones "
                      f"({members(DETERMINISTIC)}): the difference of the mean areas with the seeds of each group "
                      "pooled, its interval from independent bootstrap resamples of the two pools."]
    return lines


def _table(summary: dict[str, Any], family: str, mode: str) -> list[str]:
    mags = summary["settings"]["magnitudes"][family]
    cols = [f"R @{m:g}" for m in mags] + [f"rel @{m:g}" for m in mags]
    lines = ["| learner | " + " | ".join(cols) + " | area [CI] |",
             "|---|" + "---:|" * (len(cols) + 1)]
    for label, entry in summary["learners"].items():
        curve = entry["families"].get(family, {}).get(mode)
        if not curve:
            continue
        at = dict(zip(curve["magnitude"], range(len(curve["magnitude"]))))
        ret = [_number(curve["return"][at[m]]["value"]) if m in at else "–" for m in mags]
        if "relative" in curve:
            rel = [f"{curve['relative'][at[m]]['value']:.2f}" if m in at else "–" for m in mags]
            area = _interval(curve["auc"])
        else:
            rel, area = ["–"] * len(mags), "– (an unperturbed return is 0)"
        name = entry.get("name", label)
        lines.append(f"| {name} ({len(curve['seeds'])} seeds) | " + " | ".join(ret + rel) + f" | {area} |")
    return lines


def _same_as_pair(summary: dict[str, Any], g: dict[str, Any]) -> bool:
    """Whether a group comparison is the first directory against one other (one learner a group)."""
    first = summary["differences"]["first"]
    me, det = g["members"]["max-entropy"], g["members"]["deterministic"]
    return len(me) == len(det) == 1 and first in me + det


def _differences(summary: dict[str, Any], family: str, mode: str) -> list[str]:
    learners, diffs = summary["learners"], summary["differences"]
    first = learners[diffs["first"]].get("name", diffs["first"])
    lines = []
    for label, d in diffs["first_minus"].get(family, {}).get(mode, {}).items():
        lines.append(f"- {first} − {learners[label].get('name', label)}: area difference "
                     f"{_interval(d, '+.3f')}; {d['verdict']}")
    g = diffs.get("groups", {}).get(family, {}).get(mode)
    if g and _same_as_pair(summary, g):
        lines.append("- max-entropy − deterministic: one learner in each group, the same comparison as the line above")
    elif g:
        me, det = (g["members"][k] for k in ("max-entropy", "deterministic"))
        lines.append(f"- max-entropy ({_names(summary, me)}; {g['seeds']['max-entropy']} seeds) − deterministic "
                     f"({_names(summary, det)}; {g['seeds']['deterministic']} seeds): area difference "
                     f"{_interval(g, '+.3f')}; {g['verdict']}")
    return lines


def _overview(summary: dict[str, Any]) -> list[str]:
    learners, diffs = summary["learners"], summary["differences"]
    first = learners[diffs["first"]].get("name", diffs["first"])
    lines = ["## Differences of the areas at a glance", "",
             "| family | mode | comparison | area difference [CI] | verdict |", "|---|---|---|---:|---|"]
    for family in summary["settings"]["magnitudes"]:
        for mode in ORDER:
            for label, d in diffs["first_minus"].get(family, {}).get(mode, {}).items():
                lines.append(f"| {family} | {mode} | {first} − {learners[label].get('name', label)} | "
                             f"{_interval(d, '+.3f')} | {d['verdict'].split(' (')[0]} |")
            g = diffs.get("groups", {}).get(family, {}).get(mode)
            if g and not _same_as_pair(summary, g):
                lines.append(f"| {family} | {mode} | max-entropy − deterministic | {_interval(g, '+.3f')} | "
                             f"{g['verdict'].split(' (')[0]} |")
    return lines


def markdown(summary: dict[str, Any]) -> str:
    """The text of ``report.md``."""
    lines = _header(summary) + [""] + _overview(summary)
    for family, mags in summary["settings"]["magnitudes"].items():
        fam = summary["families"][family]
        lines += ["", f"## {family}: {fam['description'].split(' (')[0]} ({fam['unit']}; neutral {fam['neutral']:g})"]
        for mode in ORDER:
            table = _table(summary, family, mode)
            if len(table) == 2:
                continue
            lines += ["", f"### {mode}", ""]
            lines += table
            diff = _differences(summary, family, mode)
            if diff:
                lines += [""] + diff
    return "\n".join(lines) + "\n"
