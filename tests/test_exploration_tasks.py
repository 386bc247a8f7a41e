"""Exploration tasks (paper §5.2): the swimmer's symmetric reward and finish line, the
two-passage maze's geometry, reward and termination (fast, CPU only)."""

import pickle

import gymnasium as gym
import numpy as np
import pytest

import sqljax.envs.gym_adapter  # noqa: F401  (registers the sqljax/* ids)
from sqljax.envs import registry
from sqljax.envs.ant_tasks import AntAnyDirection
from sqljax.envs.exploration_tasks import (
    EPISODE_STEPS,
    FINISH_LINE_BONUS,
    FINISH_LINE_X,
    MAZE_BARRIER,
    MAZE_BUMP_WIDTH,
    MAZE_DIVIDER,
    MAZE_FREE_SPACE,
    MAZE_START,
    MAZE_TARGET,
    TORSO_RADIUS,
    AntTwoPassageMaze,
    SwimmerFinishLine,
    dead_end_distance,
    target_bump,
)

SWIMMER_ID = "sqljax/SwimmerFinishLine-v0"
MAZE_ID = "sqljax/AntTwoPassageMaze-v0"


# ------------------------------------------------------------------------------ swimmer
def _swimmer_from(env, qpos, qvel, actions):
    """Set the state, apply the actions; returns the (reward, info) of every step."""
    env.reset(seed=0)
    env.set_state(np.asarray(qpos, float), np.asarray(qvel, float))
    return [env.step(np.asarray(a, float))[1::3] for a in actions]


def _mirror(qpos, qvel, actions):
    """The reflection x -> -x: frame x and vx, joint angles and rates, torques negate;
    heading theta -> pi - theta."""
    x, y, theta, j1, j2 = qpos
    vx, vy, w, dj1, dj2 = qvel
    return [-x, y, np.pi - theta, -j1, -j2], [-vx, vy, -w, -dj1, -dj2], -np.asarray(actions)


def test_swimmer_spaces_and_registration():
    env = gym.make(SWIMMER_ID)
    assert env.spec.max_episode_steps == EPISODE_STEPS == 500
    assert env.observation_space.shape == (12,) and env.action_space.shape == (2,)
    obs, info = env.reset(seed=1)
    com = env.unwrapped.com_xy()
    np.testing.assert_array_equal(obs[:5], env.unwrapped.data.qpos)
    np.testing.assert_allclose(obs[10:], com)
    assert abs(info["com_x"]) < 0.15 and info["past_finish_line"] is False
    assert registry.find_task("SwimmerFinishLine").id == SWIMMER_ID
    assert registry.default_steps("SwimmerFinishLine") == 500_000
    copy = pickle.loads(pickle.dumps(SwimmerFinishLine(finish_line=2.0, bonus=0.5)))
    assert (copy.finish_line, copy.bonus) == (2.0, 0.5)
    with pytest.raises(TypeError):
        SwimmerFinishLine(exclude_current_positions_from_observation=True)


@pytest.mark.parametrize("speed", [0.3, 1.0])
def test_swimmer_mirrored_velocity_pays_the_same(speed):
    """A straight swimmer gliding at +v or -v from the same place: the same reward."""
    env = SwimmerFinishLine()
    zero = np.zeros((5, 2))
    fwd = _swimmer_from(env, [0.2, 0, 0, 0, 0], [speed, 0, 0, 0, 0], zero)
    bwd = _swimmer_from(env, [0.2, 0, 0, 0, 0], [-speed, 0, 0, 0, 0], zero)
    for (r_f, i_f), (r_b, i_b) in zip(fwd, bwd):
        assert i_f["x_velocity"] > 0.05 and i_b["x_velocity"] < -0.05
        assert r_f == pytest.approx(r_b, rel=1e-9, abs=1e-12)
        assert r_f == pytest.approx(abs(i_f["x_velocity"]), rel=1e-9)  # no control cost at a = 0
        assert not i_f["past_finish_line"] and i_f["reward_finish"] == 0.0


def test_swimmer_reward_symmetric_under_reflection_before_the_line():
    """Any state and torques, and their mirror image: step for step the same reward."""
    rng = np.random.default_rng(0)
    env = SwimmerFinishLine()
    for _ in range(3):
        qpos = [rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(-np.pi, np.pi),
                *rng.uniform(-1.2, 1.2, 2)]
        qvel = rng.normal(0, 0.5, 5)
        actions = rng.uniform(-1, 1, (25, 2))
        steps = _swimmer_from(env, qpos, qvel, actions)
        mirrored = _swimmer_from(env, *_mirror(qpos, qvel, actions))
        for (r, info), (r_m, info_m) in zip(steps, mirrored):
            assert abs(info["com_x"]) < FINISH_LINE_X
            assert info_m["com_x"] == pytest.approx(-info["com_x"], abs=1e-7)
            assert r_m == pytest.approx(r, rel=1e-6, abs=1e-9)
            expected = abs(info["x_velocity"]) + info["reward_ctrl"]
            assert r == pytest.approx(expected, rel=1e-12)


