"""mjx:AntHallwayWide, mjx:AntHallwayNarrow, mjx:AntUMaze against gymnasium's -v1 tasks.

Fast: the names, spaces, definitions and walled models against gymnasium's env; the
jnp geodesic distance against NumPy's; :func:`sqljax.envs.mjx_locomotion.reward_terms`
on hand-made steps against gymnasium's own ``step`` with its physics replaced by the
same hand-made end state (reward, termination, observation, every info key). Slow (each
model's MJX step compiles for about half a minute on a 2-core CPU): 25-step trajectories
of random actions, from gymnasium's resets and from starts that drive the ant into a
wall, every step taken by both simulators from gymnasium's state with the same action
(run with ``-s`` to see the percentiles of the differences, near walls and away).
"""

import gymnasium as gym
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

import sqljax
import sqljax.envs.gym_adapter  # noqa: F401  (registers the sqljax/* ids)
from sqljax.envs import ant_tasks, ant_walls, make_jax_env, registry

ml = pytest.importorskip("sqljax.envs.mjx_locomotion")
mat = pytest.importorskip("sqljax.envs.mjx_ant_tasks")

TASKS = ("AntHallwayWide", "AntHallwayNarrow", "AntUMaze")
PARAMS = {"AntHallwayWide": mat.ANT_HALLWAY_WIDE, "AntHallwayNarrow": mat.ANT_HALLWAY_NARROW,
          "AntUMaze": mat.ANT_UMAZE}
N_STEPS = 25
#: |MJX - gymnasium| of one step from the same state (docs/mjx.md has the figures). Steps
#: with no wall contact in MuJoCo: float32 against float64 as for mjx:AntAnyDirection
#: (tests/test_mjx_ant_tasks.py), but the wall starts throw the ant about, and contacts
#: and joint limits that switch on within a step amplify the rounding: bounds on their
#: 90th percentile (observation, reward). Steps near a wall: MJX's capsule-box collision
#: (mujoco-mjx 3.17) reports no contact while a leg is still within the contact margin of
#: a wall, where MuJoCo's soft contact already pushes, so such a step differs by up to
#: ~2.5 in a velocity of the observation, ~0.6 in the torso's and ~0.35 in the reward:
#: bounds on every step (observation; reward and info terms).
FREE_Q90_ATOL = (5e-3, 5e-4)
ANY_ATOL = (5.0, 1.0)


def f32(x):
    return jnp.asarray(x, jnp.float32)


@pytest.fixture(scope="module")
def gym_envs():
    envs = {task: gym.make(f"sqljax/{task}-v1") for task in TASKS}
    for g in envs.values():
        g.reset(seed=0)
    yield envs
    for g in envs.values():
        g.close()


def test_names_resolve_to_the_tasks():
    for task in TASKS:
        for name in (f"mjx:{task}", f"mjx:{task}-v1"):
            assert registry.find_task(name).id == f"mjx:{task}-v1"
            assert registry.is_jax_native(name)
            env, params = make_jax_env(name)
            assert params is PARAMS[task] and env.params is params
        assert registry.short_name(f"mjx:{task}-v1") == f"mjx-{task}-v1"
        assert registry.default_steps(f"mjx:{task}") == registry.default_steps(f"sqljax/{task}-v1")
        assert sqljax.config.task_preset(f"mjx:{task}") == "pretrain"
        with pytest.raises(ValueError, match=f"no mjx:{task}-v0"):
            make_jax_env(f"mjx:{task}-v0")
    envs = [make_jax_env(f"mjx:{task}")[0] for task in ("AntAnyDirection", *TASKS)]
    assert len(set(envs)) == 4  # four programs in the compiled loop's cache
    with pytest.raises(ValueError, match="given to the AntUMaze env"):
        envs[3].reset(jax.random.key(0), mat.ANT_HALLWAY_WIDE)


def test_params_need_a_tracked_point_for_a_bonus():
    with pytest.raises(ValueError, match="motion or bonus term needs"):
        ml.LocomotionParams(task="x", xml_file="ant.xml", frame_skip=1, ctrl_cost_weight=0.0,
                            reset_noise_scale=0.0, bonus=mat.umaze_goal_bonus)


