"""Closed-loop evaluation you can trust: suites run on the embedded simulator with a resumable checkpoint,
scored like the CARLA Leaderboard with bootstrap intervals, compared with the champion route by route, and
reported (Markdown and HTML with charts and clips)."""

from autoloop.evaluation.compare import (
    Comparison,
    MetricComparison,
    RouteDifference,
    compare,
    compare_link,
    episode_link,
)
from autoloop.evaluation.results import (
    AGENT_CRASHED,
    AGENT_SETUP_FAILED,
    COMPLETED,
    RUN_FAILURES,
    SIMULATION_CRASHED,
    Breakdown,
    EvaluationResult,
    InfractionEvent,
    RouteResult,
    aggregate,
)
from autoloop.evaluation.runner import checkpoint_path, evaluation_suite, run_evaluation
from autoloop.evaluation.stats import Interval, bootstrap_mean

__all__ = [
    "AGENT_CRASHED",
    "AGENT_SETUP_FAILED",
    "COMPLETED",
    "RUN_FAILURES",
    "SIMULATION_CRASHED",
    "Breakdown",
    "Comparison",
    "EvaluationResult",
    "InfractionEvent",
    "Interval",
    "MetricComparison",
    "RouteDifference",
    "RouteResult",
    "aggregate",
    "bootstrap_mean",
    "checkpoint_path",
    "compare",
    "compare_link",
    "episode_link",
    "evaluation_suite",
    "run_evaluation",
]
