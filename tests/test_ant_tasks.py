"""Ant skill-transfer tasks: spaces, rewards and wall geometry (fast, CPU only)."""

import math
import pickle

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import sqljax.envs.gym_adapter  # noqa: F401  (registers the sqljax/* ids)
from sqljax.envs.ant_tasks import (
    HALLWAY_WIDTHS,
    UMAZE_GOAL,
    UMAZE_GOAL_RADIUS,
    UMAZE_GOAL_REWARD,
    UMAZE_INNER_WALL,
    AntAnyDirection,
    AntHallway,
    AntUMaze,
    umaze_geodesic_distance,
)

TASK_IDS = [
    "sqljax/AntAnyDirection-v0",
    "sqljax/AntHallwayWide-v0",
    "sqljax/AntHallwayNarrow-v0",
    "sqljax/AntUMaze-v0",
]
TORSO_RADIUS = 0.25


def _push(env, vxy, xy=(0.0, 0.0), steps=1, seed=0):
    """Reset, put the torso at ``xy`` with horizontal velocity ``vxy``, step with zero
    torques; returns the per-step (info, reward, torso xpos before, after)."""
    env.reset(seed=seed)
    qpos = env.init_qpos.copy()
    qpos[:2] = xy
    qvel = np.zeros(env.model.nv)
    qvel[:2] = vxy
    env.set_state(qpos, qvel)
    out = []
    for _ in range(steps):
        before = env.data.body("torso").xpos[:2].copy()
        _, reward, _, _, info = env.step(np.zeros(env.action_space.shape))
        out.append((info, reward, before, env.data.body("torso").xpos[:2].copy()))
    return out


def _reward_sum(info):
    return info["reward_forward"] + info["reward_survive"] + info["reward_ctrl"] + info["reward_contact"]


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_make_reset_step_spaces_match_ant_v5(env_id):
    ant = gym.make("Ant-v5")
    env = gym.make(env_id)
    assert env.spec.max_episode_steps == 1000
    assert env.observation_space.shape == ant.observation_space.shape == (105,)
    assert env.action_space == ant.action_space
    assert env.action_space.shape == (8,)
    obs, info = env.reset(seed=3)
    assert obs.shape == (105,) and env.observation_space.contains(obs)
    assert {"x_position", "y_position"} <= set(info)
    env.action_space.seed(3)
    for _ in range(5):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs.shape == (105,) and np.all(np.isfinite(obs)) and np.isfinite(reward)
    for key in ("x_position", "y_position", "x_velocity", "y_velocity", "reward_forward"):
        assert key in info
    # Same model state layout as Ant-v5: the seeded reset gives the very same observation.
    np.testing.assert_array_equal(env.reset(seed=7)[0], ant.reset(seed=7)[0])
    env.close()
    ant.close()


@pytest.mark.parametrize("direction", [(-1.0, 0.0), (0.0, 1.0), (-0.6, -0.8)])
def test_any_direction_pays_xy_speed(direction):
    env = AntAnyDirection()
    ant = gym.make("Ant-v5").unwrapped
    vxy = 3.0 * np.asarray(direction)
    (info, reward, before, after), = _push(env, vxy)
    (ant_info, ant_reward, _, _), = _push(ant, vxy)
    speed = np.linalg.norm(after - before) / env.dt
    assert speed > 1.0
    assert info["reward_forward"] == pytest.approx(speed, rel=1e-9)
    assert info["xy_speed"] == pytest.approx(speed, rel=1e-9)
    assert reward == pytest.approx(_reward_sum(info), rel=1e-9)
    # Identical physics to Ant-v5, whose forward term would be -speed, 0 or less.
    assert info["x_velocity"] == pytest.approx(ant_info["x_velocity"])
    assert ant_info["reward_forward"] <= 0.1 * speed
    assert info["reward_forward"] > ant_info["reward_forward"] + 0.5 * speed
    assert reward - ant_reward == pytest.approx(info["reward_forward"] - ant_info["reward_forward"])
    # The velocity is also in info, signed.
    assert np.sign(info["x_velocity"]) == np.sign(direction[0]) or direction[0] == 0.0


@pytest.mark.parametrize("variant,speed", [("wide", 10.0), ("narrow", 5.0)])
@pytest.mark.parametrize("side", [1.0, -1.0])
def test_hallway_walls_stop_the_torso(variant, speed, side):
    half = HALLWAY_WIDTHS[variant] / 2
    steps = 40
    open_y = [i["y_position"] for i, *_ in _push(AntAnyDirection(), (0.0, side * speed), steps=steps)]
    hall = AntHallway(variant)
    assert hall.half_width == half
    hall_y = [i["y_position"] for i, *_ in _push(hall, (0.0, side * speed), steps=steps)]
    # Without walls the same push carries the torso past the corridor's half-width...
    assert max(abs(y) for y in open_y) > half + 0.5
    # ...with walls the torso (a 0.25 m sphere) stays inside.
    assert max(abs(y) for y in hall_y) < half - TORSO_RADIUS + 0.05


def test_hallway_reward_is_forward_speed():
    env = AntHallway("narrow")
    for vx in (3.0, -3.0):
        (info, reward, before, after), = _push(env, (vx, 0.0))
        vx_measured = (after[0] - before[0]) / env.dt
        assert info["reward_forward"] == pytest.approx(vx_measured, rel=1e-9)
        assert np.sign(info["reward_forward"]) == np.sign(vx)
        assert reward == pytest.approx(_reward_sum(info), rel=1e-9)


def test_narrow_hallway_reset_is_clear_of_the_walls():
    env = AntHallway("narrow")
    walls = {mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_GEOM, n) for n in ("wall_left", "wall_right")}
    for seed in range(8):
        env.reset(seed=seed)
        for _ in range(10):
            env.step(np.zeros(8))
            contacts = env.data.contact[: env.data.ncon]
            assert not (set(contacts.geom1) | set(contacts.geom2)) & walls