@pytest.mark.parametrize("task", TASKS)
def test_spaces_definitions_and_model_match_gymnasium(gym_envs, task):
    env, params = make_jax_env(f"mjx:{task}")
    g = gym_envs[task]
    u = g.unwrapped
    assert env.observation_space(params).shape == g.observation_space.shape == (105,)
    space = env.action_space(params)
    np.testing.assert_array_equal(space.low, g.action_space.low)
    np.testing.assert_array_equal(space.high, g.action_space.high)
    assert params.max_episode_steps == g.spec.max_episode_steps == 1000
    assert env.mj_model.opt.timestep * params.frame_skip == u.dt
    for name in ("forward_reward_weight", "ctrl_cost_weight", "healthy_reward", "contact_cost_weight",
                 "contact_force_range", "healthy_z_range", "terminate_when_unhealthy", "reset_noise_scale"):
        assert getattr(params, name) == getattr(u, f"_{name}"), name
    assert params.forward_body == u._main_body and params.obs_qpos_start == 2
    # the same XML text: every size and physical field equal, the walls included
    m, gm = env.mj_model, u.model
    for size in ("nq", "nv", "nu", "nbody", "njnt", "ngeom", "nsite", "ncam"):
        assert getattr(m, size) == getattr(gm, size), size
    for field in ("body_mass", "body_inertia", "body_pos", "body_quat", "geom_size", "geom_pos",
                  "geom_quat", "geom_type", "geom_friction", "geom_contype", "geom_conaffinity",
                  "geom_condim", "geom_solref", "geom_solimp", "geom_margin", "jnt_range",
                  "dof_damping", "dof_armature", "actuator_gear", "actuator_ctrlrange", "qpos0"):
        np.testing.assert_array_equal(getattr(m, field), getattr(gm, field), err_msg=field)
    for opt in ("timestep", "integrator", "cone", "solver", "iterations", "tolerance", "gravity"):
        np.testing.assert_array_equal(getattr(m.opt, opt), getattr(gm.opt, opt), err_msg=opt)
    walls = {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, i) for i in range(m.ngeom)}
    assert {w[0] for w in (ant_walls.umaze_walls() if task == "AntUMaze" else ant_walls.hallway_walls(1.0))} <= walls


def test_geodesic_distance_is_numpys():
    rng = np.random.default_rng(0)
    xmin, xmax, ymin, ymax = ant_walls.UMAZE_FREE_SPACE
    points = np.concatenate([
        rng.uniform([xmin - 1, ymin - 1], [xmax + 1, ymax + 1], (4000, 2)),  # walls too
        rng.uniform([5.5, 1.5], [6.5, 6.5], (1000, 2)),  # around the inner wall's east face
        np.stack(np.meshgrid(np.arange(-2.0, 10.5, 0.5), np.arange(-2.0, 10.5, 0.5)), -1).reshape(-1, 2),
        [[0.0, 0.0], [6.0, 2.0], [6.0, 6.0], [0.0, 8.0], [6.0, 0.0], [6.0, 8.0], [-2.0, 2.0]],
    ])
    got = np.asarray(jax.jit(jax.vmap(mat.umaze_geodesic_distance))(f32(points)))
    want = np.array([ant_tasks.umaze_geodesic_distance(p) for p in points])
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    np.testing.assert_allclose(got[-7], 2 * np.sqrt(40) + 4, rtol=1e-6)  # from the start


def hand_made_steps(task, rng):
    """(name, xy before (2,), qpos after (15,), qvel after (14,)) steps of one task."""
    def state(xy, z=0.55):
        return np.concatenate([xy, [z, 1.0, 0, 0, 0], rng.uniform(-0.5, 0.5, 8)]), rng.standard_normal(14)

    if task == "AntUMaze":
        cases = [("bottom_arm_east", (1.0, 0.0), (1.2, 0.1)),
                 ("around_the_corner", (5.9, 1.9), (6.1, 2.1)),  # the path's choice changes
                 ("side_arm_north", (8.0, 3.0), (8.1, 3.2)),
                 ("into_the_goal", (1.05, 7.9), (0.95, 7.95)),  # the bonus starts
                 ("out_of_the_goal", (0.5, 8.5), (0.7, 8.9)),
                 ("still_at_goal", (0.2, 8.2), (0.2, 8.2)),
                 ("unhealthy_at_goal", (0.1, 8.0), (0.0, 8.1), 0.1)]  # bonus paid, not the alive term
    else:
        h = ant_walls.HALLWAY_WIDTHS["wide" if task == "AntHallwayWide" else "narrow"] / 2
        cases = [("forward", (0.0, 0.0), (0.15, 0.02)),
                 ("backward_by_the_wall", (3.0, h - 0.3), (2.9, h - 0.28)),
                 ("still", (1.0, -0.5), (1.0, -0.5)),
                 ("too_high", (0.0, 0.0), (0.1, 0.0), 1.05)]
    for name, before, after, *z in cases:
        yield (name, np.array(before), *state(np.array(after), *z))


