"""Aggregate statistics over seeds (and tasks) with bootstrap confidence intervals.

The estimators follow rliable (Agarwal et al., "Deep RL at the Edge of the Statistical
Precipice", NeurIPS 2021; library ``rliable`` 1.2.0), written here with numpy and scipy:

* scores are a matrix ``(num_runs, num_tasks)`` (a single task is one column);
* :func:`aggregate_mean`: the mean over tasks of the per-task mean over runs;
* :func:`aggregate_median`: the median over tasks of the per-task means;
* :func:`aggregate_iqm`: the interquartile mean of all runs of all tasks pooled,
  ``scipy.stats.trim_mean(scores, 0.25, axis=None)`` exactly as rliable computes it:
  ``int(0.25 * n)`` scores are dropped at each end and the rest averaged (for ``n``
  divisible by 4 that is the mean of the middle 50 %; otherwise slightly more than
  half remains, with no fractional weights). :func:`iqm_fractional` is the variant
  that gives the boundary scores fractional weight, for readers who want exactly 50 %;
* :func:`bootstrap_ci`: the **stratified bootstrap** percentile interval
  (rliable's ``get_interval_estimates`` with its defaults: ``method="percentile"``,
  ``task_bootstrap=False``, 50,000 replicates, 95 %): every resample draws, for each
  task independently, ``num_runs`` runs with replacement from that task's runs; the
  interval is the 2.5th and 97.5th percentiles (numpy's linear interpolation) of the
  statistic over the resamples.

rliable itself is not a dependency: rliable 1.2.0 imports ``arch`` (< 8), and arch 7.2
fails to import under pandas 3 (``deprecate_kwarg`` changed signature); with pandas 2.3
it runs on numpy 2.4 / scipy 1.17 and agrees with this module. Nothing here plots or
touches files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import scipy.stats

__all__ = [
    "AGGREGATES", "aggregate_iqm", "aggregate_mean", "aggregate_median", "as_score_matrix",
    "bootstrap_ci", "bootstrap_distribution", "describe", "interval_estimates", "iqm_fractional",
    "stratified_bootstrap_indices", "summarize_curve",
]

#: rliable's default number of bootstrap replicates.
DEFAULT_REPS = 50_000
#: Elements of the resampled tensor processed at once (memory bound, ~400 MB of float64).
_CHUNK_ELEMENTS = 50_000_000


def as_score_matrix(scores) -> np.ndarray:
    """``(num_runs,)`` or ``(num_runs, num_tasks)`` -> float64 ``(num_runs, num_tasks)``.

    Raises ValueError for other ranks, no runs, or non-finite scores (a diverged seed
    must be reported, not averaged silently).
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"scores must be (num_runs,) or (num_runs, num_tasks), got shape {x.shape}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"scores need at least one run and one task, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("scores contain NaN or infinite values")
    return x


# ------------------------------------------------------------------ aggregate statistics
# Each takes scores (..., num_runs, num_tasks) and reduces the last two axes, so the
# same function evaluates one matrix or a stack of bootstrap resamples at once.

def aggregate_mean(scores: np.ndarray) -> np.ndarray:
    """Mean over tasks of the per-task mean over runs: (..., R, T) -> (...)."""
    return np.mean(np.mean(scores, axis=-2), axis=-1)


def aggregate_median(scores: np.ndarray) -> np.ndarray:
    """Median over tasks of the per-task mean over runs: (..., R, T) -> (...)."""
    return np.median(np.mean(scores, axis=-2), axis=-1)


