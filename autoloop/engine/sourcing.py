"""Sourcing: plan the next collection from the findings and the fleet, and drive it (shown as progress:
``collect``, episodes driven against the plan, with each group's rollout as its own).

Breadth routes are driven by the expert with exploration noise (as without the engine). What failed — targeted
routes, fleet moments and the scenarios generated from them — is driven by the champion with the expert labelling
every state it visits and taking over where the champion stands stuck (DAgger on the failures); without a
champion (or with one this code cannot drive), by the expert like breadth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from autoloop.compute import IN_PROCESS, Compute
from autoloop.config import AutoloopConfig, PerturbationConfig
from autoloop.engine.failures import Failure, moment_failures, stored_triggers
from autoloop.engine.generate import Generated, generate
from autoloop.engine.ledger import Ledger
from autoloop.engine.plan import ROUTE_TYPE, TYPES, Planned, Weights, failure_weights, plan_collection, town_draw
from autoloop.engine.shadow import policy_predictor, shadow_scores, shadow_triggers
from autoloop.episodes import Episode, EpisodeStore
from autoloop.fleet.mining import Trigger, mine, save_triggers, stored_map
from autoloop.progress import Progress, counted
from autoloop.rollout import DriverFactory, RolloutOptions, expert_driver, rollout
from autoloop.training.fleet import cached_observations
from policies.base import Policy
from sim.metrics import RouteRecord
from sim.scenarios import Scenario
from sim.scenarios.suites import TOWN_LAYOUTS, scenario_slots
from sim.scene.bev import BevSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sourced:
    """A driven collection: each planned scenario's episode and record (in plan order), the weights it was
    planned with, the fleet moments it used, and what was left out and why."""

    planned: tuple[Planned, ...]
    results: tuple[tuple[Episode, RouteRecord], ...]
    weights: Weights | None
    moments: tuple[Failure, ...]
    notes: tuple[str, ...]


def fleet_moments(store: EpisodeStore, ledger: Ledger, *, limit: int,
                  extra: Sequence[Failure] = ()) -> tuple[list[Failure], list[str]]:
    """Up to ``limit`` fleet moments not used yet: ``extra`` ones first (shadow mode's), then the store's mined
    triggers (fleet episodes not mined yet are mined first), by episode and time; and the reasons of those
    skipped."""
    if limit == 0:
        return [], []
    mined = {path.stem for path in (store.root / "triggers").glob("*.parquet")}
    for episode_id in counted([e for e in store.episode_ids("fleet") if e not in mined], "mine", "episodes"):
        save_triggers(store, episode_id, mine(store.read(episode_id)))
    used = ledger.used()
    moments = [failure for failure in extra if failure.key not in used][:limit]
    more, skipped = moment_failures(store, stored_triggers(store), source="fleet",
                                    used=sorted(used | {m.key for m in moments}), limit=limit - len(moments))
    return moments + more, skipped


def source(config: AutoloopConfig, store: EpisodeStore, ledger: Ledger, *, first_seed: int,
           champion: tuple[str, DriverFactory] | None, tags: dict[str, str], compute: Compute,
           generate: Callable[[Scenario, int, int], list[tuple[Scenario | None, str]]],
           moments: Sequence[Failure] = ()) -> Sourced:
    """Plan ``collect.episodes`` scenarios from the findings and ``moments``, and drive them.

    :param champion: ``(model URI, driver)`` of the champion, which drives what failed; ``None``: the expert does.
    :param tags: stored with every episode, besides ``purpose=collect``, its part, reason, seed (``collect_seed``, -1
        for fleet moments and generated scenarios) and its collection's first seed (``collection``).
    """
    engine, collect = config.engine, config.collect
    towns = collect.source == "towns"
    places = TOWN_LAYOUTS if towns else (config.sim.map_name,)
    types = TYPES if towns else (ROUTE_TYPE,)
    findings = ledger.findings()
    weights = None
    if findings is not None and engine.failure_share > 0.0:
        weights = failure_weights(findings.failures, findings.evaluated, places=places, floor=engine.floor,
                                  types=types)
    if towns:
        draw = town_draw(traffic_vehicles=config.sim.traffic_vehicles, pedestrians=config.sim.pedestrians)
    else:
        def draw(_kind: str | None, _place: str, seed: int) -> Scenario:
            return config.sim.sample(seed)
    planned, notes = plan_collection(
        episodes=collect.episodes, first_seed=first_seed,
        failures=list(moments) if engine.failure_share > 0.0 else [], weights=weights,
        failure_share=engine.failure_share, generated_per_moment=engine.generated_per_moment, draw=draw,
        generate=generate, places=places, types=types)
    noisy = RolloutOptions(labels=True, action_noise=collect.action_noise, noise_seed=first_seed,
                           start_perturbation=(collect.start_lateral_m, collect.start_yaw_rad))
    dagger = RolloutOptions(labels=True, noise_seed=first_seed, takeover_s=config.train.dagger.takeover_s)
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(planned):
        groups.setdefault("breadth" if item.part == "breadth" or champion is None else "failures", []).append(index)
    results: dict[int, tuple[Episode, RouteRecord]] = {}
    with Progress("collect", len(planned), "episodes") as progress:
        for group, indices in groups.items():
            name, driver = ("expert", expert_driver) if group == "breadth" or champion is None else champion
            options = noisy if name == "expert" else dagger
            scenarios = [planned[i].scenario for i in indices]
            # (fleet moments run on the store's maps, which only this process has registered)
            replays = any(item.part in ("fleet", "generated") for item in (planned[i] for i in indices))
            driven = rollout(scenarios, sim=config.sim, driver=driver, policy_name=name, options=options,
                             compute=IN_PROCESS if replays else compute, world=scenario_slots(scenarios),
                             tags={**tags, "purpose": "collect"})
            results.update(zip(indices, driven, strict=True))
            progress.advance(len(indices))
    ordered = [results[i] for i in range(len(planned))]
    for item, (episode, _) in zip(planned, ordered, strict=True):
        episode.metadata["tags"] = {**episode.metadata.get("tags", {}), "part": item.part, "reason": item.reason,
                                    "collect_seed": str(item.seed), "collection": str(first_seed)}
    used = {item.moment for item in planned if item.part == "fleet"}
    log.info("collection plan: %s", ", ".join(f"{part} {sum(p.part == part for p in planned)}"
                                              for part in ("breadth", "targeted", "fleet", "generated")))
    return Sourced(tuple(planned), tuple(ordered), weights,
                   tuple(m for m in moments if m.key in used), tuple(notes))


def shadow_pass(store: EpisodeStore, ledger: Ledger, *, model_id: str, policy: Policy, bev: BevSpec,
                waypoints: int, episodes: int) -> tuple[list[Failure], list[dict[str, Any]], list[str]]:
    """Shadow mode (:mod:`autoloop.engine.shadow`) on up to ``episodes`` fleet logs the driver ``model_id`` has not
    shadowed yet (newest first): the worst moments as failures (source ``shadow``), each log's summary, and the
    keys to mark used (:meth:`Ledger.mark_used`) once the moments are collected. A log that cannot be rendered or
    scored is skipped with the reason logged; a driver that predicts no trajectory shadows nothing."""
    try:
        predict = policy_predictor(policy)
    except ValueError as error:
        log.info("no shadow mode: %s", error)
        return [], [], []
    used = ledger.used()
    todo = [episode_id for episode_id in reversed(store.episode_ids("fleet"))
            if f"shadow:{model_id}:{episode_id}" not in used][:episodes]
    moments: list[tuple[str, Trigger]] = []
    summaries = []
    for episode_id in todo:
        try:
            episode = store.read(episode_id)
            lane_graph = stored_map(store, str(episode.metadata["map_name"]))
            scores = shadow_scores(predict, episode, lane_graph, bev=bev, waypoints=waypoints,
                                   observations=cached_observations(store, episode_id, bev=bev))
        except (KeyError, ValueError, OSError) as error:
            log.warning("shadow mode skipped fleet episode %s: %s", episode_id, error)
            continue
        summaries.append({"episode_id": episode_id, **scores.summary()})
        moments += [(episode_id, trigger) for trigger in shadow_triggers(scores, episode)]
    failures, _ = moment_failures(store, moments, source="shadow", used=sorted(used), limit=len(moments))
    return failures, summaries, [f"shadow:{model_id}:{episode_id}" for episode_id in todo]


def generated(scenario: Scenario, count: int, *, bounds: PerturbationConfig, seed: int,
              ) -> list[tuple[Scenario | None, str]]:
    """:func:`autoloop.engine.generate.generate` for the plan: each variant with a note of the ego's draws, or
    ``None`` with the reason it was refused."""
    return [(result.scenario, f"ego start +{result.applied['ego_start_m']:.1f} m, speed "
                              f"x{result.applied['ego_speed_scale']:.2f}") if isinstance(result, Generated)
            else (None, result.reason) for result in generate(scenario, count, bounds=bounds, seed=seed)]
