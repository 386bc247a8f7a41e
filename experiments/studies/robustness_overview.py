"""The robustness study's tasks side by side: one table per comparison (SQL against each
baseline, the max-entropy learners against the deterministic ones), tasks by
perturbation families, from each task's ``summary.json`` alone.

    python -m experiments.studies.robustness_overview results/robustness/Hopper \\
        results/robustness/Walker2d results/robustness/HalfCheetah --out results/robustness/README.md

Each entry is the difference of the mean areas under the relative-return curves with its
interval and verdict, as in the task's ``report.md``; a tally per comparison and mode
counts the entries that favour each side.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments import cli
from experiments.studies.robustness_report import GROUP_NAMES, MODES

SUMMARY_FILE = "summary.json"
GROUPS = "groups"


class OverviewError(ValueError):
    """A directory without a readable robustness summary."""


def read_summary(task_dir: Path) -> dict[str, Any]:
    path = Path(task_dir) / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text())
        summary["differences"]["first_minus"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise OverviewError(f"{path} is not a robustness summary ({type(e).__name__}: {e}); "
                            f"build it with python -m experiments.studies.robustness --report-only "
                            f"--out {task_dir}") from None
    return summary


def _name(summary: dict[str, Any], label: str) -> str:
    return summary["learners"].get(label, {}).get("name", label)


def _side(verdict: str) -> str:
    """The side a report verdict favours ('SQL', 'DDPG', 'deterministic', ...), or ''
    (undecided)."""
    head = verdict.split(" (")[0]
    return "" if head.startswith("no clear") else head.removesuffix(" higher")


def comparisons(summaries: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(key, title) of every comparison some task holds: each baseline by its name, then
    the groups."""
    out: dict[str, str] = {}
    for s in summaries.values():
        first = _name(s, s["differences"]["first"])
        for fam in s["differences"]["first_minus"].values():
            for mode in fam.values():
                for label in mode:
                    out.setdefault(_name(s, label), f"{first} − {_name(s, label)}")
    if any(s["differences"].get(GROUPS) for s in summaries.values()):
        out[GROUPS] = f"{GROUP_NAMES[0]} − {GROUP_NAMES[1]} learners"
    return list(out.items())


def entry(summary: dict[str, Any], key: str, family: str, mode: str) -> dict[str, Any] | None:
    """The difference of one comparison in one task, family and mode (None if absent)."""
    d = summary["differences"]
    if key == GROUPS:
        return d.get(GROUPS, {}).get(family, {}).get(mode)
    for label, e in d["first_minus"].get(family, {}).get(mode, {}).items():
        if _name(summary, label) == key:
            return e
    return None


def render(summaries: dict[str, dict[str, Any]]) -> str:
    """The overview's markdown: per comparison and mode a table of tasks by families, then
    the tally of its verdicts."""
    families = list(dict.fromkeys(f for s in summaries.values() for f in s["families"]))
    out = ["# Robustness, every task", "",
           "Per task: the learners' zoo cells (3 seeds × 300k each) evaluated under five families of "
           "perturbations, 30 episodes per seed and magnitude; the entries are differences of the mean "
           "areas under the relative-return curves (a learner's mean share of its unperturbed return over "
           "the family's range), with their intervals; bold: the interval excludes 0, and the side it "
           "favours. The deterministic modes are the like-for-like comparison. Each task's `report.md` "
           "has the curves, the absolute returns and the settings. Rebuilt from the tasks' "
           "`summary.json` by `python -m experiments.studies.robustness_overview`.", ""]
    for key, title in comparisons(summaries):
        first, other = (GROUP_NAMES if key == GROUPS else (title.split(" − ")[0], key))
        for mode in MODES:
            out += [f"## {title}, {mode}", "",
                    "| task | " + " | ".join(f.replace("_", " ") for f in families) + " |",
                    "|---|" + "---|" * len(families)]
            tally = {first: 0, other: 0, "": 0}
            for task, s in summaries.items():
                cells = []
                for fam in families:
                    e = entry(s, key, fam, mode)
                    if e is None:
                        cells.append("—")
                        continue
                    side = _side(e["verdict"])
                    tally[side] = tally.get(side, 0) + 1
                    text = f"{e['value']:+.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}]"
                    cells.append(f"**{text}** {side}" if side else text)
                out.append(f"| [{task}]({task}/report.md) | " + " | ".join(cells) + " |")
            n = sum(tally.values())
            out += ["", f"{n} comparisons: {tally.get(first, 0)} favour {first}, "
                        f"{tally.get(other, 0)} favour {other}, {tally['']} undecided.", ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.studies.robustness_overview",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("tasks", nargs="+", metavar="DIR", help="robustness study directories (one per task)")
    p.add_argument("--out", required=True, help="the markdown file to write")
    args = p.parse_args(argv)
    try:
        summaries = {Path(d).name: read_summary(Path(d)) for d in args.tasks}
        Path(args.out).write_text(render(summaries))
    except (OverviewError, OSError) as e:
        return cli.report_error(cli.BadInput(str(e)), "interrupted")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
