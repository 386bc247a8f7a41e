"""Multi-seed training (sqljax/loops/multi_seed.py, experiments/bench.py): seed i of a
vmapped run is the run of seed i alone (and what experiments.train --seed i computes),
seeds differ, the seed axis shards over four devices without changing the numbers, and
runs resume from their checkpoints."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

import sqljax
from experiments import bench
from sqljax import learners, seeding
from sqljax.loops import RunError, gym_loop
from sqljax.loops import multi_seed as ms
from sqljax.store import run_dir as rd

REPO = Path(__file__).resolve().parents[1]
TINY = dict(hidden_sizes=(32,), batch_size=32, value_n_particles=8, kernel_n_particles=4)
QUIET = dict(log=lambda _: None)


def max_diff(a, b) -> float:
    diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x, np.float64)
                                                          - np.asarray(y, np.float64)))), a, b)
    return max(jax.tree.leaves(diffs))


def learned(state: sqljax.SQLState):
    return (state.q_params, state.target_q_params, state.sampler_params)


def test_seed_keys_fold_the_index_into_the_base_key():
    keys = seeding.seed_keys(7, [0, 1, 5])
    for row, i in zip(keys, [0, 1, 5]):
        want = jax.random.key_data(jax.random.fold_in(jax.random.key(7), i))
        np.testing.assert_array_equal(row, want)
    assert len({tuple(k) for k in keys}) == 3
    np.testing.assert_array_equal(seeding.seed_keys(7, [5])[0], keys[2])  # independent of N


def test_seed_count_must_split_over_the_devices():
    ms.check_seed_count(8, 4)
    ms.check_seed_count(3, 1)
    with pytest.raises(RunError, match=r"6 seeds cannot be split evenly over 4 devices.*4, 8"):
        ms.check_seed_count(6, 4)


# --------------------------------------------------------------------- gymnasium driver

GYM_CFG = sqljax.SQLConfig(**TINY, learning_starts=50, max_episode_steps=30, reward_scale=10.0)


def gym_spec(out: Path, seed_ids, steps: int = 80) -> rd.RunSpec:
    return rd.RunSpec(env_id="Pendulum-v1", config=GYM_CFG, seed_ids=tuple(seed_ids),
                            steps=steps, out=out, eval_every=40, eval_episodes=1,
                            checkpoint_every=40, log_every=20, progress=False)


@pytest.fixture(scope="module")
def gym_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gym")
    both = ms.train(gym_spec(root / "both", (0, 1)), **QUIET)
    solo = ms.train(gym_spec(root / "solo", (1,)), **QUIET)
    return root, both, solo


def test_gym_seed_equals_its_solo_run(gym_runs):
    _, both, solo = gym_runs
    assert both["updates"] == [31, 31] and solo["updates"] == [31]
    # 31 updates on replay filled by each seed's own env: same numbers up to rounding.
    assert max_diff(learned(seeding.unstack(both["agents"], 1)), learned(seeding.unstack(solo["agents"], 0))) < 1e-5
    for e_both, e_solo in zip(both["evals"], solo["evals"]):
        assert e_both["step"] == e_solo["step"]
        for mode in ("stochastic", "deterministic"):
            assert e_both[mode][1] == pytest.approx(e_solo[mode][0], rel=1e-4, abs=1e-2)


def test_gym_seeds_differ(gym_runs):
    root, both, _ = gym_runs
    a, b = seeding.unstack(both["agents"], 0), seeding.unstack(both["agents"], 1)
    assert max_diff(a.sampler_params, b.sampler_params) > 1e-3  # own init
    assert max_diff(a.q_params, b.q_params) > 1e-3
    assert not np.array_equal(a.key, b.key)  # own update noise
    carry = ms.load_run_state(root / "both")
    obs = carry.buffer.experience.obs  # (seeds, 1, steps, O)
    assert obs.shape[:3] == (2, 1, 80)
    assert not np.allclose(obs[0, 0, 0], obs[1, 0, 0])  # own env seed
    actions = carry.buffer.experience.action
    assert not np.allclose(actions[0, 0, :10], actions[1, 0, :10])  # own acting noise
    for ev in both["evals"]:
        assert ev["stochastic"][0] != ev["stochastic"][1]


def test_gym_time_limit_truncation_bootstraps(gym_runs):
    root, _, _ = gym_runs
    exp = ms.load_run_state(root / "both").buffer.experience
    # Episodes are cut at 30 steps: stored as not terminated, with the true final
    # observation as next_obs; the next transition starts from the reset observation.
    assert not exp.terminated.any()
    for seed in (0, 1):
        assert np.allclose(exp.next_obs[seed, 0, 28], exp.obs[seed, 0, 29])
        assert not np.allclose(exp.next_obs[seed, 0, 29], exp.obs[seed, 0, 30])
        assert [int(r["episodes"]) for r in rd.read_metrics(root / "both", seed)] == [0, 1, 2, 2]


def test_gym_run_files_and_resume(gym_runs):
    root, both, _ = gym_runs
    for sid in (0, 1):
        rows = rd.read_metrics(root / "both", sid)
        assert [int(r["step"]) for r in rows] == [20, 40, 60, 80]
        assert rows[1]["eval_return"] and rows[3]["eval_return_det"] and not rows[0]["eval_return"]
    ckpt = rd.latest_checkpoint(root / "both")
    assert ckpt.name == "step_000000080"
    first = sqljax.load_checkpoint(ckpt)  # the main item: seed 0's learner, loadable anywhere
    assert max_diff(learned(first), learned(seeding.unstack(both["agents"], 0))) == 0.0

    # Lose the last checkpoint, then continue from step 40.
    run = root / "resumed"
    shutil.copytree(root / "both", run)
    shutil.rmtree(run / "checkpoints" / "step_000000080")
    out = ms.train(gym_spec(run, (0, 1)), resume=True, **QUIET)
    assert out["env_steps"] == 80 and out["updates"] == [31, 31]
    assert [e["step"] for e in out["evals"]] == [40, 80]
    assert out["evals"][0] == both["evals"][0]
    assert [int(r["step"]) for r in rd.read_metrics(run, 1)] == [20, 40, 60, 80]
    assert ms.load_seed_states(run).step.tolist() == [31, 31]


def test_gym_resume_after_the_logged_metrics_change(tmp_path, monkeypatch):
    """A run checkpoint doesn't depend on which update metrics are logged: a run written by
    a version that logged fewer metrics resumes, and its history keeps its values under
    the new header."""
    cfg = GYM_CFG.replace(reward_scale=5.0)  # its own compiled program (they are cached)
    run = tmp_path / "run"

    def spec(steps):
        return dataclasses.replace(gym_spec(run, (0,), steps), config=cfg)

    sql = learners.get("sql")  # the drivers log the metrics the learner names
    monkeypatch.setitem(learners._BY_NAME, "sql", dataclasses.replace(
        sql, metrics=tuple(k for k in sqljax.UPDATE_METRICS if k != "q_loss")))
    ms.train(spec(80), **QUIET)
    before = rd.read_metrics(run, 0)
    assert "q_loss" not in before[0] and before[2]["q_mean"]
    monkeypatch.undo()
    gym_loop.compiled.cache_clear()
    ms.stats_fns.cache_clear()

    out = ms.train(spec(120), resume=True, **QUIET)
    assert out["env_steps"] == 120 and out["updates"] == [71]
    rows = rd.read_metrics(run, 0)
    assert [int(r["step"]) for r in rows] == [20, 40, 60, 80, 100, 120]
    assert [r["q_mean"] for r in rows[:4]] == [r["q_mean"] for r in before]
    assert [bool(r["q_loss"]) for r in rows] == [False] * 4 + [True] * 2


# --------------------------------------------------------------------- JAX-native driver, CLI

MG_ARGS = ["--env", "MultiGoal", "--steps", "200", "--hidden-sizes", "32",
           "--batch-size", "32", "--value-n-particles", "8", "--kernel-n-particles", "4",
           "--learning-starts", "150", "--eval-every", "100", "--log-every", "100",
           "--checkpoint-every", "100", "--eval-episodes", "4", "--bootstrap-reps", "1000",
           "--no-progress"]
FOUR_DEVICES = "test_four_devices_match_one"


@pytest.fixture(scope="module", autouse=True)
def four_device_run(request, tmp_path_factory):
    """Start the four-device run (a subprocess: XLA_FLAGS must be set before JAX starts)
    at once, so that it overlaps with the in-process tests; its test waits for it."""
    if not any(item.name == FOUR_DEVICES for item in request.session.items):
        yield None
        return
    out = tmp_path_factory.mktemp("four_devices")
    script = textwrap.dedent(f"""
        import jax
        from experiments import bench
        assert len(jax.devices()) == 4, jax.devices()
        args = {MG_ARGS!r}
        print("RC6", bench.main(args + ["--seeds", "6", "--out", {str(out / 'six')!r}]), flush=True)
        print("RC4", bench.main(args + ["--seeds", "4", "--out", {str(out / 'four')!r}]), flush=True)
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    yield proc, out
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def mg_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("multigoal")
    assert bench.main(MG_ARGS + ["--seeds", "2", "--out", str(root / "both")]) == 0
    return root


