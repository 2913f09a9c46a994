"""Small, pure statistics for the impact tables: bootstrap differences (clustered by person for
person-months), Spearman with an interval, segmented regression with Newey-West errors (interrupted
time series) and Wilson intervals. No I/O here.

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
    """mean(a) - mean(b) with a percentile bootstrap interval (each group resampled on its own: for
    independent observations; person-months are not, see `cluster_bootstrap_mean_difference`)."""
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


def cluster_bootstrap_mean_difference(values: np.ndarray, in_a: np.ndarray, cluster: np.ndarray, *,
                                      samples: int = 1000, seed: int = 0, level: float = 0.95) -> Estimate:
    """mean of the `in_a` observations - mean of the others, with a percentile interval from a cluster
    bootstrap: whole clusters (people) are resampled with replacement, each with all its observations
    (months) in both groups, because the months of one person are not independent (Davison and Hinkley
    1997, section 3.8; Cameron and Miller 2015). Resampling the months one by one treats a person's
    twelve months as twelve people and gives intervals too narrow.

    Each replicate draws as many clusters as there are, so the group sizes vary between replicates; a
    replicate without any observation of one group has no difference and is left out of the percentiles.
    """
    values, in_a = np.asarray(values, float), np.asarray(in_a, bool)
    if not in_a.any() or in_a.all():
        raise ValueError("both groups need at least one value")
    codes, ids = np.unique(np.asarray(cluster, object).astype(str), return_inverse=True)
    m = len(codes)
    # per cluster: sum and count of its observations in each group
    sum_a = np.bincount(ids, weights=np.where(in_a, values, 0.0), minlength=m)
    n_a = np.bincount(ids, weights=in_a.astype(float), minlength=m)
    sum_b = np.bincount(ids, weights=np.where(in_a, 0.0, values), minlength=m)
    n_b = np.bincount(ids, weights=(~in_a).astype(float), minlength=m)
    rng = np.random.default_rng(seed)
    per_cluster = np.column_stack([sum_a, n_a, sum_b, n_b])
    totals = []
    chunk = max(1, 2_000_000 // m)  # replicates at a time: memory stays ~16 MB whatever the headcount
    for first in range(0, samples, chunk):
        size = min(chunk, samples - first)
        draws = rng.integers(0, m, (size, m)) + (np.arange(size) * m)[:, None]
        times = np.bincount(draws.ravel(), minlength=size * m).reshape(size, m)  # draws of each cluster
        totals.append(times @ per_cluster)
    sa_, na, sb_, nb = np.vstack(totals).T
    ok = (na > 0) & (nb > 0)
    diffs = sa_[ok] / na[ok] - sb_[ok] / nb[ok]
    value = float(values[in_a].mean() - values[~in_a].mean())
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail]) if len(diffs) else (np.nan, np.nan)
    return Estimate(value, float(low), float(high), len(values))


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
    lags: int


def newey_west_lags(n: int) -> int:
    """The usual automatic truncation lag of the Newey-West estimator, floor(4 (n / 100)^(2/9))
    (Newey and West 1994): 2 lags for 16 weekly points."""
    return int(np.floor(4 * (n / 100) ** (2 / 9)))


def hac_covariance(x: np.ndarray, resid: np.ndarray, lags: int) -> np.ndarray:
    """Newey-West (1987) covariance of OLS coefficients, robust to heteroskedasticity and to
    autocorrelation up to `lags` periods: (X'X)^-1 S (X'X)^-1 with
    S = sum_t e_t^2 x_t x_t' + sum_{l=1..L} w_l sum_t e_t e_{t-l} (x_t x_{t-l}' + x_{t-l} x_t'),
    Bartlett weights w_l = 1 - l / (L + 1), times the small-sample factor n / (n - k) (what statsmodels'
    `cov_type="HAC"` computes with `use_correction=True`). Rows of x must be in time order."""
    x, resid = np.asarray(x, float), np.asarray(resid, float)
    n, k = x.shape
    xe = x * resid[:, None]
    s = xe.T @ xe
    for lag in range(1, lags + 1):
        w = 1 - lag / (lags + 1)
        gamma = xe[lag:].T @ xe[:-lag]
        s += w * (gamma + gamma.T)
    bread = np.linalg.pinv(x.T @ x)
    return bread @ s @ bread * n / (n - k)


def interrupted_time_series(t: np.ndarray, y: np.ndarray, t0: float, level: float = 0.95,
                            lags: int | None = None) -> ItsResult:
    """Segmented regression y = b0 + b1 t + b2 after + b3 (t - t0) after + e, fitted by OLS, with
    Newey-West (HAC) standard errors: the points of an engagement series are autocorrelated (this week
    looks like last week), and OLS errors that assume independence make the intervals far too narrow.
    `lags` defaults to `newey_west_lags(n)`; the interval uses Student's t with n - 4 degrees of freedom
    (conservative for the few points of a weekly series).

    level_change is b2 (the jump at t0), slope_change is b3 (per unit of t). t must be in time order."""
    t, y = np.asarray(t, float), np.asarray(y, float)
    order = np.argsort(t, kind="stable")
    t, y = t[order], y[order]
    after = (t >= t0).astype(float)
    x = np.column_stack([np.ones_like(t), t, after, (t - t0) * after])
    n_before, n_after = int((after == 0).sum()), int(after.sum())
    if n_before < 3 or n_after < 3:
        raise ValueError("interrupted time series needs at least 3 points on each side")
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    dof = len(y) - x.shape[1]
    lags = newey_west_lags(len(y)) if lags is None else lags
    cov = hac_covariance(x, resid, lags)
    q = stats.t.ppf(0.5 + level / 2, dof)
    est = []
    for j in (2, 3):
        se = float(np.sqrt(max(cov[j, j], 0.0)))
        est.append(Estimate(float(beta[j]), float(beta[j] - q * se), float(beta[j] + q * se), len(y)))
    return ItsResult(est[0], est[1], n_before, n_after, lags)


def wilson(successes: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n <= 0:
        return (float("nan"), float("nan"))
    z = stats.norm.ppf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (float(centre - half), float(centre + half))
