"""How a scene's routes went so far: this step's events, completion, the Leaderboard record, and the Gymnasium
environments' reward and info, read from the scene's outcome (every backend's, the same way)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from sim.geometry import FloatArray
from sim.metrics import LB2_PENALTIES, SCORERS, Infraction, RouteRecord, RouteStatus
from sim.scene import codes
from sim.scene.records import INFRACTIONS, STATUSES, Scene

#: What each infraction costs in reward: one minus its Leaderboard 2.0 coefficient.
INFRACTION_COST = np.array([1.0 - LB2_PENALTIES.get(kind, 1.0) for kind in INFRACTIONS])


class Event(NamedTuple):
    """An infraction or a route's end, as it happened: scenario, time, kind (an :class:`~sim.metrics.Infraction`
    or :class:`~sim.metrics.RouteStatus` value), where the ego was, and the actor slot involved (-1: none)."""

    env: int
    time_s: float
    kind: str
    x_m: float
    y_m: float
    actor: int


def step_events(scene: Scene, with_events: Iterable[int], ended: Iterable[int]) -> list[Event]:
    """This step's infractions in the scenarios ``with_events``, then the ends of the routes that ``ended``."""
    sc = scene
    found = [Event(int(env), float(sc.time_s[env]), INFRACTIONS[int(sc.outcome.ev_kind[env, k])].value,
                   float(sc.ego.x_m[env]), float(sc.ego.y_m[env]), int(sc.outcome.ev_actor[env, k]))
             for env in with_events for k in range(int(sc.outcome.ev_n[env]))]
    for env in ended:
        status = STATUSES[int(sc.outcome.status[env])]
        found.append(Event(int(env), float(sc.time_s[env]), status.value, float(sc.ego.x_m[env]),
                           float(sc.ego.y_m[env]), -1))
    return found


def route_completion(scene: Scene) -> FloatArray:
    """Fraction of each route completed, in [0, 1] (1 once completed, within the completion tolerance)."""
    route = scene.route
    fraction = np.clip((route.progress_m - route.start_m) / (route.end_m - route.start_m), 0.0, 1.0)
    completed: NDArray[np.bool_] = scene.outcome.status == STATUSES.index(RouteStatus.COMPLETED)
    return np.where(completed, 1.0, fraction)


def route_status(scene: Scene, env: int) -> RouteStatus | None:
    """How the route of scenario ``env`` ended, or ``None`` while it runs."""
    status = int(scene.outcome.status[env])
    return None if status == codes.RUNNING else STATUSES[status]


def route_record(scene: Scene, env: int) -> RouteRecord:
    """The Leaderboard record of the route of scenario ``env`` (so far, if it still runs: as a timeout)."""
    route, outcome = scene.route, scene.outcome
    route_length = float(route.end_m[env] - route.start_m[env])
    status = route_status(scene, env)
    min_speed = outcome.min_speed_pct[env]
    infractions = {kind: int(n) for kind, n in zip(INFRACTIONS, outcome.infractions[env], strict=True) if n}
    if np.isfinite(min_speed).any():
        infractions[Infraction.MIN_SPEED] = int(np.isfinite(min_speed).sum())
    return RouteRecord(
        route_completion=float(route_completion(scene)[env]),
        infractions=infractions,
        outside_lanes_share=float(min(outcome.outside_m[env] / route_length, 1.0)),
        status=RouteStatus.ROUTE_TIMEOUT if status is None else status,
        driven_m=float(outcome.driven_m[env]),
        route_length_m=route_length,
        min_speed_percentages=tuple(float(x) for x in min_speed[np.isfinite(min_speed)]),
    )


def reward(scene: Scene, progress_before_m: FloatArray, infractions_before: NDArray[np.int64],
           ended: NDArray[np.bool_]) -> FloatArray:
    """This step's reward: ``0.1`` per metre of route progress, minus each new infraction's cost, minus 1 for a route
    that ``ended`` without being completed."""
    completed: NDArray[np.bool_] = scene.outcome.status == STATUSES.index(RouteStatus.COMPLETED)
    gained: FloatArray = 0.1 * (scene.route.progress_m - progress_before_m)
    cost: FloatArray = (scene.outcome.infractions - infractions_before) @ INFRACTION_COST
    failed: FloatArray = (ended & ~completed).astype(np.float64)
    return gained - cost - failed


def status_names(scene: Scene) -> NDArray[np.str_]:
    """``(B,)`` how each route ended (:class:`~sim.metrics.RouteStatus` values), ``""`` while it runs."""
    names = np.array([status.value for status in STATUSES] + [""])
    running = scene.outcome.status == codes.RUNNING
    found: NDArray[np.str_] = names[np.where(running, len(STATUSES), scene.outcome.status)]
    return found


def info(scene: Scene) -> dict[str, NDArray[np.generic]]:
    """The environments' info: route completion, status, infraction counts and the driving score so far."""
    sc = scene
    completion = route_completion(sc)
    outside = sc.outcome.outside_m / np.maximum(sc.route.end_m - sc.route.start_m, 1e-9)
    penalty = SCORERS["lb2"].penalties(sc.outcome.infractions, sc.outcome.min_speed_pct, outside)
    return {"route_completion": completion, "status": status_names(sc), "infractions": sc.outcome.infractions.copy(),
            "running_score": 100.0 * completion * penalty}
