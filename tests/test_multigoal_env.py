"""The multi-goal environment: JAX and gymnasium front ends agree, and the numbers are the paper's."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sqljax.envs.gym_adapter  # noqa: F401  (registers sqljax/MultiGoal-v0)
from sqljax.envs import multigoal as mg


def hand_reward(next_pos, action, goals=mg.GOALS):
    """The reward written out directly from the paper's definition."""
    a = np.clip(np.asarray(action, np.float64), -1, 1)
    d2 = min((next_pos[0] - gx) ** 2 + (next_pos[1] - gy) ** 2 for gx, gy in goals)
    r = -(30.0 * (a[0] ** 2 + a[1] ** 2) + 1.0 * d2)
    return r + (10.0 if d2 < 1.0 else 0.0)


def jax_rollout(start, actions):
    step = jax.jit(mg.step)
    state = mg.init_state(start)
    key = jax.random.key(0)
    out = []
    for a in actions:
        obs, state, r, term, trunc, info = step(key, state, jnp.asarray(a, jnp.float32))
        out.append((np.asarray(obs), float(r), bool(term), bool(trunc), int(info["goal"])))
        if term or trunc:
            break
    return out


def gym_rollout(start, actions):
    env = gym.make("sqljax/MultiGoal-v0")
    env.reset(seed=0, options={"position": start})
    out = []
    for a in actions:
        obs, r, term, trunc, info = env.step(np.asarray(a, np.float32))
        out.append((obs, r, term, trunc, info["goal"]))
        if term or trunc:
            break
    return out


