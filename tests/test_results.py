"""Learner exports (sqljax.export_learner), results cells and the zoo (experiments.results):
an export restores the trained learner exactly and stays small; a cell's files hold the
run's evaluation returns; its zoo learners are the run's final learners and evaluate; the
committed results table is what the command generates."""

import csv
import json
import os
from pathlib import Path

import jax
import numpy as np
import pytest
from test_checkpoint import trained
from test_update import ACT, OBS, SMALL, random_batch

import sqljax
from experiments import evaluate, results
from sqljax.loops import multi_seed as ms
from sqljax.store import run_dir as rd

REPO = Path(__file__).resolve().parents[1]
TINY_CELL = ["--eval-every", "40", "--eval-episodes", "1", "--checkpoint-every", "40",
             "--hidden-sizes", "32", "--batch-size", "32", "--value-n-particles", "8",
             "--kernel-n-particles", "4", "--learning-starts", "50", "--max-episode-steps", "30",
             "--reward-scale", "10", "--bootstrap-reps", "200"]


def test_export_restores_the_learner_with_fresh_optimisers(tmp_path):
    s = trained()
    p = sqljax.export_learner(tmp_path / "learner", s, metadata={"env_id": "X-v0"})
    r = sqljax.load_checkpoint(p)
    assert sorted(os.listdir(p)) == ["learner.msgpack", "sqljax.json"]
    assert r.config == s.config and (r.obs_dim, r.action_dim) == (OBS, ACT)
    assert jax.tree.structure(r) == jax.tree.structure(s)
    for field in ("q_params", "target_q_params", "sampler_params", "noise_bank", "step", "key"):
        for a, b in zip(jax.tree.leaves(getattr(r, field)), jax.tree.leaves(getattr(s, field))):
            np.testing.assert_array_equal(a, b)
    # The Adam moments are dropped: they come back as a fresh optimiser's.
    fresh = sqljax.init(jax.random.key(9), SMALL, OBS, ACT)
    for a, b in zip(jax.tree.leaves(r.q_opt_state), jax.tree.leaves(fresh.q_opt_state)):
        np.testing.assert_array_equal(a, b)
    assert not all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(s.q_opt_state))
    obs = np.random.default_rng(0).normal(size=(5, OBS)).astype(np.float32)
    for det in (True, False):
        np.testing.assert_array_equal(sqljax.sample_actions(r, obs, jax.random.key(3), det),
                                      sqljax.sample_actions(s, obs, jax.random.key(3), det))
    # It fine-tunes and keeps training like any state.
    sqljax.update(sqljax.finetune_state(jax.random.key(1), r), random_batch(jax.random.key(7)))
    assert sqljax.read_checkpoint_metadata(p)["metadata"] == {"env_id": "X-v0"}


def test_export_is_under_a_megabyte_at_ant_size(tmp_path):
    cfg = sqljax.SQLConfig.preset("code")
    p = sqljax.export_learner(tmp_path / "ant", sqljax.init(jax.random.key(0), cfg, 105, 8))
    size = sum(f.stat().st_size for f in p.iterdir())
    assert size < 1_000_000


def test_bad_exports_raise_one_clear_error(tmp_path):
    s = trained(1)
    stacked = jax.tree.map(lambda x: np.stack([x, x]), s)
    with pytest.raises(ValueError, match="one learner"):
        sqljax.export_learner(tmp_path / "x", stacked)
    p = sqljax.export_learner(tmp_path / "ok", s)
    data = (p / "learner.msgpack").read_bytes()
    (p / "learner.msgpack").write_bytes(data[: len(data) // 2])
    with pytest.raises(sqljax.CheckpointError, match="could not restore the learner"):
        sqljax.load_checkpoint(p)
    (p / "learner.msgpack").unlink()
    with pytest.raises(sqljax.CheckpointError, match="learner.msgpack is missing"):
        sqljax.load_checkpoint(p)
    # Sizes that don't match the stored arrays (a hand-edited sqljax.json).
    q = sqljax.export_learner(tmp_path / "sizes", s)
    meta = json.loads((q / "sqljax.json").read_text())
    meta["obs_dim"] += 1
    (q / "sqljax.json").write_text(json.dumps(meta))
    with pytest.raises(sqljax.CheckpointError, match="expected"):
        sqljax.load_checkpoint(q)


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """A tiny cell trained with the runner, in its own working directory."""
    root = tmp_path_factory.mktemp("cell")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        cell_dir = results.run_cell("Pendulum-v1", "code", seeds=2, steps=80,
                                    run_dir=Path("runs/cell"), progress=False, bench_args=TINY_CELL)
    finally:
        os.chdir(cwd)
    return root, root / cell_dir


def test_cell_files_hold_the_runs_evaluations(cell):
    root, cell_dir = cell
    assert cell_dir == root / "results" / "Pendulum" / "code"
    assert sorted(os.listdir(cell_dir)) == ["cell.json", "curves.csv", "curves.png"]
    with open(cell_dir / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["step"]), int(r["seed"])) for r in rows] == [(40, 0), (40, 1), (80, 0), (80, 1)]
    for r in rows:
        logged = next(m for m in rd.read_metrics(root / "runs/cell", int(r["seed"]))
                      if int(m["step"]) == int(r["step"]))
        assert float(r["stochastic"]) == pytest.approx(float(logged["eval_return"]), abs=0.006)
        assert float(r["deterministic"]) == pytest.approx(float(logged["eval_return_det"]), abs=0.006)
    info = json.loads((cell_dir / "cell.json").read_text())
    assert info["seed_ids"] == [0, 1] and info["steps"] == 80 and info["env_steps_done"] == 80
    assert info["config"]["hidden_sizes"] == [32] and info["hardware"]["platform"] == "cpu"
    assert info["command"].startswith("python -m experiments.bench --env Pendulum-v1 --seeds 2")