def aggregate_iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean of all scores pooled (rliable's IQM, a 25 % trimmed mean):
    (..., R, T) -> (...)."""
    s = np.asarray(scores)
    flat = s.reshape(s.shape[:-2] + (-1,))
    return scipy.stats.trim_mean(flat, proportiontocut=0.25, axis=-1)


def iqm_fractional(scores) -> float:
    """Mean of exactly the middle 50 % of the pooled scores, the two boundary order
    statistics weighted by the fraction of them that lies inside [n/4, 3n/4].

    Equals :func:`aggregate_iqm` when the number of scores is divisible by 4.
    """
    x = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1))
    n = x.size
    if n == 0:
        raise ValueError("iqm_fractional of no scores")
    lo, hi = n / 4.0, 3.0 * n / 4.0
    # score k (0-based) covers the interval [k, k + 1) of the sorted line.
    k = np.arange(n)
    weight = np.clip(np.minimum(k + 1, hi) - np.maximum(k, lo), 0.0, 1.0)
    return float(np.sum(weight * x) / np.sum(weight))


AGGREGATES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": aggregate_mean,
    "median": aggregate_median,
    "iqm": aggregate_iqm,
}


# ------------------------------------------------------------------ stratified bootstrap

def stratified_bootstrap_indices(num_runs: int, num_tasks: int, reps: int,
                                 rng: np.random.Generator) -> np.ndarray:
    """Run indices of ``reps`` stratified resamples: (reps, num_runs, num_tasks) ints in
    [0, num_runs); entry [b, r, t] says which run of task t fills slot r of resample b
    (runs are resampled within each task, never across tasks)."""
    return rng.integers(0, num_runs, size=(reps, num_runs, num_tasks))


def bootstrap_distribution(scores, statistic: Callable[[np.ndarray], np.ndarray],
                           reps: int = DEFAULT_REPS, seed: int | np.random.Generator = 0) -> np.ndarray:
    """The statistic on ``reps`` stratified bootstrap resamples of ``scores``: (reps,)."""
    x = as_score_matrix(scores)
    if int(reps) < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    r, t = x.shape
    task = np.arange(t)
    chunk = max(1, _CHUNK_ELEMENTS // (r * t))
    out = []
    for start in range(0, int(reps), chunk):
        n = min(chunk, int(reps) - start)
        idx = stratified_bootstrap_indices(r, t, n, rng)
        out.append(np.asarray(statistic(x[idx, task]), dtype=np.float64))
    return np.concatenate(out)


def bootstrap_ci(scores, statistic: Callable[[np.ndarray], np.ndarray] | str = "iqm",
                 reps: int = DEFAULT_REPS, confidence: float = 0.95,
                 seed: int | np.random.Generator = 0) -> tuple[float, float]:
    """Percentile interval of the stratified bootstrap (rliable's convention):
    (lower, upper) at the given confidence."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    fn = AGGREGATES[statistic] if isinstance(statistic, str) else statistic
    dist = bootstrap_distribution(scores, fn, reps, seed)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(dist, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(lo), float(hi)


def interval_estimates(scores, statistics: tuple[str, ...] = ("mean", "iqm"),
                       reps: int = DEFAULT_REPS, confidence: float = 0.95,
                       seed: int = 0) -> dict[str, dict[str, float]]:
    """Point estimate and bootstrap CI per statistic:
    ``{name: {"value": v, "ci_low": lo, "ci_high": hi}}``. Each statistic draws its
    resamples from a generator seeded with ``seed`` (the same resamples for all)."""
    x = as_score_matrix(scores)
    out = {}
    for name in statistics:
        fn = AGGREGATES[name]
        lo, hi = bootstrap_ci(x, fn, reps, confidence, seed)
        out[name] = {"value": float(fn(x)), "ci_low": lo, "ci_high": hi}
    return out


def summarize_curve(steps, returns, statistics: tuple[str, ...] = ("mean", "iqm"),
                    reps: int = DEFAULT_REPS, confidence: float = 0.95,
                    seed: int = 0) -> dict[str, list]:
    """Statistics of a learning curve across seeds, one evaluation step at a time.

    steps: (S,) evaluation steps. returns: (num_seeds, S) per-seed returns (one task),
    or (num_seeds, S, num_tasks). Steps where any seed's value is missing (NaN) are
    skipped. Returns ``{"step": [...], name: [...], name + "_ci": [[lo, hi], ...]}``
    plus ``"n_seeds"``.
    """
    steps = np.asarray(steps)
    y = np.asarray(returns, dtype=np.float64)
    if y.ndim == 2:
        y = y[:, :, None]
    if y.ndim != 3 or y.shape[1] != steps.shape[0]:
        raise ValueError(f"returns must be (num_seeds, {steps.shape[0]}[, num_tasks]), got {y.shape}")
    out: dict[str, list] = {"step": [], "n_seeds": int(y.shape[0])}
    for name in statistics:
        out[name], out[name + "_ci"] = [], []
    for j, step in enumerate(steps):
        col = y[:, j, :]
        if not np.all(np.isfinite(col)):
            continue
        est = interval_estimates(col, statistics, reps, confidence, seed)
        out["step"].append(int(step))
        for name in statistics:
            out[name].append(est[name]["value"])
            out[name + "_ci"].append([est[name]["ci_low"], est[name]["ci_high"]])
    return out


def describe(values: Mapping[str, float]) -> str:
    """``"iqm 12.3 [10.1, 14.0]"``-style text of an :func:`interval_estimates` entry."""
    return f"{values['value']:.1f} [{values['ci_low']:.1f}, {values['ci_high']:.1f}]"


def difference_ci(a, b, reps: int, confidence: float, seed: int = 0) -> dict[str, float]:
    """Mean of ``a`` minus mean of ``b`` (two independent groups of seeds) with the
    percentile interval of independent bootstrap resamples of each group, and the share
    of resamples in which the difference is positive."""
    da = bootstrap_distribution(a, aggregate_mean, reps, seed)
    db = bootstrap_distribution(b, aggregate_mean, reps, seed + 1)
    d = da - db
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(d, [100 * alpha, 100 * (1 - alpha)])
    return {"value": float(np.mean(a) - np.mean(b)), "ci_low": float(lo), "ci_high": float(hi),
            "share_positive": float(np.mean(d > 0))}


def verdict(diff: Mapping[str, float], first: str, second: str, where: bool = False) -> str:
    """Which group a :func:`difference_ci` of ``first`` minus ``second`` finds higher: the
    one its CI lies on the side of, else no clear difference; ``where`` adds where the CI
    lies (``"first higher (CI of the difference above 0)"``)."""
    if diff["ci_low"] > 0:
        words, side = f"{first} higher", "above 0"
    elif diff["ci_high"] < 0:
        words, side = f"{second} higher", "below 0"
    else:
        words, side = "no clear difference", "contains 0"
    return f"{words} (CI of the difference {side})" if where else words