def test_umaze_goal_bump_only_near_goal():
    env = AntUMaze()
    gx, gy = UMAZE_GOAL
    r = UMAZE_GOAL_RADIUS
    cases = [
        ((gx, gy), True),
        ((gx + 0.6 * r, gy - 0.6 * r), True),
        ((gx, gy - 1.5 * r), False),
        ((gx + 2.0, gy), False),
        ((0.0, 0.0), False),
        ((8.0, 8.0), False),
        ((8.0, 0.0), False),
    ]
    for xy, near in cases:
        (info, reward, _, after), = _push(env, (0.0, 0.0), xy=xy)
        assert info["is_success"] is near, xy
        assert info["reward_goal"] == (UMAZE_GOAL_REWARD if near else 0.0), xy
        assert reward == pytest.approx(_reward_sum(info) + info["reward_goal"], rel=1e-9)
        assert info["goal_distance"] == pytest.approx(np.linalg.norm(after - np.asarray(UMAZE_GOAL)))


def test_umaze_progress_reward_and_walls():
    env = AntUMaze()
    # Start: heading east along the bottom arm is progress around the U.
    (info, reward, before, after), = _push(env, (3.0, 0.0))
    expected = (umaze_geodesic_distance(before) - umaze_geodesic_distance(after)) / env.dt
    assert info["reward_forward"] == pytest.approx(expected, rel=1e-9)
    assert info["reward_forward"] > 1.0
    assert info["geodesic_distance"] == pytest.approx(umaze_geodesic_distance(after))
    # Heading straight north at the goal from the start hits the inner wall (face y = 2),
    # which an open arena would not stop.
    wall_face = UMAZE_INNER_WALL[2]
    maze_y = [i["y_position"] for i, *_ in _push(env, (0.0, 8.0), steps=40)]
    open_y = [i["y_position"] for i, *_ in _push(AntAnyDirection(), (0.0, 8.0), steps=40)]
    assert max(open_y) > wall_face + 1.0
    assert max(maze_y) < wall_face - TORSO_RADIUS + 0.05


def test_umaze_geodesic_distance():
    gx, gy = UMAZE_GOAL
    assert umaze_geodesic_distance((gx, gy)) == 0.0
    assert umaze_geodesic_distance((8.0, 8.0)) == pytest.approx(8.0)
    assert umaze_geodesic_distance((8.0, 0.0)) == pytest.approx(2 * math.sqrt(40))
    assert umaze_geodesic_distance((0.0, 0.0)) == pytest.approx(2 * math.sqrt(40) + 4)
    # Continuous (1-Lipschitz) over the free space, including where the route changes.
    xs = np.arange(-2.0, 10.0 + 1e-9, 0.1)
    _, xmax, ymin, ymax = UMAZE_INNER_WALL
    # Free space: the square [-2, 10]^2 without the inner wall, which meets the outer
    # west wall (so its x = -2 face is not free).
    free = lambda x, y: not (x < xmax - 1e-9 and ymin < y < ymax)  # noqa: E731
    d = {(i, j): umaze_geodesic_distance((x, y)) for i, x in enumerate(xs) for j, y in enumerate(xs) if free(x, y)}
    for (i, j), v in d.items():
        for nb in ((i + 1, j), (i, j + 1)):
            if nb in d:
                assert abs(d[nb] - v) <= 0.1 + 1e-9, (xs[i], xs[j])


def test_kwargs_and_pickle():
    env = gym.make("sqljax/AntHallwayNarrow-v0", corridor_width=3.0, ctrl_cost_weight=0.1)
    assert env.unwrapped.half_width == 1.5
    copy = pickle.loads(pickle.dumps(env.unwrapped))
    assert isinstance(copy, AntHallway) and copy.half_width == 1.5 and copy._ctrl_cost_weight == 0.1
    maze = pickle.loads(pickle.dumps(AntUMaze(goal_reward=2.0)))
    assert maze.goal_reward == 2.0
    with pytest.raises(TypeError):
        AntAnyDirection(xml_file="ant.xml")
    with pytest.raises(ValueError):
        AntHallway("medium")


@pytest.mark.parametrize("name", ["AntAnyDirection", "AntHallwayWide", "AntHallwayNarrow", "AntUMaze"])
def test_v1_tasks_take_rllabs_reward_weights(name):
    """-v1: the same task with rllab's Ant weights (control 0.005, alive 0.05, contact
    5e-4): the same physics and motion term, other costs and bonus."""
    v0, v1 = gym.make(f"sqljax/{name}-v0"), gym.make(f"sqljax/{name}-v1")
    assert v1.observation_space == v0.observation_space and v1.action_space == v0.action_space
    action = np.full(8, 0.8)
    for env in (v0, v1):
        env.reset(seed=2)
    (o0, r0, *_, i0), (o1, r1, *_, i1) = v0.step(action), v1.step(action)
    np.testing.assert_array_equal(o0, o1)
    assert i1["reward_forward"] == i0["reward_forward"]
    assert i1["reward_ctrl"] == pytest.approx(-0.005 * np.sum(action ** 2))
    assert i0["reward_ctrl"] == pytest.approx(-0.5 * np.sum(action ** 2))
    assert i1["reward_survive"] == 0.05 and i0["reward_survive"] == 1.0
    assert i1["reward_contact"] == pytest.approx(i0["reward_contact"])
    assert r1 - r0 == pytest.approx(-0.95 + (0.5 - 0.005) * np.sum(action ** 2)
                                    + i1.get("reward_goal", 0.0) - i0.get("reward_goal", 0.0))
