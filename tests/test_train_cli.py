"""The training command line end to end: outputs, resume after SIGKILL, evaluation,
fine-tuning, what is stored in the replay, and one clear line for every bad input.

Runs use a tiny learner (32 x 32, batch 32, 4 particles) on Pendulum-shaped envs (obs 3,
action 1) with the same replay size, so one compiled program serves most runs (and the
persistent compilation cache serves the subprocesses).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import jax
import numpy as np
import pytest
from gymnasium import spaces

import sqljax
from experiments import evaluate as evaluate_cli
from experiments import train as train_cli
from sqljax.envs.gym_adapter import EnvError, make_env, resolve_env_id
from sqljax.loops import multi_seed as ms
from sqljax.store import run_dir as rd

REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden-sizes", "32", "32", "--batch-size", "32", "--value-n-particles", "4",
        "--kernel-n-particles", "4", "--learning-starts", "100", "--replay-size", "1000",
        "--eval-episodes", "1", "--no-progress"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A persistent XLA compilation cache for this module's processes (restored after)."""
    path = tmp_path_factory.mktemp("xla_cache")
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    before = {n: getattr(jax.config, n, None) for n in names}
    try:
        jax.config.update(names[0], str(path))
        jax.config.update(names[1], 0.0)
    except Exception:  # a jax without these options: no cache, only slower
        pass
    yield path
    for n, v in before.items():
        try:
            jax.config.update(n, v)
        except Exception:
            pass
    try:  # let the next module start with the cache it configures (or none)
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()
    except Exception:
        pass