def assert_same(a, b):
    assert len(a) == len(b)
    for (o1, r1, te1, tr1, g1), (o2, r2, te2, tr2, g2) in zip(a, b):
        np.testing.assert_allclose(o1, o2, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(r1, r2, rtol=1e-5, atol=1e-5)
        assert (te1, tr1, g1) == (te2, tr2, g2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jax_and_gym_trajectories_agree(seed):
    rng = np.random.default_rng(seed)
    start = rng.normal(0, 0.1, 2).astype(np.float32)
    # Small random actions (out of range too, to exercise clipping) for the full horizon.
    actions = rng.uniform(-1.5, 1.5, (40, 2)).astype(np.float32) * 0.3
    j, g = jax_rollout(start, actions), gym_rollout(start, actions)
    assert_same(j, g)
    assert len(j) == 30 and j[-1][3] and not any(t[3] for t in j[:-1])  # truncated at step 30


def test_jax_and_gym_agree_when_reaching_a_goal():
    actions = [(0.0, -1.0)] * 4 + [(0.0, 0.0)] * 10
    j, g = jax_rollout((0.1, -0.3), actions), gym_rollout((0.1, -0.3), actions)
    assert_same(j, g)
    assert len(j) == 4 and j[-1][2] and j[-1][4] == 3  # goal (0, -5)


@pytest.mark.parametrize("goal_index", range(4))
def test_reaching_a_goal_terminates_with_bonus(goal_index):
    goal = np.asarray(mg.GOALS[goal_index], np.float32)
    start = goal * 0.7  # 1.5 away from the goal along its axis
    action = goal / 5.0 * 0.8  # 0.8 towards it: ends 0.7 away, inside the radius
    obs, state, r, term, trunc, info = mg.step(jax.random.key(0), mg.init_state(start), jnp.asarray(action))
    assert bool(term) and not bool(trunc)
    assert int(info["goal"]) == goal_index
    np.testing.assert_allclose(float(r), -(30 * 0.64 + 0.49) + 10.0, rtol=1e-5)
    np.testing.assert_allclose(float(r), hand_reward(np.asarray(obs), action), rtol=1e-5)


def test_just_outside_the_radius_is_no_goal():
    obs, _, r, term, _, info = mg.step(jax.random.key(0), mg.init_state((3.9, 0.0)), jnp.asarray((0.0, 0.0)))
    assert not bool(term) and int(info["goal"]) == -1
    np.testing.assert_allclose(float(r), -(1.1**2), rtol=1e-5)


def test_clipping_at_walls_and_action_bounds():
    state = mg.init_state((6.5, -6.8))
    obs, state, r, *_ = mg.step(jax.random.key(0), state, jnp.asarray((3.0, -0.5)))
    # The action is clipped to (1, -0.5), the position to the wall at +-7.
    np.testing.assert_allclose(np.asarray(obs), (7.0, -7.0))
    np.testing.assert_allclose(float(r), -(30 * (1.0 + 0.25) + min(2**2 + 7**2, 12**2 + 49, 49 + 4**2, 49 + 2**2)), rtol=1e-5)
    obs, state, *_ = mg.step(jax.random.key(0), state, jnp.asarray((1.0, -1.0)))
    np.testing.assert_allclose(np.asarray(obs), (7.0, -7.0))
    obs, *_ = mg.step(jax.random.key(0), state, jnp.asarray((-1.0, 1.0)))
    np.testing.assert_allclose(np.asarray(obs), (6.0, -6.0))


def test_reward_matches_hand_computation():
    rng = np.random.default_rng(3)
    for _ in range(20):
        pos = rng.uniform(-7, 7, 2).astype(np.float32)
        act = rng.uniform(-1.2, 1.2, 2).astype(np.float32)
        obs, _, r, term, _, info = mg.step(jax.random.key(0), mg.init_state(pos), jnp.asarray(act))
        np.testing.assert_allclose(float(r), hand_reward(np.asarray(obs, np.float64), act), rtol=1e-5, atol=1e-4)
        expected_next = np.clip(pos + np.clip(act, -1, 1), -7, 7)
        np.testing.assert_allclose(np.asarray(obs), expected_next, rtol=1e-6)
    # One fully by hand: from (1, 2) with action (0.5, -0.5): s' = (1.5, 1.5),
    # nearest goal (5,0) or (0,5) at 3.5^2 + 1.5^2 = 14.5; action cost 30 * 0.5 = 15.
    _, _, r, *_ = mg.step(jax.random.key(0), mg.init_state((1.0, 2.0)), jnp.asarray((0.5, -0.5)))
    np.testing.assert_allclose(float(r), -29.5, rtol=1e-6)


def test_reset_distribution_and_vmap():
    keys = jax.random.split(jax.random.key(0), 4096)
    obs, state = jax.jit(jax.vmap(mg.reset))(keys)
    assert obs.shape == (4096, 2) and state.time.shape == (4096,)
    assert int(state.time.max()) == 0
    np.testing.assert_allclose(np.asarray(obs).std(0), 0.1, rtol=0.1)
    np.testing.assert_allclose(np.asarray(obs).mean(0), 0.0, atol=0.01)
    acts = jnp.ones((4096, 2)) * 0.5
    obs2, state2, r, term, trunc, info = jax.vmap(mg.step)(keys, state, acts)
    assert obs2.shape == (4096, 2) and r.shape == (4096,) and info["goal"].shape == (4096,)
    assert r.dtype == jnp.float32 and term.dtype == jnp.bool_


def test_gym_env_spaces_and_registration():
    env = gym.make("sqljax/MultiGoal-v0")
    assert env.spec.max_episode_steps == 30
    assert env.action_space.shape == (2,) and np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    assert env.observation_space.shape == (2,)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    assert np.all(np.abs(obs) < 1.0)


def test_params_validation():
    with pytest.raises(ValueError, match="position_bound"):
        mg.MultiGoalParams(position_bound=0.0)
    assert hash(mg.MultiGoalParams(goals=[[1, 2]])) == hash(mg.MultiGoalParams(goals=((1.0, 2.0),)))


def test_core_library_does_not_import_gymnasium():
    import subprocess
    import sys

    code = "import sys, sqljax; assert 'gymnasium' not in sys.modules, 'core imported gymnasium'"
    subprocess.run([sys.executable, "-c", code], check=True)
