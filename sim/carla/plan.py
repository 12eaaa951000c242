"""The Leaderboard's global plan as a route on the town's lane graph.

The evaluator hands an agent its route twice over (``AutonomousAgent.set_global_plan(global_plan_gps,
global_plan_world_coord)``): as GPS points and as ``(carla.Transform, RoadOption)`` pairs in CARLA's world frame,
the route file's keypoints joined by CARLA's global route planner. The world points are read here (the GPS ones say
the same in other units): converted to the map frame (:mod:`sim.maps.frames`), thinned to one every
:data:`PLAN_SPACING_M` outside junctions (where connectors overlap and a point does not say which one it is on),
and joined on the lane graph the way a route file's waypoints are (:func:`sim.scenarios.routes.densify_waypoints`,
each point on the nearest lane along its heading, consecutive ones by the shortest lane path), so the ego's route
in CARLA is the one the embedded simulator builds for the same route file on the same town.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.maps import LaneGraph
from sim.maps.frames import from_carla_xy, from_carla_yaw
from sim.scenarios.routes import densify_waypoints, lane_route
from sim.scene.route_path import RoutePath

#: The plan's points are kept about this far apart (the planner gives one a metre; lanes are joined in between).
PLAN_SPACING_M = 5.0


def plan_route(lane_graph: LaneGraph, world_plan: Sequence[tuple[Any, Any]]) -> tuple[RoutePath, float, float]:
    """The route a global plan drives: the route path, and where the plan starts and ends along it.

    :param world_plan: ``(carla.Transform, RoadOption)`` pairs, as ``set_global_plan`` receives them.
    :raises ValueError: naming the plan's point when it is off the map or cannot be reached from the one before.
    """
    if len(world_plan) < 2:
        raise ValueError(f"global plan: {len(world_plan)} points, a route needs at least 2")
    transforms = [transform for transform, _ in world_plan]
    xy = from_carla_xy(np.array([[t.location.x, t.location.y] for t in transforms], dtype=np.float64))
    yaw = from_carla_yaw(np.array([t.rotation.yaw for t in transforms], dtype=np.float64))
    keep = _thin(xy, PLAN_SPACING_M)
    # inside junctions lanes overlap (a point may lie on several connectors heading alike): join across them
    on = lane_graph.locate(xy[keep], yaw[keep]).lane
    keep = [k for i, k in enumerate(keep) if i in (0, len(keep) - 1) or not lane_graph.lanes[int(on[i])].is_junction]
    lanes, start_m, end_m = lane_route(lane_graph, densify_waypoints(lane_graph, xy[keep], yaw[keep],
                                                                     where="global plan"))
    return RoutePath.build(lane_graph, lanes), start_m, end_m


def _thin(xy: np.ndarray, spacing_m: float) -> list[int]:
    """Indices of points about ``spacing_m`` apart along the polyline, the first and the last always kept."""
    keep, travelled = [0], 0.0
    steps = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    for i, step in enumerate(steps, start=1):
        travelled += float(step)
        if travelled >= spacing_m:
            keep.append(i)
            travelled = 0.0
    if keep[-1] != len(xy) - 1:
        keep.append(len(xy) - 1)
    return keep
