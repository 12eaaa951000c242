"""Bootstrap confidence intervals over routes.

A suite's score is a mean over its routes, and routes differ far more from one another than runs of one route do
(the simulator is deterministic for a seed), so the uncertainty that matters is which routes were drawn: the
bootstrap resamples routes with replacement. The interval is SciPy's bias-corrected and accelerated one
(``scipy.stats.bootstrap``, ``method="BCa"``), which corrects the percentile interval's bias and skew: route scores
are skewed (most near 100, a few failures far below), and a quick evaluation has only 8–24 routes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap


@dataclass(frozen=True)
class Interval:
    """A mean and its confidence interval ``[low, high]`` at level ``confidence`` (0.95: 95 %)."""

    mean: float
    low: float
    high: float
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def __str__(self) -> str:
        return f"{self.mean:.1f} [{self.low:.1f}, {self.high:.1f}]"


def bootstrap_mean(values: Sequence[float] | np.ndarray, *, resamples: int = 2000, confidence: float = 0.95,
                   seed: int = 0) -> Interval:
    """BCa bootstrap interval of the mean of ``values``: ``resamples`` draws of ``len(values)`` values with
    replacement (seeded: the same input gives the same interval).

    Constant values give a zero-width interval; two values ``[0, 1]`` give resampled means 0, 0.5 and 1 with
    probabilities 1/4, 1/2 and 1/4, hence the 95 % interval ``[0, 1]``.

    :raises ValueError: for no values.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("bootstrap_mean needs at least one value")
    mean = float(data.mean())
    if data.size == 1 or np.all(data == data[0]):  # nothing to resample: no uncertainty the routes could show
        return Interval(mean=mean, low=mean, high=mean, confidence=confidence)
    with warnings.catch_warnings():  # (BCa's acceleration is undefined for degenerate jackknife samples: NaN)
        warnings.simplefilter("ignore", RuntimeWarning)
        found = bootstrap((data,), np.mean, n_resamples=resamples, confidence_level=confidence, method="BCa",
                          rng=np.random.default_rng(seed)).confidence_interval
    low, high = float(found.low), float(found.high)
    if not (np.isfinite(low) and np.isfinite(high)):
        low, high = float(data.min()), float(data.max())
    # the quantiles of identical values can round a last digit off the mean
    return Interval(mean=mean, low=min(float(low), mean), high=max(float(high), mean), confidence=confidence)
