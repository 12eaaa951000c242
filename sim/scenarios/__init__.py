"""Scenarios: routes with traffic and typed events, Leaderboard route files, and the generators of suites."""

from sim.scenarios.events import EVENT_TYPES, ScenarioEvent
from sim.scenarios.model import Scenario, sample_scenario

__all__ = ["EVENT_TYPES", "Scenario", "ScenarioEvent", "sample_scenario"]
