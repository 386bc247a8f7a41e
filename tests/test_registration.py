"""``import sqljax`` registers the ``sqljax/...`` gymnasium ids, whichever of sqljax and
gymnasium is imported first, without importing gymnasium itself (each check in a fresh
interpreter, so no other test's imports help)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sqljax

REPO = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_import_sqljax_alone():
    res = _run("import sys\n"
               "import sqljax\n"
               "assert 'gymnasium' not in sys.modules, 'import sqljax loaded gymnasium'\n"
               "print(sqljax.__version__)\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == sqljax.__version__


@pytest.mark.parametrize("imports", ["import gymnasium as gym\nimport sqljax\n",
                                     "import sqljax\nimport gymnasium as gym\n"],
                         ids=["gymnasium-first", "sqljax-first"])
def test_import_sqljax_registers_multigoal(imports):
    res = _run(imports
               + "env = gym.make('sqljax/MultiGoal-v0')\n"
               "obs, info = env.reset(seed=0)\n"
               "assert obs.shape == (2,), obs.shape\n"
               "print('ok')\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


@pytest.mark.parametrize("first", ["sqljax.envs", "sqljax.envs.registry", "sqljax.envs.gym_adapter",
                                   "sqljax.learners", "gymnasium.spaces"])
def test_every_sqljax_id_registered_whichever_module_comes_first(first):
    res = _run(f"import {first}\n"
               "import importlib.util\n"
               "importlib.util.find_spec('gymnasium')  # a look-up alone registers nothing\n"
               "import sqljax\n"
               "import gymnasium as gym\n"
               "ids = {i for i in gym.registry if i.startswith('sqljax/')}\n"
               "from sqljax.envs.registry import TASKS\n"
               "want = {t.id for t in TASKS if t.id.startswith('sqljax/')}  # the table's own ids\n"
               "assert 'sqljax/MultiGoal-v0' in want and len(want) >= 9, want\n"
               "assert ids == want, ids\n"
               "print('ok')\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
