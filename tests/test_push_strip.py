"""The push strip: frame steps around a push, the choice of episode, and one small render
of a zoo learner in which the push is seen to act."""

from pathlib import Path

import numpy as np
import pytest

from experiments.studies import push_strip as ps
from sqljax.envs import perturbations as pt
from sqljax.loops import RunError

REPO = Path(__file__).resolve().parents[1]
HOPPER_SQL = REPO / "zoo" / "Hopper" / "code"


def test_frame_steps_are_counts_from_the_push():
    assert ps.frame_steps(117, ps.DEFAULT_TIMES, 0.008, 1000) == [92, 117, 142, 179, 242, 367]  # 62.5 steps rounds to 62
    assert ps.frame_steps(0, [0.0, 0.05], 0.05, 1) == [0, 1]  # both ends of the episode allowed


@pytest.mark.parametrize("times", [[-0.2, 0.0], [0.0, 8.0]])
def test_frame_steps_outside_the_episode_are_refused(times):
    with pytest.raises(RunError, match="outside the episode"):
        ps.frame_steps(20, times, 0.008, 1000)


def test_pick_episode_takes_the_first_whose_push_leaves_room():
    seeds = list(range(40))
    firsts = [int(pt.push_schedule(3, s, 1000)[0][0]) for s in seeds]
    times = [-1.2, 0.0, 1.0]  # needs the first push at step >= 150
    i, seed, step = ps.pick_episode(3, seeds, times, 0.008, 1000)
    assert (seed, step) == (seeds[i], firsts[i]) and step >= 150
    assert all(f < 150 for f in firsts[:i])
    assert ps.pick_episode(3, seeds, [0.0], 0.008, 1000) == (0, 0, firsts[0])
    with pytest.raises(RunError, match="no episode"):
        ps.pick_episode(3, seeds, [0.0, 8.0], 0.008, 1000)  # 8 s is the whole episode


def _rendering() -> str | None:
    """None if MuJoCo renders offscreen here, else why not."""
    try:
        env = pt.PerturbedEnv("Hopper", render_mode="rgb_array", width=32, height=32)
        try:
            env.reset(seed=0)
            frame = np.asarray(env.render())
        finally:
            env.close()
    except Exception as e:  # noqa: BLE001
        return f"no offscreen MuJoCo rendering (MUJOCO_GL=egl): {type(e).__name__}: {e}"
    return None if frame.shape == (32, 32, 3) else f"MuJoCo rendered a frame of shape {frame.shape}"


@pytest.mark.skipif(not (HOPPER_SQL / "seed0").is_dir(), reason="zoo/Hopper/code/seed0 is not present")
def test_strip_of_one_learner_shows_an_applied_push(tmp_path, capsys):
    why = _rendering()
    if why:
        pytest.skip(why)
    out = tmp_path / "strip.png"
    shown = ps.run(["--task", "Hopper", "--learners", str(HOPPER_SQL), "--seed", "0", "--times", "-0.1", "0.2",
                    "--max-episode-steps", "300", "--size", "64", "--out", str(out)])
    assert out.is_file() and out.stat().st_size > 0
    assert "wrote" in capsys.readouterr().out
    (rec,), step, dt = shown["records"], shown["push_step"], shown["dt"]
    assert shown["steps"] == [step - round(0.1 / dt), step + round(0.2 / dt)]
    assert shown["push"] == pt.default_magnitudes("push", rec.env)[pt.PUSH_WEIGHTS.index(1.0)]
    assert {s for s in shown["steps"] if s <= len(rec.rewards)} <= set(rec.frames)
    assert all(f.shape == (64, 64, 3) for f in rec.frames.values())
    assert len(rec.rewards) > step  # the robot was still up when the push began
    # The same episode without the push: identical up to the push's start, then the root's
    # x velocity is kicked toward the push's direction in its very first step.
    calm = ps.play(shown["dirs"][0], 0, None, shown["episode_seed"], [], shown["horizon"])
    push_v, calm_v = np.asarray(rec.xvel), np.asarray(calm.xvel)
    np.testing.assert_array_equal(push_v[:step + 1], calm_v[:step + 1])
    kick = (push_v[step + 1] - calm_v[step + 1]) * shown["direction"]
    assert kick > 0.5 * shown["push"] / 30.0 * dt  # F dt / m, m generously taken as 30 kg (Hopper: 16)
