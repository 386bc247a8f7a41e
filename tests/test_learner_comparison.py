"""experiments.studies.learner_comparison on small synthetic cells."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from experiments.studies import learner_comparison as lc

REPS = 500
STEPS = list(range(10_000, 300_001, 10_000))


def write_cell(task_dir: Path, name: str, offset: float, learner: str | None = None, steps=STEPS,
               target: int = 300_000, seeds=(0, 1, 2), wall: float = 3600.0, done: int | None = None,
               preset: str = "code") -> Path:
    """A cell whose seed i returns offset + step / 100 + 10 i (stochastic 5 lower)."""
    d = task_dir / name
    d.mkdir(parents=True)
    lines = ["step,seed,stochastic,deterministic"]
    for step in steps:
        for i in seeds:
            det = offset + step / 100 + 10 * i
            lines.append(f"{step},{i},{det - 5:.2f},{det:.2f}")
    (d / "curves.csv").write_text("\n".join(lines) + "\n")
    meta = {"task": task_dir.name, "env_id": f"{task_dir.name}-v5", "preset": preset, "label": name,
            "seed_ids": list(seeds), "steps": target, "env_steps_done": done or steps[-1], "wall_time_s": wall,
            "throughput": {"env_steps_per_sec_per_seed": 100.0},
            "hardware": {"platform": "cpu", "device": "cpu", "cpu_cores": 2}}
    if learner:
        meta["learner"] = learner
    (d / "cell.json").write_text(json.dumps(meta))
    return d


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    t = tmp_path / "Hopper"
    write_cell(t, "code", 0.0)
    write_cell(t, "ddpg-code", -100.0, "ddpg", wall=1800.0)
    write_cell(t, "ddpg-modern", 0.0, "ddpg", steps=[10_000, 20_000], done=21_174, preset="modern")
    write_cell(t, "paper", 0.0, preset="paper")  # another SQL preset: not compared
    write_cell(t, "sac-fast", 0.0, "sac", steps=STEPS[:15], preset="fast")
    return t


def test_discovery_and_names(task_dir):
    cells = lc.discover(task_dir)
    assert [c.name for c in cells] == ["code", "ddpg-code", "ddpg-modern", "sac-fast"]
    assert [c.display for c in cells] == ["SQL", "DDPG", "TD3", "sac-fast"]
    assert [c.learner for c in cells] == ["sql", "ddpg", "ddpg", "sac"]
    assert lc.display_name("sac-code") == "SAC"
    assert lc.cell_learner("pretrain", {}) is None
    assert lc.cell_learner("code", {"learner": "sql"}) == "sql"
    td3 = cells[2]
    assert td3.partial and td3.reached == 20_000 and td3.done == 21_174
    assert "(to 20k of 300k)" in td3.legend("μ(s)")
    assert not cells[0].partial and "(to" not in cells[0].legend("sampler")


def test_no_sql_cell(tmp_path, capsys):
    t = tmp_path / "Ant"
    write_cell(t, "ddpg-code", 0.0, "ddpg")
    with pytest.raises(lc.NoSQLCell, match="no SQL cell"):
        lc.discover(t)
    assert lc.main(["--results", str(tmp_path), "--tasks", "Ant", "--reps", "10"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no SQL cell" in err and len(err.splitlines()) == 1


def test_window_means():
    steps = np.array([10, 20, 30, 40])
    returns = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, np.nan]])
    np.testing.assert_allclose(lc.window_means(steps, returns, 30, 3), [2.0, 6.0])
    np.testing.assert_allclose(lc.window_means(steps, returns, 30, 1), [3.0, 7.0])
    np.testing.assert_allclose(lc.window_means(steps, returns, 20, 3), [1.5, 5.5])  # fewer before it
    assert lc.window_means(steps, returns, 40, 3) is None  # a seed missing there
    assert lc.window_means(steps, returns, 25, 3) is None  # no evaluation at that step
    assert lc.window_means(steps, returns, 50, 3) is None  # not reached


def test_difference_of_a_uniformly_lower_baseline(task_dir):
    sql, ddpg = lc.discover(task_dir)[:2]
    rows = lc.compare(sql, ddpg, reps=REPS)
    assert [(r["step"], r["comparison"]) for r in rows] == [
        (s, k) for s in (100_000, 200_000, 300_000) for k in ("greedy", "sampler")]
    for r in rows:
        d = r["diff"]
        expected = 100.0 if r["comparison"] == "greedy" else 95.0
        assert d["value"] == pytest.approx(expected)
        assert d["ci_low"] <= expected <= d["ci_high"] and d["ci_low"] > 0
        assert r["verdict"] == "SQL higher"
    at300 = rows[-2]
    # the mean over 280k, 290k and 300k of seeds 0, 1, 2: 2900 + 10
    assert at300["sql"] == pytest.approx(2910.0) and at300["base"] == pytest.approx(2810.0)
    single = lc.compare(sql, ddpg, window=1, reps=REPS)
    assert single[-2]["sql"] == pytest.approx(3010.0)
    assert lc.narrower(rows, single)[1] == 6


def test_partial_cells_skip_unreached_checkpoints(task_dir):
    cells = {c.name: c for c in lc.discover(task_dir)}
    assert lc.compare(cells["code"], cells["ddpg-modern"], reps=REPS) == []
    rows = lc.compare(cells["code"], cells["sac-fast"], reps=REPS)  # stopped at 150k
    assert {r["step"] for r in rows} == {100_000}
    sentence = lc.summary_sentence(cells["ddpg-modern"], [])
    assert "stopped at 20k of 300k" in sentence and "nothing to compare" in sentence
    assert "stopped at 150k of 300k" in lc.summary_sentence(cells["sac-fast"], rows)


def test_wall_time_axis():
    # 3600 s for 300k steps: 150k steps are half an hour
    np.testing.assert_allclose(lc.hours([0, 150_000, 300_000], 3600.0, 300_000), [0.0, 0.5, 1.0])
    # a partial run scales by its own rate: 507.8 s for 21174 steps
    np.testing.assert_allclose(lc.hours([21_174], 507.8, 21_174), [507.8 / 3600])


def test_command_writes_both_files(task_dir, capsys):
    assert lc.main(["--results", str(task_dir.parent), "--tasks", "Hopper", "--reps", str(REPS)]) == 0
    png, md = task_dir / "comparison.png", task_dir / "comparison.md"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    text = md.read_text()
    assert str(md) in capsys.readouterr().out
    assert "| DDPG | 300k | SQL ξ = 0 − baseline greedy | 2910 | 2810 | +100 [" in text
    assert "**TD3** (μ(s), stopped at 20k of 300k steps): no checkpoint" in text
    assert "last 3 evaluations" in text and "Published reference" in text and "~300–500 at 100k" in text
    assert "| `ddpg-code` | DDPG | 300000 of 300000 | 0.50 h | 167 | 100 | 2-core CPU | — |" in text


def test_overview_of_every_task(task_dir, capsys):
    """results/comparison.md: a row per task and checkpoint, SQL − each baseline, — for a
    checkpoint a cell has not reached, and the verdicts at 300k counted per baseline."""
    other = task_dir.parent / "Walker2d"
    write_cell(other, "code", 0.0)
    write_cell(other, "ddpg-code", 500.0, "ddpg")  # DDPG 500 higher everywhere
    (task_dir.parent / "HalfCheetah").mkdir()  # no SQL cell: left out
    assert lc.main(["--results", str(task_dir.parent), "--tasks", "Hopper", "--reps", str(REPS)]) == 0
    assert "every task: wrote" in capsys.readouterr().out
    text = (task_dir.parent / "comparison.md").read_text()
    assert "| task | step | SQL ξ = 0 | SQL − DDPG | SQL − TD3 | SQL − sac-fast |" in text
    rows = [line for line in text.splitlines() if line.startswith("| [")]
    assert [r.split(" | ")[0:2] for r in rows] == [
        ["| [Hopper](Hopper/comparison.md)", k] for k in ("100k", "200k", "300k")] + [
        ["| [Walker2d](Walker2d/comparison.md)", k] for k in ("100k", "200k", "300k")]
    hopper300 = rows[2].split(" | ")
    assert hopper300[2] == "2910" and hopper300[3].startswith("**+100 [") and hopper300[3].endswith("SQL higher**")
    assert hopper300[4] == "—" and hopper300[5] == "— |"  # TD3 stopped at 20k, SAC at 150k
    assert rows[0].split(" | ")[5] == "+0 [-13, +13] level |"  # SAC equal to SQL at 100k
    assert "DDPG higher**" in rows[5]
    assert "- against DDPG: DDPG higher on 1 task, SQL higher on 1 task." in text
    assert "- against TD3: no task has reached it yet." in text
