"""The mjx: locomotion tasks against gymnasium's v5 tasks, and one compiled training run.

Parity: from the same qpos, qvel and action, one step of the JAX env (MJX, float32)
and of gymnasium's env (MuJoCo, float64) give the same observation, reward terms and
termination, within float32 tolerances (docs/mjx.md). Each task's step is compiled once,
in a module-scoped fixture, for all test states: MJX compiles slowly on CPU.
"""

import json

import gymnasium as gym
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

import sqljax
from sqljax.envs import make_jax_env, registry

ml = pytest.importorskip("sqljax.envs.mjx_locomotion")
mjx_physics = pytest.importorskip("sqljax.envs.mjx_physics")

TASKS = ("HalfCheetah", "Hopper", "Walker2d", "Ant", "Humanoid")
#: Each task's MJX step compiles for 20-80 s on a 2-core CPU: the default suite checks
#: HalfCheetah (no contacts to speak of) and Ant (contact frames); the rest are slow tests.
SLOW_TASKS = ("Hopper", "Walker2d", "Humanoid")
TASK_PARAMS = [pytest.param(t, marks=pytest.mark.slow) if t in SLOW_TASKS else t for t in TASKS]
N_RANDOM = 6  # random states per task, besides the hand-made ones below
#: max |MJX - gymnasium| after one step. Float32 physics against float64: positions and
#: velocities agree to ~1e-4 (contacts amplify the rounding); the forward reward is a
#: position difference over dt (0.05 s or 0.008 s), so it carries that rounding / dt.
OBS_ATOL = 1e-3
REWARD_ATOL = 1e-4
#: Ant: 20 constraint solves a step (5 RK4 steps of 4 stages) in 3D, and its observation
#: holds contact forces (in newtons, clipped to +-1) themselves. Worst: the hand-made state
#: with every joint at 12 rad/s into its limits, 1.2e-2 on a velocity of 5 (float64 too:
#: MuJoCo's own forward stages, combined by the RK4 formula that MJX follows, differ as
#: much from mj_step there; the torso's y velocity then differs by 3e-3); the other states
#: agree to 4e-4.
#: Humanoid: its observation holds the contact forces unclipped (newtons), and gymnasium's
#: model is solved by PGS (50 iterations), which MJX lacks (Newton here): MuJoCo's own PGS
#: and Newton forces differ by up to 5e-3 on these states; MJX's by up to 4e-2 on a
#: fallen humanoid's forces of tens of newtons; everything else agrees to 2e-4.
ATOL = {"Ant": (2e-2, 5e-3), "Humanoid": (8e-2, 5e-3)}


def gym_env(task):
    return gym.make(f"{task}-v5")


def test_spaces_and_definitions_match_gymnasium():
    for task in TASKS:
        env, params = make_jax_env(f"mjx:{task}")
        g = gym_env(task)
        u = g.unwrapped
        assert env.observation_space(params).shape == g.observation_space.shape
        space = env.action_space(params)
        np.testing.assert_array_equal(space.low, g.action_space.low)
        np.testing.assert_array_equal(space.high, g.action_space.high)
        assert space.shape == g.action_space.shape
        assert params.frame_skip == u.frame_skip and env.mj_model.opt.timestep * params.frame_skip == u.dt
        assert params.ctrl_cost_weight == u._ctrl_cost_weight
        assert params.forward_reward_weight == u._forward_reward_weight
        assert params.reset_noise_scale == u._reset_noise_scale
        assert params.max_episode_steps == g.spec.max_episode_steps == 1000
        if params.has_health:
            assert params.healthy_reward == u._healthy_reward
            assert params.terminate_when_unhealthy == u._terminate_when_unhealthy
            assert params.healthy_z_range == u._healthy_z_range
            assert params.healthy_angle_range == getattr(u, "_healthy_angle_range", None)
            assert params.healthy_state_range == getattr(u, "_healthy_state_range", None)
        np.testing.assert_array_equal(env.mj_model.qpos0, u.init_qpos)
        if task == "Ant":
            assert params.contact_cost_weight == u._contact_cost_weight
            assert params.contact_force_range == u._contact_force_range
            assert params.forward_body == u._main_body
            assert params.obs_qpos_start == 2 * u._exclude_current_positions_from_observation
            assert u._include_cfrc_ext_in_observation
            assert params.qvel_reset_noise == "normal"
        if task == "Humanoid":
            assert params.contact_cost_weight == u._contact_cost_weight
            assert (-np.inf, params.contact_cost_max) == u._contact_cost_range
            assert params.obs_qpos_start == 2 * u._exclude_current_positions_from_observation
            assert u._include_cinert_in_observation and u._include_cvel_in_observation
            assert u._include_qfrc_actuator_in_observation and u._include_cfrc_ext_in_observation
            assert params.qvel_reset_noise == "uniform" and params.forward_mass_center
            assert env.mj_model.opt.solver == mujoco.mjtSolver.mjSOL_NEWTON  # MJX has no PGS
            assert u.model.opt.solver == mujoco.mjtSolver.mjSOL_PGS
        g.close()
    assert registry.find_task("mjx:Hopper").id == "mjx:Hopper-v5"
    assert sqljax.task_reward_scale("mjx:Walker2d") == sqljax.task_reward_scale("Walker2d-v5")
    assert registry.short_name("mjx:Hopper-v5") == "mjx-Hopper-v5"
    assert registry.find_task("mjx:Ant").id == "mjx:Ant-v5"
    assert sqljax.task_reward_scale("mjx:Ant") == sqljax.task_reward_scale("Ant-v5")
    assert registry.default_steps("mjx:Ant") == registry.default_steps("Ant-v5")
    assert sqljax.config.task_preset("mjx:Ant") == sqljax.config.task_preset("Ant-v5")
    assert sqljax.task_reward_scale("mjx:Humanoid") == sqljax.task_reward_scale("Humanoid-v5")
    with pytest.raises(ValueError, match="no mjx task"):
        make_jax_env("mjx:Swimmer")


