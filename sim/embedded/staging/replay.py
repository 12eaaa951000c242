"""Recorded scenes (fleet logs) replayed reactively or as recorded."""

from __future__ import annotations

import math

import numpy as np

from sim.embedded.placement import Placement
from sim.embedded.staging.route_geometry import (
    RouteGeometry,
    Slots,
    Stager,
)
from sim.scenarios.events import (
    LogReplay,
)
from sim.scene import codes

#: A replayed vehicle this far from the nearest lane going its way and slower than this stands where it is.
_REPLAY_OFF_LANE_M = 1.5
_REPLAY_STANDING_MPS = 0.3


_FOREVER_S = 1e9
_TRACK_KINDS = {"vehicle": codes.VEHICLE, "cyclist": codes.VEHICLE, "pedestrian": codes.PEDESTRIAN,
                "static": codes.STATIC, "other": codes.STATIC}


def _stage_log_replay(placement: Placement, event: LogReplay, geometry: RouteGeometry, slots: Slots) -> None:
    placement.set_ego_speed(event.ego_speed_mps)
    if not event.reactive:
        _stage_recorded_tracks(placement, event, slots)
        return
    movers = [a for a in event.actors if a.kind in ("vehicle", "cyclist")]
    if movers:
        xy = np.array([[a.x_m, a.y_m] for a in movers])
        where = placement.map.locate(xy, np.array([a.yaw_rad for a in movers]), max_heading_error_rad=0.6)
    for k, actor in enumerate(movers):
        lane, s_m, lateral = int(where.lane[k]), float(where.s_m[k]), float(where.lateral_m[k])
        slot = slots.take("vehicle", event)
        if abs(lateral) > _REPLAY_OFF_LANE_M and actor.speed_mps < _REPLAY_STANDING_MPS:  # parked beside the lane
            placement.place_vehicle(slot, (lane,), s_m=s_m, speed_mps=0.0, desired_speed_mps=0.0,
                                lateral_offset_m=lateral, length_m=actor.length_m, width_m=actor.width_m)
            continue
        # in its lane (standing in a queue or at a light, or moving): it drives on from its recorded speed
        placement.place_vehicle(slot, (lane,), s_m=s_m, speed_mps=actor.speed_mps,
                            desired_speed_mps=max(actor.speed_mps, 0.8 * geometry.lanes[lane].speed_limit_mps),
                            length_m=actor.length_m, width_m=actor.width_m)
    for actor in event.actors:
        xy = np.array([actor.x_m, actor.y_m])
        if actor.kind == "pedestrian":
            heading = np.array([math.cos(actor.yaw_rad), math.sin(actor.yaw_rad)])
            path = np.stack([xy, xy + heading * max(actor.speed_mps * 30.0, 0.01)])
            placement.place_pedestrian(slots.take("pedestrian", event), path, speed_mps=max(actor.speed_mps, 0.01))
        elif actor.kind in ("static", "other"):
            placement.place_static(slots.take("static", event), (actor.x_m, actor.y_m), actor.yaw_rad,
                               length_m=actor.length_m, width_m=actor.width_m)


def _stage_recorded_tracks(placement: Placement, event: LogReplay, slots: Slots) -> None:
    """A non-reactive replay: every actor with a track follows it (in a static slot, whatever its kind); the
    others stand where they are."""
    for actor in event.actors:
        slot = slots.take("static", event)
        kind = _TRACK_KINDS[actor.kind]
        if actor.track:
            placement.place_track(slot, kind, np.array(actor.track, dtype=np.float64), length_m=actor.length_m,
                              width_m=actor.width_m)
        else:  # stands where it is for good
            placement.place_track(slot, kind, np.array([[0.0, actor.x_m, actor.y_m, actor.yaw_rad, 0.0],
                                                         [_FOREVER_S, actor.x_m, actor.y_m, actor.yaw_rad, 0.0]]),
                              length_m=actor.length_m, width_m=actor.width_m)


#: The stager of each event type this module stages.
STAGERS: dict[str, Stager] = {
    "LogReplay": _stage_log_replay,
}