def run_train(*args: str) -> int:
    return train_cli.main([str(a) for a in args])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [ln for ln in err if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    """The metrics rows of a one-seed run (``seed<S>/metrics.csv``)."""
    (seed,) = json.loads((run_dir / "run.json").read_text())["seed_ids"]
    with open(run_dir / f"seed{seed}" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ test environments

class _Pendulumish(gym.Env):
    """obs (3,), action Box(-2, 2, (1,)): the shapes of Pendulum-v1."""

    observation_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = spaces.Box(-2.0, 2.0, (1,), np.float32)


class NaNAfter300(_Pendulumish):
    """Rewards turn NaN after 300 steps (counted over the env's life)."""

    def __init__(self):
        self.count = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        self.count += 1
        reward = float("nan") if self.count > 300 else -float(np.square(action).sum())
        return self.np_random.normal(size=3).astype(np.float32), reward, False, False, {}


class Probe(_Pendulumish):
    """obs = (t, episode, 0). Even episodes terminate at t = 4; odd ones run into the
    registered time limit of 10 steps (truncation). Records the actions it receives."""

    actions: list = []

    def __init__(self):
        self.episode = -1
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return np.array([0, self.episode, 0], np.float32), {}

    def step(self, action):
        Probe.actions.append(np.array(action, np.float64))
        self.t += 1
        terminated = self.episode % 2 == 0 and self.t == 4
        return np.array([self.t, self.episode, 0], np.float32), float(self.t), terminated, False, {}


class MultiDiscreteActions(gym.Env):
    observation_space = spaces.Box(-1, 1, (3,), np.float32)
    action_space = spaces.MultiDiscrete([3, 2])


class DictActions(gym.Env):
    observation_space = spaces.Box(-1, 1, (3,), np.float32)
    action_space = spaces.Dict({"a": spaces.Box(-1, 1, (1,), np.float32)})


for _id, _cls, _limit in (("sqljax_test/NaNAfter300-v0", NaNAfter300, 200),
                          ("sqljax_test/Probe-v0", Probe, 10),
                          ("sqljax_test/MultiDiscrete-v0", MultiDiscreteActions, 10),
                          ("sqljax_test/DictActions-v0", DictActions, 10)):
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=_cls, max_episode_steps=_limit)


# ------------------------------------------------------------------ a trained run

@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("runs") / "pendulum"
    rc = run_train("--env", "Pendulum", "--steps", 2000, "--seed", 3, "--out", out,
                   "--eval-every", 1000, "--checkpoint-every", 500, "--keep-checkpoints", 2,
                   "--log-every", 250, *TINY)
    assert rc == 0
    return out


def test_run_writes_every_output(pendulum_run):
    out = pendulum_run
    cfg = sqljax.SQLConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert cfg.hidden_sizes == (32, 32) and cfg.batch_size == 32 and cfg.kernel_n_particles == 4
    assert cfg.reward_scale == sqljax.task_reward_scale("Pendulum-v1") == 10.0
    run = json.loads((out / "run.json").read_text())
    assert run["env_id"] == "Pendulum-v1" and run["seed_ids"] == [3] and run["steps"] == 2000

    rows = read_rows(out)
    assert [int(r["step"]) for r in rows] == list(range(250, 2001, 250))
    # one update per env step from learning_starts on
    assert [int(r["updates"]) for r in rows][-1] == 2000 - 100 + 1
    evals = [r for r in rows if r["eval_return"]]
    assert [int(r["step"]) for r in evals] == [1000, 2000]
    for r in evals:
        assert -2000 < float(r["eval_return"]) <= 0 and -2000 < float(r["eval_return_det"]) <= 0
    assert all(float(r["steps_per_sec"]) > 0 and np.isfinite(float(r["q_loss"])) for r in rows)
    assert int(rows[-1]["episodes"]) == 10  # Pendulum's 200-step time limit

    assert list(out.glob("seed3/events.out.tfevents.*"))
    assert (out / "learning_curve.png").stat().st_size > 10_000
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step_000001500", "step_000002000"]  # the last two kept
    meta = sqljax.read_checkpoint_metadata(out / "checkpoints" / "step_000002000")
    counters = meta["metadata"]
    assert counters["env_steps"] == 2000 and counters["updates"] == [1901] and counters["episodes"] == [10]
    assert counters["replay_size"] == 1000 and counters["env_id"] == "Pendulum-v1"
    agent = sqljax.load_checkpoint(out / "checkpoints" / "step_000002000")
    assert int(agent.step) == 1901


def test_evaluate_cli_prints_mean_and_std(pendulum_run, capsys):
    rc = evaluate_cli.main(["--ckpt", str(pendulum_run), "--episodes", "2", "--no-video"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "stochastic: return" in out and "deterministic: return" in out and "±" in out


def test_evaluate_writes_mp4(tmp_path, capsys):
    """A MuJoCo policy renders on the CPU (MUJOCO_GL=egl) into an MP4."""
    info = make_env("HalfCheetah-v5")
    cfg = sqljax.SQLConfig(hidden_sizes=(8,), max_episode_steps=15)
    agent = sqljax.init(jax.random.PRNGKey(0), cfg, info.obs_dim, info.action_dim)
    info.close()
    ckpt = tmp_path / "ckpt"
    sqljax.save_checkpoint(ckpt, agent, metadata={"env_id": "HalfCheetah-v5"})
    video = tmp_path / "cheetah.mp4"
    rc = evaluate_cli.main(["--ckpt", str(ckpt), "--episodes", "1", "--mode", "deterministic",
                            "--video", str(video), "--width", "64", "--height", "48"])
    out = capsys.readouterr()
    if "no video" in out.err:
        pytest.skip(f"no offscreen rendering on this machine: {out.err.strip()}")
    assert rc == 0 and video.stat().st_size > 0
    import imageio.v2 as imageio

    frames = imageio.mimread(video)
    assert len(frames) == 16 and frames[0].shape[:2] == (48, 64)  # reset + 15 steps


def test_kill_and_resume(tmp_path, cache_dir):
    """SIGKILL mid-run, resume: it continues from the last complete checkpoint (a torn
    write is never restored) and ends with the counters of an uninterrupted run."""
    out = tmp_path / "run"
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache_dir),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PLATFORMS="cpu")
    args = [sys.executable, "-m", "experiments.train", "--env", "Pendulum-v1", "--steps", "6000",
            "--out", str(out), "--eval-every", "3000", "--checkpoint-every", "1000",
            "--log-every", "500", *TINY]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # wait for the second checkpoint, however long the machine takes (the run ends
        # by itself after 6000 steps, so this loop ends too)
        while not (out / "checkpoints" / "step_000002000").exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    kept = rd.checkpoint_dirs(out)
    last_step = kept[-1][0]
    assert 2000 <= last_step < 6000
    # what a kill in the middle of a write leaves: a hidden temp dir and a torn dir
    (out / "checkpoints" / f".step_{last_step + 1000:09d}.partial-deadbeef" / "state").mkdir(parents=True)
    (out / "checkpoints" / "step_000999999" / "state").mkdir(parents=True)

    res = subprocess.run([sys.executable, "-m", "experiments.train", "--resume", str(out),
                          "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"from step_{last_step:09d}" in res.stdout
    meta = sqljax.read_checkpoint_metadata(out / "checkpoints" / "step_000006000")["metadata"]
    assert meta["env_steps"] == 6000 and meta["updates"] == [6000 - 100 + 1]
    assert meta["episodes"][0] >= 29  # 30 without the kill; the episode cut by the kill is lost
    rows = read_rows(out)
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == 6000 and steps[0] == 500
    assert [int(r["updates"]) for r in rows] == [s - 99 for s in steps]
    assert not list((out / "checkpoints").glob(".step_*"))


def test_evaluation_never_changes_training(tmp_path, cache_dir):
    """Same seed, different evaluation schedules: identical learners (several updates per
    step through one lax.scan)."""
    final = []
    for name, every in (("often", 250), ("once", 1000)):
        out = tmp_path / name
        assert run_train("--env", "Pendulum", "--steps", 1000, "--out", out, "--eval-every", every,
                         "--updates-per-step", 2, *TINY) == 0
        rows = read_rows(out)
        assert int(rows[-1]["updates"]) == 2 * (1000 - 100 + 1)
        final.append(sqljax.load_checkpoint(out / "checkpoints" / "step_000001000"))
    for a, b in zip(jax.tree.leaves(final[0]), jax.tree.leaves(final[1])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_replay_holds_terminations_not_truncations(tmp_path, cache_dir):
    Probe.actions = []
    out = tmp_path / "probe"
    assert run_train("--env", "sqljax_test/Probe-v0", "--steps", 40, "--out", out,
                     "--learning-starts", 1000, "--eval-episodes", 1, "--no-progress",
                     "--hidden-sizes", 32, 32) == 0
    ckpt = out / "checkpoints" / "step_000000040"
    carry = ms.load_run_state(ckpt)
    counters = sqljax.read_checkpoint_metadata(ckpt)["metadata"]
    assert counters["replay_size"] == 40 and carry.env_steps.tolist() == [40]
    exp = jax.tree.map(lambda x: np.asarray(x)[0, 0], carry.buffer.experience)  # seed 0
    t, ep = exp.obs[:, 0], exp.obs[:, 1]
    nt, nep = exp.next_obs[:, 0], exp.next_obs[:, 1]
    np.testing.assert_array_equal(nt, t + 1)  # next_obs is the true last obs, never a reset's
    np.testing.assert_array_equal(nep, ep)
    np.testing.assert_array_equal(exp.reward, nt)
    ends_terminal = (ep % 2 == 0) & (nt == 4)
    ends_timeout = (ep % 2 == 1) & (nt == 10)
    assert ends_terminal.sum() >= 2 and ends_timeout.sum() >= 2
    np.testing.assert_array_equal(exp.terminated, ends_terminal.astype(np.float32))
    # after an end, the next transition starts from the reset observation
    ends = np.flatnonzero(ends_terminal | ends_timeout)
    np.testing.assert_array_equal(t[ends[:-1] + 1], 0)
    # actions in [-1, 1] are rescaled to the env's [-2, 2]
    env_actions = np.concatenate(Probe.actions[:40])
    assert np.all(np.abs(exp.action[:, 0]) <= 1)
    np.testing.assert_allclose(env_actions, 2.0 * exp.action[:, 0], rtol=1e-5)


def test_non_finite_loss_stops_and_names_the_step(tmp_path, capsys, cache_dir):
    out = tmp_path / "nan"
    rc = run_train("--env", "sqljax_test/NaNAfter300-v0", "--steps", 2000, "--out", out,
                   "--checkpoint-every", 200, "--log-every", 100, "--eval-every", 2000, *TINY)
    assert rc == 1
    line = one_error_line(capsys)
    assert "diverged at env step" in line and "q_loss" in line
    bad_step = int(line.split("env step ")[1].split()[0])
    assert 300 < bad_step < 500
    # the update: one per env step from learning_starts (100) on
    assert int(line.split("update ")[1].split(":")[0]) == bad_step - 99
    kept = rd.checkpoint_dirs(out)
    assert kept and kept[-1][0] < bad_step and str(kept[-1][1]) in line
    agent = sqljax.load_checkpoint(kept[-1][1])
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(agent))


def test_init_from_copies_q_and_sampler(pendulum_run, tmp_path):
    out = tmp_path / "finetune"
    assert run_train("--env", "Pendulum", "--steps", 300, "--out", out, "--init-from", pendulum_run,
                     "--learning-starts", 1000, "--anneal-steps", 500, "--final-reward-scale", 1000,
                     "--noise-bank-size", 4, "--eval-episodes", 1, "--no-progress") == 0
    cfg = sqljax.SQLConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert cfg.hidden_sizes == (32, 32)  # from the pretrained run
    assert (cfg.anneal_steps, cfg.final_reward_scale, cfg.noise_bank_size) == (500, 1000.0, 4)
    pre = sqljax.load_checkpoint(rd.latest_checkpoint(pendulum_run))
    new = sqljax.load_checkpoint(out / "checkpoints" / "step_000000300")
    assert int(new.step) == 0  # no update yet: the parameters are the pretrained ones
    for a, b in zip(jax.tree.leaves((pre.q_params, pre.sampler_params)),
                    jax.tree.leaves((new.q_params, new.sampler_params))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(new.q_opt_state[0].count) == 0  # optimisers start fresh


# ------------------------------------------------------------------ names and help

def test_env_names_resolve():
    assert resolve_env_id("Ant") == "Ant-v5"
    assert resolve_env_id("HalfCheetah") == "HalfCheetah-v5"
    assert resolve_env_id("Pendulum") == "Pendulum-v1"
    assert resolve_env_id("MultiGoal") == "sqljax/MultiGoal-v0"
    assert resolve_env_id("MultiGoal-v0") == "sqljax/MultiGoal-v0"
    assert resolve_env_id("AntUMaze") == "sqljax/AntUMaze-v0"
    assert resolve_env_id("AntHallway") == "sqljax/AntHallwayWide-v0"
    assert resolve_env_id("Hopper-v4") == "Hopper-v4"
    with pytest.raises(EnvError, match="did you mean"):
        resolve_env_id("HalfCheeta")


def test_help_lists_every_config_field(capsys):
    with pytest.raises(SystemExit) as e:
        train_cli.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    import dataclasses

    for f in dataclasses.fields(sqljax.SQLConfig):
        assert "--" + f.name.replace("_", "-") in text
    for flag in ("--env", "--steps", "--seed", "--out", "--preset", "--resume", "--init-from",
                 "--eval-every", "--checkpoint-every"):
        assert flag in text


# ------------------------------------------------------------------ bad input: one line, exit 2

@pytest.mark.parametrize("argv, words", [
    (["--env", "Pendulun"], ["unknown environment", "Pendulum-v1"]),
    (["--env", "CartPole-v1"], ["discrete", "Box"]),
    (["--env", "sqljax_test/MultiDiscrete-v0"], ["multi-discrete", "Box"]),
    (["--env", "sqljax_test/DictActions-v0"], ["dict", "Box"]),
    (["--env", "Pendulum", "--batch-size", "0"], ["--batch-size", "batch_size", ">= 1"]),
    (["--env", "Pendulum", "--discount", "1.5"], ["--discount", "(0, 1]"]),
    (["--env", "Pendulum", "--kernel-update-ratio", "1"], ["kernel_update_ratio", "(0, 1)"]),
    (["--env", "Pendulum", "--qf-lr", "-1"], ["qf_lr", "> 0"]),
    (["--env", "Pendulum", "--batch-size", "many"], ["--batch-size", "invalid int"]),
    (["--env", "Pendulum", "--preset", "fancy"], ["--preset", "invalid choice"]),
    (["--env", "Pendulum", "--steps", "0"], ["--steps", ">= 1"]),
    ([], ["--env is required"]),
])
def test_bad_input_is_one_line(argv, words, capsys, tmp_path):
    rc = run_train(*argv, "--out", tmp_path / "never")
    assert rc == 2
    line = one_error_line(capsys)
    for w in words:
        assert w in line, line
    assert not (tmp_path / "never").exists()


def test_resume_rejects_what_is_not_a_run(tmp_path, capsys):
    assert run_train("--resume", tmp_path / "missing") == 2
    assert "no such directory" in one_error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert run_train("--resume", tmp_path / "empty") == 2
    assert "not a training run" in one_error_line(capsys)


def test_resume_without_checkpoint_starts_the_run_again(tmp_path, capsys):
    out = tmp_path / "nockpt"
    out.mkdir()
    cfg = sqljax.SQLConfig(hidden_sizes=(32,))
    (out / "config.json").write_text(json.dumps(cfg.to_dict()))
    spec = rd.RunSpec(env_id="Pendulum-v1", config=cfg, seed_ids=(0,), steps=10, out=out,
                      eval_every=0, log_every=5)
    (out / "run.json").write_text(json.dumps(spec.to_json()))
    assert run_train("--resume", out, "--no-progress") == 0
    assert "holds no checkpoint" in capsys.readouterr().out
    assert [int(r["step"]) for r in read_rows(out)] == [5, 10]


def test_resume_refuses_the_earlier_run_format(tmp_path, capsys):
    for name, run in (("run.json", {"format": "sqljax-run", "env_id": "Pendulum-v1", "seed": 0,
                                    "steps": 10}),
                      ("bench.json", {"format": "sqljax-multi-seed-run", "seed_ids": [0]})):
        out = tmp_path / name
        out.mkdir()
        (out / "config.json").write_text(json.dumps(sqljax.SQLConfig().to_dict()))
        (out / name).write_text(json.dumps(run))
        assert run_train("--resume", out) == 2
        assert "earlier version of sqljax" in one_error_line(capsys)


def test_resume_with_other_sizes(pendulum_run, capsys):
    assert run_train("--resume", pendulum_run, "--env", "MultiGoal") == 2
    line = one_error_line(capsys)
    assert "observation size 3" in line and "observation size 2" in line


def test_resume_rejects_new_hyperparameters(pendulum_run, capsys):
    assert run_train("--resume", pendulum_run, "--qf-lr", "0.1") == 2
    assert "--qf-lr" in one_error_line(capsys)


def test_existing_run_is_not_overwritten(pendulum_run, capsys):
    assert run_train("--env", "Pendulum", "--out", pendulum_run) == 2
    assert "--resume" in one_error_line(capsys)


def test_init_from_checks(pendulum_run, tmp_path, capsys):
    assert run_train("--env", "MultiGoal", "--init-from", pendulum_run, "--out", tmp_path / "a") == 2
    line = one_error_line(capsys)
    assert "observation size 3" in line and "action size 1" in line and "MultiGoal" in line
    assert run_train("--env", "Pendulum", "--init-from", pendulum_run, "--hidden-sizes", "64", "64",
                     "--out", tmp_path / "b") == 2
    assert "hidden_sizes" in one_error_line(capsys)
    assert run_train("--env", "Pendulum", "--init-from", tmp_path, "--out", tmp_path / "c") == 2
    assert "neither an sqljax checkpoint, a run directory nor" in one_error_line(capsys)


def test_evaluate_bad_input(tmp_path, capsys):
    assert evaluate_cli.main(["--ckpt", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in one_error_line(capsys)
    assert evaluate_cli.main(["--ckpt", str(tmp_path), "--episodes", "x"]) == 2
    assert "--episodes" in one_error_line(capsys)


@pytest.mark.parametrize("argv, words", [
    (["--steps", "0"], ["--steps", "at least 1"]),
    (["--eval-episodes", "10"], ["--eval-episodes", "at least 100"]),
    (["--chunk-steps", "x"], ["--chunk-steps", "invalid int"]),
])
def test_multigoal_bad_input(argv, words, tmp_path, capsys):
    from experiments.studies import multigoal as multigoal_cli

    with pytest.raises(SystemExit) as stop:
        multigoal_cli.main([*argv, "--out", str(tmp_path / "never")])
    assert stop.value.code == 2
    line = one_error_line(capsys)
    assert all(w in line for w in words), line
    assert not (tmp_path / "never").exists()
