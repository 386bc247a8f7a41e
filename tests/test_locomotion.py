"""experiments.studies.locomotion's summary: speeds, distances and the spread of headings."""

import numpy as np
import pytest

from experiments.studies import locomotion


def run_of(displacements, speed=1.0):
    paths = [np.array([[0.0, 0.0], [dx / 2, dy / 2], [dx, dy]]) for dx, dy in displacements]
    return {"paths": paths, "speeds": [[speed, speed] for _ in paths], "lengths": [2] * len(paths)}


def test_every_direction_spreads_and_one_direction_does_not():
    spread = locomotion.summarize(run_of([(3, 0), (0, 3), (-3, 0), (0, -3)]))
    assert spread["heading_resultant_length"] == pytest.approx(0.0, abs=1e-9)
    assert spread["sectors_visited"] == 4
    assert spread["net_distance_mean"] == pytest.approx(3.0)
    assert sorted(round(h) for h in spread["headings_deg"]) == [-90, 0, 90, 180]
    one_way = locomotion.summarize(run_of([(2, 1.2), (4, 2.5), (1, 0.55)], speed=0.5))
    assert one_way["heading_resultant_length"] == pytest.approx(1.0, abs=1e-2)
    assert one_way["sectors_visited"] == 1
    assert one_way["mean_planar_speed"] == 0.5


def test_rollouts_act_through_any_learner(tmp_path, capsys):
    """A DDPG export is measured like an SQL one: its deterministic episodes act mu(s)
    (the path of stepping the env by hand with mu, reproducibly), its stochastic ones add
    its exploration noise; the command's fresh learner is a DDPG learner too."""
    import json

    import gymnasium as gym
    import jax

    import sqljax
    from sqljax.learners import ddpg

    state = ddpg.init(jax.random.key(0), ddpg.DDPGConfig(hidden_sizes=(16,)), 105, 8)
    det = [locomotion.rollouts(state, 2, 0, 6, deterministic=True, env_id="sqljax/AntAnyDirection-v1")
           for _ in range(2)]
    noisy = locomotion.rollouts(state, 2, 0, 6, env_id="sqljax/AntAnyDirection-v1")
    assert det[0]["lengths"] == [6, 6]
    for a, b, c in zip(det[0]["paths"], det[1]["paths"], noisy["paths"]):
        assert a.shape == (7, 2)
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a[1:], c[1:])
    env = gym.make("sqljax/AntAnyDirection-v1", max_episode_steps=6)  # episode 0 by hand, mu(s)
    obs, _ = env.reset(seed=0)
    by_hand = [np.asarray(env.unwrapped.data.qpos[:2], float).copy()]
    for _ in range(6):
        action = np.asarray(ddpg.act(state, (), obs.astype(np.float32), None, True)[0])
        obs, _, _, _, info = env.step(action)
        by_hand.append(np.array([info["x_position"], info["y_position"]]))
    env.close()
    np.testing.assert_allclose(det[0]["paths"][0], np.asarray(by_hand), atol=1e-5)
    sqljax.export_learner(tmp_path / "ddpg" / "seed0", state, {"env_id": "sqljax/AntAnyDirection-v1"})
    rc = locomotion.main([str(tmp_path / "ddpg" / "seed0"), "--episodes", "2", "--max-steps", "5",
                          "--deterministic", "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    learners = json.loads((tmp_path / "out" / "locomotion_deterministic.json").read_text())["learners"]
    assert learners["fresh (untrained)"]["source"] == "ddpg init"
    assert set(learners) == {"pretrained ddpg/seed0", "fresh (untrained)"}
