"""Staging scenario events (:mod:`sim.scenarios.events`) in the embedded world.

At reset, each event of a scenario becomes scripted actors in slots the background traffic leaves free (those of
each kind right after the background's), armed to go off when the ego's route progress reaches the event's trigger
(:meth:`Placement.arm_vehicle`, :meth:`Placement.arm_pedestrian`). Where an actor must meet the ego, the kernels time it
from the ego's speed at the trigger, so the situation happens to whoever drives the route: a driver who keeps
going meets the pedestrian or the crossing vehicle in its lane.

An event that cannot be staged on its route (no junction ahead, no crossing approach on the asked side, not
enough slots) raises ``ValueError`` naming the event and why.
"""

from __future__ import annotations

from sim.embedded.placement import Placement
from sim.embedded.staging import (
    blocked_lanes,
    control_loss,
    crossings,
    curb,
    junction_turns,
    junctions,
    lane_traffic,
    merges,
    replay,
    side_hazards,
)
from sim.embedded.staging.route_geometry import RouteGeometry, Slots, Stager
from sim.scenarios import Scenario
from sim.scene.route_path import RoutePath

#: The stager of every event type (each module stages one family of situations).
STAGERS: dict[str, Stager] = {
    **crossings.STAGERS, **lane_traffic.STAGERS, **blocked_lanes.STAGERS, **junctions.STAGERS, **curb.STAGERS,
    **replay.STAGERS,
    **junction_turns.STAGERS,
    **side_hazards.STAGERS, **merges.STAGERS, **control_loss.STAGERS,
}


def stage_events(placement: Placement, scenario: Scenario, route: RoutePath) -> None:
    """Place and arm the actors of every event of ``scenario`` (after the background traffic)."""
    if not scenario.events:
        return
    cfg = placement.config
    slots = Slots({"vehicle": cfg.max_vehicles, "pedestrian": cfg.max_pedestrians, "static": cfg.max_statics},
                   {"vehicle": scenario.traffic_vehicles, "pedestrian": scenario.pedestrians})
    geometry = RouteGeometry(placement, route, scenario.start_s_m)
    for event in scenario.events:
        STAGERS[event.type](placement, event, geometry, slots)
