"""The compiled training loop on the multi-goal task: mechanics (fast) and learning (slow)."""

import jax
import numpy as np
import pytest

import sqljax
from sqljax import replay, seeding
from sqljax.envs import multigoal as mg
from sqljax.loops import device, scan_loop

SMALL = dict(hidden_sizes=(16, 16), batch_size=8, value_n_particles=4, kernel_n_particles=4,
             learning_starts=50)


def small_cfg(**overrides):
    return sqljax.SQLConfig.preset("multigoal", **{**SMALL, **overrides})


# Goals near the start and a short time limit: episodes end both ways within 300 steps.
NEAR_GOAL = mg.MultiGoalParams(goals=((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)),
                               goal_radius=0.6, max_episode_steps=8)


@pytest.fixture(scope="module")
def short_run():
    """300 env steps in 3 chunks with one jitted, donated chunk function."""
    fns = scan_loop.make_train(small_cfg(), mg.MultiGoal(), NEAR_GOAL, capacity=300,
                               chunk_steps=100)
    traces = []

    def counted(carry, stats):
        traces.append(1)
        carry, stats = fns.run_chunk(carry, stats)
        return carry, device.new_stats(), dict(device.summarize(stats), episodes=stats.ep_count,
                                               env_steps=carry.env_steps)

    run = jax.jit(counted, donate_argnums=(0, 1))
    carry, stats = jax.jit(fns.init_carry)(jax.random.key_data(jax.random.key(0))), device.new_stats()
    history = []
    for _ in range(3):
        carry, stats, metrics = run(carry, stats)
        history.append(jax.device_get(metrics))
    return fns, carry, history, len(traces)


def test_scan_loop_runs_and_is_traced_once(short_run):
    fns, carry, history, n_traces = short_run
    assert fns.chunk_steps == 100 and n_traces == 1
    assert int(carry.env_steps) == 300 and int(replay.size(carry.buffer)) == 300
    # Updates start at env step 50: 51 in the first chunk, 100 in each after.
    assert [int(m["n_learn"]) for m in history] == [51, 100, 100]
    assert int(carry.agent.step) == 251
    assert [int(m["env_steps"]) for m in history] == [100, 200, 300]
    assert all(np.isfinite(m["q_loss"]) and np.isfinite(m["episode_return"]) for m in history)


def test_truncation_bootstraps_and_termination_is_stored(short_run):
    _, carry, history, _ = short_run
    # The 300 stored transitions, in order, as (300, field size) arrays.
    exp = jax.tree.map(lambda x: np.asarray(x).reshape(300, -1), carry.buffer.experience)
    terminated = exp.terminated[:, 0]
    goals = np.asarray(NEAR_GOAL.goals)
    dist = np.linalg.norm(exp.next_obs[:, None, :] - goals, axis=-1).min(axis=1)
    reached = dist < NEAR_GOAL.goal_radius
    # Only goal reaching is stored as terminal; time-limit ends are not.
    np.testing.assert_array_equal(terminated, reached.astype(np.float32))
    # Walk the episodes: each ends at a goal or after 8 steps, then the env is reset.
    ends, length = [], 0
    for t in range(300):
        length += 1
        end = bool(terminated[t]) or length == NEAR_GOAL.max_episode_steps
        if t + 1 < 300:
            continued = np.array_equal(exp.obs[t + 1], exp.next_obs[t])
            assert continued != end, f"step {t}: end={end}, next obs continues={continued}"
        ends.append((end, bool(terminated[t]), length))
        length = 0 if end else length
    n_goal = sum(1 for e, term, _ in ends if e and term)
    n_time = sum(1 for e, term, _ in ends if e and not term)
    assert n_goal > 0 and n_time > 0
    assert sum(int(m["episodes"]) for m in history) == n_goal + n_time


