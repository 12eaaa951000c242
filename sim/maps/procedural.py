"""Procedurally built maps.

``four_way_junction`` is a signalized crossroads: four two-way arms of one lane per direction (right-hand
traffic) meeting at a square junction, with a connector lane for every straight, left and right movement. Each
approach has its own traffic-light group (split phasing), so no two green movements cross.
"""

from __future__ import annotations

import numpy as np

from sim.geometry import FloatArray
from sim.maps.lane_graph import Lane, LaneGraph

#: Connector sampling density (points per connector lane).
_CONNECTOR_POINTS = 24


def _bezier(p0: FloatArray, p1: FloatArray, p2: FloatArray, p3: FloatArray, count: int) -> FloatArray:
    t = np.linspace(0.0, 1.0, count)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def four_way_junction(
    *,
    arm_length_m: float = 60.0,
    lane_width_m: float = 3.5,
    junction_half_size_m: float = 10.0,
    speed_limit_mps: float = 10.0,
) -> LaneGraph:
    """Build the signalized four-way junction.

    Lane ids: ``2 * arm`` is the inbound lane of arm ``arm`` (0 east, 1 north, 2 west, 3 south), ``2 * arm + 1``
    its outbound lane, and ids from 8 on are connectors (``connector_id(a, b)``).

    :param arm_length_m: length of each arm beyond the junction box.
    :param lane_width_m: width of every lane.
    :param junction_half_size_m: half the side of the square junction box (centred on the origin).
    :param speed_limit_mps: speed limit on every lane.
    """
    h, half_w = junction_half_size_m, lane_width_m / 2.0
    lanes: list[Lane] = []
    inbound_end, outbound_start = [], []
    for arm in range(4):
        theta = arm * np.pi / 2.0
        u = np.array([np.cos(theta), np.sin(theta)])
        left_of_u = np.array([-np.sin(theta), np.cos(theta)])
        start_in, end_in = u * (h + arm_length_m) + left_of_u * half_w, u * h + left_of_u * half_w
        start_out, end_out = u * h - left_of_u * half_w, u * (h + arm_length_m) - left_of_u * half_w
        inbound_end.append((end_in, -u))
        outbound_start.append((start_out, u))
        successors = tuple(connector_id(arm, other) for other in range(4) if other != arm)
        lanes.append(Lane(2 * arm, np.stack([start_in, end_in]), lane_width_m, successors,
                          speed_limit_mps=speed_limit_mps, light_group=arm))
        lanes.append(Lane(2 * arm + 1, np.stack([start_out, end_out]), lane_width_m, (),
                          speed_limit_mps=speed_limit_mps))
    for arm_in in range(4):
        for arm_out in range(4):
            if arm_in == arm_out:
                continue
            (p0, d0), (p3, d3) = inbound_end[arm_in], outbound_start[arm_out]
            reach = 0.5523 * np.linalg.norm(p3 - p0) / np.sqrt(2.0)
            points = _bezier(p0, p0 + d0 * reach, p3 - d3 * reach, p3, _CONNECTOR_POINTS)
            lanes.append(Lane(connector_id(arm_in, arm_out), points, lane_width_m, (2 * arm_out + 1,),
                              is_junction=True, speed_limit_mps=speed_limit_mps, junction_id=0))
    lanes.sort(key=lambda lane: lane.lane_id)
    extent = h + arm_length_m
    polygons = [np.array([[-h, -h], [h, -h], [h, h], [-h, h]], dtype=float)]
    for arm in range(4):
        theta = arm * np.pi / 2.0
        u = np.array([np.cos(theta), np.sin(theta)])
        left_of_u = np.array([-np.sin(theta), np.cos(theta)])
        road = lane_width_m * left_of_u
        polygons.append(np.stack([u * h - road, u * extent - road, u * extent + road, u * h + road]))
    return LaneGraph(
        name=f"junction4-{arm_length_m:g}",
        lanes=tuple(lanes),
        bounds_m=(-extent, -extent, extent, extent),
        drivable_polygons=tuple(polygons),
        light_groups=4,
    )


def connector_id(arm_in: int, arm_out: int) -> int:
    """Lane id of the junction connector from inbound arm ``arm_in`` to outbound arm ``arm_out``."""
    if arm_in == arm_out or not (0 <= arm_in < 4 and 0 <= arm_out < 4):
        raise ValueError(f"no connector from arm {arm_in} to arm {arm_out}")
    return 8 + arm_in * 3 + (arm_out - arm_in - 1) % 4
