"""Planar geometry on arrays: polylines, frames and convex hulls (the world's oriented-box tests are compiled
kernels in :mod:`sim.embedded.kernels`).

All coordinates are metres in the map frame (right-handed: x east, y north, yaw counter-clockwise from +x, in
radians) unless a name says otherwise. Every function is vectorized: leading dimensions broadcast.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def wrap_angle(angle_rad: NDArray[np.floating] | float) -> FloatArray:
    """Wrap angles to [-pi, pi)."""
    return np.asarray((np.asarray(angle_rad) + np.pi) % (2.0 * np.pi) - np.pi, dtype=np.float64)


def cumulative_length(points: FloatArray) -> FloatArray:
    """Arc length at each vertex of a polyline ``(..., P, 2)`` -> ``(..., P)``, starting at 0."""
    seg = np.linalg.norm(np.diff(points, axis=-2), axis=-1)
    zeros = np.zeros(seg.shape[:-1] + (1,))
    return np.concatenate([zeros, np.cumsum(seg, axis=-1)], axis=-1)


def resample_polyline(points: FloatArray, spacing_m: float | None = None, *, count: int | None = None) -> FloatArray:
    """Resample one polyline ``(P, 2)`` at uniform arc-length steps, keeping both end points: steps of about
    ``spacing_m``, or ``count`` points."""
    s = cumulative_length(points)
    if count is None:
        if spacing_m is None:
            raise ValueError("give spacing_m or count")
        count = max(int(np.ceil(s[-1] / spacing_m)), 1) + 1
    s_new = np.linspace(0.0, s[-1], count)
    return np.stack([np.interp(s_new, s, points[:, 0]), np.interp(s_new, s, points[:, 1])], axis=-1)


def interpolate_along(
    points: FloatArray, arc_s: FloatArray, query_s: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Position and heading at arc lengths ``query_s`` on batched polylines.

    :param points: ``(N, P, 2)`` polylines (padded polylines repeat their last vertex).
    :param arc_s: ``(N, P)`` cumulative arc length of each polyline (non-decreasing).
    :param query_s: ``(N, Q)`` arc lengths to look up, clipped to each polyline's extent.
    :return: ``(N, Q, 2)`` positions and ``(N, Q)`` headings in radians; past a polyline's end, its end and its
        last segment's heading, however much padding follows (a polyline gives the same answers in any batch).
    """
    idx = np.sum(arc_s[:, None, :] <= query_s[:, :, None], axis=-1) - 1
    # the last segment of each polyline is the one that reaches its final arc length (padding adds none)
    last = np.maximum(np.sum(arc_s < arc_s[:, -1:], axis=-1) - 1, 0)
    idx = np.clip(idx, 0, last[:, None])
    p0 = np.take_along_axis(points, idx[..., None], axis=1)
    p1 = np.take_along_axis(points, idx[..., None] + 1, axis=1)
    s0 = np.take_along_axis(arc_s, idx, axis=1)
    s1 = np.take_along_axis(arc_s, idx + 1, axis=1)
    length = s1 - s0
    frac = np.clip(np.divide(query_s - s0, length, out=np.zeros_like(length), where=length > 1e-9), 0.0, 1.0)
    position = p0 + (p1 - p0) * frac[..., None]
    delta = p1 - p0
    heading = np.arctan2(delta[..., 1], delta[..., 0])
    return position, heading


def to_local_frame(xy: FloatArray, origin_xy: FloatArray, origin_yaw: FloatArray) -> FloatArray:
    """Express map-frame points in a local frame (x forward, y left) at ``origin``; shapes broadcast."""
    delta = xy - origin_xy
    cos, sin = np.cos(origin_yaw), np.sin(origin_yaw)
    forward = delta[..., 0] * cos + delta[..., 1] * sin
    left = -delta[..., 0] * sin + delta[..., 1] * cos
    return np.stack([forward, left], axis=-1)


def to_map_frame(local: FloatArray, origin_xy: FloatArray, origin_yaw: FloatArray) -> FloatArray:
    """Map-frame points of points in a local frame (x forward, y left) at ``origin`` (the inverse of
    :func:`to_local_frame`); shapes broadcast."""
    cos, sin = np.cos(origin_yaw), np.sin(origin_yaw)
    x = origin_xy[..., 0] + local[..., 0] * cos - local[..., 1] * sin
    y = origin_xy[..., 1] + local[..., 0] * sin + local[..., 1] * cos
    return np.stack([x, y], axis=-1)


def convex_hull(points: FloatArray) -> FloatArray:
    """Convex hull ``(V, 2)`` of points ``(N, 2)``, counter-clockwise (Andrew's monotone chain)."""
    unique = np.unique(np.asarray(points, dtype=np.float64), axis=0)
    if len(unique) < 3:
        return unique

    def half(ordered: FloatArray) -> list[FloatArray]:
        chain: list[FloatArray] = []
        for point in ordered:
            while len(chain) >= 2:
                (ax, ay), (bx, by) = chain[-2], chain[-1]
                if (bx - ax) * (point[1] - ay) - (by - ay) * (point[0] - ax) > 1e-12:
                    break
                chain.pop()
            chain.append(point)
        return chain

    lower, upper = half(unique), half(unique[::-1])
    return np.array(lower[:-1] + upper[:-1])


def project_to_polylines(polylines: FloatArray, xy: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The nearest point to each of ``xy`` ``(B, 2)`` on its polyline of ``polylines`` ``(B, P, 2)``, the first
    segment extended backwards and the last one forwards: its arc length from the first vertex (negative behind it)
    and the signed lateral offset of ``xy`` from it (left of the direction of travel positive), ``(B,)`` each."""
    start, delta = polylines[:, :-1], np.diff(polylines, axis=1)
    length = np.maximum(np.linalg.norm(delta, axis=-1), 1e-9)
    unit = delta / length[..., None]
    relative = xy[:, None, :] - start
    along = np.sum(relative * unit, axis=-1)
    segments = np.arange(delta.shape[1])
    low = np.where(segments == 0, -np.inf, 0.0)
    high = np.where(segments == delta.shape[1] - 1, np.inf, length)
    clipped = np.clip(along, low, high)
    distance = np.linalg.norm(relative - unit * clipped[..., None], axis=-1)
    k = np.argmin(distance, axis=1)
    rows = np.arange(len(xy))
    arc = cumulative_length(polylines)
    cross = unit[rows, k, 0] * relative[rows, k, 1] - unit[rows, k, 1] * relative[rows, k, 0]
    return arc[rows, k] + clipped[rows, k], cross
