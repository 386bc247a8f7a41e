"""The GPU pretraining command (experiments/studies/pretrain_gpu.py) and the driver's
wall-clock stop it rests on (``multi_seed.train(..., deadline=...)``), on tiny runs of the
multi-goal task (the command: fast; the stop with an evaluation and a checkpoint at its
end: slow, compiling the evaluation) and of mjx:AntAnyDirection (slow: the MJX Ant loop
compiles for about a minute on a 2-core CPU)."""

import csv
import json
import tarfile
import time

import numpy as np
import pytest

import sqljax
from experiments.studies import pretrain_gpu
from sqljax.loops import multi_seed
from sqljax.store import run_dir as rd

TINY = ["--hidden-sizes", "32", "--batch-size", "32", "--value-n-particles", "4",
        "--kernel-n-particles", "4", "--learning-starts", "50", "--replay-size", "1000",
        "--log-every", "100", "--max-episode-steps", "50"]


def tiny_spec(run_dir, steps=1000, *more):
    """A two-seed multi-goal run with tiny networks (the same compiled program as the
    command's run below: the same config, replay capacity and chunk of 100 steps)."""
    args = pretrain_gpu.build_parser().parse_args(
        ["--env", "MultiGoal", "--seeds", "2", "--steps", str(steps), "--eval-episodes", "1",
         "--run-dir", str(run_dir), *TINY, *more])
    return pretrain_gpu.spec_from_args(args)


@pytest.mark.slow  # 20-30 s on a 2-core CPU, compiling the evaluation
def test_a_deadline_ends_the_run_at_its_next_sync_point_as_at_its_end(tmp_path):
    spec = tiny_spec(tmp_path / "run", 1000, "--eval-every", "500", "--checkpoint-every", "1000")
    result = multi_seed.train(spec, log=lambda _: None, deadline=time.monotonic())  # passed
    assert result["out_of_time"] and result["env_steps"] == 100
    assert [e["step"] for e in result["evals"]] == [100]  # evaluated, as at the end
    assert rd.latest_checkpoint(tmp_path / "run").name.endswith("100")  # and saved
    assert [int(r["step"]) for r in rd.read_metrics(tmp_path / "run", 1)] == [100]
    later = multi_seed.train(tiny_spec(tmp_path / "later"), log=lambda _: None,
                             deadline=time.monotonic() + 3600)
    assert not later["out_of_time"] and later["env_steps"] == 1000


def test_the_command_exports_every_seed_and_the_metrics(tmp_path, capsys):
    out, run = tmp_path / "out", tmp_path / "run"
    argv = ["--env", "MultiGoal", "--seeds", "2", "--steps", "100000", "--max-minutes", "1e-4",
            "--eval-episodes", "1", "--archive", "--out", str(out), "--run-dir", str(run), *TINY]
    assert pretrain_gpu.main(argv) == 0
    assert "out of time" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["learners.tar.gz", "metrics.csv", "pretrain.json"]
    record = json.loads((out / "pretrain.json").read_text())
    assert record["out_of_time"] and record["env_steps"] == 100 and record["preset"] == "pretrain"
    assert record["evals"] == [] and record["learners"] == "learners.tar.gz"
    assert record["config"]["reward_scale"] == 10.0  # the pretrain preset's alpha = 0.1
    with tarfile.open(out / "learners.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["seed0", "seed0/learner.msgpack", "seed0/sqljax.json",
                                          "seed1", "seed1/learner.msgpack", "seed1/sqljax.json"]
        tar.extractall(tmp_path / "zoo", filter="data")
    assert sorted(rd.seed_learners(tmp_path / "zoo")) == [0, 1]  # the zoo layout
    for seed in (0, 1):
        agent = sqljax.load_checkpoint(tmp_path / "zoo" / f"seed{seed}")
        assert (agent.obs_dim, agent.action_dim) == (2, 2) and np.ndim(agent.step) == 0
        meta = sqljax.read_checkpoint_metadata(tmp_path / "zoo" / f"seed{seed}")["metadata"]
        assert meta["seed"] == seed and meta["env_steps"] == 100
        assert meta["eval_return"] is None  # no evaluation by default
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["seed"], r["step"]) for r in rows] == [("0", "100"), ("1", "100")]
    assert list(rows[0])[:2] == ["seed", "step"]


@pytest.mark.parametrize("argv, message", [
    (["--max-minutes", "-1"], "--max-minutes must be >= 0"),
    (["--env", "Hopper"], "not a JAX-native task"),
    (["--seeds", "0"], "--seeds"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    assert pretrain_gpu.main(argv + ["--out", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


@pytest.mark.slow  # about 70 s on a 2-core CPU, most of it compiling
def test_mjx_pretraining_exports_run_on_gymnasiums_task(tmp_path, capsys):
    """Two seeds on mjx:AntAnyDirection (the pretrain preset's networks); an export then
    runs on gymnasium's sqljax/AntAnyDirection-v1 (the same spaces)."""
    from experiments import evaluate

    out = tmp_path / "out"
    argv = ["--seeds", "2", "--steps", "300", "--log-every", "100", "--learning-starts", "200",
            "--replay-size", "300", "--out", str(out), "--run-dir", str(tmp_path / "run")]
    assert pretrain_gpu.main(argv) == 0
    record = json.loads((out / "pretrain.json").read_text())
    assert record["env_id"] == "mjx:AntAnyDirection-v1" and record["env_steps"] == 300
    assert not record["out_of_time"] and record["learners"] == ["seed0", "seed1"]
    agent = sqljax.load_checkpoint(out / "seed1")
    assert (agent.obs_dim, agent.action_dim) == (105, 8) and int(agent.step) == 101
    capsys.readouterr()
    assert evaluate.main(["--ckpt", str(out / "seed1"), "--env", "AntAnyDirection-v1",
                          "--episodes", "1", "--mode", "deterministic", "--no-video"]) == 0
    assert "deterministic: return" in capsys.readouterr().out