def steep_leg_states(g, n, max_steps=300):
    """Up to ``n`` (qpos, qvel) of gymnasium's Ant with a leg steeper than 60 degrees
    pressing on the floor (where MJX's own contact frame is not MuJoCo's), one per seed."""
    u = g.unwrapped
    m, d = u.model, u.data
    found = []
    for seed in range(10 * n):
        g.reset(seed=seed)
        g.action_space.seed(seed)
        for _ in range(max_steps):
            if g.step(g.action_space.sample())[2]:
                break
            steep = [d.geom_xmat[c.geom[1]][8] > np.cos(np.pi / 6) and c.dist < 0 for c in d.contact
                     if m.geom_type[c.geom[1]] == mujoco.mjtGeom.mjGEOM_CAPSULE]
            if any(steep):
                found.append((d.qpos.copy(), d.qvel.copy()))
                break
        if len(found) == n:
            break
    return found


def start_states(task, params, nq, rng):
    """(qpos (N, Q), qvel (N, V), actions (N, A), times (N,)): states reached by random
    actions from gymnasium's resets, then hand-made ones: fast joints (the observation's
    clip), for Ant legs pressing steeply on the floor, then unhealthy ones (termination:
    Ant's torso far below the floor, which pushes it back above 0.2 within a step unless
    it starts that deep, or flying up through 1; Humanoid fallen onto the floor (contact
    forces), or flying up through 2), and one at the time limit (truncation)."""
    g = gym_env(task)
    u = g.unwrapped
    qpos, qvel = [], []
    for i in range(N_RANDOM):
        g.reset(seed=i)
        g.action_space.seed(i)
        for _ in range(int(rng.integers(0, 30))):
            if g.step(g.action_space.sample())[2]:  # fell: start from the reset state
                g.reset(seed=i)
                break
        qpos.append(u.data.qpos.copy())
        qvel.append(u.data.qvel.copy())
    fast = qvel[1].copy()
    fast[3:] = 12.0 * np.sign(rng.standard_normal(len(fast) - 3))
    qpos.append(qpos[1])
    qvel.append(fast)
    z = params.healthy_z_index
    if task == "Ant":
        for qp, qv in steep_leg_states(g, 2):
            qpos.append(qp)
            qvel.append(qv)
        low = qpos[-1].copy()
        low[z] = -2.0  # torso too low
        qpos.append(low)
        qvel.append(qvel[-1])
        high = qpos[-2].copy()
        high[z], up = 0.95, qvel[-2].copy()
        up[z] = 5.0  # torso flying too high
        qpos.append(high)
        qvel.append(up)
    elif task == "Humanoid":
        g.reset(seed=N_RANDOM)
        for _ in range(60):  # falls and lies on the floor
            u.step(0.4 * rng.uniform(-1, 1, u.model.nu))
        qpos.append(u.data.qpos.copy())
        qvel.append(u.data.qvel.copy())
        high, up = qpos[2].copy(), qvel[2].copy()
        high[z], up[z] = 1.98, 5.0
        qpos.append(high)
        qvel.append(up)
    elif params.has_health:
        low = qpos[2].copy()
        low[z] = params.healthy_z_range[0] - 0.3  # torso too low
        qpos.append(low)
        qvel.append(qvel[2])
        tilted = qpos[3].copy()
        tilted[2] = params.healthy_angle_range[1] + 0.3  # torso tilted too far
        qpos.append(tilted)
        qvel.append(qvel[3])
    g.close()
    n = len(qpos)
    actions = rng.uniform(-1, 1, (n, u.model.nu)).astype(np.float32)
    times = np.zeros(n, np.int32)
    times[0] = params.max_episode_steps - 1
    return np.array(qpos), np.array(qvel), actions, times