def test_bench_writes_summary_curves_and_compares(mg_runs, tmp_path):
    run = mg_runs / "both"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_seeds"] == 2 and summary["seed_ids"] == [0, 1]
    for mode in ("stochastic", "deterministic"):
        curve = summary["curves"][mode]
        assert curve["step"] == [100, 200]
        for stat in ("mean", "iqm"):
            for v, (lo, hi) in zip(curve[stat], curve[stat + "_ci"]):
                assert lo <= v <= hi
        final = summary["final"][mode]
        assert set(final["per_seed"]) == {"0", "1"}
        per_seed = [float(r["eval_return" if mode == "stochastic" else "eval_return_det"])
                    for r in (rd.read_metrics(run, s)[-1] for s in (0, 1))]
        assert [final["per_seed"]["0"], final["per_seed"]["1"]] == pytest.approx(per_seed)
        assert final["mean"]["value"] == pytest.approx(np.mean(per_seed))
    assert set(summary["final"]["goals_reached"]) == {"0", "1"}
    assert (run / "curves.png").stat().st_size > 0
    assert json.loads((run / "run.json").read_text())["n_devices"] == 1


def test_multigoal_resume_is_exact(mg_runs):
    run = mg_runs / "resumed"
    shutil.copytree(mg_runs / "both", run)
    shutil.rmtree(run / "checkpoints" / "step_000000200")
    assert bench.main(["--resume", str(run), "--no-progress", "--bootstrap-reps", "1000"]) == 0
    assert max_diff(ms.load_seed_states(run), ms.load_seed_states(mg_runs / "both")) == 0.0
    a = json.loads((run / "summary.json").read_text())["curves"]
    b = json.loads((mg_runs / "both" / "summary.json").read_text())["curves"]
    assert a == b
    out = mg_runs / "compare.png"
    assert bench.main(["--compare", str(mg_runs / "both"), str(run), "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_eval_at_start_adds_a_step_0_evaluation_and_leaves_training_alone(mg_runs):
    run = mg_runs / "at_start"
    assert bench.main(MG_ARGS + ["--seeds", "2", "--eval-at-start", "--out", str(run)]) == 0
    # the evaluation draws its own keys: the learners train exactly as without it
    assert max_diff(ms.load_seed_states(run), ms.load_seed_states(mg_runs / "both")) == 0.0
    curves = json.loads((run / "summary.json").read_text())["curves"]
    assert curves["stochastic"]["step"] == [0, 100, 200]
    for s in (0, 1):
        rows = rd.read_metrics(run, s)
        assert [r["step"] for r in rows] == ["0", "100", "200"]
        assert rows[0]["updates"] == "0" and rows[0]["q_loss"] == ""
        assert np.isfinite(float(rows[0]["eval_return"])) and np.isfinite(float(rows[0]["eval_return_det"]))
    assert json.loads((run / "run.json").read_text())["eval_at_start"] is True

    # resumed from its first checkpoint, or started again when it has none, the run
    # ends as it did, with one step-0 row
    for name, drop in (("at_start_resumed", ["step_000000200"]),
                       ("at_start_restarted", ["step_000000100", "step_000000200"])):
        again = mg_runs / name
        shutil.copytree(run, again)
        for ckpt in drop:
            shutil.rmtree(again / "checkpoints" / ckpt)
        if name.endswith("resumed"):
            assert bench.main(["--resume", str(again), "--no-progress", "--bootstrap-reps", "1000"]) == 0
        else:
            assert bench.main(MG_ARGS + ["--seeds", "2", "--eval-at-start", "--out", str(again)]) == 0
        assert json.loads((again / "summary.json").read_text())["curves"] == curves
        for s in (0, 1):
            assert [r["step"] for r in rd.read_metrics(again, s)] == ["0", "100", "200"]
            assert rd.read_metrics(again, s)[0] == rd.read_metrics(run, s)[0]


def test_seed_states_are_the_learners_of_the_whole_carry(mg_runs):
    """load_seed_states reads the learners alone (the replay stays on disk): the same
    arrays as the whole carry's learners, at every checkpoint."""
    for _, ckpt in rd.checkpoint_dirs(mg_runs / "both"):
        assert max_diff(ms.load_seed_states(ckpt), ms.load_run_state(ckpt).agent) == 0.0


def test_bad_input_is_one_line(capsys):
    assert bench.main(["--env", "CartPole-v1", "--seeds", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "discrete" in err and "\n" not in err


def test_four_devices_match_one(four_device_run, mg_runs):
    """The same command on four (forced host) devices: N must split over them, and seed i
    sharded on its own device (a batch of one: the solo program) computes what seed i
    computes in the two-seed batch on one device."""
    proc, out = four_device_run
    stdout, stderr = proc.communicate(timeout=600)
    assert "RC6 2" in stdout, stdout + stderr
    assert "6 seeds cannot be split evenly over 4 devices" in stderr
    assert "RC4 0" in stdout, stdout + stderr
    four = out / "four"
    assert json.loads((four / "run.json").read_text())["n_devices"] == 4
    sharded = ms.load_seed_states(four)
    one = ms.load_seed_states(mg_runs / "both")
    assert sharded.step.tolist() == [51] * 4 and one.step.tolist() == [51, 51]
    for i in (0, 1):
        assert max_diff(learned(seeding.unstack(sharded, i)), learned(seeding.unstack(one, i))) < 1e-5
    assert max_diff(one.sampler_params, jax.tree.map(lambda x: x[::-1], one.sampler_params)) > 1e-3
    a = json.loads((four / "summary.json").read_text())["final"]["stochastic"]["per_seed"]
    b = json.loads((mg_runs / "both" / "summary.json").read_text())["final"]["stochastic"]["per_seed"]
    for s in ("0", "1"):
        assert a[s] == pytest.approx(b[s], rel=1e-4)


# --------------------------------------------------------------------- one run is seed S of N

CLI_TINY = ["--env", "Pendulum", "--steps", "300", "--hidden-sizes", "32", "--batch-size", "32",
            "--value-n-particles", "8", "--kernel-n-particles", "4", "--learning-starts", "100",
            "--eval-every", "300", "--checkpoint-every", "300", "--log-every", "100",
            "--eval-episodes", "1", "--no-progress"]


def test_train_seed_is_that_seed_of_bench(tmp_path):
    """`experiments.train --seed 3` computes what seed 3 of `experiments.bench --seeds 4`
    computes: one driver, one key derivation (up to the float rounding of batched kernels)."""
    from experiments import train

    assert train.main(CLI_TINY + ["--seed", "3", "--out", str(tmp_path / "train")]) == 0
    assert bench.main(CLI_TINY + ["--seeds", "4", "--out", str(tmp_path / "bench"),
                                  "--bootstrap-reps", "1000"]) == 0
    one, four = ms.load_seed_states(tmp_path / "train"), ms.load_seed_states(tmp_path / "bench")
    assert one.step.tolist() == [201] and four.step.tolist() == [201] * 4
    assert max_diff(learned(seeding.unstack(one, 0)), learned(seeding.unstack(four, 3))) < 1e-4
    assert max_diff(learned(seeding.unstack(one, 0)), learned(seeding.unstack(four, 2))) > 1e-3
    solo, same = rd.read_metrics(tmp_path / "train", 3), rd.read_metrics(tmp_path / "bench", 3)
    assert [r["step"] for r in solo] == [r["step"] for r in same] == ["100", "200", "300"]
    assert [r["episodes"] for r in solo] == [r["episodes"] for r in same]
    assert float(solo[-1]["eval_return"]) == pytest.approx(float(same[-1]["eval_return"]), rel=1e-3)


def test_checkpoints_of_the_earlier_format_are_refused_in_one_line(tmp_path):
    agent = sqljax.init(jax.random.key(0), sqljax.SQLConfig(hidden_sizes=(8,)), 3, 1)
    old = tmp_path / "old"
    sqljax.save_checkpoint(old, agent, metadata={"format": "sqljax-multi-seed-run", "seed_ids": [0, 1]})
    with pytest.raises(RunError, match="earlier version of sqljax"):
        ms.load_init_states(old, (0, 1), "Pendulum-v1", 3, 1)
    with pytest.raises(RunError, match="earlier version of sqljax"):
        ms.load_run_state(old)
