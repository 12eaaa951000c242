"""Bird's-eye-view rasters: ego-centred, heading up, one binary channel per layer.

Static layers are drawn once per map into a map-frame raster and sampled through each ego's rotated pixel grid;
routes are drawn once per scenario; vehicles and stop lines are tested per pixel against oriented boxes.
Pixel ``(row, col)`` of a BEV lies ``(ego_row - row) * resolution`` metres ahead of the ego and
``(width / 2 - col) * resolution`` metres to its left (pixel centres, ego frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from sim.embedded.traffic import LightState
from sim.geometry import FloatArray, resample_polyline, to_local_frame
from sim.maps import LaneGraph


class Channel(IntEnum):
    """BEV channels, in order."""

    DRIVABLE = 0
    LANE_LINES = 1
    ROUTE = 2
    VEHICLES = 3
    LIGHT_STOP = 4
    LIGHT_GO = 5


@dataclass(frozen=True)
class BevSpec:
    """Size and placement of the BEV raster.

    :param size_px: the raster is ``size_px x size_px``.
    :param resolution_m: metres per pixel.
    :param ego_row: pixel row of the ego's reference point (rows above it look ahead).
    """

    size_px: int = 64
    resolution_m: float = 0.5
    ego_row: int = 48

    def ego_frame_offsets(self) -> FloatArray:
        """``(H, W, 2)`` ego-frame coordinates ``(forward, left)`` of every pixel centre, metres."""
        rows, cols = np.meshgrid(np.arange(self.size_px), np.arange(self.size_px), indexing="ij")
        forward = (self.ego_row - rows) * self.resolution_m
        left = (self.size_px / 2.0 - 0.5 - cols) * self.resolution_m
        return np.stack([forward, left], axis=-1).astype(np.float64)


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
    """Renders ``(B, C, H, W)`` uint8 BEVs (values 0/1) for a batch of egos on one map.

    :param lane_graph: the map.
    :param spec: raster size and placement.
    """

    def __init__(self, lane_graph: LaneGraph, spec: BevSpec = BevSpec()) -> None:
        self.spec = spec
        self.map_raster = rasterize_map(lane_graph)
        self._offsets = spec.ego_frame_offsets().reshape(-1, 2)
        self._row_forward = spec.ego_frame_offsets()[:, 0, 0].astype(np.float32)
        self._col_left = spec.ego_frame_offsets()[0, :, 1].astype(np.float32)
        stop_lines = lane_graph.stop_lines()
        self._stop_xy = np.array([line[1] for line in stop_lines]).reshape(-1, 2)
        self._stop_yaw = np.array([line[2] for line in stop_lines])
        self._stop_group = np.array([line[3] for line in stop_lines], dtype=np.intp)
        self._stop_width = np.array([lane_graph.lanes[line[0]].width_m for line in stop_lines])

    def route_layer(self, route_xy: FloatArray) -> NDArray[np.bool_]:
        """A map-frame raster of one route (drawn ~2 m wide)."""
        layer = self.map_raster.empty()
        self.map_raster.draw_polyline(layer, route_xy, 1.0)
        return layer

    def render(
        self,
        ego_xy: FloatArray,
        ego_yaw: FloatArray,
        route_layers: NDArray[np.bool_],
        vehicles_xy: FloatArray,
        vehicles_yaw: FloatArray,
        vehicles_length_m: FloatArray,
        vehicles_width_m: FloatArray,
        vehicles_valid: NDArray[np.bool_],
        lights: NDArray[np.int8],
    ) -> NDArray[np.uint8]:
        """Render one BEV per ego.

        :param ego_xy: ``(B, 2)`` ego positions; ``ego_yaw`` ``(B,)`` headings.
        :param route_layers: ``(B, H_map, W_map)`` each ego's route raster (``route_layer``).
        :param vehicles_xy: ``(B, A, 2)`` other vehicles (and yaw, length, width, valid as ``(B, A)``).
        :param lights: ``(B, groups)`` light states (:class:`~sim.embedded.traffic.LightState`).
        """
        b = ego_xy.shape[0]
        size = self.spec.size_px
        cos, sin = np.cos(ego_yaw)[:, None], np.sin(ego_yaw)[:, None]
        forward, left = self._offsets[None, :, 0], self._offsets[None, :, 1]
        pixels = np.stack([ego_xy[:, None, 0] + forward * cos - left * sin,
                           ego_xy[:, None, 1] + forward * sin + left * cos], axis=-1)  # (B, HW, 2)
        bev = np.zeros((b, len(Channel), size * size), dtype=np.uint8)
        row, col, inside = self.map_raster.cells(pixels)
        bev[:, Channel.DRIVABLE] = self.map_raster.layers[0][row, col] & inside
        bev[:, Channel.LANE_LINES] = self.map_raster.layers[1][row, col] & inside
        bev[:, Channel.ROUTE] = route_layers[np.arange(b)[:, None], row, col] & inside
        bev[:, Channel.VEHICLES] = self._boxes(ego_xy, ego_yaw, vehicles_xy, vehicles_yaw, vehicles_length_m,
                                               vehicles_width_m, vehicles_valid)
        if len(self._stop_group):
            state = lights[:, self._stop_group]
            shape = state.shape
            lines = (np.broadcast_to(self._stop_xy, shape + (2,)), np.broadcast_to(self._stop_yaw, shape),
                     np.ones(shape), np.broadcast_to(self._stop_width, shape))
            bev[:, Channel.LIGHT_STOP] = self._boxes(ego_xy, ego_yaw, *lines, state != LightState.GREEN)
            bev[:, Channel.LIGHT_GO] = self._boxes(ego_xy, ego_yaw, *lines, state == LightState.GREEN)
        return bev.reshape(b, len(Channel), size, size)

    def _boxes(self, ego_xy: FloatArray, ego_yaw: FloatArray, xy: FloatArray, yaw: FloatArray,
               length_m: FloatArray, width_m: FloatArray, valid: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """``(B, H*W)`` pixels covered by any valid box ``(B, N)``.

        The pixel grid is regular in the ego frame, so each box-frame coordinate is a row term plus a column
        term: the dense test costs two additions and comparisons per pixel and box.
        """
        centre = to_local_frame(xy, ego_xy[:, None, :], ego_yaw[:, None]).astype(np.float32)
        rel_yaw = (yaw - ego_yaw[:, None]).astype(np.float32)
        cos, sin = np.cos(rel_yaw)[..., None], np.sin(rel_yaw)[..., None]
        d_forward = self._row_forward[None, None, :] - centre[..., 0:1]  # (B, N, H)
        d_left = self._col_left[None, None, :] - centre[..., 1:2]  # (B, N, W)
        along = (d_forward * cos)[..., :, None] + (d_left * sin)[..., None, :]
        across = (d_left * cos)[..., None, :] - (d_forward * sin)[..., :, None]
        half_l = (0.5 * np.asarray(length_m, dtype=np.float32))[..., None, None]
        half_w = (0.5 * np.asarray(width_m, dtype=np.float32))[..., None, None]
        inside = (np.abs(along) <= half_l) & (np.abs(across) <= half_w) & valid[..., None, None]
        return np.asarray(np.any(inside, axis=1).reshape(ego_xy.shape[0], -1))
