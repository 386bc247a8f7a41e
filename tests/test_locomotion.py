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
