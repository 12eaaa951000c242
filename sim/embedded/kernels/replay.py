"""Recorded tracks (a non-reactive log replay): actors in static slots follow their samples in time."""

from __future__ import annotations

from typing import Any

from numba import njit

from sim.scene.kernels.geometry import wrap


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def follow_tracks(sc: Any, w: Any, b: int) -> None:
    """Static slots with a recorded track (a non-reactive log replay) take the track's pose at this time,
    interpolated between samples; before its first sample and after its last the actor is not there. Tracks go
    on whatever the ego does."""
    first = sc.actors.valid.shape[1] - w.tracks.n.shape[1]
    t = sc.time_s[b]
    for j in range(w.tracks.n.shape[1]):
        count = w.tracks.n[b, j]
        if count == 0:
            continue
        n = first + j
        times = w.tracks.t_s[b, j]
        if t < times[0] - 1e-9 or t > times[count - 1] + 1e-9:
            sc.actors.valid[b, n] = False
            sc.actors.speed_mps[b, n] = 0.0
            continue
        k = min(w.tracks.i[b, j], count - 1)
        while k > 0 and times[k] > t:
            k -= 1
        while k + 1 < count and times[k + 1] <= t:
            k += 1
        w.tracks.i[b, j] = k
        k1 = min(k + 1, count - 1)
        span = times[k1] - times[k]
        u = min(max((t - times[k]) / span, 0.0), 1.0) if span > 1e-9 else 0.0
        sc.actors.valid[b, n] = True
        sc.actors.x_m[b, n] = w.tracks.x_m[b, j, k] + u * (w.tracks.x_m[b, j, k1] - w.tracks.x_m[b, j, k])
        sc.actors.y_m[b, n] = w.tracks.y_m[b, j, k] + u * (w.tracks.y_m[b, j, k1] - w.tracks.y_m[b, j, k])
        sc.actors.yaw_rad[b, n] = wrap(w.tracks.yaw_rad[b, j, k] + u * wrap(w.tracks.yaw_rad[b, j, k1]
                                                                            - w.tracks.yaw_rad[b, j, k]))
        sc.actors.speed_mps[b, n] = w.tracks.speed_mps[b, j, k] + u * (w.tracks.speed_mps[b, j, k1]
                                                                       - w.tracks.speed_mps[b, j, k])
