"""Bird's-eye-view rasters: ego-centred, heading up, one binary channel per layer (:class:`Channel`).

Static layers (drivable area, lane lines) are drawn once per map into a map-frame bit raster and sampled through
each ego's rotated pixel grid; the route is drawn from the route polyline near the ego; actors and light stop
lines are tested per pixel inside their bounding boxes. A compiled kernel (numba) renders disjoint parts of the
batch on several threads. Pixel ``(row, col)`` of a BEV lies ``(ego_row - row) * resolution`` metres ahead of the
ego and ``(width / 2 - 0.5 - col) * resolution`` metres to its left (pixel centres, ego frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from sim.geometry import FloatArray, resample_polyline
from sim.maps import LaneGraph
from sim.scene import raster
from sim.threads import default_threads, run_chunked


class Channel(IntEnum):
    """BEV channels, in order."""

    DRIVABLE = 0
    LANE_LINES = 1
    ROUTE = 2
    VEHICLES = 3
    PEDESTRIANS = 4
    OBSTACLES = 5
    LIGHT_RED = 6
    LIGHT_YELLOW = 7
    LIGHT_GREEN = 8


@dataclass(frozen=True)
class BevSpec:
    """Size and placement of the BEV raster.

    :param size_px: the raster is ``size_px x size_px``.
    :param resolution_m: metres per pixel.
    :param ego_row: pixel row of the ego's reference point (rows above it look ahead).
    """

    size_px: int = 128
    resolution_m: float = 0.5
    ego_row: int = 96

    def ego_frame_offsets(self) -> FloatArray:
        """``(H, W, 2)`` ego-frame coordinates ``(forward, left)`` of every pixel centre, metres."""
        rows, cols = np.meshgrid(np.arange(self.size_px), np.arange(self.size_px), indexing="ij")
        forward = (self.ego_row - rows) * self.resolution_m
        left = (self.size_px / 2.0 - 0.5 - cols) * self.resolution_m
        return np.stack([forward, left], axis=-1).astype(np.float64)

    def pixels(self, xy: FloatArray, ego_xy: FloatArray, ego_yaw: float) -> FloatArray:
        """Fractional ``(row, col)`` (pixel centres at whole numbers) of map-frame points ``xy`` ``(..., 2)`` in the
        BEV of an ego at ``ego_xy`` heading ``ego_yaw`` (rad): where :meth:`ego_frame_offsets` places them."""
        dx, dy = xy[..., 0] - ego_xy[0], xy[..., 1] - ego_xy[1]
        c, s = np.cos(ego_yaw), np.sin(ego_yaw)
        forward, left = dx * c + dy * s, -dx * s + dy * c
        return np.stack([self.ego_row - forward / self.resolution_m,
                         self.size_px / 2.0 - 0.5 - left / self.resolution_m], axis=-1)


@dataclass(frozen=True)
class MapRaster:
    """Binary map-frame rasters of one map. ``layers[k, row, col]`` covers the cell whose lower-left corner
    is ``origin_m + (col, row) * resolution_m``."""

    origin_m: tuple[float, float]
    resolution_m: float
    layers: NDArray[np.bool_]

    def cells(self, xy: FloatArray) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_]]:
        """Row and column of the cell under each map-frame point ``(..., 2)`` (clipped), and whether the point
        lies on the raster."""
        height, width = self.layers.shape[1:]
        col = np.floor((xy[..., 0] - self.origin_m[0]) / self.resolution_m).astype(np.intp)
        row = np.floor((xy[..., 1] - self.origin_m[1]) / self.resolution_m).astype(np.intp)
        inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
        return np.clip(row, 0, height - 1), np.clip(col, 0, width - 1), inside

    def empty(self) -> NDArray[np.bool_]:
        return np.zeros(self.layers.shape[1:], dtype=bool)

    def fill_polygon(self, layer: NDArray[np.bool_], polygon: FloatArray) -> None:
        """Mark every cell whose centre lies inside a simple polygon (even-odd rule; in place), testing only
        the cells of the polygon's bounding box."""
        res = self.resolution_m
        (col0, row0), (col1, row1) = (np.floor((polygon.min(axis=0) - self.origin_m) / res).astype(int),
                                      np.ceil((polygon.max(axis=0) - self.origin_m) / res).astype(int))
        col0, row0 = max(col0, 0), max(row0, 0)
        col1, row1 = min(col1, layer.shape[1]), min(row1, layer.shape[0])
        if col0 >= col1 or row0 >= row1:
            return
        x = self.origin_m[0] + (np.arange(col0, col1) + 0.5) * res
        y = self.origin_m[1] + (np.arange(row0, row1) + 0.5) * res
        px, py = np.meshgrid(x, y)
        inside = np.zeros(px.shape, dtype=bool)
        for (xa, ya), (xb, yb) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
            if ya == yb:
                continue
            crosses = (ya > py) != (yb > py)
            x_at = xa + (py - ya) * (xb - xa) / (yb - ya)
            inside ^= crosses & (px < x_at)
        layer[row0:row1, col0:col1] |= inside

    def draw_polyline(self, layer: NDArray[np.bool_], points: FloatArray, half_width_m: float) -> None:
        """Mark every cell within ``half_width_m`` of a polyline (in place)."""
        dense = resample_polyline(points, self.resolution_m / 2.0)
        reach = int(np.ceil(half_width_m / self.resolution_m))
        base_col = np.floor((dense[:, 0] - self.origin_m[0]) / self.resolution_m).astype(np.intp)
        base_row = np.floor((dense[:, 1] - self.origin_m[1]) / self.resolution_m).astype(np.intp)
        for d_row in range(-reach, reach + 1):
            for d_col in range(-reach, reach + 1):
                if (d_row**2 + d_col**2) * self.resolution_m**2 > max(half_width_m, 0.5 * self.resolution_m) ** 2:
                    continue
                row, col = base_row + d_row, base_col + d_col
                ok = (row >= 0) & (row < layer.shape[0]) & (col >= 0) & (col < layer.shape[1])
                layer[row[ok], col[ok]] = True


