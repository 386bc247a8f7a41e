"""What survives what: signals, a second process, a full disk, damaged checkpoints, OS
errors and settings that cannot run. Every row of the table in docs/training.md
("What survives what") is one of these tests; the signal tests send real signals to real
training processes.

Runs use a tiny learner on Pendulum (obs 3, action 1); subprocesses share a persistent
compilation cache.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sqljax
from experiments import bench as bench_cli
from experiments import plots
from experiments import train as train_cli
from sqljax.store import run_dir as rd

REPO = Path(__file__).resolve().parents[1]
TINY = ["--env", "Pendulum", "--hidden-sizes", "32", "--batch-size", "32",
        "--value-n-particles", "4", "--kernel-n-particles", "4", "--learning-starts", "100",
        "--eval-episodes", "1", "--no-progress"]


@pytest.fixture(scope="module")
def proc_env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("xla_cache")
    return dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")


def start(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "experiments.train", *map(str, args)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def run(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.train", *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def rows(out: Path) -> list[int]:
    return [int(r["step"]) for r in rd.read_metrics(out, 0)]


def wait_for_rows(proc, out: Path, n: int) -> None:
    """Until the run has logged ``n`` metrics rows (it ends by itself, so this does too)."""
    path = out / "seed0" / rd.METRICS_FILE
    while not (path.exists() and len(path.read_text().splitlines()) > n):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)


def error_lines(text: str) -> list[str]:
    return [ln for ln in text.strip().splitlines() if ln.startswith("error:")]


# ------------------------------------------------------------------ signals, a second process

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_checkpoints_the_current_step_and_the_run_resumes(tmp_path, proc_env, sig):
    """SIGINT / SIGTERM before the first scheduled checkpoint: a checkpoint at the step
    reached, the metrics up to it, exit 128 + signal, and --resume continues from it.
    While it runs, a second process on the same directory is refused, naming the first."""
    out = tmp_path / "run"
    proc = start(proc_env, *TINY, "--steps", 100_000, "--checkpoint-every", 50_000,
                 "--log-every", 100, "--out", out)
    try:
        wait_for_rows(proc, out, 3)
        holder = json.loads((out / rd.LOCK_FILE).read_text())
        assert holder["pid"] == proc.pid
        second = run(proc_env, "--resume", out, "--no-progress")
        assert second.returncode == 2
        assert error_lines(second.stderr) == [second.stderr.strip()]
        assert f"in use by process {proc.pid}" in second.stderr
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, err
    assert f"stopped by {sig.name} at env step" in err and "Traceback" not in err
    step = int(err.split("at env step ")[1].split(";")[0])
    assert 300 <= step < 100_000
    assert [s for s, _ in rd.checkpoint_dirs(out)] == [step]
    assert rows(out)[-1] == step
    assert not (out / rd.LOCK_FILE).exists()

    res = run(proc_env, "--resume", out, "--steps", step + 200, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert f"from step_{step:09d}" in res.stdout
    logged = rows(out)
    assert logged == sorted(set(logged)) and logged[-1] == step + 200
    meta = sqljax.read_checkpoint_metadata(rd.latest_checkpoint(out))["metadata"]
    assert meta["env_steps"] == step + 200 and meta["updates"] == [step + 200 - 99]


def test_a_killed_run_without_checkpoint_starts_again_by_the_same_command(tmp_path, proc_env):
    """SIGKILL before the first checkpoint leaves settings, rows and a stale lock: the
    same command takes the lock over and starts the run again from step 0; a command
    with other settings is refused; --resume of such a directory starts it again too."""
    out = tmp_path / "run"
    args = [*TINY, "--steps", 3000, "--checkpoint-every", 3000, "--log-every", 100,
            "--eval-every", 3000, "--out", out]
    proc = start(proc_env, *args)
    try:
        wait_for_rows(proc, out, 2)
    finally:
        proc.kill()
        proc.wait()
    assert (out / rd.LOCK_FILE).exists() and not rd.checkpoint_dirs(out, complete=False)

    other = run(proc_env, *TINY, "--steps", 400, "--out", out)
    assert other.returncode == 2 and "other settings" in other.stderr
    assert error_lines(other.stderr) == [other.stderr.strip()]

    res = run(proc_env, *args)
    assert res.returncode == 0, res.stderr
    assert rows(out) == list(range(100, 3001, 100))  # the killed run's rows are gone
    assert not (out / rd.LOCK_FILE).exists()

    shutil.rmtree(out / "checkpoints")
    res = run(proc_env, "--resume", out, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "holds no checkpoint" in res.stdout and rows(out) == list(range(100, 3001, 100))


# ------------------------------------------------------------------ resume and its settings

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, proc_env):
    """600 steps with checkpoints at 200, 400 and 600, all kept."""
    out = tmp_path_factory.mktemp("finished") / "run"
    res = run(proc_env, *TINY, "--steps", 600, "--checkpoint-every", 200, "--log-every", 100,
              "--eval-every", 600, "--keep-checkpoints", 4, "--out", out)
    assert res.returncode == 0, res.stderr
    return out


def copy_run(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


def test_resume_keeps_its_own_settings_and_refuses_fewer_steps(tmp_path, proc_env, finished_run):
    out = copy_run(finished_run, tmp_path)
    run_json = (out / "run.json").read_text()
    res = run(proc_env, "--resume", out, "--steps", 400, "--no-progress")
    assert res.returncode == 2 and error_lines(res.stderr) == [res.stderr.strip()]
    assert "has done 600 env steps" in res.stderr
    assert (out / "run.json").read_text() == run_json
    assert [s for s, _ in rd.checkpoint_dirs(out)] == [200, 400, 600]

    res = run(proc_env, "--resume", out, "--steps", 1000, "--no-progress")
    assert res.returncode == 0, res.stderr
    # its own --keep-checkpoints 4 (train's default is 3) and checkpoint schedule
    assert [s for s, _ in rd.checkpoint_dirs(out)] == [400, 600, 800, 1000]
    settings = json.loads((out / "run.json").read_text())
    assert (settings["keep_checkpoints"], settings["checkpoint_every"], settings["steps"]) == (
        4, 200, 1000)


def _damage(ckpt: Path, what: str) -> None:
    if what == "metadata":
        (ckpt / "sqljax.json").write_text("{ torn")
    else:  # cut the largest array file of the replay short
        f = max((p for p in (ckpt / "extra").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        f.write_bytes(f.read_bytes()[:100])


@pytest.mark.parametrize("what", ["arrays", "metadata"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous(tmp_path, proc_env,
                                                                finished_run, what):
    out = copy_run(finished_run, tmp_path)
    _damage(out / "checkpoints" / "step_000000600", what)
    res = run(proc_env, "--resume", out, "--steps", 800, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    notes = [ln for ln in res.stdout.splitlines() if "unusable" in ln]
    assert len(notes) == 1 and "step_000000600" in notes[0] and "damaged_step_000000600" in notes[0]
    assert "from step_000000400" in res.stdout
    assert (out / "checkpoints" / "damaged_step_000000600").is_dir()  # kept, never deleted
    meta = sqljax.read_checkpoint_metadata(rd.latest_checkpoint(out))["metadata"]
    assert meta["env_steps"] == 800 and meta["updates"] == [800 - 99]
    assert rows(out) == [100, 200, 300, 400, 500, 600, 700, 800]


def test_no_usable_checkpoint_is_one_line(tmp_path, proc_env, finished_run):
    out = copy_run(finished_run, tmp_path)
    for i, (_, ckpt) in enumerate(rd.checkpoint_dirs(out)):
        _damage(ckpt, ("arrays", "metadata")[i % 2])
    res = run(proc_env, "--resume", out, "--steps", 800, "--no-progress")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert error_lines(res.stderr) == [res.stderr.strip()]
    assert "no usable checkpoint" in res.stderr
    assert len(list((out / "checkpoints").glob("damaged_step_*"))) == 3


# ------------------------------------------------------------------ OS errors, bad settings

def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    """The file system fills after the first checkpoint; the plot drawn after the run
    fails too and hides nothing."""
    calls = []
    real = shutil.disk_usage

    def filling(path):
        calls.append(path)
        usage = real(path)
        return usage._replace(free=0) if len(calls) > 1 else usage

    monkeypatch.setattr(sqljax.checkpoint.shutil, "disk_usage", filling)
    monkeypatch.setattr(plots, "plot_learning_curve",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    out = tmp_path / "run"
    code = train_cli.main([*TINY, "--steps", "600", "--checkpoint-every", "200", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert error_lines(err) == ["error: No space left on device: the checkpoint needs about "
                                + error_lines(err)[0].split("about ")[1]]
    assert "step_000000400" in error_lines(err)[0] and "note: no plot" in err
    assert [s for s, _ in rd.checkpoint_dirs(out)] == [200]
    assert sqljax.load_checkpoint(rd.latest_checkpoint(out)).step >= 100
    assert not list((out / "checkpoints").glob(".step_*"))


def test_a_real_full_file_system(tmp_path, proc_env):
    """The same on a 1.5 MB tmpfs, with the space check bypassed so that the write itself
    fails: one line, the earlier checkpoints kept, no half-written one left."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        code = ("import sys, sqljax.checkpoint as c; from experiments import train; "
                "c._check_space = lambda *a: None; sys.exit(train.main(sys.argv[1:]))")
        res = subprocess.run([sys.executable, "-c", code, *TINY, "--hidden-sizes", "64", "64",
                              "--steps", "3000", "--checkpoint-every", "200", "--keep-checkpoints",
                              "20", "--out", str(mnt / "run")],
                             cwd=REPO, env=proc_env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 2, res.stderr
        assert error_lines(res.stderr) == [res.stderr.strip()]
        assert "No space left on device" in res.stderr
        kept = rd.checkpoint_dirs(mnt / "run")
        assert kept and all(sqljax.load_checkpoint(p).obs_dim == 3 for _, p in kept)
        assert not list((mnt / "run" / "checkpoints").glob(".step_*"))
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.parametrize("out", ["a_file", "a_file/run"])
def test_an_unusable_out_is_one_line(tmp_path, capsys, out):
    (tmp_path / "a_file").write_text("not a directory")
    assert train_cli.main([*TINY, "--steps", "300", "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [err.strip()] and str(tmp_path / "a_file") in err


@pytest.mark.parametrize("args, words", [
    (["--steps", "400", "--batch-size", "512", "--learning-starts", "300"],
     ["batch_size 512", "replay capacity 400"]),
    (["--steps", "300", "--replay-size", "64", "--batch-size", "100", "--learning-starts", "100"],
     ["batch_size 100", "replay capacity 64"]),
    (["--steps", "300", "--learning-starts", "10"], ["learning_starts 10", "batch_size 32"]),
])
def test_settings_that_cannot_run_are_refused_before_anything_is_written(tmp_path, capsys,
                                                                         args, words):
    out = tmp_path / "run"
    assert train_cli.main([*TINY, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [err.strip()] and all(w in err for w in words), err
    assert not out.exists()


def test_a_negative_seed_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    assert bench_cli.main([*TINY, "--seeds", "1", "--seed", "-3", "--steps", "300",
                           "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [err.strip()] and "seed" in err
    assert not out.exists()
