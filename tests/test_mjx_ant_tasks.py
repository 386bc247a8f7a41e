"""mjx:AntAnyDirection against gymnasium's sqljax/AntAnyDirection-v1.

Fast: the name, the spaces and every definition against gymnasium's env; the reward
and termination of :func:`sqljax.envs.mjx_locomotion.reward_terms` against gymnasium's
own reward function (``_get_rew``) and health check on hand-made states, no physics.
Slow (the MJX step of Ant compiles for about a minute on a 2-core CPU): three 40-step
trajectories of random actions from gymnasium's resets, every step taken by both
simulators from the same state with the same action, and hand-made states that end
(or, flipped, do not end) an episode.
"""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sqljax
import sqljax.envs.gym_adapter  # noqa: F401  (registers the sqljax/* ids)
from sqljax.envs import make_jax_env, registry

ml = pytest.importorskip("sqljax.envs.mjx_locomotion")
mat = pytest.importorskip("sqljax.envs.mjx_ant_tasks")

GYM_ID = "sqljax/AntAnyDirection-v1"
PARAMS = mat.ANT_ANY_DIRECTION
N_STEPS = 40
SEEDS = (0, 1, 2)
#: max |MJX - gymnasium| of one step from the same state (float32 against float64), as
#: for mjx:Ant (tests/test_mjx.py): the observation holds contact forces (newtons,
#: clipped to +-1), the speed is a position difference over 0.05 s. Measured: 4.8e-3 and
#: 3.2e-4 (docs/mjx.md).
OBS_ATOL, REWARD_ATOL = 1e-2, 2e-3
#: the torso's quaternion upside down (half a turn about x)
FLIPPED = np.array([0.0, 1.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def gym_env():
    g = gym.make(GYM_ID)
    g.reset(seed=0)
    yield g
    g.close()


def test_names_resolve_to_the_task():
    for name in ("mjx:AntAnyDirection", "mjx:AntAnyDirection-v1"):
        assert registry.find_task(name).id == "mjx:AntAnyDirection-v1"
        assert registry.is_jax_native(name)
        env, params = make_jax_env(name)
        assert params is PARAMS and env.params is PARAMS
    assert registry.short_name("mjx:AntAnyDirection-v1") == "mjx-AntAnyDirection-v1"
    assert registry.default_steps("mjx:AntAnyDirection") == registry.default_steps(GYM_ID)
    assert sqljax.config.task_preset("mjx:AntAnyDirection") == "pretrain"
    cfg = sqljax.SQLConfig.preset("pretrain", task="mjx:AntAnyDirection-v1")
    assert cfg == sqljax.SQLConfig.preset("pretrain", task=GYM_ID)
    ant, _ = make_jax_env("mjx:Ant")
    assert make_jax_env("mjx:AntAnyDirection")[0] != ant  # another program in the loop's cache
    with pytest.raises(ValueError, match="no mjx:AntAnyDirection-v0"):
        make_jax_env("mjx:AntAnyDirection-v0")
    with pytest.raises(ValueError, match="no mjx Ant transfer task"):
        mat.make("AntMaze")


def test_spaces_and_definitions_match_gymnasium(gym_env):
    env, params = make_jax_env("mjx:AntAnyDirection")
    u = gym_env.unwrapped
    assert env.observation_space(params).shape == gym_env.observation_space.shape == (105,)
    space = env.action_space(params)
    assert space.shape == gym_env.action_space.shape
    np.testing.assert_array_equal(space.low, gym_env.action_space.low)
    np.testing.assert_array_equal(space.high, gym_env.action_space.high)
    assert params.max_episode_steps == gym_env.spec.max_episode_steps == 1000
    assert params.frame_skip == u.frame_skip and env.mj_model.opt.timestep * params.frame_skip == u.dt
    assert params.forward_reward_weight == u._forward_reward_weight
    assert params.ctrl_cost_weight == u._ctrl_cost_weight == 0.005
    assert params.healthy_reward == u._healthy_reward == 0.05
    assert params.contact_cost_weight == u._contact_cost_weight
    assert params.contact_force_range == u._contact_force_range
    assert params.healthy_z_range == u._healthy_z_range and params.healthy_z_closed
    assert params.terminate_when_unhealthy == u._terminate_when_unhealthy
    assert params.reset_noise_scale == u._reset_noise_scale and params.qvel_reset_noise == "normal"
    assert params.forward_body == u._main_body
    assert params.obs_qpos_start == 2 * u._exclude_current_positions_from_observation
    # gymnasium's generated model adds a camera to ant.xml: the physics are the same
    m, g = env.mj_model, u.model
    for size in ("nq", "nv", "nu", "nbody", "njnt", "ngeom", "nsite"):
        assert getattr(m, size) == getattr(g, size), size
    for field in ("body_mass", "body_inertia", "body_pos", "body_quat", "geom_size", "geom_pos",
                  "geom_type", "geom_friction", "geom_contype", "geom_conaffinity", "jnt_range",
                  "dof_damping", "dof_armature", "actuator_gear", "actuator_ctrlrange", "qpos0"):
        np.testing.assert_array_equal(getattr(m, field), getattr(g, field), err_msg=field)
    for opt in ("timestep", "integrator", "cone", "solver", "iterations", "tolerance", "gravity"):
        np.testing.assert_array_equal(getattr(m.opt, opt), getattr(g.opt, opt), err_msg=opt)


def test_xy_speed_pays_every_direction_alike():
    for angle in np.linspace(0, 2 * np.pi, 9):
        after = jnp.array([np.cos(angle), np.sin(angle)], jnp.float32) * 0.1 + 3.0
        speed, info = mat.xy_speed(jnp.array([3.0, 3.0]), after, 0.05)
        np.testing.assert_allclose(float(speed), 2.0, rtol=1e-5)
        assert info == {"xy_speed": speed}


def hand_made(rng, z=0.55, quat=None, qvel_scale=1.0):
    """(qpos (15,), qvel (14,)) of the ant at torso height ``z``, random joints."""
    qpos = np.concatenate([rng.uniform(-2, 2, 2), [z], quat if quat is not None else [1.0, 0, 0, 0],
                           rng.uniform(-0.5, 0.5, 8)])
    return qpos, qvel_scale * rng.standard_normal(14)


CASES = ["healthy", "too_low", "too_high", "at_0.2", "at_1.0", "flipped", "non_finite", "still"]


@pytest.mark.parametrize("case", CASES)
def test_reward_and_termination_are_gymnasiums(gym_env, case):
    """reward_terms on a hand-made step (positions before and after, contact forces,
    action) against gymnasium's own reward function and health check on the same."""
    u = gym_env.unwrapped
    rng = np.random.default_rng(CASES.index(case))
    z = {"too_low": 0.19, "too_high": 1.01, "at_0.2": 0.2, "at_1.0": 1.0}.get(case, 0.55)
    qpos, qvel = hand_made(rng, z, FLIPPED if case == "flipped" else None)
    if case == "non_finite":
        qvel[7] = np.inf
    xy_before = qpos[:2] + (0.0 if case == "still" else rng.uniform(-0.1, 0.1, 2))
    action = rng.uniform(-1, 1, 8)
    cfrc_ext = rng.uniform(-3, 3, (u.model.nbody, 6))  # beyond the clip range too
    cfrc_ext[0] = 0.0  # the world's

    # what gymnasium's reward reads: the state (health) and the contact forces
    u.data.qpos[:], u.data.qvel[:], u.data.cfrc_ext[:] = qpos, qvel, cfrc_ext
    velocity = (qpos[:2] - xy_before) / u.dt
    motion, _ = u._motion(xy_before, qpos[:2], velocity)
    want_reward, want_info = u._get_rew(motion, action)
    want_terminated = not u.is_healthy

    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    before = ml.init_state(f32(qpos), f32(qvel), params=PARAMS).replace(main_body_xy=f32(xy_before))
    after = ml.init_state(f32(qpos), f32(qvel), params=PARAMS)
    reward, terminated, info = ml.reward_terms(PARAMS, u.dt, before, after, f32(action), f32(cfrc_ext))
    assert bool(terminated) == want_terminated == (case in ("too_low", "too_high", "non_finite"))
    np.testing.assert_allclose(float(reward), want_reward, rtol=1e-5, atol=1e-5)
    for k, v in want_info.items():
        np.testing.assert_allclose(float(info[k]), v, rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(float(info["xy_speed"]), np.linalg.norm(velocity), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(info["reward_forward"], np.linalg.norm(velocity), rtol=1e-5, atol=1e-6)
    if case == "still":
        assert float(info["reward_forward"]) == 0.0
    if want_terminated:  # the alive term is paid only while healthy
        assert float(info["reward_survive"]) == 0.0


# ------------------------------------------------------------------ slow: physics

def hand_made_states(rng):
    """(qpos, qvel) that end an episode (torso 10 m below the floor: the floor pushes a
    torso back above 0.2 m within a step unless it starts that deep; flying up through
    1 m) and one that does not (upside down at a healthy height: no flip test)."""
    low, v = hand_made(rng, -10.0)
    high, up = hand_made(rng, 0.95)
    up[2] = 5.0
    flipped, still = hand_made(rng, 0.6, FLIPPED, qvel_scale=0.0)
    return [(low, v), (high, up), (flipped, still)]


@pytest.fixture(scope="module")
def stepped(gym_env):
    """Every step of three 40-step random-action trajectories from gymnasium's resets,
    and three hand-made states, taken by gymnasium and by the JAX env's protocol step
    (compiled once, vmapped) from the same state (qpos, qvel, the solver's warm start,
    the torso's x, y as MuJoCo's data holds it) with the same action."""
    u = gym_env.unwrapped
    starts, actions, want, trajectory = [], [], [], []
    for seed in SEEDS:
        gym_env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(N_STEPS):
            d = u.data
            starts.append((d.qpos.copy(), d.qvel.copy(), d.qacc_warmstart.copy(), d.xpos[1, :2].copy()))
            actions.append(rng.uniform(-1, 1, 8))
            want.append(gym_env.step(actions[-1]))
            trajectory.append(seed)
            if want[-1][2]:
                break
    for qpos, qvel in hand_made_states(np.random.default_rng(7)):
        u.set_state(qpos, qvel)
        u.data.qacc_warmstart[:] = 0.0
        starts.append((qpos, qvel, np.zeros(14), u.data.xpos[1, :2].copy()))
        actions.append(np.zeros(8))
        want.append(gym_env.step(actions[-1]))
        trajectory.append(-1)
    env, params = make_jax_env("mjx:AntAnyDirection")
    qpos, qvel, warm, xy = (jnp.asarray(np.array(x), jnp.float32) for x in zip(*starts))
    states = ml.MainBodyEnvState(qpos=qpos, qvel=qvel, qacc_warmstart=warm, main_body_xy=xy,
                                 time=jnp.zeros(len(starts), jnp.int32))
    keys = jax.random.split(jax.random.key(0), len(starts))
    step = jax.jit(jax.vmap(lambda k, s, a: env.step(k, s, a, params)))
    got = jax.device_get(step(keys, states, jnp.asarray(np.array(actions), jnp.float32)))
    return dict(want=want, got=got, trajectory=np.array(trajectory), model=env.mj_model)


@pytest.mark.slow
def test_trajectories_match_gymnasium_step_by_step(stepped):
    obs, state, reward, terminated, truncated, info = stepped["got"]
    worst = {}
    for i, (g_obs, g_reward, g_term, g_trunc, g_info) in enumerate(stepped["want"]):
        worst["obs"] = max(worst.get("obs", 0), np.abs(info["final_observation"][i] - g_obs).max())
        worst["reward"] = max(worst.get("reward", 0), abs(reward[i] - g_reward))
        assert set(g_info) <= set(info), set(g_info) - set(info)
        for k in ("reward_forward", "reward_ctrl", "reward_contact", "reward_survive", "xy_speed",
                  "x_velocity", "y_velocity", "x_position", "y_position"):
            worst[k] = max(worst.get(k, 0), abs(info[k][i] - g_info[k]))
        assert bool(terminated[i]) == g_term, i
    print({k: f"{v:.1e}" for k, v in worst.items()})
    assert worst["obs"] < OBS_ATOL, worst
    assert max(v for k, v in worst.items() if k != "obs") < REWARD_ATOL, worst
    hand = stepped["trajectory"] < 0
    # too low and too high end the episode unpaid; upside down at a healthy height goes on
    assert terminated[hand].tolist() == [True, True, False]
    np.testing.assert_allclose(info["reward_survive"][hand], [0.0, 0.0, 0.05])
    assert not truncated.any()


@pytest.mark.slow
def test_an_ended_episode_restarts_from_a_reset(stepped):
    obs, state, reward, terminated, truncated, info = stepped["got"]
    ended = np.asarray(terminated)
    np.testing.assert_array_equal(obs[~ended], info["final_observation"][~ended])
    qpos0 = stepped["model"].qpos0
    assert np.abs(state.qpos[ended] - qpos0).max() <= PARAMS.reset_noise_scale + 1e-6
    assert (state.time[ended] == 0).all() and (state.time[~ended] == 1).all()
    np.testing.assert_array_equal(obs[ended][:, :13], state.qpos[ended][:, 2:])
    assert (obs[ended][:, 27:] == 0).all()  # no contact forces observed after a reset
