"""Statistics across seeds (experiments/stats.py) against hand-computed values."""

import numpy as np
import pytest

from experiments import stats


def test_iqm_of_known_arrays():
    # 8 scores: drop 2 at each end, mean of the middle 4 (order does not matter).
    x = np.array([100.0, 3, 5, -50, 4, 6, 1, 2])
    assert stats.aggregate_iqm(x[:, None]) == pytest.approx((2 + 3 + 4 + 5) / 4)  # sorted: -50 1 [2 3 4 5] 6 100
    # rliable pools runs and tasks: a (4, 2) matrix is 8 scores.
    assert stats.aggregate_iqm(x.reshape(4, 2)) == pytest.approx(3.5)
    # 10 scores: trim_mean drops int(2.5) = 2 per end (no fractional weights) ...
    sq = np.arange(10.0) ** 2
    assert stats.aggregate_iqm(sq[:, None]) == pytest.approx((4 + 9 + 16 + 25 + 36 + 49) / 6)
    # ... the fractional variant weights the boundary scores by a half.
    assert stats.iqm_fractional(sq) == pytest.approx((0.5 * 4 + 9 + 16 + 25 + 36 + 0.5 * 49) / 5)
    assert stats.iqm_fractional(x) == pytest.approx(stats.aggregate_iqm(x[:, None]))


def test_mean_and_median_aggregate_per_task_first():
    scores = np.array([[1.0, 10.0, 100.0], [3.0, 30.0, 300.0]])  # 2 runs, 3 tasks
    assert stats.aggregate_mean(scores) == pytest.approx((2 + 20 + 200) / 3)
    assert stats.aggregate_median(scores) == pytest.approx(20.0)


def test_bootstrap_of_two_scores_matches_the_exact_distribution():
    # Resamples of [0, 1] have mean 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4.
    dist = stats.bootstrap_distribution([0.0, 1.0], stats.aggregate_mean, reps=40_000, seed=3)
    values, counts = np.unique(dist, return_counts=True)
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(counts / counts.sum(), [0.25, 0.5, 0.25], atol=0.01)
    assert stats.bootstrap_ci([0.0, 1.0], "mean", reps=40_000) == (0.0, 1.0)


def test_ci_contains_the_truth_and_covers_about_95_percent():
    rng = np.random.default_rng(0)
    lo, hi = stats.bootstrap_ci(rng.normal(3.0, 1.0, size=200), "mean", reps=5000, seed=1)
    assert lo < 3.0 < hi and hi - lo < 0.6
    # Coverage of the percentile interval of the mean over repeated experiments.
    hits = 0
    trials = 200
    for t in range(trials):
        x = rng.normal(0.0, 1.0, size=40)
        lo, hi = stats.bootstrap_ci(x, "mean", reps=1000, seed=t)
        hits += lo <= 0.0 <= hi
    assert 0.88 <= hits / trials <= 0.99


def test_bootstrap_is_stratified_over_tasks():
    # Task 0 scores lie in {0, 1, 2}, task 1 in {100, 101, 102}: a stratified resample
    # keeps three scores of each task, so its mean stays within [50, 52]; pooling the
    # tasks would let it range over [0, 102].
    scores = np.array([[0.0, 100.0], [1.0, 101.0], [2.0, 102.0]])
    rng = np.random.default_rng(0)
    idx = stats.stratified_bootstrap_indices(3, 2, 1000, rng)
    assert idx.shape == (1000, 3, 2) and idx.min() == 0 and idx.max() == 2
    dist = stats.bootstrap_distribution(scores, stats.aggregate_mean, reps=5000, seed=0)
    assert dist.min() >= 50.0 and dist.max() <= 52.0
    assert dist.min() == pytest.approx(50.0) and dist.max() == pytest.approx(52.0)
    # The columns are resampled independently: not always the same rows for both tasks.
    resampled = scores[idx, np.arange(2)]
    assert np.any(resampled[..., 0] + 100 != resampled[..., 1])


def test_interval_estimates_and_reproducibility():
    x = np.array([1.0, 2.0, 3.0, 4.0, 50.0, 6.0, 7.0, 8.0])
    a = stats.interval_estimates(x, ("mean", "iqm"), reps=3000, seed=7)
    b = stats.interval_estimates(x, ("mean", "iqm"), reps=3000, seed=7)
    assert a == b
    assert a["mean"]["value"] == pytest.approx(x.mean())
    assert a["iqm"]["value"] == pytest.approx((3 + 4 + 6 + 7) / 4)
    for v in a.values():
        assert v["ci_low"] <= v["value"] <= v["ci_high"]
    # An outlier widens the mean's interval far more than the IQM's.
    y = np.append(np.arange(1.0, 20.0), 1000.0)
    c = stats.interval_estimates(y, ("mean", "iqm"), reps=3000, seed=7)
    assert c["mean"]["ci_high"] - c["mean"]["ci_low"] > 5 * (c["iqm"]["ci_high"] - c["iqm"]["ci_low"])


def test_summarize_curve_skips_incomplete_steps():
    returns = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])  # 2 seeds, 3 steps
    out = stats.summarize_curve([10, 20, 30], returns, ("mean",), reps=500)
    assert out["step"] == [10, 20] and out["n_seeds"] == 2
    assert out["mean"] == pytest.approx([2.0, 3.0])
    assert len(out["mean_ci"]) == 2


def test_bad_scores_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        stats.interval_estimates([1.0, np.nan])
    with pytest.raises(ValueError, match="shape"):
        stats.as_score_matrix(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_ci([1.0, 2.0], "mean", confidence=1.5)
