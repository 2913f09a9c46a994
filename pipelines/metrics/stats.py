"""Small, pure statistics for the impact tables: bootstrap differences, Spearman with an interval,
segmented regression (interrupted time series) and Wilson intervals. No I/O here.

Every result is an association measured on observational data, never a causal effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float
    n: int


def bootstrap_mean_difference(a: np.ndarray, b: np.ndarray, *, samples: int = 1000, seed: int = 0,
                              level: float = 0.95) -> Estimate:
    """mean(a) - mean(b) with a percentile bootstrap interval (each group resampled on its own)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("both groups need at least one value")
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), (samples, len(a)))
    ib = rng.integers(0, len(b), (samples, len(b)))
    diffs = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Estimate(float(a.mean() - b.mean()), float(low), float(high), len(a) + len(b))


def spearman(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> tuple[Estimate, float]:
    """Spearman rho with a Fisher-z interval (standard error 1.06 / sqrt(n - 3), Fieller et al. 1957)
    and its p-value. Needs n >= 4 and variation in both variables."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError("spearman needs at least 4 pairs and variation in both variables")
    res = stats.spearmanr(x, y)
    rho = float(res.statistic)
    z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    half = stats.norm.ppf(0.5 + level / 2) * 1.06 / np.sqrt(n - 3)
    return Estimate(rho, float(np.tanh(z - half)), float(np.tanh(z + half)), n), float(res.pvalue)


@dataclass(frozen=True)
class ItsResult:
    level_change: Estimate
    slope_change: Estimate
    n_before: int
    n_after: int


def interrupted_time_series(t: np.ndarray, y: np.ndarray, t0: float, level: float = 0.95) -> ItsResult:
    """Segmented regression y = b0 + b1 t + b2 after + b3 (t - t0) after + e, with OLS standard errors.

    level_change is b2 (the jump at t0), slope_change is b3 (per unit of t)."""
    t, y = np.asarray(t, float), np.asarray(y, float)
    after = (t >= t0).astype(float)
    x = np.column_stack([np.ones_like(t), t, after, (t - t0) * after])
    n_before, n_after = int((after == 0).sum()), int(after.sum())
    if n_before < 3 or n_after < 3:
        raise ValueError("interrupted time series needs at least 3 points on each side")
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    dof = len(y) - x.shape[1]
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.pinv(x.T @ x)
    q = stats.t.ppf(0.5 + level / 2, dof)
    est = []
    for j in (2, 3):
        se = float(np.sqrt(cov[j, j]))
        est.append(Estimate(float(beta[j]), float(beta[j] - q * se), float(beta[j] + q * se), len(y)))
    return ItsResult(est[0], est[1], n_before, n_after)


def wilson(successes: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n <= 0:
        return (float("nan"), float("nan"))
    z = stats.norm.ppf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (float(centre - half), float(centre + half))