@pytest.fixture(scope="module", params=TASK_PARAMS)
def stepped(request):
    """One task's start states stepped by both envs: the JAX env's protocol step (compiled
    once) and gymnasium's step after ``set_state`` (warm start zeroed on both)."""
    task = request.param
    env, params = make_jax_env(f"mjx:{task}")
    rng = np.random.default_rng(0)
    qpos, qvel, actions, times = start_states(task, params, env.mj_model.nq, rng)
    g = gym_env(task)
    u = g.unwrapped
    g.reset(seed=0)
    want = []
    for qp, qv, a in zip(qpos, qvel, actions):
        u.set_state(qp, qv)
        u.data.qacc_warmstart[:] = 0.0
        want.append(g.step(a))
    g.close()
    step = jax.jit(lambda k, s, a: env.step(k, s, a, params))  # unbatched: compiles faster
    init = jax.jit(lambda qp, qv: ml.init_state(qp, qv, params=params))  # Humanoid: a forward pass
    keys = jax.random.split(jax.random.key(0), len(qpos))
    got = [step(k, init(qp, qv).replace(time=jnp.int32(t)), a)
           for k, qp, qv, a, t in zip(keys, qpos, qvel, actions, times)]
    got = jax.tree.map(lambda *xs: np.stack(xs), *jax.device_get(got))
    return dict(task=task, params=params, want=want, got=got, times=times)


def test_one_step_matches_gymnasium(stepped):
    obs, state, reward, terminated, truncated, info = stepped["got"]
    params = stepped["params"]
    worst = {}
    for i, (g_obs, g_reward, g_term, _, g_info) in enumerate(stepped["want"]):
        worst["obs"] = max(worst.get("obs", 0), np.abs(info["final_observation"][i] - g_obs).max())
        worst["reward"] = max(worst.get("reward", 0), abs(reward[i] - g_reward))
        assert set(g_info) <= set(info), (stepped["task"], set(g_info) - set(info))
        for k in ("reward_forward", "reward_ctrl", "reward_survive", "reward_contact", "x_velocity",
                  "y_velocity", "tendon_length", "tendon_velocity"):
            if k in g_info or k in info:
                worst[k] = max(worst.get(k, 0), np.abs(info[k][i] - g_info[k]).max())
        assert bool(terminated[i]) == g_term, (stepped["task"], i)
    print(stepped["task"], {k: f"{v:.1e}" for k, v in worst.items()})
    obs_atol, reward_atol = ATOL.get(stepped["task"], (OBS_ATOL, REWARD_ATOL))
    assert worst["obs"] < obs_atol, worst
    assert max(v for k, v in worst.items() if k != "obs") < reward_atol, worst
    if params.has_health:  # the hand-made unhealthy states end their episodes, unpaid
        assert terminated[-2:].all() and not terminated[:-2].any()
        assert (info["reward_survive"][-2:] == 0).all()
    else:
        assert not terminated.any()


def test_step_resets_at_the_end_of_an_episode(stepped):
    obs, state, reward, terminated, truncated, info = stepped["got"]
    params = stepped["params"]
    ended = terminated | truncated
    assert truncated.tolist() == (stepped["times"] == params.max_episode_steps - 1).tolist()
    assert state.time.tolist() == np.where(ended, 0, stepped["times"] + 1).tolist()
    # an ended episode shows the new episode's first observation; the others the true one
    np.testing.assert_array_equal(obs[~ended], info["final_observation"][~ended])
    qpos0 = np.asarray(ml.load_model(params.xml_file, params.solver)[0].qpos0)
    noise = params.reset_noise_scale
    assert np.abs(state.qpos[ended] - qpos0).max() <= noise + 1e-6
    start = params.obs_qpos_start
    np.testing.assert_array_equal(obs[ended][:, :len(qpos0) - start], state.qpos[ended][:, start:])