def test_swimmer_bonus_only_past_the_line():
    env = SwimmerFinishLine()
    zero = np.zeros((1, 2))
    for x, past in ((FINISH_LINE_X + 0.3, True), (FINISH_LINE_X - 0.3, False), (-FINISH_LINE_X - 0.3, False)):
        ((reward, info),) = _swimmer_from(env, [x, 0, 0, 0, 0], np.zeros(5), zero)
        assert info["com_x"] == pytest.approx(x, abs=1e-6)  # a straight body's frame is its centre of mass
        assert info["past_finish_line"] is past
        assert info["reward_finish"] == (FINISH_LINE_BONUS if past else 0.0)
        assert reward == pytest.approx(abs(info["x_velocity"]) + (FINISH_LINE_BONUS if past else 0.0))
    # crossing: the same glide pays the bonus from the step that ends past the line
    steps = _swimmer_from(env, [FINISH_LINE_X - 0.02, 0, 0, 0, 0], [1.0, 0, 0, 0, 0], np.zeros((3, 2)))
    for reward, info in steps:
        bonus = FINISH_LINE_BONUS if info["com_x"] >= FINISH_LINE_X else 0.0
        assert reward == pytest.approx(abs(info["x_velocity"]) + bonus, rel=1e-9)
    assert steps[-1][1]["past_finish_line"]


def test_swimmer_never_terminates_and_truncates_at_T():
    env = gym.make(SWIMMER_ID)
    env.reset(seed=0)
    env.action_space.seed(0)
    for t in range(1, EPISODE_STEPS + 1):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated and np.isfinite(reward)
        assert truncated == (t == EPISODE_STEPS)
        assert {"x_position", "com_x", "x_velocity"} <= set(info)


# ---------------------------------------------------------------------------------- maze
def _inside(p, box, margin=0.0):
    xmin, xmax, ymin, ymax = box
    return xmin - margin <= p[0] <= xmax + margin and ymin - margin <= p[1] <= ymax + margin


def _box_distance(px, py, box):
    xmin, xmax, ymin, ymax = box
    dx = np.maximum(np.maximum(xmin - px, px - xmax), 0.0)
    dy = np.maximum(np.maximum(ymin - py, py - ymax), 0.0)
    return np.hypot(dx, dy)


def _brute_force_reach(r, h=0.05, lower_passage_open=False):
    """Grid over the maze: the torso-centre positions (r from every face) reachable from
    the start through 4-neighbours; returns the least distance to the target among them."""
    xmin, xmax, ymin, ymax = MAZE_FREE_SPACE
    xs = np.round(np.arange(xmin, xmax + h / 2, h), 9)
    ys = np.round(np.arange(ymin, ymax + h / 2, h), 9)
    px, py = np.meshgrid(xs, ys, indexing="ij")
    free = (px >= xmin + r) & (px <= xmax - r) & (py >= ymin + r) & (py <= ymax - r)
    for box in (MAZE_DIVIDER, MAZE_BARRIER):
        free &= _box_distance(px, py, box) > r  # strictly: with r = 0 a wall's faces are walls
    if not lower_passage_open:  # cut the lower passage, under the divider
        free &= ~((px >= MAZE_DIVIDER[0]) & (px <= MAZE_DIVIDER[1]) & (py < MAZE_DIVIDER[2]))
    reached = np.zeros_like(free)
    reached[np.argmin(abs(xs - MAZE_START[0])), np.argmin(abs(ys - MAZE_START[1]))] = True
    while True:
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= free
        if (grown == reached).all():
            break
        reached = grown
    return float(np.hypot(px - MAZE_TARGET[0], py - MAZE_TARGET[1])[reached].min())


def test_maze_geometry():
    # the straight line from the start to the target runs into the upper passage and the barrier
    line = np.linspace(MAZE_START, MAZE_TARGET, 401)
    upper = (MAZE_DIVIDER[0], MAZE_BARRIER[0], MAZE_DIVIDER[3], MAZE_FREE_SPACE[3])
    assert any(_inside(p, upper) and p[0] > MAZE_DIVIDER[0] + 1 for p in line)
    assert any(_inside(p, MAZE_BARRIER) for p in line)
    assert not any(_inside(p, MAZE_DIVIDER) for p in line)
    # the barrier spans the upper passage, from the divider to the north wall
    assert MAZE_BARRIER[2] <= MAZE_DIVIDER[3] and MAZE_BARRIER[3] >= MAZE_FREE_SPACE[3]
    assert MAZE_DIVIDER[0] < MAZE_BARRIER[0] < MAZE_BARRIER[1] <= MAZE_DIVIDER[1]


