"""Bootstrap confidence intervals over routes.

A suite's score is a mean over its routes, and routes differ far more from one another than runs of one route do
(the simulator is deterministic for a seed), so the uncertainty that matters is which routes were drawn: the
percentile bootstrap resamples routes with replacement and reads the interval off the resampled means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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
    """Percentile-bootstrap interval of the mean of ``values``: ``resamples`` draws of ``len(values)`` values with
    replacement (seeded: the same input gives the same interval).

    Constant values give a zero-width interval; two values ``[0, 1]`` give resampled means 0, 0.5 and 1 with
    probabilities 1/4, 1/2 and 1/4, hence the 95 % interval ``[0, 1]``.

    :raises ValueError: for no values.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("bootstrap_mean needs at least one value")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    mean = float(data.mean())
    # the quantiles of identical values can round a last digit off the mean
    return Interval(mean=mean, low=min(float(low), mean), high=max(float(high), mean), confidence=confidence)
