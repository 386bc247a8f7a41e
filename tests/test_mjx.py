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
import numpy as np
import pytest

import sqljax
from sqljax.envs import make_jax_env, registry

ml = pytest.importorskip("sqljax.envs.mjx_locomotion")

TASKS = ("HalfCheetah", "Hopper", "Walker2d")
N_RANDOM = 6  # random states per task, besides the hand-made ones below
#: max |MJX - gymnasium| after one step. Float32 physics against float64: positions and
#: velocities agree to ~1e-4 (contacts amplify the rounding); the forward reward is a
#: position difference over dt (0.05 s or 0.008 s), so it carries that rounding / dt.
OBS_ATOL = 1e-3
REWARD_ATOL = 1e-4


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
            assert params.healthy_angle_range == u._healthy_angle_range
            assert params.healthy_state_range == getattr(u, "_healthy_state_range", None)
        np.testing.assert_array_equal(env.mj_model.qpos0, u.init_qpos)
        g.close()
    assert registry.find_task("mjx:Hopper").id == "mjx:Hopper-v5"
    assert registry.reward_scale("mjx:Walker2d") == registry.reward_scale("Walker2d-v5")
    assert registry.short_name("mjx:Hopper-v5") == "mjx-Hopper-v5"
    with pytest.raises(ValueError, match="no mjx task"):
        make_jax_env("mjx:Swimmer")


def start_states(task, params, nq, rng):
    """(qpos (N, Q), qvel (N, V), actions (N, A), times (N,)): states reached by random
    actions from gymnasium's resets, then hand-made ones: fast joints (the observation's
    clip), unhealthy ones (termination), and one at the time limit (truncation)."""
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
    if params.has_health:
        low = qpos[2].copy()
        low[1] = params.healthy_z_range[0] - 0.3  # torso too low
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


@pytest.fixture(scope="module", params=TASKS)
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
    keys = jax.random.split(jax.random.key(0), len(qpos))
    got = [step(k, ml.init_state(qp, qv).replace(time=jnp.int32(t)), a)
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
        for k in ("reward_forward", "reward_ctrl", "reward_survive", "x_velocity"):
            if k in g_info or k in info:
                worst[k] = max(worst.get(k, 0), abs(info[k][i] - g_info[k]))
        assert bool(terminated[i]) == g_term, (stepped["task"], i)
    print(stepped["task"], {k: f"{v:.1e}" for k, v in worst.items()})
    assert worst["obs"] < OBS_ATOL, worst
    assert max(v for k, v in worst.items() if k != "obs") < REWARD_ATOL, worst
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
    qpos0 = np.asarray(ml.load_model(params.xml_file)[0].qpos0)
    noise = params.reset_noise_scale
    assert np.abs(state.qpos[ended] - qpos0).max() <= noise + 1e-6
    np.testing.assert_array_equal(obs[ended][:, :len(qpos0) - 1], state.qpos[ended][:, 1:])


@pytest.mark.parametrize("task", TASKS)
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
    g.close()
    n_pos = env.mj_model.nq - 1
    assert np.abs(g_obs[:, :n_pos] - env.mj_model.qpos0[1:]).max() <= s


FLAGS = ["--env", "mjx:HalfCheetah", "--steps", "300", "--hidden-sizes", "32",
         "--batch-size", "32", "--value-n-particles", "4", "--kernel-n-particles", "4",
         "--learning-starts", "100", "--eval-every", "300", "--log-every", "100",
         "--checkpoint-every", "300", "--eval-episodes", "1", "--max-episode-steps", "100",
         "--no-progress"]


def test_mjx_half_cheetah_trains_through_bench(tmp_path, capsys):
    """Two seeds, compiled end to end; the learner then runs on gymnasium's HalfCheetah-v5."""
    from experiments import bench, evaluate
    from sqljax.loops import multi_seed as ms
    from sqljax.loops import run_dir as rd

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
