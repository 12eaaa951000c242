"""Failures: what went wrong in the last cycles, each with what is needed to drive it again.

Three sources feed the engine:

- ``evaluation`` — a route of an evaluation that did not succeed: it ended without completing, had an infraction
  (the Leaderboard's, but for minimum speed), or scored a driving score below the engine's ``failing_ds``;
  with its scenario type, town, and the time and place of each infraction;
- ``fleet`` — a trigger mined from a fleet episode (:mod:`autoloop.fleet.mining`: interventions, hard braking,
  near misses, infractions);
- ``shadow`` — a moment where the champion, driving a fleet log open-loop, would have hit a recorded actor, left
  the road, run a red light or strayed far from the human (:mod:`autoloop.engine.shadow`).

A failure's ``key`` names it for good (a route's by the content hash of its scenario, a fleet moment by episode,
step and kind), so the engine counts each once: in the regression suite, and as a moment already used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow.parquet as pq

from autoloop.engine.generate import scenario_hash
from autoloop.episodes import EpisodeStore
from autoloop.evaluation import COMPLETED, EvaluationResult, InfractionEvent
from autoloop.fleet.mining import Trigger, replay_scenario, stored_map
from sim.metrics import Infraction
from sim.scenarios import Scenario
from sim.scenarios.suites import Suite, town_layout

log = logging.getLogger(__name__)

Source = Literal["evaluation", "fleet", "shadow"]
#: The type a fleet moment counts under (its scenario is a log replay).
FLEET_TYPE = "LogReplay"


@dataclass(frozen=True)
class Failure:
    """One failure and the scenario that drives it again.

    :param key: its identity (see the module docstring).
    :param source: ``evaluation``, ``fleet`` or ``shadow``.
    :param scenario_type: the route's event type (``Route`` for a plain one, ``LogReplay`` for a fleet moment).
    :param place: where it happened, as collection targets places: a procedural town's layout
        (:func:`sim.scenarios.suites.town_layout`), else the map.
    :param reason: one line for people and manifests: what failed, where and when.
    :param scenario: what drives it again.
    :param infractions: an evaluated route's infractions, with time and place.
    """

    key: str
    source: Source
    scenario_type: str
    place: str
    reason: str
    scenario: Scenario
    infractions: tuple[InfractionEvent, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "source": self.source, "scenario_type": self.scenario_type, "place": self.place,
                "reason": self.reason, "scenario": self.scenario.model_dump(mode="json"),
                "infractions": [vars(event) for event in self.infractions]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Failure:
        return cls(key=data["key"], source=data["source"], scenario_type=data["scenario_type"], place=data["place"],
                   reason=data["reason"], scenario=Scenario.model_validate(data["scenario"]),
                   infractions=tuple(InfractionEvent(**event) for event in data["infractions"]))


def route_failed(route_status: str, driving_score: float, infractions: dict[str, int], failing_ds: float) -> bool:
    """Whether an evaluated route counts as failed: not completed, an infraction (driving too slowly for the
    traffic around counts through the driving score only), or a driving score below ``failing_ds``."""
    serious = any(count for kind, count in infractions.items() if kind != Infraction.MIN_SPEED.value)
    return route_status != COMPLETED or serious or driving_score < failing_ds


def evaluation_failures(result: EvaluationResult, suite: Suite, *, failing_ds: float) -> list[Failure]:
    """The failed routes of ``result`` (an evaluation of ``suite``), in suite order."""
    if result.suite_hash != suite.content_hash:
        raise ValueError(f"evaluation of suite {result.suite} ({result.suite_hash}) is not of suite {suite.name} "
                         f"({suite.content_hash})")
    found = []
    for route in result.routes:
        counts = route.infraction_counts
        if not route_failed(route.status, route.driving_score, counts, failing_ds):
            continue
        scenario = suite.scenarios[route.index]
        what = ", ".join(f"{kind} x{count}" for kind, count in sorted(counts.items())) or "no infraction"
        first = route.infractions[0] if route.infractions else None
        where = f"; first at {first.time_s:.1f} s ({first.x_m:.0f}, {first.y_m:.0f})" if first else ""
        found.append(Failure(
            key=scenario_hash(scenario), source="evaluation", scenario_type=route.scenario_type,
            place=town_layout(route.town), scenario=scenario, infractions=route.infractions,
            reason=f"{result.suite} route {route.index} ({route.scenario_type} on {route.town}) by {result.policy}: "
                   f"{route.status}, DS {route.driving_score:.1f}, {what}{where}"))
    return found


def trigger_key(episode_id: str, trigger: Trigger) -> str:
    return f"{episode_id}@{trigger.step}:{trigger.kind}"


def stored_triggers(store: EpisodeStore) -> list[tuple[str, Trigger]]:
    """Every trigger saved in the store (:func:`autoloop.fleet.mining.save_triggers`), by episode and time."""
    folder = store.root / "triggers"
    found: list[tuple[str, Trigger]] = []
    for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
        table = pq.read_table(path).to_pydict()
        for k in range(len(table["episode_id"])):
            found.append((str(table["episode_id"][k]), Trigger(
                kind=str(table["kind"][k]), step=int(table["step"][k]), time_s=float(table["time_s"][k]),
                x_m=float(table["x_m"][k]), y_m=float(table["y_m"][k]), value=float(table["value"][k]),
                actor_id=str(table["actor_id"][k]))))
    return found


def moment_failures(store: EpisodeStore, moments: Iterable[tuple[str, Trigger]], *, source: Source,
                    used: Sequence[str] = (), limit: int, lead_s: float = 2.0, horizon_s: float = 15.0
                    ) -> tuple[list[Failure], list[str]]:
    """Up to ``limit`` fleet moments not in ``used`` as failures, each a log replay of its episode from ``lead_s``
    before the trigger (:func:`autoloop.fleet.mining.replay_scenario`), and the reasons of those skipped: a moment
    that can no longer become a scenario (its episode gone from the store or quarantined, its map missing, a replay
    the map cannot lay) is skipped with the reason, never an error."""
    failures: list[Failure] = []
    skipped: list[str] = []
    taken = set(used)
    for episode_id, trigger in moments:
        if len(failures) >= limit:
            break
        key = trigger_key(episode_id, trigger)
        if key in taken:
            continue
        taken.add(key)
        try:
            episode = store.read(episode_id)
            map_name = str(episode.metadata["map_name"])
            stored_map(store, map_name)
            time = episode.steps["time_s"]
            start = max(0, int((time >= time[trigger.step] - lead_s).argmax()))
            scenario = replay_scenario(episode, map_name=map_name, start_step=start, horizon_s=horizon_s)
        except (KeyError, ValueError, OSError) as error:
            reason = f"fleet moment {key} skipped: {error}"
            log.warning("%s", reason)
            skipped.append(reason)
            continue
        failures.append(Failure(
            key=key, source=source, scenario_type=FLEET_TYPE, place=map_name, scenario=scenario,
            reason=f"{source} {trigger.kind} in {episode_id} at {trigger.time_s:.1f} s "
                   f"({trigger.x_m:.0f}, {trigger.y_m:.0f}), value {trigger.value:.2f}"))
    return failures, skipped
