"""The alpha sweep's report (experiments.studies.alpha_sweep) on hand-made spread files:
points per alpha, step and seed, seed means that skip an undefined R, and one-line errors."""

import json

import numpy as np
import pytest

from experiments.studies import alpha_sweep


def write_spread(folder, mode, values):
    """values: {(step, seed): (R, speed)} -> the file experiments.studies.locomotion writes."""
    folder.mkdir(parents=True, exist_ok=True)
    learners = {f"pretrained step_{step:09d}/seed{seed}": {"R": r, "net_speed_mean": v, "moved": 20 if r is not None else 0,
                                                          "episodes": 20}
                for (step, seed), (r, v) in values.items()}
    (folder / alpha_sweep.SPREAD_FILES[mode]).write_text(json.dumps({"mode": mode, "learners": learners}))


def write_speed(folder, mode, values):
    """values: {(step, seed): speed along the path} -> the locomotion file beside the spread."""
    learners = {f"pretrained step_{step:09d}/seed{seed}": {"mean_planar_speed": v}
                for (step, seed), v in values.items()}
    (folder / alpha_sweep.SPEED_FILES[mode]).write_text(json.dumps({"mode": mode, "learners": learners}))


def test_report_reads_every_point_and_averages_seeds(tmp_path, capsys):
    write_spread(tmp_path / "a", "stochastic", {(100000, 0): (0.9, 0.2), (100000, 1): (0.5, 0.4),
                                                (200000, 0): (None, 0.0), (200000, 1): (0.3, 0.6)})
    write_spread(tmp_path / "a", "deterministic", {(100000, 0): (1.0, 0.5), (100000, 1): (1.0, 0.7)})
    write_spread(tmp_path / "b", "stochastic", {(100000, 0): (0.2, 0.1)})
    rows = alpha_sweep.read_points(tmp_path / "a")
    assert [(r["mode"], r["step"], r["seed"]) for r in rows] == [
        ("deterministic", 100000, 0), ("deterministic", 100000, 1),
        ("stochastic", 100000, 0), ("stochastic", 100000, 1), ("stochastic", 200000, 0), ("stochastic", 200000, 1)]
    stochastic = [r for r in rows if r["mode"] == "stochastic"]
    steps, r_mean = alpha_sweep.seed_mean(stochastic, "R")
    assert steps.tolist() == [100000, 200000]
    np.testing.assert_allclose(r_mean, [0.7, 0.3])  # the undefined R of seed 0 is left out
    np.testing.assert_allclose(alpha_sweep.seed_mean(stochastic, "net_speed_mean")[1], [0.3, 0.3])

    out = tmp_path / "out"
    assert alpha_sweep.main([f"0.1={tmp_path / 'a'}", f"10={tmp_path / 'b'}", "--out", str(out)]) == 0
    md = (out / "alpha_sweep.md").read_text()
    assert "| 0.1 | 200000 | 0 | stochastic | — | — | 0.00 | 0 / 20 |" in md  # no locomotion file
    assert "| 10 | 100000 | 0 | stochastic | 0.20 | — | 0.10 | 20 / 20 |" in md
    assert md.index("| 10 |") < md.index("| 0.1 |")  # the hottest first
    # The last step's seed means: alpha 0.1 at 200k has no deterministic point, so "walks" is
    # undecided there; R's mean skips seed 0's undefined R.
    last = {e["alpha"]: e for e in alpha_sweep.last_step_summary(alpha_sweep_points(tmp_path))}
    assert last[0.1]["step"] == 200000 and last[0.1]["seeds"] == 2
    assert last[0.1]["R_stochastic"] == pytest.approx(0.3) and last[0.1]["R_deterministic"] is None
    assert last[0.1]["walks"] is None
    assert "| 0.1 | 200000 | 2 | 0.30 | — | — / — | 0.30 / — | — |" in md
    # Walking is judged on the deterministic speed along the path, not the net speed: an Ant
    # that circles at 0.5 m/s walks without getting anywhere.
    write_spread(tmp_path / "b", "deterministic", {(100000, 0): (0.9, 0.05)})
    write_speed(tmp_path / "b", "deterministic", {(100000, 0): 0.5})  # exactly at the line
    write_speed(tmp_path / "b", "stochastic", {(100000, 0): 0.7})
    rows = alpha_sweep.read_points(tmp_path / "b")
    assert [(r["mode"], r["planar_speed"]) for r in rows] == [("deterministic", 0.5), ("stochastic", 0.7)]
    last = alpha_sweep.last_step_summary({10: rows})[0]
    assert last["walks"] is True and last["speed_deterministic"] == pytest.approx(0.05)
    assert last["planar_stochastic"] == pytest.approx(0.7)
    write_speed(tmp_path / "b", "deterministic", {(100000, 0): 0.49})
    assert not alpha_sweep.last_step_summary({10: alpha_sweep.read_points(tmp_path / "b")})[0]["walks"]
    assert alpha_sweep.main([f"10={tmp_path / 'b'}", "--out", str(out)]) == 0
    assert "| 10 | 100000 | 1 | 0.20 | 0.90 | 0.70 / 0.49 | 0.10 / 0.05 | no |" in (out / "alpha_sweep.md").read_text()
    assert (out / "alpha_sweep.png").stat().st_size > 10_000


def alpha_sweep_points(root):
    return {0.1: alpha_sweep.read_points(root / "a"), 10: alpha_sweep.read_points(root / "b")}


@pytest.mark.parametrize("make_args, message", [
    (lambda d: ["zero=" + str(d)], "ALPHA a number > 0"),
    (lambda d: ["0=" + str(d)], "ALPHA a number > 0"),
    (lambda d: [str(d)], "expected ALPHA=DIR"),
    (lambda d: ["1=" + str(d / "missing")], "direction_spread.json is missing"),
    (lambda d: ["1=" + str(d / "bad")], "not labelled step_<N>/seed<i>"),
    (lambda d: ["1=" + str(d / "good"), "1.0=" + str(d / "good")], "given twice"),
])
def test_bad_input_is_one_line(tmp_path, capsys, make_args, message):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "direction_spread.json").write_text(json.dumps({"learners": {"pretrained seed0": {}}}))
    write_spread(tmp_path / "good", "stochastic", {(100000, 0): (0.5, 0.3)})
    assert alpha_sweep.main([*make_args(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
