"""Planar geometry on arrays: polylines, frames and oriented boxes.

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
    :return: ``(N, Q, 2)`` positions and ``(N, Q)`` headings in radians.
    """
    num_points = points.shape[-2]
    idx = np.sum(arc_s[:, None, :] <= query_s[:, :, None], axis=-1) - 1
    idx = np.clip(idx, 0, num_points - 2)
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


def project_onto_polylines(
    points: FloatArray, arc_s: FloatArray, query_xy: FloatArray, valid: NDArray[np.bool_]
) -> tuple[FloatArray, FloatArray]:
    """Project one point per polyline onto the polyline's segments.

    :param points: ``(N, P, 2)`` polylines.
    :param arc_s: ``(N, P)`` cumulative arc lengths.
    :param query_xy: ``(N, 2)`` points to project.
    :param valid: ``(N, P - 1)`` which segments may be chosen (e.g. a search window along the path).
    :return: arc length of the projection ``(N,)`` and signed lateral offset ``(N,)`` in metres
        (positive to the left of the direction of travel).
    """
    a = points[:, :-1]
    ab = points[:, 1:] - a
    ap = query_xy[:, None, :] - a
    seg_len2 = np.maximum(np.sum(ab * ab, axis=-1), 1e-12)
    t = np.clip(np.sum(ap * ab, axis=-1) / seg_len2, 0.0, 1.0)
    closest = a + ab * t[..., None]
    dist2 = np.sum((query_xy[:, None, :] - closest) ** 2, axis=-1)
    dist2 = np.where(valid, dist2, np.inf)
    best = np.argmin(dist2, axis=-1)
    rows = np.arange(points.shape[0])
    seg_length = np.sqrt(seg_len2[rows, best])
    s = arc_s[rows, best] + t[rows, best] * seg_length
    cross = ab[rows, best, 0] * ap[rows, best, 1] - ab[rows, best, 1] * ap[rows, best, 0]
    lateral = np.sqrt(dist2[rows, best]) * np.sign(cross)
    return s, lateral


def to_local_frame(xy: FloatArray, origin_xy: FloatArray, origin_yaw: FloatArray) -> FloatArray:
    """Express map-frame points in a local frame (x forward, y left) at ``origin``; shapes broadcast."""
    delta = xy - origin_xy
    cos, sin = np.cos(origin_yaw), np.sin(origin_yaw)
    forward = delta[..., 0] * cos + delta[..., 1] * sin
    left = -delta[..., 0] * sin + delta[..., 1] * cos
    return np.stack([forward, left], axis=-1)


def box_corners(xy: FloatArray, yaw: FloatArray, length_m: FloatArray, width_m: FloatArray) -> FloatArray:
    """Corners ``(..., 4, 2)`` of oriented boxes centred at ``xy`` with heading ``yaw``."""
    half_l = np.asarray(length_m)[..., None] * np.array([0.5, 0.5, -0.5, -0.5])
    half_w = np.asarray(width_m)[..., None] * np.array([0.5, -0.5, -0.5, 0.5])
    cos, sin = np.cos(yaw)[..., None], np.sin(yaw)[..., None]
    x = xy[..., 0:1] + half_l * cos - half_w * sin
    y = xy[..., 1:2] + half_l * sin + half_w * cos
    return np.stack([x, y], axis=-1)


def boxes_overlap(corners_a: FloatArray, corners_b: FloatArray) -> NDArray[np.bool_]:
    """Separating-axis test for oriented rectangles ``(..., 4, 2)``; shapes broadcast -> ``(...)``."""
    overlap = np.ones(np.broadcast_shapes(corners_a.shape, corners_b.shape)[:-2], dtype=bool)
    for corners in (corners_a, corners_b):
        for edge in (0, 1):
            axis = corners[..., edge + 1, :] - corners[..., edge, :]
            axis = np.stack([-axis[..., 1], axis[..., 0]], axis=-1)[..., None, :]
            proj_a = np.sum(corners_a * axis, axis=-1)
            proj_b = np.sum(corners_b * axis, axis=-1)
            separated = (proj_a.max(-1) < proj_b.min(-1)) | (proj_b.max(-1) < proj_a.min(-1))
            overlap &= ~separated
    return overlap



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
