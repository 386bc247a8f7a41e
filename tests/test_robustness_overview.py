"""experiments.studies.robustness_overview on hand-made task summaries."""

from __future__ import annotations

import json
from pathlib import Path

from experiments.studies import robustness_overview as ov

FAMILIES = ("mass", "push")


def diff(value: float, low: float, high: float, first: str, other: str) -> dict:
    side = first if low > 0 else other if high < 0 else None
    verdict = (f"{side} higher (CI of the difference {'above' if side == first else 'below'} 0)" if side
               else "no clear difference (CI of the difference contains 0)")
    return {"value": value, "ci_low": low, "ci_high": high, "verdict": verdict}


def write_summary(root: Path, task: str, baselines: dict[str, str], values: dict) -> Path:
    """A task directory whose summary holds SQL minus each baseline (label -> name) per
    family and mode, ``values[(label, family, mode)] = (value, low, high)``, and groups."""
    learners = {"code": {"name": "SQL", "learner": "sql"},
                **{label: {"name": name, "learner": "ddpg"} for label, name in baselines.items()}}
    first_minus = {f: {m: {label: diff(*values.get((label, f, m), (0.0, -0.1, 0.1)), "SQL", name)
                           for label, name in baselines.items()}
                       for m in ("stochastic", "deterministic")} for f in FAMILIES}
    groups = {f: {m: diff(*values.get(("groups", f, m), (0.0, -0.1, 0.1)), "max-entropy", "deterministic")
                  for m in ("stochastic", "deterministic")} for f in FAMILIES}
    d = root / task
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({
        "families": {f: {} for f in FAMILIES}, "learners": learners,
        "differences": {"first": "code", "first_minus": first_minus, "groups": groups}}))
    return d


def test_tables_and_tallies(tmp_path, capsys):
    hopper = write_summary(tmp_path, "Hopper", {"ddpg-code": "DDPG", "sac-code": "SAC"}, {
        ("ddpg-code", "mass", "deterministic"): (0.3, 0.1, 0.5),
        ("sac-code", "push", "deterministic"): (-0.2, -0.3, -0.1),
        ("groups", "push", "deterministic"): (-0.25, -0.4, -0.1)})
    walker = write_summary(tmp_path, "Walker2d", {"ddpg-code": "DDPG"}, {
        ("ddpg-code", "push", "deterministic"): (-0.4, -0.6, -0.2)})
    out = tmp_path / "README.md"
    assert ov.main([str(hopper), str(walker), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    text = out.read_text()
    sections = text.split("\n## ")[1:]
    assert [s.splitlines()[0] for s in sections] == [
        f"{t}, {m}" for t in ("SQL − DDPG", "SQL − SAC", "max-entropy − deterministic learners")
        for m in ("stochastic", "deterministic")]
    ddpg = sections[1]
    assert "| [Hopper](Hopper/report.md) | **+0.30 [0.10, 0.50]** SQL | +0.00 [-0.10, 0.10] |" in ddpg
    assert "| [Walker2d](Walker2d/report.md) | +0.00 [-0.10, 0.10] | **-0.40 [-0.60, -0.20]** DDPG |" in ddpg
    assert "4 comparisons: 1 favour SQL, 1 favour DDPG, 2 undecided." in ddpg
    sac = sections[3]
    assert "| [Walker2d](Walker2d/report.md) | — | — |" in sac  # no SAC on this task
    assert "2 comparisons: 0 favour SQL, 1 favour SAC, 1 undecided." in sac
    assert "4 comparisons: 0 favour max-entropy, 1 favour deterministic, 3 undecided." in sections[5]


def test_a_directory_without_a_summary_is_one_line(tmp_path, capsys):
    (tmp_path / "Hopper").mkdir()
    assert ov.main([str(tmp_path / "Hopper"), "--out", str(tmp_path / "x.md")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a robustness summary" in err[0] and "--report-only" in err[0]
