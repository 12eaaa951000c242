"""The evaluation report's charts: each shows one quantity over categories (scenario types, towns, metrics), every
bar with its confidence interval as an error bar.

A chart is data first (:class:`Chart`: the values and their interval bounds), drawn by :func:`draw`; the report
writes each chart's data beside its figure. Intervals are the evaluation's own: the BCa bootstrap over routes of
:func:`autoloop.evaluation.stats.bootstrap_mean` (paired over routes for the differences to the champion).

matplotlib (Agg) is imported when a chart is drawn, not with the package.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autoloop.evaluation.compare import Comparison
from autoloop.evaluation.results import EvaluationResult, RouteResult, route_metrics
from autoloop.evaluation.stats import Interval, bootstrap_mean

#: What the report charts of each per-route metric: its axis label (unit included) and its title's name.
_METRICS = {"driving_score": ("driving score (0–100)", "Driving score"),
            "success_rate": ("success rate (% of routes)", "Success rate"),
            "route_completion": ("route completion (%)", "Route completion"),
            "infraction_penalty": ("infraction penalty (× 100)", "Infraction penalty")}
#: Per-metric comparisons with the champion, in this order; the penalty (a factor) is charted in percent.
_COMPARED = ("driving_score", "route_completion", "success_rate", "infraction_penalty")
_SCALE = {"infraction_penalty": 100.0}


@dataclass(frozen=True)
class Chart:
    """One quantity per category, each value with its confidence interval ``[low, high]``.

    :param name: the figure's file stem.
    :param title: what the chart shows.
    :param quantity: the y axis: the one quantity every bar is, with its unit.
    :param interval: how the error bars were computed (level, method, over what).
    :param categories: the bars' labels, left to right.
    :param values: the bars' heights; ``low`` and ``high``, their intervals' bounds.
    :param signed: a difference (bars coloured by sign, a line at zero) rather than a score in [0, 100].
    """

    name: str
    title: str
    quantity: str
    interval: str
    categories: tuple[str, ...]
    values: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    signed: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def result_charts(result: EvaluationResult, *, resamples: int = 2000, seed: int = 0) -> list[Chart]:
    """Driving score, then success rate, per scenario type and per town (all routes first), with bootstrap
    intervals at the result's confidence level."""
    charts = []
    for by, label, key in (("type", "scenario type", _scenario_type), ("town", "town", _town)):
        groups: dict[str, list[RouteResult]] = {}
        for route in result.routes:
            groups.setdefault(key(route), []).append(route)
        for metric in ("driving_score", "success_rate"):
            overall = result.intervals[metric]
            intervals = [(f"all ({len(result.routes)})", overall)] + [
                (f"{name} ({len(routes)})", bootstrap_mean(route_metrics(routes)[metric], resamples=resamples,
                                                           confidence=overall.confidence, seed=seed))
                for name, routes in sorted(groups.items())]
            quantity, name = _METRICS[metric]
            charts.append(_chart(f"{metric}_by_{by}", f"{name} per {label} (routes in brackets)", quantity,
                                 intervals, "over routes"))
    return charts


def comparison_charts(comparison: Comparison, *, resamples: int = 2000, seed: int = 0) -> list[Chart]:
    """Candidate minus champion per metric (labelled champion → candidate), and the driving-score difference per
    scenario type; intervals paired over the same routes."""
    per_metric = []
    for metric in _COMPARED:
        compared, scale = comparison.metrics[metric], _SCALE.get(metric, 1.0)
        label = (f"{_METRICS[metric][1].lower()}\n{scale * compared.champion.mean:.1f} → "
                 f"{scale * compared.candidate.mean:.1f}")
        per_metric.append((label, _scaled(compared.difference, scale)))
    difference = comparison.difference
    by_type: dict[str, list[float]] = {}
    for route in comparison.routes:
        by_type.setdefault(route.scenario_type, []).append(route.difference)
    per_type = [(f"{name} ({len(values)})", bootstrap_mean(values, resamples=resamples,
                                                           confidence=difference.confidence, seed=seed))
                for name, values in sorted(by_type.items())]
    return [
        _chart("difference_by_metric", "Candidate minus champion per metric (under each: champion → candidate)",
               "candidate − champion (points)", per_metric, "paired over routes", signed=True),
        _chart("difference_by_type", "Driving score, candidate minus champion, per scenario type (routes in brackets)",
               "driving-score difference (points)", per_type, "paired over routes", signed=True),
    ]


def _chart(name: str, title: str, quantity: str, intervals: Sequence[tuple[str, Interval]], over: str, *,
           signed: bool = False) -> Chart:
    level = intervals[0][1].confidence if intervals else 0.95
    return Chart(name=name, title=title, quantity=quantity,
                 interval=f"{100 * level:.0f} % BCa bootstrap interval, {over}",
                 categories=tuple(label for label, _ in intervals),
                 values=tuple(interval.mean for _, interval in intervals),
                 low=tuple(interval.low for _, interval in intervals),
                 high=tuple(interval.high for _, interval in intervals), signed=signed)


def _scaled(interval: Interval, scale: float) -> Interval:
    return Interval(mean=scale * interval.mean, low=scale * interval.low, high=scale * interval.high,
                    confidence=interval.confidence)


def _scenario_type(route: RouteResult) -> str:
    return route.scenario_type


def _town(route: RouteResult) -> str:
    return route.town


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw(chart: Chart) -> Any:
    """The chart as a matplotlib figure: one bar per category, its interval as an error bar (the caller closes
    it)."""
    plt = pyplot()
    count = len(chart.categories)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * count + 2.0), 3.6), dpi=80)
    x = np.arange(count)
    values = np.asarray(chart.values, dtype=np.float64)
    below = values - np.asarray(chart.low, dtype=np.float64)
    above = np.asarray(chart.high, dtype=np.float64) - values
    colours = [("#cc3311" if v < 0 else "#009988") if chart.signed else "#4477aa" for v in values]
    ax.bar(x, values, color=colours, label=chart.quantity)
    ax.errorbar(x, values, yerr=np.stack([below, above]), fmt="none", ecolor="black", elinewidth=1.0, capsize=3,
                label=chart.interval)
    if chart.signed:
        ax.axhline(0.0, color="black", linewidth=0.8)
    else:
        ax.set_ylim(0, 100)
    ax.set_xticks(x, chart.categories, rotation=0 if chart.signed and count <= 4 else 60,
                  ha="center" if chart.signed and count <= 4 else "right", fontsize=7)
    ax.set_ylabel(chart.quantity, fontsize=8)
    width = int(fig.get_figwidth() * 13)  # characters of the title's font that fit the figure's width
    ax.set_title(textwrap.fill(chart.title, width) + "\n" + textwrap.fill(f"error bars: {chart.interval}", width),
                 fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def save(chart: Chart, folder: Path) -> Path:
    """Draw ``chart`` into ``folder/<name>.png``."""
    fig = draw(chart)
    path = folder / f"{chart.name}.png"
    fig.savefig(path)
    pyplot().close(fig)
    return path