def rasterize_map(lane_graph: LaneGraph, *, resolution_m: float = 0.25) -> MapRaster:
    """Draw a map's drivable area (layer 0) and lane lines (layer 1)."""
    x_min, y_min, x_max, y_max = lane_graph.bounds_m
    width = int(np.ceil((x_max - x_min) / resolution_m))
    height = int(np.ceil((y_max - y_min) / resolution_m))
    raster = MapRaster((x_min, y_min), resolution_m, np.zeros((2, height, width), dtype=bool))
    for polygon in lane_graph.drivable_polygons:
        raster.fill_polygon(raster.layers[0], polygon)
    for lane in lane_graph.lanes:
        if lane.is_junction:
            continue
        for boundary in lane.boundaries():
            raster.draw_polyline(raster.layers[1], boundary, 0.1)
    return raster


class BevRenderer:
    """Renders ``(B, C, H, W)`` uint8 BEVs (values 0/1) of a world's egos.

    :param lane_graph: the map.
    :param spec: raster size and placement.
    :param threads: threads rendering disjoint parts of the batch (default: one per CPU, at most 8).
    """

    def __init__(self, lane_graph: LaneGraph, spec: BevSpec = BevSpec(), threads: int | None = None) -> None:
        self.spec = spec
        self.map_raster = rasterize_map(lane_graph)
        layers = self.map_raster.layers
        self._bits = (layers[0].astype(np.uint8) | (layers[1].astype(np.uint8) << 1)).astype(np.uint8)
        stop_lines = lane_graph.stop_lines()
        self._stop_x = np.array([line[1][0] for line in stop_lines], dtype=np.float64)
        self._stop_y = np.array([line[1][1] for line in stop_lines], dtype=np.float64)
        self._stop_yaw = np.array([line[2] for line in stop_lines], dtype=np.float64)
        self._stop_width = np.array([lane_graph.lanes[line[0]].width_m for line in stop_lines], dtype=np.float64)
        self._stop_group = np.array([line[3] for line in stop_lines], dtype=np.int64)
        self._threads = threads or default_threads()

    def render(self, ego_xy: FloatArray, ego_yaw: FloatArray, route_x: FloatArray, route_y: FloatArray,
               route_n: NDArray[np.int64], route_ds: FloatArray, progress_s: FloatArray, actor_kind: NDArray[np.int8],
               actor_xy: FloatArray, actor_yaw: FloatArray, actor_length_m: FloatArray, actor_width_m: FloatArray,
               actor_valid: NDArray[np.bool_], lights: NDArray[np.int8]) -> NDArray[np.uint8]:
        """Render one BEV per ego.

        :param ego_xy: ``(B, 2)`` ego positions; ``ego_yaw`` ``(B,)`` headings.
        :param route_x: ``(B, P)`` route polylines with ``route_n`` points each, ``route_ds`` apart; the route is
            drawn around ``progress_s``.
        :param actor_kind: ``(B, N)`` kinds (:class:`sim.embedded.world.ActorKind`) of actors with ``actor_xy``
            ``(B, N, 2)``, yaw, length, width and ``actor_valid``.
        :param lights: ``(B, groups)`` light states (:class:`~sim.embedded.traffic.LightState`).
        """
        b = len(ego_xy)
        size = self.spec.size_px
        out = np.empty((b, len(Channel), size, size), dtype=np.uint8)
        ego_x, ego_y = np.ascontiguousarray(ego_xy[:, 0]), np.ascontiguousarray(ego_xy[:, 1])
        actor_x, actor_y = np.ascontiguousarray(actor_xy[..., 0]), np.ascontiguousarray(actor_xy[..., 1])
        origin = self.map_raster.origin_m
        args = (self._bits, origin[0], origin[1], self.map_raster.resolution_m, self.spec.resolution_m,
                self.spec.ego_row, ego_x, ego_y, ego_yaw, route_x, route_y, route_n, route_ds, progress_s,
                actor_kind, actor_x, actor_y, actor_yaw, actor_length_m, actor_width_m, actor_valid,
                self._stop_x, self._stop_y, self._stop_yaw, self._stop_width, self._stop_group, lights, out)
        run_chunked(lambda first, stop: raster.render(*args, first, stop), b, self._threads, 8)
        return out
