"""The ego's route as a frame: arc length and lateral offset of any point, and the ego's progress along it."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.embedded.kernels.codes import INF


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def project_ego(w: Any, b: int) -> None:
    """Progress along the route: the nearest route point in a window around the last progress (never back)."""
    s, lateral, _, _ = route_frame(w, b, w.ego_x[b], w.ego_y[b], w.progress[b] - 5.0, w.progress[b] + 15.0)
    w.progress[b] = max(w.progress[b], min(s, w.end_s[b]))
    w.lateral[b] = lateral


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def route_frame(w: Any, b: int, x: float, y: float, lo_s: float, hi_s: float) -> tuple[float, float, float, float]:
    """A point in the route's frame: arc length, lateral offset (left +), distance from the route and the route's
    heading there, searching the route between ``lo_s`` and ``hi_s``."""
    ds = w.route_ds[b]
    lo = max(int(lo_s / ds), 0)
    hi = min(int(hi_s / ds) + 1, w.route_n[b] - 1)
    best, best_s, best_lat, heading = INF, 0.0, 0.0, 0.0
    for k in range(lo, hi):
        ax, ay = w.route_x[b, k], w.route_y[b, k]
        dx, dy = w.route_x[b, k + 1] - ax, w.route_y[b, k + 1] - ay
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
