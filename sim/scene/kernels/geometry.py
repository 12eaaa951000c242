"""Map and box geometry the kernels share: a point on a lane, the lanes under a point, oriented boxes."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.maps.compiled import MapArrays


@njit(_nrt=False, cache=True)
def lane_pose(m: MapArrays, lane: int, s: float) -> tuple[float, float, float]:
    """Point and heading at arc length ``s`` on ``lane`` (clamped to the lane)."""
    k0 = m.lane_offset[lane]
    count = m.lane_offset[lane + 1] - k0
    ds = m.lane_ds[lane]
    t = s / ds if ds > 0 else 0.0
    i = math.floor(t)
    if i < 0:
        i = 0
    if i > count - 2:
        i = count - 2
    frac = min(max(t - i, 0.0), 1.0)
    k = k0 + i
    x = m.pts_x[k] + frac * (m.pts_x[k + 1] - m.pts_x[k])
    y = m.pts_y[k] + frac * (m.pts_y[k + 1] - m.pts_y[k])
    return x, y, m.pts_heading[k]


@njit(_nrt=False, cache=True)
def locate(m: MapArrays, x: float, y: float, reach: float, out_lane: Any, out_s: Any, out_lat: Any,
           out_heading: Any, best: Any) -> int:
    """Lanes whose extent covers ``(x, y)`` within half their width plus ``reach``: their ids, the arc length and
    signed lateral offset there, and the lane heading; returns how many (at most ``len(out_lane)``), nearest kept
    per lane. Points beyond a lane's start or end are not on it."""
    meta = m.grid_meta
    cx = math.floor((x - meta[0]) / meta[2])
    cy = math.floor((y - meta[1]) / meta[2])
    nx, ny = int(meta[3]), int(meta[4])
    if cx < 0 or cy < 0 or cx >= nx or cy >= ny:
        return 0
    cell = cy * nx + cx
    found = 0
    for item in range(m.grid_offset[cell], m.grid_offset[cell + 1]):
        k = m.grid_items[item]
        lane = m.seg_lane[k]
        ax, ay = m.pts_x[k], m.pts_y[k]
        dx, dy = m.pts_x[k + 1] - ax, m.pts_y[k + 1] - ay
        len2 = dx * dx + dy * dy
        if len2 < 1e-12:
            continue
        rx, ry = x - ax, y - ay
        t = (rx * dx + ry * dy) / len2
        first = k == m.lane_offset[lane]
        last = k + 2 == m.lane_offset[lane + 1]
        if (t < 0.0 and first) or (t > 1.0 and last):
            continue
        t = min(max(t, 0.0), 1.0)
        px, py = rx - t * dx, ry - t * dy
        dist = math.sqrt(px * px + py * py)
        if dist > 0.5 * m.lane_width[lane] + reach:
            continue
        cross = dx * ry - dy * rx
        s = (k - m.lane_offset[lane] + t) * m.lane_ds[lane]
        slot = -1
        for j in range(found):
            if out_lane[j] == lane:
                slot = j
                break
        if slot < 0:
            if found == len(out_lane):
                worst = 0
                for j in range(found):
                    if best[j] > best[worst]:
                        worst = j
                if best[worst] <= dist:
                    continue
                slot = worst
            else:
                slot = found
                found += 1
        elif best[slot] <= dist:
            continue
        best[slot] = dist
        out_lane[slot] = lane
        out_s[slot] = s
        out_lat[slot] = dist if cross >= 0 else -dist
        out_heading[slot] = m.pts_heading[k]
    return found


@njit(_nrt=False, cache=True)
def wrap(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


@njit(_nrt=False, cache=True)
def boxes_touch(ax: float, ay: float, ayaw: float, al: float, aw: float,
                bx: float, by: float, byaw: float, bl: float, bw: float) -> bool:
    """Whether two oriented boxes overlap (separating axis test)."""
    dx, dy = bx - ax, by - ay
    if dx * dx + dy * dy > 0.25 * (al + aw + bl + bw) ** 2:
        return False
    ca, sa, cb, sb = math.cos(ayaw), math.sin(ayaw), math.cos(byaw), math.sin(byaw)
    axes = ((ca, sa), (-sa, ca), (cb, sb), (-sb, cb))
    for ux, uy in axes:
        ra = 0.5 * al * abs(ca * ux + sa * uy) + 0.5 * aw * abs(-sa * ux + ca * uy)
        rb = 0.5 * bl * abs(cb * ux + sb * uy) + 0.5 * bw * abs(-sb * ux + cb * uy)
        if abs(dx * ux + dy * uy) > ra + rb:
            return False
    return True


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def inside(x: float, y: float, cx: float, cy: float, yaw: float, half_length: float, half_width: float) -> bool:
    dx, dy = x - cx, y - cy
    c, s = math.cos(yaw), math.sin(yaw)
    return abs(dx * c + dy * s) <= half_length and abs(-dx * s + dy * c) <= half_width


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def extent(sc: Any, b: int, n: int, heading: float) -> tuple[float, float]:
    """Half extents of actor ``n``'s box across and along a direction ``heading``."""
    rel = sc.actors.yaw_rad[b, n] - heading
    c, s = abs(math.cos(rel)), abs(math.sin(rel))
    return 0.5 * sc.actors.length_m[b, n] * s + 0.5 * sc.actors.width_m[b, n] * c, 0.5 * sc.actors.length_m[b, n] \
        * c + 0.5 * sc.actors.width_m[b, n] * s
