"""The Leaderboard's highway entries, exits and cut-ins, staged where our towns have them: the ego turning onto a
road into a flow, leaving its road across one, a vehicle joining the ego's lane from a side road; and Bench2Drive's
lane changes along the route."""

from __future__ import annotations

import math

from sim.embedded.placement import Placement
from sim.embedded.staging.junctions import find_junction, merging_flow, place_flow
from sim.embedded.staging.route_geometry import RouteGeometry, Slots, Stager, event_name, turn_of
from sim.scenarios.events import EnterActorFlow, HighwayCutIn, HighwayExit, SequentialLaneChange

#: A lane-change event's route changes lanes within this far past its trigger (Bench2Drive's scenario ends there).
LANE_CHANGE_WITHIN_M = 200.0


def _stage_enter_flow(placement: Placement, event: EnterActorFlow, geometry: RouteGeometry, slots: Slots) -> None:
    entry = find_junction(geometry, event, control="unsignalized", turn="turning")
    left = turn_of(geometry.lanes[geometry.route.pieces[entry].lane].centerline) > 0.0
    found = merging_flow(geometry, entry, 0.5 * math.pi if left else -0.5 * math.pi, "straight")
    if found is None:
        raise ValueError(f"{event_name(event)}: no straight flow from the {'right' if left else 'left'} into the "
                         f"lane the route turns into at its junction at {geometry.route.offsets[entry]:.1f} m")
    place_flow(placement, event, geometry, slots, entry, *found, count=event.flow_vehicles,
               speed_mps=event.flow_speed_mps, interval_m=event.source_dist_interval_m, obeys_lights=False)


def _stage_highway_exit(placement: Placement, event: HighwayExit, geometry: RouteGeometry, slots: Slots) -> None:
    entry = find_junction(geometry, event, control="unsignalized", turn="left")
    found = geometry.crossing_flow(entry, math.pi, max_turn_rad=0.3)
    if found is None:
        raise ValueError(f"{event_name(event)}: no straight oncoming flow across the route's turn at its junction at "
                         f"{geometry.route.offsets[entry]:.1f} m")
    place_flow(placement, event, geometry, slots, entry, *found, count=event.flow_vehicles,
               speed_mps=event.flow_speed_mps, interval_m=event.source_dist_interval_m, obeys_lights=False)


def _stage_highway_cut_in(placement: Placement, event: HighwayCutIn, geometry: RouteGeometry,
                          slots: Slots) -> None:
    entry = find_junction(geometry, event, control="unsignalized", turn="straight")
    found = merging_flow(geometry, entry, 0.5 * math.pi, "right")
    if found is None:
        raise ValueError(f"{event_name(event)}: no lane from the right turns into the route's lane at its junction "
                         f"at {geometry.route.offsets[entry]:.1f} m")
    place_flow(placement, event, geometry, slots, entry, *found, count=1, speed_mps=event.speed_mps,
               interval_m=(0.0, 0.0), obeys_lights=False)


def _check_lane_change(placement: Placement, event: SequentialLaneChange, geometry: RouteGeometry,
                       slots: Slots) -> None:
    pieces, offsets, lanes = geometry.route.pieces, geometry.route.offsets, geometry.lanes
    last = event.trigger_s_m + LANE_CHANGE_WITHIN_M
    changes = [offsets[r + 1] for r in range(len(pieces) - 1)
               if pieces[r + 1].lane not in lanes[pieces[r].lane].successors]
    if not any(event.trigger_s_m <= s <= last for s in changes):
        raise ValueError(f"{event_name(event)}: the route changes no lanes between {event.trigger_s_m:.1f} and "
                         f"{last:.1f} m")


#: The stager of each event type this module stages.
STAGERS: dict[str, Stager] = {
    "EnterActorFlow": _stage_enter_flow,
    "HighwayExit": _stage_highway_exit,
    "HighwayCutIn": _stage_highway_cut_in,
    "SequentialLaneChange": _check_lane_change,
}
