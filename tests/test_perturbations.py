"""Perturbed environments (sqljax.envs.perturbations) and the robustness study's command
(experiments.studies.robustness)."""

import csv
import json

import jax
import numpy as np
import pytest

import sqljax
from experiments.studies import robustness
from sqljax.envs import perturbations as pt
from sqljax.envs.gym_adapter import make_env


def rollout(env, steps: int, seed: int = 7, action=None):
    """Observations (steps + 1, O) and rewards (steps,) of a constant-action episode
    (zero action by default) started with reset seed ``seed``."""
    action = np.zeros(env.action_dim) if action is None else action
    obs, rewards = [env.reset(seed=seed)], []
    for _ in range(steps):
        o, r, terminated, truncated, _ = env.step(action)
        obs.append(o)
        rewards.append(r)
        assert not (terminated or truncated)
    return np.asarray(obs), np.asarray(rewards)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [ln for ln in err if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def std_tolerance(n: int) -> float:
    """Relative tolerance of a sample std of n Gaussian draws: 6 standard errors
    (1 / sqrt(2 n) each), so a right std fails with probability ~1e-9, and a std off by
    more than this fails."""
    return 6.0 / np.sqrt(2.0 * n)


# --------------------------------------------------------------------- model families

def test_mass_scales_every_body_and_is_undone():
    plain = make_env("Hopper-v5")
    nominal = plain.env.unwrapped.model
    env = pt.make_perturbed_env("Hopper-v5", "mass", 2.0)
    model = env.env.unwrapped.model
    np.testing.assert_array_equal(model.body_mass, 2.0 * nominal.body_mass)
    np.testing.assert_array_equal(model.body_inertia, 2.0 * nominal.body_inertia)
    assert model.body_subtreemass[0] == pytest.approx(2.0 * nominal.body_mass.sum())  # derived quantities follow
    np.testing.assert_array_equal(model.geom_friction, nominal.geom_friction)
    # Another env (built after) has its own, nominal model.
    np.testing.assert_array_equal(make_env("Hopper-v5").env.unwrapped.model.body_mass, nominal.body_mass)
    # Re-perturbing starts from the nominal values (no compounding); undoing is exact.
    env.perturb(pt.Perturbation("mass", 0.5))
    np.testing.assert_array_equal(model.body_mass, 0.5 * nominal.body_mass)
    heavy = pt.make_perturbed_env("Hopper-v5", "mass", 2.0)
    assert not np.array_equal(rollout(heavy, 30)[0], rollout(plain, 30)[0])
    heavy.perturb(None)
    for a, b in zip(rollout(heavy, 30), rollout(plain, 30)):
        np.testing.assert_array_equal(a, b)
    # A pendulum's point mass.
    pend = pt.make_perturbed_env("Pendulum-v1", "mass", 2.0)
    assert pend.env.unwrapped.m == 2.0 * make_env("Pendulum-v1").env.unwrapped.m


def test_friction_scales_every_geom_and_needs_mujoco():
    plain = make_env("HalfCheetah-v5").env.unwrapped.model
    env = pt.make_perturbed_env("HalfCheetah-v5", "friction", 0.25)
    np.testing.assert_array_equal(env.env.unwrapped.model.geom_friction, 0.25 * plain.geom_friction)
    np.testing.assert_array_equal(env.env.unwrapped.model.body_mass, plain.body_mass)
    env.perturb(pt.Perturbation("friction", 2.0))
    np.testing.assert_array_equal(env.env.unwrapped.model.geom_friction, 2.0 * plain.geom_friction)
    for family in ("friction", "push"):
        with pytest.raises(pt.PerturbationError, match="needs a MuJoCo environment; Pendulum-v1"):
            pt.make_perturbed_env("Pendulum-v1", family)
    with pytest.raises(pt.PerturbationError, match="mass magnitude must be finite and > 0"):
        pt.Perturbation("mass", 0.0)
    with pytest.raises(pt.PerturbationError, match="unknown perturbation family 'wind'"):
        pt.Perturbation("wind", 1.0)


# --------------------------------------------------------------------- pushes

def test_push_moves_a_standing_body_on_a_schedule_fixed_by_the_seed():
    force = pt.default_magnitudes("push", make_env("HalfCheetah-v5"))[-1]  # twice the weight
    pushed = pt.make_perturbed_env("HalfCheetah-v5", "push", force, seed=1)
    still = pt.make_perturbed_env("HalfCheetah-v5", "push", 0.0, seed=1)
    pushed.reset(seed=4)
    start = int(pushed.push_starts[0])
    assert 100 <= start <= 200 and np.all(np.diff(pushed.push_starts) >= 100)
    moved = {}
    for name, env in (("pushed", pushed), ("still", still)):
        env.reset(seed=4)
        data = env.env.unwrapped.data
        torso = env.env.unwrapped.model.body("torso").id
        for t in range(start + 40):
            if t == start:
                x0 = data.xpos[torso, 0]
            env.step(np.zeros(env.action_dim))
            if name == "pushed" and t == start:  # the force acts during the push, in newtons
                assert np.linalg.norm(data.xfrc_applied[torso, :2]) == pytest.approx(force)
        moved[name] = abs(data.xpos[torso, 0] - x0)
        if name == "still":
            assert not np.any(data.xfrc_applied)
    assert moved["pushed"] > 0.1 and moved["pushed"] > 10 * moved["still"], moved
    # The schedule depends on the episode seed and the perturbation seed only.
    again = pt.make_perturbed_env("HalfCheetah-v5", "push", force / 2, seed=1)
    again.reset(seed=4)
    np.testing.assert_array_equal(again.push_starts, pushed.push_starts)
    np.testing.assert_array_equal(again.push_directions, pushed.push_directions)
    starts, directions = pt.push_schedule(1, 4, 1000, pt.PUSH_GAP, planar=True)
    np.testing.assert_array_equal(starts, pushed.push_starts)
    assert set(np.abs(directions[:, 0])) == {1.0} and not np.any(directions[:, 1])
    assert not np.array_equal(pt.push_schedule(1, 5, 1000)[0], starts)
    assert not np.array_equal(pt.push_schedule(2, 4, 1000)[0], starts)
    heading = pt.push_schedule(1, 4, 1000, planar=False)[1]  # robots with a free joint: any heading
    np.testing.assert_allclose(np.linalg.norm(heading, axis=1), 1.0)


# --------------------------------------------------------------------- noise

def test_action_noise_has_its_std_and_is_reproducible():
    sigma, n = 0.2, 6000

    def applied(seed: int) -> np.ndarray:
        env = pt.make_perturbed_env("Pendulum-v1", "action_noise", sigma, seed=seed)
        torque = []
        for episode in range(n // 200):  # Pendulum's episodes last 200 steps
            env.reset(seed=episode)
            for _ in range(200):
                env.step(np.zeros(1))
                torque.append(env.env.unwrapped.last_u)
        return np.asarray(torque) / 2.0  # the action's [-1, 1] units (Pendulum's bound is 2)

    noise = applied(0)
    assert abs(noise.std() / sigma - 1.0) < std_tolerance(n), noise.std()
    assert abs(noise.mean()) < 6 * sigma / np.sqrt(n)
    np.testing.assert_array_equal(applied(0), noise)
    assert not np.array_equal(applied(1), noise)


def test_observation_noise_scales_with_the_given_std_and_is_reproducible():
    sigma, obs_std, n = 0.3, np.array([0.5, 2.0, 1.0]), 6000

    def noise(seed: int) -> np.ndarray:
        env = pt.make_perturbed_env("Pendulum-v1", "obs_noise", sigma, seed=seed, obs_std=obs_std)
        clean = pt.make_perturbed_env("Pendulum-v1")
        out = []
        for episode in range(n // 200):
            a, b = rollout(env, 199, seed=episode), rollout(clean, 199, seed=episode)
            np.testing.assert_array_equal(a[1], b[1])  # rewards: the simulation is untouched
            out.append(a[0].astype(np.float64) - b[0])
        return np.concatenate(out)

    d = noise(0)
    np.testing.assert_array_less(np.abs(d.std(axis=0) / (sigma * obs_std) - 1.0), std_tolerance(n))
    np.testing.assert_array_equal(noise(0), d)
    assert not np.array_equal(noise(3), d)
    with pytest.raises(pt.PerturbationError, match=r"needs obs_std of shape \(3,\), got none"):
        pt.make_perturbed_env("Pendulum-v1", "obs_noise", sigma)


def test_recorded_observations_pool_to_their_std():
    envs = [pt.make_perturbed_env("Pendulum-v1") for _ in range(3)]
    seen = []
    for k, env in enumerate(envs):
        env.record_observations = True
        seen.append(rollout(env, 30 * (k + 1), seed=k)[0])
    np.testing.assert_allclose(pt.pooled_std(env.observation_moments() for env in envs),
                               np.concatenate(seen).astype(np.float64).std(axis=0), rtol=1e-10)


@pytest.mark.parametrize("family", list(pt.FAMILIES))
def test_neutral_magnitude_is_the_plain_env_bit_for_bit(family):
    neutral = pt.make_perturbed_env("Hopper-v5", family, pt.FAMILIES[family].neutral, seed=3)
    plain = make_env("Hopper-v5")
    for a, b in zip(rollout(neutral, 40), rollout(plain, 40)):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------- the study's command

@pytest.fixture(scope="module")
def learner_dir(tmp_path_factory):
    """Two freshly initialised tiny SQL learners on Pendulum-v1 in the zoo layout."""
    root = tmp_path_factory.mktemp("zoo") / "Pendulum" / "tiny"
    cfg = sqljax.SQLConfig(hidden_sizes=(8,), batch_size=8, value_n_particles=4, kernel_n_particles=4)
    for i in (0, 1):
        sqljax.export_learner(root / f"seed{i}", sqljax.init(jax.random.key(i), cfg, 3, 1),
                              metadata={"env_id": "Pendulum-v1"})
    return root


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_study_writes_rows_summary_and_figure_and_resumes(learner_dir, tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["--learners", str(learner_dir), "--families", "mass", "obs_noise", "--mass", "0.5", "2",
            "--obs-noise", "0.5", "--episodes", "2", "--max-episode-steps", "20", "--bootstrap-reps", "200",
            "--out", str(out), "--no-progress"]
    assert robustness.main(argv) == 0
    rows = read_csv(out / robustness.CSV_FILE)
    assert len(rows) == 2 * 4 * 2  # seeds x (unperturbed + 3 magnitudes) x modes
    assert {(r["family"], r["magnitude"]) for r in rows} == {("none", ""), ("mass", "0.5"), ("mass", "2.0"),
                                                            ("obs_noise", "0.5")}
    assert {r["mean_length"] for r in rows} == {"20.0"} and {r["learner"] for r in rows} == {"sql"}
    summary = json.loads((out / robustness.SUMMARY_FILE).read_text())
    curve = summary["learners"]["tiny"]["families"]["mass"]["stochastic"]
    assert curve["magnitude"] == [0.5, 1.0, 2.0] and curve["relative"][1]["value"] == 1.0
    assert np.isfinite(curve["auc"]["value"])
    obs_std = json.loads((out / robustness.OBS_STD_FILE).read_text())["obs_std"]
    assert len(obs_std) == 3 and min(obs_std) > 0
    assert (out / robustness.PLOT_FILE).stat().st_size > 0
    assert "wall time" in capsys.readouterr().out
    # The same command again evaluates nothing and keeps the rows.
    assert robustness.main(argv) == 0
    assert "(0 of 4 grid points evaluated" in capsys.readouterr().out
    assert read_csv(out / robustness.CSV_FILE) == rows


def test_study_bad_input_is_one_line(learner_dir, tmp_path, capsys):
    other = tmp_path / "MultiGoal" / "tiny"
    cfg = sqljax.SQLConfig(hidden_sizes=(8,), batch_size=8, value_n_particles=4, kernel_n_particles=4)
    sqljax.export_learner(other / "seed0", sqljax.init(jax.random.key(0), cfg, 2, 2),
                          metadata={"env_id": "sqljax/MultiGoal-v0"})
    (tmp_path / "empty").mkdir()
    cases = [
        (["--learners", str(tmp_path / "empty")], "holds no learners"),
        (["--learners", str(learner_dir), str(other)], "the learners are of different tasks"),
        (["--learners", str(learner_dir), "--families", "wind"], "invalid choice: 'wind'"),
        (["--learners", str(learner_dir), "--families", "friction"], "needs a MuJoCo environment"),
        (["--learners", str(learner_dir), "--families", "mass", "--mass", "-1"], "mass magnitude must be"),
    ]
    for argv, words in cases:
        assert robustness.main(argv + ["--out", str(tmp_path / "never"), "--no-progress"]) == 2, argv
        assert words in one_error_line(capsys), argv
    assert not (tmp_path / "never").exists()
