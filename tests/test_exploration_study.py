"""The exploration study: the drivers' training-episode columns, the study's measures
(extremes so far, commitment to a direction, shares and Fisher's test), and a tiny run
of the command end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from experiments.studies import exploration as ex
from experiments.studies import exploration_report as exr
from sqljax.loops.gym_loop import EpisodeTracker


def test_the_tracker_keeps_extremes_over_steps_and_means_over_episode_ends():
    t = EpisodeTracker({"hi": ("x", "max"), "lo": ("x", "min"), "end": ("x", "end_mean"),
                        "other": ("y", "max")})
    for x, done in [(0.5, False), (2.0, False), (-1.0, True), (3.0, False), (1.0, True)]:
        t.add({"x": x}, done)
    assert t.take() == {"hi": 3.0, "lo": -1.0, "end": 0.0, "other": None}
    assert t.take() == {"hi": None, "lo": None, "end": None, "other": None}  # a new interval
    t.add({"x": -2.0}, False)
    assert t.take()["lo"] == -2.0 and t.take()["end"] is None
    with pytest.raises(ValueError, match="how must be one of"):
        EpisodeTracker({"c": ("x", "median")})


def test_running_extremes_skip_intervals_without_data():
    x = np.array([np.nan, 0.2, np.nan, 0.1, 0.5])
    np.testing.assert_allclose(ex.running(x, "max"), [np.nan, 0.2, 0.2, 0.2, 0.5])
    np.testing.assert_allclose(ex.running(-x, "min"), [np.nan, -0.2, -0.2, -0.2, -0.5])


def test_commitment_is_the_first_step_after_the_last_contrary_interval():
    steps = np.arange(1, 9) * 1000
    end = np.array([0.1, -0.4, 0.5, 0.3, np.nan, 0.6, 0.7, 0.4])
    assert ex.committed_at(steps, end, margin=0.25) == (3000, 1)
    assert ex.committed_at(steps, -end, margin=0.25) == (3000, -1)
    assert ex.committed_at(steps, np.array([0.5] * 7 + [0.1]), margin=0.25) == (None, 0)  # wavering at the end
    assert ex.committed_at(steps, np.full(8, np.nan), margin=0.25) == (None, 0)
    # a commitment too recent to count: 3 intervals, 4 needed
    assert ex.committed_at(steps, np.array([0.5] * 5 + [-0.5] * 3), margin=0.25) == (None, 0)
    assert ex.committed_at(steps, np.array([0.5] * 4 + [-0.5] * 4), margin=0.25) == (5000, -1)


def test_fisher_exact_matches_the_hypergeometric_tables():
    # 5 of 5 against 0 of 5: p = 2 / C(10, 5); 5 of 5 against 4 of 5 (the paper's swimmer): 1
    assert ex.fisher_exact(5, 5, 0, 5) == pytest.approx(2 / 252)
    assert ex.fisher_exact(5, 5, 4, 5) == pytest.approx(1.0)


def test_seed_summary_of_a_swimmer_and_of_an_ant():
    steps = np.array([1000, 2000, 3000])
    swim = {"step": steps, "train_com_x_max": np.array([0.3, 1.2, 0.9]),
            "train_com_x_min": np.array([-0.6, -0.1, 0.0]), "train_com_x_end": np.array([0.2, 1.0, 0.9])}
    s = ex.seed_summary("swimmer", swim, threshold=1.0, margin=0.25)
    assert s["forward_max"] == 1.2 and s["backward_max"] == 0.6
    assert (s["passed"], s["passed_at"], s["committed_at"], s["direction"]) == (True, 2000, None, None)
    assert ex.committed_at(steps, swim["train_com_x_end"], 0.25, min_intervals=2) == (2000, 1)
    ant = {"step": steps, "train_target_distance_min": np.array([7.0, 3.5, 3.0])}
    a = ex.seed_summary("maze", ant, threshold=3.25, margin=0.25)
    assert (a["least_distance"], a["passed"], a["passed_at"]) == (3.0, True, 3000)


def test_summary_counts_forward_commitments_and_tests_them(monkeypatch):
    steps = np.arange(1, 9) * 1000.0

    def swimmer(end):
        return {"step": steps, "train_com_x_max": np.full(8, 1.5), "train_com_x_min": np.full(8, -1.5),
                "train_com_x_end": np.asarray(end, float)}

    fake = {"sql": {i: swimmer([-0.5] * 8) for i in range(5)},
            "ddpg": {**{i: swimmer([0.5] * 8) for i in range(4)}, 4: swimmer([0.5, -0.5] * 4)}}
    monkeypatch.setattr(ex, "read_training_rows", lambda run_dir, columns: fake[str(run_dir)])
    summary = ex.summarize("SwimmerFinishLine", {"sql": Path("sql"), "ddpg": Path("ddpg")})
    sql, ddpg = summary["learners"]["sql"], summary["learners"]["ddpg"]
    assert (sql["forward"], ddpg["forward"]) == (0, 4)
    assert ddpg["forward_fisher_p_vs_sql"] == pytest.approx(ex.fisher_exact(0, 5, 4, 5))
    assert ddpg["forward_fisher_p_vs_sql"] == pytest.approx(10 / 210)  # 0 of 5 against 4 of 5
    assert "committed forward against SQL's, p = 0.048" in exr.markdown(summary)


def test_an_unknown_task_is_one_line():
    assert ex.main(["report", "--task", "Nowhere"]) == 2


def test_a_tiny_study_records_the_swimmers_extremes_and_writes_its_report(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results" / "SwimmerFinishLine"
    assert ex.main(["run", "--learners", "ddpg", "--runs", str(runs), "--seeds", "2", "--steps", "600",
                    "--learning-starts", "200", "--eval-every", "600", "--log-every", "200",
                    "--no-progress"]) == 0
    with open(runs / "SwimmerFinishLine" / "ddpg" / "seed1" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [200, 400, 600]
    hi = np.array([float(r["train_com_x_max"]) for r in rows])
    lo = np.array([float(r["train_com_x_min"]) for r in rows])
    assert np.all(hi >= lo) and np.all(np.abs(hi) < 2.0) and len(set(hi)) == 3
    assert rows[0]["train_com_x_end"] == "" and rows[2]["train_com_x_end"] != ""  # T = 500
    end = float(rows[2]["train_com_x_end"])
    assert min(lo[1:]) <= end <= max(hi[1:])
    assert ex.main(["report", "--learners", "ddpg", "--runs", str(runs), "--out", str(out),
                    "--trajectory-episodes", "2", "--zoo", str(tmp_path / "zoo")]) == 0
    report = json.loads((out / "report.json").read_text())
    seed1 = report["learners"]["ddpg"]["seeds"]["1"]
    assert seed1["forward_max"] == pytest.approx(max(hi), abs=1e-9)
    assert seed1["backward_max"] == pytest.approx(-min(lo), abs=1e-9)
    assert report["final_episodes"]["ddpg"]["1"]["n"] == 2
    for name in ("report.md", "extremes.png", "trajectories.png", "seeds.csv"):
        assert (out / name).stat().st_size > 0
    assert (tmp_path / "results" / "SwimmerFinishLine" / "ddpg-code" / "curves.csv").exists()
    assert (tmp_path / "zoo" / "SwimmerFinishLine" / "ddpg-code" / "seed1").is_dir()
