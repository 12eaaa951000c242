"""The ego's route as a frame: arc length and lateral offset of any point, and the ego's progress along it."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.scene.codes import INF


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def project_ego(sc: Any, b: int) -> None:
    """Progress along the route: the nearest route point in a window around the last progress (never back)."""
    s, lateral, _, _ = route_frame(sc, b, sc.ego.x_m[b], sc.ego.y_m[b], sc.route.progress_m[b] - 5.0,
                                   sc.route.progress_m[b] + 15.0)
    sc.route.progress_m[b] = max(sc.route.progress_m[b], min(s, sc.route.end_m[b]))
    sc.route.lateral_m[b] = lateral


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def route_frame(sc: Any, b: int, x: float, y: float, lo_s: float, hi_s: float) -> tuple[float, float, float, float]:
    """A point in the route's frame: arc length, lateral offset (left +), distance from the route and the route's
    heading there, searching the route between ``lo_s`` and ``hi_s``."""
    ds = sc.route.ds_m[b]
    lo = max(int(lo_s / ds), 0)
    hi = min(int(hi_s / ds) + 1, sc.route.n[b] - 1)
    best, best_s, best_lat, heading = INF, 0.0, 0.0, 0.0
    for k in range(lo, hi):
        ax, ay = sc.route.x_m[b, k], sc.route.y_m[b, k]
        dx, dy = sc.route.x_m[b, k + 1] - ax, sc.route.y_m[b, k + 1] - ay
        len2 = dx * dx + dy * dy
        rx, ry = x - ax, y - ay
        t = min(max((rx * dx + ry * dy) / len2, 0.0), 1.0) if len2 > 1e-12 else 0.0
        px, py = rx - t * dx, ry - t * dy
        dist2 = px * px + py * py
        if dist2 < best:
            best, best_s = dist2, (k + t) * ds
            best_lat = math.sqrt(dist2) if dx * ry - dy * rx >= 0 else -math.sqrt(dist2)
            heading = math.atan2(dy, dx)
    return best_s, best_lat, math.sqrt(best), heading