#: Two free capsules resting on a plane, one 70 degrees steep, one 20: MuJoCo's default
#: pyramidal friction cone.
CAPSULES_XML = """<mujoco><worldbody><geom name="floor" type="plane" size="5 5 0.1"/>
<body name="steep"><freejoint/><geom type="capsule" size="0.05 0.2"/></body>
<body name="shallow" pos="1 0 0"><freejoint/><geom type="capsule" size="0.05 0.2"/></body>
</worldbody></mujoco>"""


def capsule_pose(elevation_deg, azimuth_deg, x):
    """qpos (7,) of a capsule (radius 0.05, half-length 0.2) whose axis rises at
    ``elevation_deg`` towards ``azimuth_deg``, its lower end 5 mm into the floor."""
    e, a = np.radians(elevation_deg), np.radians(azimuth_deg)
    quat = np.zeros(4)
    mujoco.mju_quatZ2Vec(quat, np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)]))
    return np.concatenate([[x, 0.0, 0.045 + 0.2 * np.sin(e)], quat])


def test_contact_frames_are_mujocos():
    """MJX (3.17) frames a steep capsule's contact from the normal alone; ours takes
    MuJoCo's (the axis projected onto the plane), and with it the accelerations under a
    pyramidal friction cone are MuJoCo's. Fails if MJX changes the frames it makes (then
    mjx_physics.mujoco_contact_frames may be dropped) or where it keeps them."""
    m = mujoco.MjModel.from_xml_string(CAPSULES_XML)
    d = mujoco.MjData(m)
    d.qpos[:] = np.concatenate([capsule_pose(70, 30, 0.0), capsule_pose(20, 30, 1.0)])
    d.qvel[:] = [1.0, 0.5, 0.0, 0.0, 0.0, 0.0] * 2  # sliding: friction acts
    mujoco.mj_forward(m, d)
    assert m.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL and d.ncon == 2
    mjx = mjx_physics.mjx
    mx = mjx.put_model(m, impl="jax")
    dx = mjx.make_data(mx, impl="jax").replace(qpos=jnp.asarray(d.qpos, jnp.float32),
                                               qvel=jnp.asarray(d.qvel, jnp.float32))
    ours = jax.jit(mjx_physics.forward)(mx, dx)
    theirs = jax.jit(mjx.forward)(mx, dx)
    for i in range(d.ncon):  # each MuJoCo contact against MJX's at the same place
        c = d.contact[i]
        geom, pos = np.asarray(ours._impl.contact.geom), np.asarray(ours._impl.contact.pos)
        j = int(np.argmin(np.linalg.norm(pos - c.pos, axis=1) + 9 * (geom != c.geom).any(1)))
        assert (geom[j] == c.geom).all() and m.geom_type[geom[j][0]] == mujoco.mjtGeom.mjGEOM_PLANE
        want = c.frame.reshape(3, 3)
        np.testing.assert_allclose(np.asarray(ours._impl.contact.frame[j]), want, atol=1e-6)
        mjx_frame = np.asarray(theirs._impl.contact.frame[j])
        if m.geom_bodyid[c.geom[1]] == m.body("steep").id:
            assert np.abs(mjx_frame - want).max() > 0.1
        else:
            np.testing.assert_allclose(mjx_frame, want, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ours.qacc), d.qacc, atol=1e-3, rtol=1e-5)
    assert np.abs(np.asarray(theirs.qacc) - d.qacc).max() > 1.0  # MJX's frame: another friction
    # without the frame fix-up, mjx_physics.forward is mjx.forward: the same stages in the same order
    plain = jax.jit(lambda m_, d_: mjx_physics.forward(m_, d_, contact_frames=None))(mx, dx)
    np.testing.assert_allclose(np.asarray(plain.qacc), np.asarray(theirs.qacc), atol=1e-5, rtol=1e-6)


def test_ant_health_needs_finite_state_and_closed_z_range():
    params = ml.TASK_PARAMS["Ant"]
    qpos = np.array(ml.load_model(params.xml_file, params.solver)[0].qpos0, np.float32)
    qvel = np.zeros(14, np.float32)
    for z, want in ((0.2, True), (1.0, True), (0.55, True), (0.19, False), (1.01, False)):
        qpos[2] = z
        assert bool(ml.is_healthy(params, qpos, qvel)) == want, z
    qvel[5] = np.nan
    assert not bool(ml.is_healthy(params, qpos, qvel))


