"""Scenarios generated from a fleet trigger: the mined moment as a log replay
(:func:`autoloop.fleet.mining.replay_scenario`) and new scenarios drawn around it.

:func:`perturb` draws one variant of a log-replay scenario within :class:`PerturbationConfig`: each recorded actor's
timing (its track shifted in time), speed (scaled, and its progression along its track with it), position (moved
along and across its heading) and the ego's start (later along the route) and start speed. The map, the route and
its end, and the actors' ids, kinds and boxes stay the parent's. :func:`generate` draws ``count`` variants from a
seed and stages each in a one-scenario embedded world: a variant that does not fit is :class:`Refused` with the
reason, never an exception. :func:`scenario_hash` is the identity manifests and regression suites give a scenario.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from autoloop.config import PerturbationConfig
from sim.embedded.world import World
from sim.maps import get_map
from sim.scenarios import Scenario
from sim.scenarios.events import LogReplay, ReplayActor
from sim.scenarios.suites import scenario_slots

#: A generated scenario keeps at least this much of its route ahead of the ego's start.
MIN_ROUTE_LEFT_M = 10.0


@dataclass(frozen=True)
class Generated:
    """A generated scenario that stages, its parent's :func:`scenario_hash`, the draw's seed and the amounts
    drawn (``applied``: ``ego_start_m``, ``ego_speed_scale`` and ``<actor id>.<bound name>`` per actor)."""

    scenario: Scenario
    parent_hash: str
    seed: int
    applied: dict[str, float]


@dataclass(frozen=True)
class Refused:
    """A draw that did not give a scenario, and why."""

    parent_hash: str
    seed: int
    reason: str


def scenario_hash(scenario: Scenario) -> str:
    """SHA-256 (first 16 hex digits) of ``scenario`` as canonical JSON (sorted keys, compact separators)."""
    payload = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def perturb(scenario: Scenario, bounds: PerturbationConfig,
            rng: np.random.Generator) -> tuple[Scenario, dict[str, float]]:
    """One variant of ``scenario`` drawn from ``rng`` within ``bounds``, and the amounts drawn (see
    :class:`Generated`). Every :class:`LogReplay` event is perturbed; other events stay as they are. The ego's
    start may land too close to the route's end: :func:`generate` refuses such a variant.

    :raises ValueError: when ``scenario`` has no :class:`LogReplay` event.
    """
    _require_replay(scenario)
    shift_m = float(rng.uniform(0.0, bounds.ego_start_m))
    ego_scale = float(rng.uniform(1.0 - bounds.ego_speed_scale, 1.0 + bounds.ego_speed_scale))
    applied = {"ego_start_m": shift_m, "ego_speed_scale": ego_scale}
    events = tuple(_perturb_replay(event, ego_scale, bounds, rng, applied) if isinstance(event, LogReplay) else event
                   for event in scenario.events)
    variant = scenario.model_copy(update={"start_s_m": scenario.start_s_m + shift_m, "events": events})
    return variant, applied


def generate(scenario: Scenario, count: int, *, bounds: PerturbationConfig, seed: int) -> list[Generated | Refused]:
    """``count`` variants of the log-replay ``scenario``, the ``k``-th drawn by :func:`perturb` from a generator
    seeded ``[seed, k]``, each staged (reset) in a one-scenario embedded world on the scenario's map: those that
    stage are :class:`Generated`, the others :class:`Refused` with the world's reason (a map that does not load
    refuses every one).

    :raises ValueError: when ``scenario`` has no :class:`LogReplay` event.
    """
    _require_replay(scenario)
    parent = scenario_hash(scenario)
    try:
        graph = get_map(scenario.map_name)
    except (ValueError, OSError) as error:
        return [Refused(parent, seed, f"map {scenario.map_name!r} does not load: {error}") for _ in range(count)]
    drawn = [perturb(scenario, bounds, np.random.default_rng([seed, k])) for k in range(count)]
    world = World(graph, 1, scenario_slots([scenario, *(variant for variant, _ in drawn)]))
    results: list[Generated | Refused] = []
    for variant, applied in drawn:
        left_m = variant.end_s_m - variant.start_s_m
        if left_m < MIN_ROUTE_LEFT_M:
            results.append(Refused(parent, seed, (
                f"ego start moved {applied['ego_start_m']:.2f} m to {variant.start_s_m:.2f} m, {left_m:.2f} m "
                f"before the route's end at {variant.end_s_m:.2f} m (at least {MIN_ROUTE_LEFT_M} m must remain)")))
            continue
        try:
            world.reset([variant])
        except ValueError as error:
            results.append(Refused(parent, seed, f"does not stage: {error}"))
            continue
        results.append(Generated(variant, parent, seed, applied))
    return results


def _require_replay(scenario: Scenario) -> None:
    if not any(isinstance(event, LogReplay) for event in scenario.events):
        raise ValueError(f"scenario on {scenario.map_name!r} has no LogReplay event: only log replays (fleet "
                         "triggers, autoloop.fleet.mining.replay_scenario) are perturbed")


def _perturb_replay(event: LogReplay, ego_scale: float, bounds: PerturbationConfig, rng: np.random.Generator,
                    applied: dict[str, float]) -> LogReplay:
    """``event`` with the ego's start speed scaled by ``ego_scale`` and each actor perturbed."""
    actors = tuple(_perturb_actor(actor, bounds, rng, applied) for actor in event.actors)
    return event.model_copy(update={"ego_speed_mps": event.ego_speed_mps * ego_scale, "actors": actors})


