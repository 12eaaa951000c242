"""Walking one lane of a CARLA map (one road section's lane) with ``Waypoint.next`` and ``Waypoint.previous`` only.

The ``carla`` wheel's ``Waypoint.previous_until_lane_start`` ends with a step back that it assumes exists: walking
back to the start of a road that has no predecessor (a road at the edge of the map, or one whose lane was added
mid-road) it dereferences an empty list and the process dies (SIGSEGV); ``next_until_lane_end`` does the same on a
lane that ends mid-road. ``next(d)`` and ``previous(d)`` return an empty list there instead, so lanes are walked
with them: whole steps of the sampling spacing, then halved steps to the lane's end, which is reached within
:data:`END_TOLERANCE_M`. A step stays on the lane when it keeps the road, section and lane id and moves the station
``s`` the way the lane drives (up the road for negative lane ids, down it for positive ones, as CARLA's ``next``
does), so a lane that leads into itself ends where it wraps.
"""

from __future__ import annotations

from typing import Any

LaneKey = tuple[int, int, int]  # road, section, lane
#: The walks of :func:`lane_start` and :func:`lane_walk` end this close to the lane's start or end.
END_TOLERANCE_M = 1e-4
#: The step from a lane's end into the lanes that follow it (a following lane shorter than this is stepped over).
FOLLOW_STEP_M = 0.1


def lane_key(waypoint: Any) -> LaneKey:
    """The lane a waypoint lies on: road, lane section and lane id."""
    return int(waypoint.road_id), int(waypoint.section_id), int(waypoint.lane_id)


def lane_start(waypoint: Any, spacing_m: float) -> Any:
    """The first waypoint of ``waypoint``'s lane (in its driving direction), stepped back from ``waypoint``."""
    return _walk(waypoint, spacing_m, forward=False)[-1]


def lane_walk(start: Any, spacing_m: float) -> list[Any]:
    """Waypoints from ``start`` along its lane every ``spacing_m``, then the lane's end."""
    return _walk(start, spacing_m, forward=True)


def following_lanes(end: Any) -> list[Any]:
    """Waypoints on the lanes that follow the lane of ``end`` (a waypoint at or near that lane's end), each
    :data:`FOLLOW_STEP_M` into its lane."""
    found: list[Any] = []
    point = end
    while point is not None:
        ahead = point.next(FOLLOW_STEP_M)
        point = _on_lane(point, ahead, forward=True)
        found += [w for w in ahead if w is not point]
    return found


def _walk(waypoint: Any, spacing_m: float, *, forward: bool) -> list[Any]:
    walk = [waypoint]
    while (step := _step(walk[-1], spacing_m, forward=forward)) is not None:
        walk.append(step)
    end, step_m = walk[-1], spacing_m / 2
    while step_m > END_TOLERANCE_M / 2:  # what is left of the lane is shorter than every step tried
        end = _step(end, step_m, forward=forward) or end
        step_m /= 2
    return walk if end is walk[-1] else [*walk, end]


def _step(waypoint: Any, distance_m: float, *, forward: bool) -> Any | None:
    """``waypoint`` moved ``distance_m`` along (or against) its lane's driving direction; ``None`` where that
    leaves the lane."""
    moved = waypoint.next(distance_m) if forward else waypoint.previous(distance_m)
    return _on_lane(waypoint, moved, forward=forward)


def _on_lane(waypoint: Any, moved: list[Any], *, forward: bool) -> Any | None:
    key = lane_key(waypoint)
    ahead = (1.0 if key[2] < 0 else -1.0) * (1.0 if forward else -1.0)  # the sign of the change of s
    return next((w for w in moved if lane_key(w) == key and (float(w.s) - float(waypoint.s)) * ahead > 0), None)
