"""The collection plan: how the next collection spends its budget, from what failed.

A share ``failure_share`` of the budget goes to what failed, the rest is drawn as without the engine (breadth):

- **fleet moments** (mined triggers and shadow-mode moments not used yet), each driven as its log replay and as
  ``generated_per_moment`` new scenarios generated from it (:mod:`autoloop.engine.generate`);
- **targeted routes**: scenario types and places drawn by weights from the failure rates of the last evaluation
  (a type's failures over its routes), with a floor so that nothing is starved:
  ``weight = floor + (1 - n * floor) * rate / sum(rates)`` over the ``n`` types (places alike).

Breadth draws every type and place uniformly. On procedural towns a place is a town layout (``town``,
``town-grid``, ``town-irregular``); a route is drawn on a training town of that layout (seeds below
``HELD_OUT_TOWN_SEED``), never on the held-out towns the evaluation failed on. The plan is a function of the
failures and the seed: the same inputs plan the same scenarios.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from autoloop.engine.failures import FLEET_TYPE, Failure
from sim.scenarios import Scenario
from sim.scenarios.suites import HELD_OUT_TOWN_SEED, MAKERS, TOWN_LAYOUTS

log = logging.getLogger(__name__)

#: The scenario types collection draws on towns: every staged event type, and plain routes.
ROUTE_TYPE = "Route"
TYPES: tuple[str, ...] = (*MAKERS, ROUTE_TYPE)

Part = Literal["breadth", "targeted", "fleet", "generated"]


@dataclass(frozen=True)
class Planned:
    """One scenario of the plan, why it is there, and who drives it.

    :param part: ``breadth`` (drawn as without the engine), ``targeted`` (a failing type and place), ``fleet``
        (a fleet moment's replay) or ``generated`` (a scenario generated from a fleet moment).
    :param seed: the collection seed it was drawn from (breadth and targeted routes; -1 for fleet moments).
    :param reason: for people and the dataset manifest.
    :param moment: the key of the fleet moment it replays or was generated from ("" for routes).
    """

    scenario: Scenario
    part: Part
    seed: int
    reason: str
    moment: str = ""


@dataclass(frozen=True)
class Weights:
    """Sampling weights (summing to 1) of the scenario types and places targeted routes are drawn from, and the
    failure counts they come from (``failed``/``routes`` per type or place)."""

    types: dict[str, float]
    places: dict[str, float]
    failed: dict[str, tuple[int, int]]

    def to_json(self) -> dict[str, Any]:
        return {"types": self.types, "places": self.places,
                "failed": {name: list(counts) for name, counts in self.failed.items()}}


def rate_weights(failures: Mapping[str, int], routes: Mapping[str, int], names: Sequence[str], *,
                 floor: float) -> dict[str, float]:
    """Weights over ``names`` from the failure rates ``failures[name] / routes[name]`` (a name without routes has
    rate 0), each at least ``floor``; uniform when nothing failed.

    :raises ValueError: when ``floor`` times the number of names exceeds 1.
    """
    if floor * len(names) > 1.0 + 1e-9:
        raise ValueError(f"floor {floor} for {len(names)} weights: at most {1.0 / len(names):.4f}")
    rates = np.array([failures.get(name, 0) / routes[name] if routes.get(name) else 0.0 for name in names])
    if rates.sum() == 0.0:
        return {name: 1.0 / len(names) for name in names}
    weights = floor + (1.0 - len(names) * floor) * rates / rates.sum()
    return {name: float(weight) for name, weight in zip(names, weights, strict=True)}


def failure_weights(failures: Sequence[Failure], evaluated: Mapping[str, Mapping[str, int]], *,
                    places: Sequence[str], floor: float, types: Sequence[str] = TYPES) -> Weights:
    """Weights of the types and places from evaluation failures.

    :param evaluated: the routes evaluated per type (``evaluated["types"]``) and per place (``["places"]``).
    """
    from_evaluation = [failure for failure in failures if failure.source == "evaluation"]
    by_type = Counter(failure.scenario_type for failure in from_evaluation)
    by_place = Counter(failure.place for failure in from_evaluation)
    return Weights(
        types=rate_weights(by_type, evaluated["types"], types, floor=floor),
        places=rate_weights(by_place, evaluated["places"], places, floor=floor),
        failed={**{name: (by_type[name], evaluated["types"].get(name, 0)) for name in types if by_type[name]},
                **{name: (by_place[name], evaluated["places"].get(name, 0)) for name in places if by_place[name]}})


#: Draws a route: ``(type or None for a plain route, place, seed) -> Scenario``.
Draw = Callable[[str | None, str, int], Scenario]
#: Generates scenarios from a fleet moment: ``(moment's scenario, count, seed) -> [(scenario or None, note)]``.
Generate = Callable[[Scenario, int, int], list[tuple[Scenario | None, str]]]


def plan_collection(*, episodes: int, first_seed: int, failures: Sequence[Failure], weights: Weights | None,
                    failure_share: float, generated_per_moment: int, draw: Draw, generate: Generate,
                    places: Sequence[str] = TOWN_LAYOUTS, types: Sequence[str] = TYPES,
                    ) -> tuple[list[Planned], list[str]]:
    """The scenarios of the next collection (``episodes`` of them) and the notes of what was left out.

    Fleet moments (``failures`` of source ``fleet`` or ``shadow``, in order) come first in the failure share, each
    with its generated scenarios; targeted routes fill the rest of the share by ``weights``; breadth fills the
    rest. Without failures (or with ``failure_share`` 0, the random-collection control) every route is breadth.
    Seeds run from ``first_seed`` over the drawn routes, in plan order.
    """
    share = round(failure_share * episodes)
    moments = [failure for failure in failures if failure.source in ("fleet", "shadow")]
    targeted = weights is not None and any(count for count, _ in weights.failed.values())
    if not (moments or targeted):
        share = 0
    planned: list[Planned] = []
    notes: list[str] = []
    seed = first_seed
    moment_budget = share if not targeted else share // 2
    for moment in moments:
        if len(planned) + 1 > moment_budget:
            break
        planned.append(Planned(moment.scenario, "fleet", -1, moment.reason, moment.key))
        room = min(generated_per_moment, moment_budget - len(planned))
        for scenario, note in generate(moment.scenario, room, seed) if room > 0 else []:
            if scenario is None:
                notes.append(f"generated from {moment.key}: {note}")
                continue
            planned.append(Planned(scenario, "generated", -1, f"generated from {moment.reason} ({note})",
                                   moment.key))
        seed += 1
    rng = np.random.default_rng([first_seed, 0xE1])
    if targeted:
        assert weights is not None
        types, type_p = list(weights.types), np.array(list(weights.types.values()))
        layouts, place_p = list(weights.places), np.array(list(weights.places.values()))
        while len(planned) < share:
            kind = types[int(rng.choice(len(types), p=type_p / type_p.sum()))]
            place = layouts[int(rng.choice(len(layouts), p=place_p / place_p.sum()))]
            planned.append(_drawn(draw, kind, place, seed, "targeted", weights))
            seed += 1
    while len(planned) < episodes:
        kind = types[int(rng.integers(len(types)))]
        place = places[int(rng.integers(len(places)))]
        planned.append(_drawn(draw, kind, place, seed, "breadth", None))
        seed += 1
    return planned, notes


def _drawn(draw: Draw, kind: str, place: str, seed: int, part: Part, weights: Weights | None) -> Planned:
    scenario = draw(None if kind in (ROUTE_TYPE, FLEET_TYPE) else kind, place, seed)
    if weights is None:
        reason = "breadth: drawn uniformly over types and places"
    else:
        failed, routes = weights.failed.get(kind, (0, 0))
        reason = (f"targeted: {kind} (weight {weights.types[kind]:.3f}, {failed}/{routes} failed) on {place} "
                  f"(weight {weights.places.get(place, 0.0):.3f})")
    return Planned(scenario, part, seed, reason)


def town_draw(*, traffic_vehicles: int, pedestrians: int) -> Draw:
    """Routes on procedural training towns: place ``<layout>`` and seed ``s`` give town ``<layout>-<t>`` with ``t``
    drawn from ``s`` among a few towns per layout and hundred seeds (routes share towns, so they batch)."""
    from sim.scenarios.suites import town_scenario

    def draw(kind: str | None, place: str, seed: int) -> Scenario:
        town = 1 + int(np.random.default_rng([seed // 100, TOWN_LAYOUTS.index(place)]).integers(
            HELD_OUT_TOWN_SEED - 1))
        return town_scenario(f"{place}-{town}", seed, kind, traffic_vehicles=traffic_vehicles,
                             pedestrians=pedestrians)
    return draw