def test_zoo_holds_each_seeds_final_learner_and_it_evaluates(cell, capsys):
    root, _ = cell
    final = ms.load_seed_states(root / "runs/cell")
    obs = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    for i in (0, 1):
        path = root / "zoo" / "Pendulum" / "code" / f"seed{i}"
        learner = sqljax.load_checkpoint(path)
        assert int(learner.step) == int(final.step[i]) > 0
        want = jax.tree.map(lambda x, i=i: np.asarray(x)[i], final)
        np.testing.assert_array_equal(sqljax.sample_actions(learner, obs, None, deterministic=True),
                                      sqljax.sample_actions(want, obs, None, deterministic=True))
        meta = sqljax.read_checkpoint_metadata(path)["metadata"]
        assert meta["env_id"] == "Pendulum-v1" and meta["seed"] == i and meta["env_steps"] == 80
    assert evaluate.main(["--ckpt", str(path), "--episodes", "1", "--no-video"]) == 0
    assert "deterministic: return" in capsys.readouterr().out
    # --init-from takes an export: every seed starts from it.
    stacked = ms.load_init_states(path, [0, 1], "Pendulum-v1", 3, 1)
    np.testing.assert_array_equal(np.asarray(stacked.sampler_params["params"]["trunk"]["input"]["kernel"][1]),
                                  np.asarray(learner.sampler_params["params"]["trunk"]["input"]["kernel"]))


def test_table_row_and_a_resumed_cell(cell):
    root, cell_dir = cell
    table = (root / "results" / "README.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| Pendulum "))
    assert "| code | 80 | 2 |" in row
    cwd = os.getcwd()
    os.chdir(root)
    try:  # a later `make results` with more steps continues the same run
        results.run_cell("Pendulum-v1", "code", seeds=2, steps=120, run_dir=Path("runs/cell"),
                         progress=False)
    finally:
        os.chdir(cwd)
    steps, seeds, _ = results.load_curves(cell_dir / "curves.csv")
    assert steps.tolist() == [40, 80, 120] and seeds == [0, 1]


def test_mismatched_cell_is_one_line(cell, capsys):
    root, _ = cell
    cwd = os.getcwd()
    os.chdir(root)
    try:
        status = results.main(["run", "--task", "Pendulum-v1", "--preset", "paper", "--seeds", "2",
                               "--steps", "120", "--run-dir", "runs/cell", "--no-progress"])
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "not Pendulum-v1/paper" in err[0]


def test_committed_results_table_is_current():
    committed = REPO / "results" / "README.md"
    assert committed.is_file(), "results/README.md is missing: run `make results-table`"
    assert committed.read_text() == results.render_table(REPO / "results"), \
        "results/README.md is stale: run `make results-table`"


def test_table_names_a_preset_that_is_an_algorithm_of_its_own(tmp_path):
    """A DDPG cell of the `modern` preset is TD3 in the learner column; `code` stays DDPG."""
    for preset in ("modern", "code"):
        src = REPO / "results" / "Walker2d" / f"ddpg-{preset}"
        dst = tmp_path / "Walker2d" / f"ddpg-{preset}"
        dst.mkdir(parents=True)
        for name in (results.CELL_FILE, results.CURVES_FILE):
            (dst / name).write_bytes((src / name).read_bytes())
    rows = {line.split(" | ")[2]: line.split(" | ")[1] for line in results.render_table(tmp_path).splitlines()
            if line.startswith("| Walker2d ")}
    assert rows == {"modern": "TD3", "code": "DDPG"}


def test_export_writes_each_kept_checkpoints_seed_learners(cell, tmp_path, capsys):
    root, _ = cell
    run = root / "runs/cell"
    kept = rd.checkpoint_dirs(run)
    assert results.main(["export", str(run), "--out", str(tmp_path / "along")]) == 0
    assert capsys.readouterr().out.count("exported ") == len(kept) >= 2
    obs = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    for _, ckpt in kept:
        steps = int(rd.run_counters(ckpt)["env_steps"])
        stacked = ms.load_seed_states(ckpt)
        for i in (0, 1):
            path = tmp_path / "along" / f"step_{steps:09d}" / f"seed{i}"
            learner = sqljax.load_checkpoint(path)
            want = jax.tree.map(lambda x, i=i: np.asarray(x)[i], stacked)
            assert int(learner.step) == int(want.step)
            np.testing.assert_array_equal(sqljax.sample_actions(learner, obs, None, deterministic=True),
                                          sqljax.sample_actions(want, obs, None, deterministic=True))
            assert sqljax.read_checkpoint_metadata(path)["metadata"]["env_steps"] == steps
    # one readable line when there is nothing to export
    empty = tmp_path / "empty"
    (empty / "checkpoints").mkdir(parents=True)
    for name in ("run.json", "config.json"):
        (empty / name).write_bytes((run / name).read_bytes())
    assert results.main(["export", str(empty), "--out", str(tmp_path / "none")]) == 2
    assert "no complete checkpoint" in capsys.readouterr().err


def test_baseline_rows_quote_their_own_published_figures_at_the_nearest_budget():
    assert results._baseline_reference("TD3", "Walker2d", 300_000) == "F 3335, T 1663, S ~1500 at 300k"
    assert results._baseline_reference("SAC", "Hopper", 150_000) == "T 2613, S ~1150 at 100k"
    assert results._baseline_reference("DDPG", "HalfCheetah", 700_000) == "T 11653, S ~10100 at 1M"
    assert results._baseline_reference("Soft Q-Learning", "Hopper", 300_000) == "—"
    assert results._baseline_reference("TD3", "Swimmer", 300_000) == "—"