def test_vmap_over_seeds_gives_different_results():
    fns = scan_loop.make_train(small_cfg(), mg.MultiGoal(), mg.DEFAULT_PARAMS, capacity=100,
                               chunk_steps=100)
    keys = seeding.seed_keys(1, [0, 1])
    carries = jax.jit(jax.vmap(fns.init_carry))(keys)
    stats = jax.vmap(lambda _: device.new_stats())(np.arange(2))
    carries, stats = jax.jit(jax.vmap(fns.run_chunk), donate_argnums=(0, 1))(carries, stats)
    metrics = jax.vmap(device.summarize)(stats)
    assert metrics["q_loss"].shape == (2,) and carries.env_steps.shape == (2,)
    np.testing.assert_array_equal(np.asarray(carries.env_steps), [100, 100])
    assert not np.allclose(*np.asarray(metrics["episode_return"]))
    assert not np.allclose(*np.asarray(metrics["q_loss"]))
    leaf = jax.tree.leaves(carries.agent.sampler_params)[0]
    assert not np.allclose(leaf[0], leaf[1])
    # Seed i's key does not depend on how many seeds there are.
    np.testing.assert_array_equal(seeding.seed_keys(1, [0, 1, 2])[:2], keys)


@pytest.mark.slow
def test_multigoal_reaches_all_four_goals(tmp_path):
    from experiments.studies import multigoal as exp

    summary = exp.main(["--steps", str(exp.DEFAULT_STEPS), "--seed", "0", "--out", str(tmp_path),
                        "--eval-episodes", "200", "--no-progress"])
    shares = summary["goal_shares"]
    assert all(shares[f"goal_{i}"] >= 0.10 for i in range(4)), shares
    assert (tmp_path / "figure.png").stat().st_size > 0
    from sqljax.store import run_dir

    state = sqljax.load_checkpoint(run_dir.latest_checkpoint(tmp_path))
    assert int(state.step) > 0


class NaNRewardAfter150(mg.MultiGoal):
    """The multi-goal env whose rewards turn NaN from env step 150 of an episode on (a
    long time limit, so the first episode reaches it)."""

    def step(self, key, state, action, params=mg.DEFAULT_PARAMS):
        obs, nxt, reward, term, trunc, info = super().step(key, state, action, params)
        return obs, nxt, jax.numpy.where(state.time >= 149, jax.numpy.nan, reward), term, trunc, info

    def __hash__(self):
        return hash(NaNRewardAfter150)

    def __eq__(self, other):
        return isinstance(other, NaNRewardAfter150)


def test_compiled_loop_stops_naming_the_first_non_finite_update(tmp_path):
    """The compiled loop takes any JAX-native env as an argument, and a non-finite loss
    stops it with the line the gymnasium driver writes: the seed, env step and update."""
    from sqljax.loops import NonFiniteError
    from sqljax.loops import multi_seed as ms
    from sqljax.store import run_dir as rd

    params = mg.MultiGoalParams(goals=((100.0, 100.0),), max_episode_steps=1000)
    spec = rd.RunSpec(env_id="NaNRewardAfter150", config=small_cfg(max_episode_steps=1000),
                           seed_ids=(2,), steps=400, out=tmp_path / "run", eval_every=0,
                           checkpoint_every=100, log_every=100, progress=False)
    with pytest.raises(NonFiniteError) as e:
        ms.train(spec, log=lambda _: None, jax_env=(NaNRewardAfter150(), params))
    line = str(e.value)
    assert "\n" not in line and "seed 2" in line and "non-finite q_loss" in line
    step = int(line.split("env step ")[1].split()[0])
    update = int(line.split("update ")[1].split(":")[0])
    assert 150 <= step <= 200 and update == step - 49  # one update per step from step 50
    assert f"last good checkpoint is {tmp_path / 'run' / 'checkpoints' / 'step_000000100'}" in line
    rows = rd.read_metrics(tmp_path / "run", 2)
    assert [r["step"] for r in rows] == ["100", "200"] and rows[1]["q_loss"] == "nan"


def test_the_compiled_path_imports_no_gymnasium():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; import sqljax; from sqljax.loops import multi_seed, scan_loop; "
            "from sqljax.envs import make_jax_env; make_jax_env('MultiGoal'); "
            "assert 'gymnasium' not in sys.modules, 'gymnasium imported'")
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], check=True)
