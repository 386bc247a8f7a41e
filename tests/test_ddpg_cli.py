"""DDPG and TD3 through the commands every learner shares: train (gymnasium and compiled
loop), stop on SIGTERM and resume, evaluate, the learner's own flags and presets, and
one-line refusals across learners."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sqljax
from experiments import evaluate as evaluate_cli
from experiments import train as train_cli
from sqljax.learners import ddpg
from sqljax.store import run_dir as rd

REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden-sizes", "16", "16", "--batch-size", "16", "--learning-starts", "100",
        "--eval-episodes", "1", "--no-progress"]


def train(*args) -> int:
    return train_cli.main([str(a) for a in args])


def error_line(capsys) -> str:
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def sql_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sql") / "run"
    assert train("--env", "gymnax:Pendulum-v1", "--steps", "300", "--out", out, "--value-n-particles",
                 "4", "--kernel-n-particles", "4", *TINY) == 0
    return out


def test_td3_on_the_compiled_loop_trains_resumes_and_evaluates(tmp_path, capsys):
    out = tmp_path / "td3"
    assert train("--learner", "ddpg", "--preset", "modern", "--env", "gymnax:Pendulum-v1",
                 "--steps", "400", "--out", out, "--checkpoint-every", "200", "--eval-every", "200",
                 *TINY) == 0
    text = capsys.readouterr().out
    assert "DDPG on gymnax:Pendulum-v1" in text and "preset modern" in text
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["learner"] == "ddpg" and cfg["n_q"] == 2 and cfg["policy_delay"] == 2
    assert cfg["hidden_sizes"] == [16, 16]
    assert json.loads((out / "run.json").read_text())["learner"] == "ddpg"
    header = (out / "seed0" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"critic_loss", "actor_loss", "actor_updated"} <= set(header) and "q_loss" not in header
    assert train("--resume", out, "--steps", "600", "--no-progress") == 0
    meta = sqljax.read_checkpoint_metadata(rd.latest_checkpoint(out))
    assert meta["learner"] == "ddpg" and meta["metadata"]["env_steps"] == 600
    assert meta["metadata"]["updates"] == [600 - 100 + 1]
    assert evaluate_cli.main(["--ckpt", str(out), "--episodes", "2"]) == 0
    printed = capsys.readouterr().out
    assert "stochastic: return" in printed and "deterministic: return" in printed


def test_ddpg_on_gymnasium_stops_on_sigterm_and_resumes(tmp_path):
    out = tmp_path / "ddpg"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    args = [sys.executable, "-m", "experiments.train", "--learner", "ddpg", "--preset", "paper",
            "--env", "Pendulum", "--steps", "100000", "--out", str(out), "--checkpoint-every",
            "200", "--eval-every", "50000", *TINY]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        while not (out / "checkpoints" / "step_000000200").exists():
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "--resume" in err
    stopped_at = rd.checkpoint_dirs(out)[-1][0]
    cfg = rd.read_config(out)
    assert isinstance(cfg, ddpg.DDPGConfig) and cfg.hidden_sizes == (16, 16)
    assert cfg.actor_lr == 1e-4 and cfg.critic_lr == 1e-3 and cfg.exploration == "ou"
    assert train("--resume", out, "--steps", str(stopped_at + 100), "--no-progress") == 0
    assert rd.checkpoint_dirs(out)[-1][0] == stopped_at + 100


def test_learner_flags_and_help_are_the_chosen_learners(capsys):
    with pytest.raises(SystemExit):
        train_cli.main(["--learner", "ddpg", "--help"])
    text = capsys.readouterr().out
    for f in ("--ou-sigma", "--policy-delay", "--actor-lr", "--warmup-actions"):
        assert f in text
    assert "--reward-scale" not in text and "DDPGConfig" in text


@pytest.mark.parametrize("argv, words", [
    (["--learner", "td4", "--env", "Pendulum"], ["--learner", "unknown learner 'td4'"]),
    (["--learner", "ddpg", "--env", "Pendulum", "--preset", "multigoal"], ["--preset", "invalid choice"]),
    (["--learner", "ddpg", "--env", "Pendulum", "--ou-theta", "2"], ["--ou-theta", "ou_theta"]),
    (["--learner", "ddpg", "--env", "Pendulum", "--reward-scale", "3"], ["unrecognized", "--reward-scale"]),
])
def test_bad_learner_input_is_one_line(argv, words, capsys, tmp_path):
    assert train(*argv, "--out", tmp_path / "never") == 2
    line = error_line(capsys)
    for w in words:
        assert w in line, line
    assert not (tmp_path / "never").exists()


def test_one_learners_checkpoint_is_refused_by_another(sql_run, tmp_path, capsys):
    assert train("--learner", "ddpg", "--env", "gymnax:Pendulum-v1", "--init-from", sql_run,
                 "--out", tmp_path / "x", *TINY) == 2
    assert "holds a sql learner, not ddpg" in error_line(capsys)
    assert train("--resume", sql_run, "--learner", "ddpg") == 2
    assert "is a sql run" in error_line(capsys)
    assert not (tmp_path / "x").exists()
