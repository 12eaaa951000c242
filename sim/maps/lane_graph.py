"""The lane graph: the one map model every map source is turned into.

Frames and units: map frame, metres, right-handed (x east, y north); lanes are directed along their
centreline. A lane's control (traffic light or stop sign) applies at its *end*: the stop line lies across the
lane's last centreline point, which is where a controlled approach meets its junction.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.geometry import FloatArray, cumulative_length


@dataclass(frozen=True)
class Lane:
    """One directed lane.

    :param lane_id: index of the lane in its graph.
    :param centerline: ``(P, 2)`` centreline polyline in the map frame, metres, in the direction of travel.
    :param width_m: lane width.
    :param successors: lanes a vehicle may continue onto from this lane's end.
    :param is_junction: whether the lane lies inside a junction (a connector).
    :param speed_limit_mps: legal speed.
    :param light_group: traffic-light group controlling this lane's end (its stop line), if any.
    """

    lane_id: int
    centerline: FloatArray
    width_m: float
    successors: tuple[int, ...]
    is_junction: bool = False
    speed_limit_mps: float = 10.0
    light_group: int | None = None

    @property
    def length_m(self) -> float:
        return float(cumulative_length(self.centerline)[-1])


@dataclass(frozen=True)
class LaneGraph:
    """A map: lanes plus the drivable area's extent.

    :param name: map id, unique among registered maps.
    :param lanes: lanes indexed by ``lane_id``.
    :param bounds_m: ``(x_min, y_min, x_max, y_max)`` of everything drawable.
    :param drivable_polygons: drivable area as convex polygons ``(V, 2)`` whose union is the road surface.
    :param light_groups: number of traffic-light groups.
    """

    name: str
    lanes: tuple[Lane, ...]
    bounds_m: tuple[float, float, float, float]
    drivable_polygons: tuple[FloatArray, ...]
    light_groups: int = 0

    def __post_init__(self) -> None:
        for index, lane in enumerate(self.lanes):
            if lane.lane_id != index:
                raise ValueError(f"map {self.name!r}: lane at index {index} has lane_id {lane.lane_id}")
            for succ in lane.successors:
                if not 0 <= succ < len(self.lanes):
                    raise ValueError(f"map {self.name!r}: lane {index} has unknown successor {succ}")

    def path_polyline(self, lane_ids: Sequence[int]) -> FloatArray:
        """Concatenate the centrelines of consecutive lanes into one polyline (shared end points once)."""
        for first, second in itertools.pairwise(lane_ids):
            if second not in self.lanes[first].successors:
                raise ValueError(f"map {self.name!r}: lane {second} does not follow lane {first}")
        parts = [self.lanes[lane_ids[0]].centerline]
        parts += [self.lanes[lane_id].centerline[1:] for lane_id in lane_ids[1:]]
        return np.concatenate(parts, axis=0)

    def stop_lines(self) -> list[tuple[int, FloatArray, float, int]]:
        """Every light-controlled stop line as ``(lane_id, centre_xy, heading_rad, light_group)``."""
        lines = []
        for lane in self.lanes:
            if lane.light_group is None:
                continue
            end, before = lane.centerline[-1], lane.centerline[-2]
            heading = float(np.arctan2(end[1] - before[1], end[0] - before[0]))
            lines.append((lane.lane_id, end.copy(), heading, lane.light_group))
        return lines
