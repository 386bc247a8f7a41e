"""JAX-native environments through the command lines: a gymnax env with a continuous
action space trains in experiments.train and experiments.bench via the compiled loop."""

import json

import gymnax  # noqa: E402,F401  (make install puts it in the venv: see pyproject.toml)
import numpy as np
import pytest

import sqljax
from sqljax.envs import make_jax_env
from sqljax.loops import multi_seed as ms
from sqljax.store import run_dir as rd

FLAGS = ["--env", "gymnax:Pendulum-v1", "--steps", "400", "--hidden-sizes", "32",
         "--batch-size", "32", "--value-n-particles", "4", "--kernel-n-particles", "4",
         "--learning-starts", "100", "--eval-every", "200", "--log-every", "100",
         "--checkpoint-every", "200", "--eval-episodes", "2", "--no-progress"]


def test_make_jax_env_speaks_the_protocol():
    import jax

    env, params = make_jax_env("gymnax:Pendulum-v1")
    obs, state = env.reset(jax.random.key(0), params)
    obs2, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1), state, np.array([0.5], np.float32), params)
    assert obs.shape == (3,) and np.shape(reward) == () and "final_observation" in info
    with pytest.raises(ValueError, match="discrete"):
        make_jax_env("gymnax:CartPole-v1")


def test_gymnax_pendulum_trains_through_train_and_bench(tmp_path, capsys):
    from experiments import bench, evaluate, train

    assert train.main(FLAGS + ["--seed", "1", "--out", str(tmp_path / "one")]) == 0
    rows = rd.read_metrics(tmp_path / "one", 1)
    assert [int(r["step"]) for r in rows] == [100, 200, 300, 400]
    assert [int(r["updates"]) for r in rows] == [1, 101, 201, 301]
    assert [int(r["episodes"]) for r in rows] == [0, 1, 1, 2]  # gymnax's 200-step time limit
    assert rows[1]["eval_return"] and float(rows[1]["episode_length"]) == 200.0
    carry = ms.load_run_state(tmp_path / "one")
    exp = carry.buffer.experience
    assert not exp.terminated.any()  # Pendulum only truncates: every transition bootstraps
    # the step that ends an episode stores its true last observation, not the reset one
    assert not np.allclose(exp.next_obs[0, 0, 199], exp.obs[0, 0, 200])
    assert np.allclose(exp.next_obs[0, 0, 198], exp.obs[0, 0, 199])
    run = json.loads((tmp_path / "one" / "run.json").read_text())
    assert run["env_id"] == "gymnax:Pendulum-v1" and run["seed_ids"] == [1]
    assert sqljax.load_checkpoint(rd.latest_checkpoint(tmp_path / "one")).obs_dim == 3
    capsys.readouterr()
    assert evaluate.main(["--ckpt", str(tmp_path / "one"), "--episodes", "2"]) == 0
    printed = capsys.readouterr().out
    assert "stochastic: return" in printed and "deterministic: return" in printed

    assert bench.main(FLAGS + ["--seeds", "2", "--out", str(tmp_path / "two"),
                               "--bootstrap-reps", "1000"]) == 0
    two = ms.load_seed_states(tmp_path / "two")
    one = ms.load_seed_states(tmp_path / "one")
    assert two.step.tolist() == [301, 301]
    for a, b in zip(jax_leaves(two.sampler_params, 1), jax_leaves(one.sampler_params, 0)):
        np.testing.assert_allclose(a, b, atol=1e-5)  # seed 1 is seed 1 in both


def jax_leaves(tree, i):
    import jax

    return [np.asarray(x)[i] for x in jax.tree.leaves(tree)]