@pytest.mark.parametrize("task", TASK_PARAMS)
def test_reset_noise_has_gymnasium_bounds(task):
    env, params = make_jax_env(f"mjx:{task}")
    obs, state = jax.jit(jax.vmap(lambda k: env.reset(k, params)))(jax.random.split(jax.random.key(1), 4000))
    assert obs.shape == (4000, *env.observation_space(params).shape)
    s = params.reset_noise_scale
    dq = np.asarray(state.qpos) - env.mj_model.qpos0
    assert s + 1e-6 >= np.abs(dq).max() > 0.98 * s  # U(-s, s)
    np.testing.assert_allclose(dq.std(), s / np.sqrt(3), rtol=0.03)
    qvel = np.asarray(state.qvel)
    if params.qvel_reset_noise == "normal":  # s * N(0, 1)
        np.testing.assert_allclose(qvel.std(), s, rtol=0.03)
        assert np.abs(qvel).max() > 3 * s
    else:  # U(-s, s)
        assert np.abs(qvel).max() <= s + 1e-6
        np.testing.assert_allclose(qvel.std(), s / np.sqrt(3), rtol=0.03)
    assert (np.asarray(state.time) == 0).all()
    # gymnasium's resets lie in the same box
    g = gym_env(task)
    g_obs = np.array([g.reset(seed=i)[0] for i in range(50)])
    start = params.obs_qpos_start
    n_pos = env.mj_model.nq - start
    assert np.abs(g_obs[:, :n_pos] - env.mj_model.qpos0[start:]).max() <= s
    if params.contact_force_range is not None:  # no contact forces observed after a reset
        n_forces = 6 * (env.mj_model.nbody - 1)
        assert (g_obs[:, -n_forces:] == 0).all() and (np.asarray(obs)[:, -n_forces:] == 0).all()
    u = g.unwrapped  # each term of the first observation is gymnasium's at the same start
    for i in range(3):
        u.set_state(np.asarray(state.qpos[i], np.float64), np.asarray(state.qvel[i], np.float64))
        np.testing.assert_allclose(np.asarray(obs[i]), u._get_obs(), rtol=1e-5, atol=1e-5)
    g.close()


FLAGS = ["--env", "mjx:HalfCheetah", "--steps", "300", "--hidden-sizes", "32",
         "--batch-size", "32", "--value-n-particles", "4", "--kernel-n-particles", "4",
         "--learning-starts", "100", "--eval-every", "300", "--log-every", "100",
         "--checkpoint-every", "300", "--eval-episodes", "1", "--max-episode-steps", "100",
         "--no-progress"]


@pytest.mark.slow  # two minutes on a 2-core CPU, most of it compiling
def test_mjx_half_cheetah_trains_through_bench(tmp_path, capsys):
    """Two seeds, compiled end to end; the learner then runs on gymnasium's HalfCheetah-v5."""
    from experiments import bench, evaluate
    from sqljax.loops import multi_seed as ms
    from sqljax.store import run_dir as rd

    out = tmp_path / "bench"
    assert bench.main(FLAGS + ["--seeds", "2", "--out", str(out), "--bootstrap-reps", "100"]) == 0
    for seed in (0, 1):
        rows = rd.read_metrics(out, seed)
        assert [int(r["step"]) for r in rows] == [100, 200, 300]
        assert [int(r["updates"]) for r in rows] == [1, 101, 201]
        assert [int(r["episodes"]) for r in rows] == [1, 2, 3]  # the 100-step limit
        assert [float(r["episode_length"]) for r in rows] == [100.0] * 3
        assert np.isfinite(float(rows[-1]["eval_return"])) and np.isfinite(float(rows[-1]["q_loss"]))
    run = json.loads((out / "run.json").read_text())
    assert run["env_id"] == "mjx:HalfCheetah-v5" and run["seed_ids"] == [0, 1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_seeds"] == 2
    ckpt = rd.latest_checkpoint(out)
    assert ckpt is not None and ckpt.name.endswith("300")
    agent = sqljax.load_checkpoint(ckpt)
    assert (agent.obs_dim, agent.action_dim) == (17, 6) and int(agent.step) == 201
    assert ms.load_seed_states(out).step.tolist() == [201, 201]
    capsys.readouterr()
    assert evaluate.main(["--ckpt", str(out), "--env", "HalfCheetah-v5", "--episodes", "1",
                          "--mode", "deterministic", "--no-video"]) == 0
    assert "deterministic: return" in capsys.readouterr().out
