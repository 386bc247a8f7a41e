"""Two processes on this machine (``jax.distributed`` on localhost, CPU collectives)
train two seeds, one per process: every process takes part in each checkpoint, the run
is killed, and it resumes where its last checkpoint left it."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import bench
from sqljax.loops import multi_seed as ms
from sqljax.store import run_dir as rd

REPO = Path(__file__).resolve().parents[1]
SCRIPT = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2,
                               process_id=int(sys.argv[2]))
    assert jax.process_count() == 2 and len(jax.devices()) == 2, jax.devices()
    from experiments import bench
    sys.exit(bench.main(sys.argv[3:]))
""")
ARGS = ["--env", "MultiGoal", "--seeds", "2", "--steps", "1500", "--hidden-sizes", "16",
        "--batch-size", "16", "--value-n-particles", "4", "--kernel-n-particles", "4",
        "--learning-starts", "100", "--eval-every", "500", "--log-every", "250",
        "--checkpoint-every", "250", "--eval-episodes", "2", "--bootstrap-reps", "1000",
        "--no-progress"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def launch(args, log_dir: Path, name: str) -> list[subprocess.Popen]:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    port = free_port()
    return [subprocess.Popen([sys.executable, "-c", SCRIPT, f"localhost:{port}", str(i),
                              *map(str, args)], cwd=REPO, env=env,
                             stdout=open(log_dir / f"{name}{i}.log", "w"), stderr=subprocess.STDOUT)
            for i in (0, 1)]


@pytest.mark.slow  # two processes compiling and killed twice: about two minutes on 2 cores
def test_two_processes_checkpoint_are_killed_and_resume(tmp_path):
    out = tmp_path / "run"
    procs = launch(ARGS + ["--out", out], tmp_path, "first")
    try:  # wait for the checkpoint at step 750, however long the machine takes
        while not (out / "checkpoints" / "step_000000750").exists():
            assert all(p.poll() is None for p in procs), (tmp_path / "first0.log").read_text()[-3000:]
            time.sleep(0.05)
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
    kept = rd.checkpoint_dirs(out)
    assert kept and 750 <= kept[-1][0] < 1500

    procs = launch(["--resume", out, "--no-progress", "--bootstrap-reps", "1000"], tmp_path, "resume")
    for i, p in enumerate(procs):
        assert p.wait(timeout=600) == 0, (tmp_path / f"resume{i}.log").read_text()[-3000:]
    assert f"from step_{kept[-1][0]:09d}" in (tmp_path / "resume0.log").read_text()
    for sid in (0, 1):  # each process wrote its own seed's rows, continued without a gap
        assert [int(r["step"]) for r in rd.read_metrics(out, sid)] == list(range(250, 1501, 250))

    # The same run in one process on one device: the same numbers (up to the rounding of
    # a batch of two seeds against one per device); the kill cost nothing.
    assert bench.main(ARGS + ["--out", str(tmp_path / "one")]) == 0
    two, one = ms.load_seed_states(out), ms.load_seed_states(tmp_path / "one")
    assert two.step.tolist() == one.step.tolist() == [1401, 1401]
    for a, b in zip(jax.tree.leaves(two.sampler_params), jax.tree.leaves(one.sampler_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)
