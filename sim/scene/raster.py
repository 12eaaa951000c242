"""The compiled BEV kernel (see :mod:`sim.scene.bev` for the pixel convention and the channels).

Compiled without numba's reference-counting runtime, like :mod:`sim.embedded.kernels` (no allocation here)."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

# channels (sim.scene.bev.Channel)
_DRIVABLE, _LANE_LINES, _ROUTE, _VEHICLES, _PEDESTRIANS, _OBSTACLES, _RED, _YELLOW, _GREEN = range(9)
# actor kinds (sim.embedded.kernels)
_VEHICLE, _PEDESTRIAN = 1, 2
#: Half width of the drawn route, metres.
_ROUTE_HALF_WIDTH_M = 1.0
#: Depth of a drawn stop line along its lane, metres.
_STOP_LINE_DEPTH_M = 1.0


@njit(_nrt=False, cache=True, nogil=True)
def render(bits: Any, origin_x: float, origin_y: float, map_res: float, res: float, ego_row: int,
           ego_x: Any, ego_y: Any, ego_yaw: Any, route_x: Any, route_y: Any, route_n: Any, route_ds: Any,
           progress: Any, kind: Any, act_x: Any, act_y: Any, act_yaw: Any, act_len: Any, act_wid: Any,
           act_valid: Any, stop_x: Any, stop_y: Any, stop_yaw: Any, stop_width: Any, stop_group: Any,
           lights: Any, out: Any, first: int, stop: int) -> None:
    """Render BEVs ``first <= b < stop`` into ``out`` ``(B, C, H, W)`` (every pixel written)."""
    size = out.shape[2]
    height, width = bits.shape
    for b in range(first, stop):
        c, s = math.cos(ego_yaw[b]), math.sin(ego_yaw[b])
        out[b, _ROUTE:] = 0
        # the map-raster cell (fractional) under pixel (row, col) is affine in row and col
        left0 = (0.5 * size - 0.5) * res
        gx0 = (ego_x[b] + ego_row * res * c - left0 * s - origin_x) / map_res
        gy0 = (ego_y[b] + ego_row * res * s + left0 * c - origin_y) / map_res
        gx_row, gy_row = -res * c / map_res, -res * s / map_res
        gx_col, gy_col = res * s / map_res, -res * c / map_res
        drivable, lines = out[b, _DRIVABLE], out[b, _LANE_LINES]
        for row in range(size):
            fx = gx0 + row * gx_row
            fy = gy0 + row * gy_row
            for col in range(size):
                gx = math.floor(fx + col * gx_col)
                gy = math.floor(fy + col * gy_col)
                value = 0
                if 0 <= gx < width and 0 <= gy < height:
                    value = bits[gy, gx]
                drivable[row, col] = value & 1
                lines[row, col] = (value >> 1) & 1
        _route(out, b, res, ego_row, ego_x[b], ego_y[b], c, s, route_x, route_y, route_n[b], route_ds[b], progress[b])
        for n in range(kind.shape[1]):
            if not act_valid[b, n]:
                continue
            channel = _VEHICLES if kind[b, n] == _VEHICLE else (_PEDESTRIANS if kind[b, n] == _PEDESTRIAN
                                                                else _OBSTACLES)
            _box(out, b, channel, res, ego_row, ego_x[b], ego_y[b], c, s, act_x[b, n], act_y[b, n], act_yaw[b, n],
                 act_len[b, n], act_wid[b, n])
        for k in range(len(stop_x)):
            state = lights[b, stop_group[k]]
            channel = _GREEN if state == 0 else (_YELLOW if state == 1 else _RED)
            _box(out, b, channel, res, ego_row, ego_x[b], ego_y[b], c, s, stop_x[k], stop_y[k], stop_yaw[k],
                 _STOP_LINE_DEPTH_M, stop_width[k])


@njit(_nrt=False, cache=True, nogil=True, no_cpython_wrapper=True)
def _to_pixel(res: float, ego_row: int, size: int, ego_x: float, ego_y: float, c: float, s: float,
              x: float, y: float) -> tuple[float, float]:
    """Fractional (row, col) of a map point."""
    dx, dy = x - ego_x, y - ego_y
    forward = dx * c + dy * s
    left = -dx * s + dy * c
    return ego_row - forward / res, 0.5 * size - 0.5 - left / res


@njit(_nrt=False, cache=True, nogil=True, no_cpython_wrapper=True)
def _box(out: Any, b: int, channel: int, res: float, ego_row: int, ego_x: float, ego_y: float, c: float, s: float,
         x: float, y: float, yaw: float, length: float, width: float) -> None:
    size = out.shape[2]
    row, col = _to_pixel(res, ego_row, size, ego_x, ego_y, c, s, x, y)
    reach = 0.5 * math.sqrt(length * length + width * width) / res + 1.0
    if row + reach < 0 or row - reach >= size or col + reach < 0 or col - reach >= size:
        return
    r0, r1 = max(int(row - reach), 0), min(int(row + reach) + 1, size)
    c0, c1 = max(int(col - reach), 0), min(int(col + reach) + 1, size)
    # box axes in pixel units: the box's heading relative to the ego, in (forward, left)
    rel_c, rel_s = math.cos(yaw) * c + math.sin(yaw) * s, math.sin(yaw) * c - math.cos(yaw) * s
    half_l, half_w = 0.5 * length / res, 0.5 * width / res
    for r in range(r0, r1):
        d_forward = row - r  # pixels ahead of the box centre
        for q in range(c0, c1):
            d_left = col - q
            along = d_forward * rel_c + d_left * rel_s
            across = -d_forward * rel_s + d_left * rel_c
            if abs(along) <= half_l and abs(across) <= half_w:
                out[b, channel, r, q] = 1


@njit(_nrt=False, cache=True, nogil=True, no_cpython_wrapper=True)
def _route(out: Any, b: int, res: float, ego_row: int, ego_x: float, ego_y: float, c: float, s: float,
           route_x: Any, route_y: Any, count: int, ds: float, progress: float) -> None:
    size = out.shape[2]
    view = 1.5 * size * res
    k0 = max(int((progress - view) / ds), 0)
    k1 = min(int((progress + view) / ds) + 1, count - 1)
    radius = _ROUTE_HALF_WIDTH_M / res
    for k in range(k0, k1):
        ra, ca = _to_pixel(res, ego_row, size, ego_x, ego_y, c, s, route_x[b, k], route_y[b, k])
        rb, cb = _to_pixel(res, ego_row, size, ego_x, ego_y, c, s, route_x[b, k + 1], route_y[b, k + 1])
        r0 = max(int(min(ra, rb) - radius), 0)
        r1 = min(int(max(ra, rb) + radius) + 1, size)
        c0 = max(int(min(ca, cb) - radius), 0)
        c1 = min(int(max(ca, cb) + radius) + 1, size)
        dr, dc = rb - ra, cb - ca
        len2 = dr * dr + dc * dc
        for r in range(r0, r1):
            for q in range(c0, c1):
                t = 0.0 if len2 < 1e-12 else min(max(((r - ra) * dr + (q - ca) * dc) / len2, 0.0), 1.0)
                er, ec = r - (ra + t * dr), q - (ca + t * dc)
                if er * er + ec * ec <= radius * radius:
                    out[b, _ROUTE, r, q] = 1