@pytest.mark.parametrize("task", TASKS)
def test_reward_and_termination_are_gymnasiums(gym_envs, task):
    """reward_terms on hand-made steps against gymnasium's own step, whose physics is
    replaced by a jump to the same end state (and the same contact forces)."""
    u = gym_envs[task].unwrapped
    params = PARAMS[task]
    rng = np.random.default_rng(TASKS.index(task))
    for name, xy_before, qpos, qvel in hand_made_steps(task, rng):
        action = rng.uniform(-1, 1, 8)
        cfrc_ext = rng.uniform(-3, 3, (u.model.nbody, 6))  # beyond the clip range too
        cfrc_ext[0] = 0.0

        def jump(ctrl, n_frames, qpos=qpos, qvel=qvel, cfrc_ext=cfrc_ext):
            u.data.qpos[:], u.data.qvel[:] = qpos, qvel
            mujoco.mj_forward(u.model, u.data)
            u.data.cfrc_ext[:] = cfrc_ext

        u.set_state(np.concatenate([xy_before, qpos[2:]]), qvel)
        u.do_simulation = jump
        try:
            want_obs, want_reward, want_terminated, _, want_info = u.step(action)
        finally:
            del u.do_simulation

        before = ml.init_state(f32(np.concatenate([xy_before, qpos[2:]])), f32(qvel), params=params)
        after = ml.init_state(f32(qpos), f32(qvel), params=params)
        reward, terminated, info = ml.reward_terms(params, u.dt, before, after, f32(action), f32(cfrc_ext))
        assert bool(terminated) == want_terminated == name.startswith(("too", "unhealthy")), name
        np.testing.assert_allclose(float(reward), want_reward, rtol=1e-5, atol=2e-4, err_msg=name)
        assert set(want_info) <= set(info), set(want_info) - set(info)
        for k, v in want_info.items():
            np.testing.assert_allclose(float(info[k]), float(v), rtol=1e-5, atol=2e-4, err_msg=f"{name}: {k}")
        obs = ml.observation(params, after.qpos, after.qvel, f32(cfrc_ext))
        np.testing.assert_allclose(obs, want_obs, rtol=1e-6, atol=1e-6, err_msg=name)
        if task == "AntUMaze":
            assert (float(info["reward_goal"]) == 5.0) == ("goal" in name and "out" not in name), name


# ------------------------------------------------------------------ slow: physics

def wall_starts(task):
    """(name, torso x, y, torso velocity x, y) starts that drive the ant into a wall
    (and, in the U-maze, into the goal)."""
    if task == "AntHallwayWide":
        return [("left_wall", 0.0, 2.0, 0.0, 2.0), ("right_wall", 5.0, -2.0, 1.0, -2.0)]
    if task == "AntHallwayNarrow":
        return [("left_wall", 0.0, 0.0, 0.5, 2.0), ("right_wall", 5.0, -0.1, 0.0, -2.0)]
    return [("inner_wall_south", 0.0, 0.9, 0.0, 2.0), ("inner_wall_east", 7.3, 4.0, -2.0, 0.0),
            ("east_wall", 8.9, 0.0, 2.0, 0.0), ("goal", 1.1, 8.0, -1.5, 0.0)]


