"""experiments.studies.locomotion's direction spread: headings, sectors, the mean resultant
length R and the per-learner summary, on synthetic headings; and a short run of the command."""

import json
from pathlib import Path

import numpy as np
import pytest

from experiments.studies import locomotion as loco

ROOT = Path(__file__).resolve().parents[1]
LEARNER = ROOT / "zoo" / "AntAnyDirection-v1" / "pretrain" / "seed0"


def unit(angles, radius=1.0):
    a = np.asarray(angles, float)
    return np.reshape(radius, (-1, 1)) * np.stack([np.cos(a), np.sin(a)], axis=1)


def test_headings_of_displacements():
    d = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [0.0, -0.5], [1.0, 1.0]])
    np.testing.assert_allclose(loco.headings(d), [0, np.pi / 2, np.pi, -np.pi / 2, np.pi / 4])
    assert loco.headings(d).shape == (5,)


def test_identical_headings_give_one():
    assert loco.mean_resultant_length(np.full(20, 0.7)) == pytest.approx(1.0, abs=1e-12)
    assert loco.mean_resultant_length(np.full(3, -np.pi)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n", [2, 3, 4, 7, 8, 20])
def test_evenly_spaced_headings_give_zero(n):
    h = np.linspace(-np.pi, np.pi, n, endpoint=False) + 0.3
    assert loco.mean_resultant_length(h) == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(loco.circular_mean(h))
    assert loco.rayleigh_p(n, loco.mean_resultant_length(h)) == pytest.approx(1.0, abs=1e-6)


def test_two_direction_mixture():
    h = np.array([0.0] * 5 + [np.pi / 2] * 5)
    assert loco.mean_resultant_length(h) == pytest.approx(np.sqrt(2) / 2, abs=1e-12)
    assert loco.circular_mean(h) == pytest.approx(np.pi / 4)
    # three quarters one way, a quarter the opposite way: R = 3/4 - 1/4
    h = np.array([1.0] * 6 + [1.0 - np.pi] * 2)
    assert loco.mean_resultant_length(h) == pytest.approx(0.5, abs=1e-12)
    # two opposite ways in equal shares: R = 0, but the axial R (doubled headings) is 1
    h = np.array([0.4, 0.4 + np.pi] * 4)
    assert loco.mean_resultant_length(h) == pytest.approx(0.0, abs=1e-9)
    assert loco.mean_resultant_length(2 * h) == pytest.approx(1.0, abs=1e-9)


def test_rotation_invariance():
    rng = np.random.default_rng(3)
    h = rng.vonmises(0.5, 1.5, size=25)
    r = loco.mean_resultant_length(h)
    for shift in (0.1, 1.0, np.pi, -2.5, 17.0):
        rotated = np.angle(np.exp(1j * (h + shift)))  # back into (-pi, pi]
        assert loco.mean_resultant_length(rotated) == pytest.approx(r, abs=1e-12)
        expected = np.angle(np.exp(1j * (loco.circular_mean(h) + shift)))
        assert np.angle(np.exp(1j * (loco.circular_mean(rotated) - expected))) == pytest.approx(0, abs=1e-9)


def test_sector_shares_sum_to_one_and_place_headings():
    deg = np.radians
    # sector k is centred on k * 45 degrees: E, NE, N, NW, W, SW, S, SE
    cases = {0: [0, 22.4, -22.4], 1: [45, 22.6, 67.4], 2: [90], 3: [135], 4: [180, -180, 179.9, -179.9, 157.6, -157.6],
             5: [-135, -157.4], 6: [-90, -67.6], 7: [-45, -22.6]}
    for k, angles in cases.items():
        np.testing.assert_array_equal(loco.sector_index(deg(angles)), k, err_msg=f"sector {k}: {angles}")
        shares = loco.sector_histogram(deg(angles))
        assert shares.shape == (8,) and shares.sum() == pytest.approx(1.0) and shares[k] == 1.0
    rng = np.random.default_rng(0)
    h = rng.uniform(-np.pi, np.pi, 101)
    assert loco.sector_histogram(h).sum() == pytest.approx(1.0)
    assert loco.sector_histogram(h, n_sectors=4).shape == (4,)
    shares = loco.sector_histogram(deg([0, 0, 90, 180]))
    np.testing.assert_allclose(shares, [0.5, 0, 0.25, 0, 0.25, 0, 0, 0])
    # 4 sectors centred on +x, +y, -x, -y
    np.testing.assert_array_equal(loco.sector_index(deg([10, 80, -170, -100]), n_sectors=4), [0, 1, 2, 3])


def test_non_moving_episodes_are_excluded():
    d = np.concatenate([unit([0.3] * 4, radius=2.0), unit([2.0, -1.0, 3.0], radius=0.05)])
    h = loco.headings(d, min_distance=0.1)
    assert np.isfinite(h).sum() == 4 and np.isnan(h[4:]).all()
    assert loco.mean_resultant_length(h) == pytest.approx(1.0)
    assert loco.sector_histogram(h).sum() == pytest.approx(1.0)
    assert np.isnan(loco.mean_resultant_length(loco.headings(unit([1.0], radius=0.01))))
    assert not loco.sector_histogram(np.array([np.nan])).any()

    s = loco.direction_summary(d, np.full(len(d), 50.0), min_distance=0.1)
    assert (s["episodes"], s["moved"], s["stationary"]) == (7, 4, 3)
    assert s["R"] == pytest.approx(1.0)
    assert s["mean_heading_deg"] == pytest.approx(np.degrees(0.3), abs=0.01)
    assert s["headings_deg"][4:] == [None] * 3
    assert sum(s["sector_shares"]) == pytest.approx(1.0) and s["sectors_occupied"] == 1
    # distances and speeds count every episode
    assert s["distance_mean"] == pytest.approx((4 * 2.0 + 3 * 0.05) / 7)
    assert s["distance_median"] == pytest.approx(2.0)
    assert s["net_speed_mean"] == pytest.approx((4 * 2.0 + 3 * 0.05) / 7 / 50.0)
    json.dumps(s, allow_nan=False)

    nothing = loco.direction_summary(unit([0.0, 1.0], radius=0.0), [10.0, 10.0])
    assert nothing["moved"] == 0 and nothing["R"] is None and nothing["mean_heading_deg"] is None
    json.dumps(nothing, allow_nan=False)


def test_summary_of_spread_and_one_way_learners():
    spread = loco.direction_summary(unit(np.radians(np.arange(0, 360, 45)), radius=4.0), np.full(8, 40.0))
    assert spread["R"] == pytest.approx(0.0, abs=1e-9) and spread["rayleigh_p"] == pytest.approx(1.0, abs=1e-6)
    assert spread["sector_shares"] == [0.125] * 8 and spread["sectors_occupied"] == 8
    assert spread["net_speed_mean"] == pytest.approx(0.1)
    one_way = loco.direction_summary(unit(np.full(20, np.pi / 2), radius=np.linspace(1, 3, 20)),
                                     np.linspace(20, 50, 20))
    assert one_way["R"] == pytest.approx(1.0) and one_way["rayleigh_p"] < 1e-6
    assert one_way["mean_heading_deg"] == pytest.approx(90.0) and one_way["sector_shares"][2] == 1.0
    assert one_way["net_speed_mean"] == pytest.approx(np.mean(np.linspace(1, 3, 20) / np.linspace(20, 50, 20)))
    assert one_way["net_speed_pooled"] == pytest.approx(np.linspace(1, 3, 20).sum() / np.linspace(20, 50, 20).sum())
    with pytest.raises(ValueError):
        loco.direction_summary(unit([0.0, 1.0]), [1.0])


def test_spread_of_run_uses_path_ends_and_step_duration():
    paths = [np.array([[1.0, 1.0], [1.5, 1.0], [3.0, 1.0]]), np.array([[0.0, 0.0], [0.0, -1.0]])]
    s = loco.spread_of_run({"paths": paths, "lengths": [2, 1], "dt": 0.05})
    assert s["headings_deg"] == [0.0, -90.0]
    assert s["durations"] == [0.1, 0.05]
    assert s["net_speed_mean"] == pytest.approx((2.0 / 0.1 + 1.0 / 0.05) / 2)


@pytest.mark.skipif(not (LEARNER / "learner.msgpack").is_file(), reason="zoo learner not present")
def test_command_on_one_zoo_learner(tmp_path, capsys):
    rc = loco.main([str(LEARNER), "--episodes", "2", "--max-steps", "50", "--no-fresh", "--out", str(tmp_path)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "sector shares: E " in printed and "R " in printed
    summary = json.loads((tmp_path / "direction_spread.json").read_text())
    assert summary["env_id"] == "sqljax/AntAnyDirection-v1" and summary["mode"] == "stochastic"
    assert summary["dt"] == pytest.approx(0.05)
    (name, s), = summary["learners"].items()
    assert name == "pretrained pretrain/seed0" and s["episodes"] == 2
    assert s["moved"] + s["stationary"] == 2 and all(0 < t <= 50 * 0.05 + 1e-9 for t in s["durations"])
    assert s["R"] is None or 0.0 <= s["R"] <= 1.0
    if s["moved"]:
        assert sum(s["sector_shares"]) == pytest.approx(1.0)
    for f in ("direction_spread.png", "locomotion.json", "locomotion.png"):
        assert (tmp_path / f).stat().st_size > 0