@pytest.mark.parametrize("r", [0.0, TORSO_RADIUS, 0.6])
def test_dead_end_distance_matches_a_brute_force_grid(r):
    h = 0.05
    d = dead_end_distance(r)
    # the grid's reachable points are a subset of the true set, at most a step from its points
    assert d - 1e-9 <= _brute_force_reach(r, h) <= d + h + 1e-9
    # with the lower passage open the target itself is reached
    assert _brute_force_reach(r, h, lower_passage_open=True) <= h
    if r == TORSO_RADIUS:
        assert d == pytest.approx(3.25)


def _place_ant(env, xy, quat=(1.0, 0.0, 0.0, 0.0), vxy=(0.0, 0.0), seed=0):
    env.reset(seed=seed)
    qpos = env.init_qpos.copy()
    qpos[:2] = xy
    qpos[3:7] = quat
    qvel = np.zeros(env.model.nv)
    qvel[:2] = vxy
    env.set_state(qpos, qvel)


def test_maze_spaces_and_registration():
    env = gym.make(MAZE_ID)
    assert env.spec.max_episode_steps == 500
    assert env.observation_space.shape == (107,) and env.action_space.shape == (8,)
    obs, info = env.reset(seed=2)
    np.testing.assert_array_equal(obs[:2], env.unwrapped.data.qpos[:2])  # torso x, y observed
    assert info["target_distance"] == pytest.approx(np.hypot(*(np.asarray(MAZE_TARGET) - obs[:2])))
    assert registry.find_task("AntTwoPassageMaze").id == MAZE_ID
    assert registry.default_steps("AntTwoPassageMaze") == 1_000_000
    u = env.unwrapped
    assert (u._ctrl_cost_weight, u._healthy_reward) == (0.005, 0.05)  # rllab's weights
    copy = pickle.loads(pickle.dumps(AntTwoPassageMaze(bump_width=2.0)))
    assert copy.bump_width == 2.0 and copy._ctrl_cost_weight == 0.005


@pytest.mark.parametrize("xy", [MAZE_START, (4.5, 0.0), (4.0, -5.0), (MAZE_TARGET[0], MAZE_TARGET[1] + 0.5)])
def test_maze_reward_is_the_bump_plus_alive_and_costs(xy):
    env = AntTwoPassageMaze()
    _place_ant(env, xy)
    _, reward, terminated, _, info = env.step(np.full(8, 0.3))
    torso = env.data.qpos[:2]
    distance = np.hypot(*(torso - np.asarray(MAZE_TARGET)))
    assert not terminated
    assert (info["x_position"], info["y_position"]) == (torso[0], torso[1])
    assert info["target_distance"] == pytest.approx(distance)
    assert info["reward_target"] == pytest.approx(np.exp(-distance**2 / (2 * MAZE_BUMP_WIDTH**2)))
    assert info["reward_forward"] == 0.0 and info["reward_survive"] == 0.05
    assert info["reward_ctrl"] == pytest.approx(-0.005 * 8 * 0.09)
    parts = info["reward_target"] + info["reward_survive"] + info["reward_ctrl"] + info["reward_contact"]
    assert reward == pytest.approx(parts, rel=1e-12)
    assert info["below_dead_end"] == (distance < dead_end_distance())
    assert target_bump(MAZE_TARGET) == 1.0


def test_maze_barrier_and_divider_stop_the_torso():
    steps = 40
    for vxy, axis, limit in (((8.0, 0.0), 0, MAZE_BARRIER[0] - TORSO_RADIUS),
                             ((0.0, -8.0), 1, -(MAZE_DIVIDER[3] + TORSO_RADIUS))):
        reach = {}
        for name, env in (("maze", AntTwoPassageMaze()), ("open", AntAnyDirection())):
            _place_ant(env, (3.0, 0.0), vxy=vxy)
            sign = 1.0 if axis == 0 else -1.0
            reach[name] = max(sign * env.step(np.zeros(8))[4]["xy"[axis] + "_position"] for _ in range(steps))
        assert reach["open"] > limit + 0.5  # the push alone would carry it through
        assert reach["maze"] < limit + 0.05


def test_maze_terminates_when_flipped_and_truncates_at_T():
    env = AntTwoPassageMaze()
    tilt = np.deg2rad(60) / 2
    for quat, flipped in (((0.0, 1.0, 0.0, 0.0), True), ((np.cos(tilt), np.sin(tilt), 0.0, 0.0), False)):
        _place_ant(env, MAZE_START, quat=quat)
        _, _, terminated, truncated, info = env.step(np.zeros(8))
        assert terminated is flipped and not truncated
        assert (info["torso_up"] < 0) is flipped
        assert info["reward_survive"] == (0.0 if flipped else 0.05)
    env = gym.make(MAZE_ID)
    env.reset(seed=0)
    for t in range(1, 501):
        _, _, terminated, truncated, _ = env.step(np.zeros(8))
        assert not terminated and truncated == (t == 500)