def run_in_gymnasium(g, rng, start=None, seed=0):
    """Steps of random actions in gymnasium from a reset (``start`` None) or from the
    reset's joints with the torso put at ``start``; per step: (qpos, qvel, warm start,
    torso xy) before it, the action, gymnasium's result and whether MuJoCo had a contact
    between the ant and a wall (a box) after any of its physics steps."""
    u = g.unwrapped
    g.reset(seed=seed)
    if start is not None:
        qpos, qvel = u.data.qpos.copy(), u.data.qvel.copy()
        qpos[:2], qvel[:2] = start[:2], start[2:]
        u.set_state(qpos, qvel)
    walls = set(np.flatnonzero(u.model.geom_type == mujoco.mjtGeom.mjGEOM_BOX).tolist())
    touched = []

    def simulate(ctrl, n_frames):  # MujocoEnv's, one physics step at a time
        u.data.ctrl[:] = ctrl
        for _ in range(n_frames):
            mujoco.mj_step(u.model, u.data)
            touched[-1] |= any(walls & set(c.geom.tolist()) for c in u.data.contact[:u.data.ncon])
        mujoco.mj_rnePostConstraint(u.model, u.data)

    u.do_simulation = simulate
    steps = []
    try:
        for _ in range(N_STEPS):
            d = u.data
            before = (d.qpos.copy(), d.qvel.copy(), d.qacc_warmstart.copy(), d.xpos[1, :2].copy())
            action = rng.uniform(-1, 1, 8)
            touched.append(False)
            result = g.step(action)
            steps.append((before, action, result, touched[-1]))
            if result[2]:
                break
    finally:
        del u.do_simulation
    return steps


@pytest.fixture(scope="module")
def stepped(gym_envs):
    """Per task: every step of two 25-step random-action trajectories from gymnasium's
    resets and of one from each of :func:`wall_starts`, taken by gymnasium and by the
    JAX env's protocol step (compiled once, vmapped) from the same state with the same
    action."""
    out = {}
    for task in TASKS:
        g = gym_envs[task]
        rng = np.random.default_rng(TASKS.index(task))
        runs = [(f"reset{seed}", run_in_gymnasium(g, rng, seed=seed)) for seed in (0, 1)]
        runs += [(name, run_in_gymnasium(g, rng, np.array(start), seed=5))
                 for name, *start in wall_starts(task)]
        steps = [(name, *s) for name, run in runs for s in run]
        env, params = make_jax_env(f"mjx:{task}")
        qpos, qvel, warm, xy = (f32(np.array(x)) for x in zip(*(s[1] for s in steps)))
        states = ml.MainBodyEnvState(qpos=qpos, qvel=qvel, qacc_warmstart=warm, main_body_xy=xy,
                                     time=jnp.zeros(len(steps), jnp.int32))
        keys = jax.random.split(jax.random.key(0), len(steps))
        step = jax.jit(jax.vmap(lambda k, s, a, params=params, env=env: env.step(k, s, a, params)))
        got = jax.device_get(step(keys, states, f32(np.array([s[2] for s in steps]))))
        out[task] = dict(names=[s[0] for s in steps], want=[s[3] for s in steps],
                         touched=np.array([s[4] for s in steps]), got=got)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_trajectories_match_gymnasium_step_by_step(stepped, task):
    run = stepped[task]
    obs, state, reward, terminated, truncated, info = run["got"]
    worst = {"obs": np.zeros(len(run["want"])), "reward": np.zeros(len(run["want"]))}
    for i, (g_obs, g_reward, g_term, g_trunc, g_info) in enumerate(run["want"]):
        worst["obs"][i] = np.abs(info["final_observation"][i] - g_obs).max()
        worst["reward"][i] = abs(reward[i] - g_reward)
        assert set(g_info) <= set(info), set(g_info) - set(info)
        for k, v in g_info.items():
            worst.setdefault(k, np.zeros(len(run["want"])))[i] = abs(info[k][i] - float(v))
        assert bool(terminated[i]) == g_term, (run["names"][i], i)
    touched = run["touched"]
    print(f"\n{task}: {len(touched)} steps, {touched.sum()} touching a wall")
    for label, rows in (("free", ~touched), ("wall", touched)):
        for q in (50, 90, 100):
            print(label, q, {k: f"{np.percentile(v[rows], q):.1e}" for k, v in worst.items()})
    names = np.array(run["names"])
    for name, *_ in wall_starts(task):  # each wall start reaches its wall
        assert touched[names == name].any() or name == "goal", name
    assert np.percentile(worst["obs"][~touched], 90) < FREE_Q90_ATOL[0]
    assert np.percentile(worst["reward"][~touched], 90) < FREE_Q90_ATOL[1]
    assert worst["obs"].max() < ANY_ATOL[0], worst["obs"].max()
    assert max(v.max() for k, v in worst.items() if k != "obs") < ANY_ATOL[1]
    for k in ("reward_ctrl", "reward_survive", "reward_goal", "is_success"):  # no physics in these
        assert worst.get(k, np.zeros(1)).max() < 1e-6, k
    if task == "AntUMaze":
        assert info["reward_goal"][names == "goal"].max() == 5.0  # the ant reaches the goal