def _perturb_actor(actor: ReplayActor, bounds: PerturbationConfig, rng: np.random.Generator,
                   applied: dict[str, float]) -> ReplayActor:
    """``actor`` with drawn timing (tracks only), speed and position; the amounts go into ``applied``."""
    time_shift_s, scale, along_m, across_m = rng.uniform(
        [-bounds.time_shift_s, 1.0 - bounds.speed_scale, -bounds.longitudinal_m, -bounds.lateral_m],
        [bounds.time_shift_s, 1.0 + bounds.speed_scale, bounds.longitudinal_m, bounds.lateral_m]).tolist()
    cos, sin = math.cos(actor.yaw_rad), math.sin(actor.yaw_rad)
    dx_m, dy_m = along_m * cos - across_m * sin, along_m * sin + across_m * cos
    amounts = {"speed_scale": scale, "longitudinal_m": along_m, "lateral_m": across_m}
    if not actor.track:
        moved = actor.model_copy(update={"x_m": actor.x_m + dx_m, "y_m": actor.y_m + dy_m,
                                         "speed_mps": actor.speed_mps * scale})
    else:
        track = np.array(actor.track, dtype=np.float64)
        first_s = track[0, 0]
        track[:, 0] = first_s + (track[:, 0] - first_s) / scale
        time_shift_s = max(time_shift_s, -float(track[-1, 0]))  # (a track wholly before 0 s keeps its end)
        track[:, 0] += time_shift_s
        track[:, 1] += dx_m
        track[:, 2] += dy_m
        track[:, 4] *= scale
        track = _from_zero(track)
        samples = tuple((float(t), float(x), float(y), float(yaw), float(v)) for t, x, y, yaw, v in track)
        moved = actor.model_copy(update={"x_m": samples[0][1], "y_m": samples[0][2], "yaw_rad": samples[0][3],
                                         "speed_mps": samples[0][4], "track": samples})
        amounts["time_shift_s"] = time_shift_s
    applied.update({f"{actor.actor_id}.{name}": value for name, value in amounts.items()})
    return moved


def _from_zero(track: NDArray[np.float64]) -> NDArray[np.float64]:
    """``track`` (``(T, 5)`` samples) from time 0 on: samples before it dropped, its state at 0 interpolated."""
    if track[0, 0] >= 0.0:
        return track
    later = track[:, 0] > 0.0
    yaw = np.unwrap(track[:, 3])
    at_zero = [0.0, *(float(np.interp(0.0, track[:, 0], column)) for column in (track[:, 1], track[:, 2], yaw,
                                                                                track[:, 4]))]
    at_zero[3] = math.remainder(at_zero[3], math.tau)
    return np.vstack([at_zero, track[later]])
