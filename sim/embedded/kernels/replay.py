"""Recorded tracks (a non-reactive log replay): actors in static slots follow their samples in time."""

from __future__ import annotations

from typing import Any

from numba import njit

from sim.embedded.kernels.geometry import wrap


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def follow_tracks(w: Any, b: int) -> None:
    """Static slots with a recorded track (a non-reactive log replay) take the track's pose at this time,
    interpolated between samples; before its first sample and after its last the actor is not there. Tracks go
    on whatever the ego does."""
    first = w.act_valid.shape[1] - w.trk_n.shape[1]
    t = w.time[b]
    for j in range(w.trk_n.shape[1]):
        count = w.trk_n[b, j]
        if count == 0:
            continue
        n = first + j
        times = w.trk_t[b, j]
        if t < times[0] - 1e-9 or t > times[count - 1] + 1e-9:
            w.act_valid[b, n] = False
            w.act_v[b, n] = 0.0
            continue
        k = min(w.trk_i[b, j], count - 1)
        while k > 0 and times[k] > t:
            k -= 1
        while k + 1 < count and times[k + 1] <= t:
            k += 1
        w.trk_i[b, j] = k
        k1 = min(k + 1, count - 1)
        span = times[k1] - times[k]
        u = min(max((t - times[k]) / span, 0.0), 1.0) if span > 1e-9 else 0.0
        w.act_valid[b, n] = True
        w.act_x[b, n] = w.trk_x[b, j, k] + u * (w.trk_x[b, j, k1] - w.trk_x[b, j, k])
        w.act_y[b, n] = w.trk_y[b, j, k] + u * (w.trk_y[b, j, k1] - w.trk_y[b, j, k])
        w.act_yaw[b, n] = wrap(w.trk_yaw[b, j, k] + u * wrap(w.trk_yaw[b, j, k1] - w.trk_yaw[b, j, k]))
        w.act_v[b, n] = w.trk_v[b, j, k] + u * (w.trk_v[b, j, k1] - w.trk_v[b, j, k])
