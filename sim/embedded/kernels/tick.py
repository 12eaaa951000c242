"""One step of the world: the order in which its kernels move things and the scene's kernels then look at them."""

from __future__ import annotations

from typing import Any

from numba import njit

from sim.embedded.kernels.events import set_off_events
from sim.embedded.kernels.lights import update_lights
from sim.embedded.kernels.pedestrians import move_pedestrians, pedestrian_pose
from sim.embedded.kernels.physics import bicycle
from sim.embedded.kernels.replay import follow_tracks
from sim.embedded.kernels.traffic import move_vehicles, respawn_vehicles, vehicle_pose
from sim.geometry import FloatArray
from sim.maps.compiled import MapArrays
from sim.scene.kernels.view import look, look_and_judge
from sim.scene.params import Params


@njit(_nrt=False, cache=True, nogil=True)
def step(m: MapArrays, sc: Any, w: Any, p: Params, actions: FloatArray, active: Any, first: int, stop: int) -> None:
    """Advance the active scenarios ``first <= b < stop`` by one ``dt`` (``sc``: the world's
    :class:`~sim.scene.records.Scene`, ``w``: its own :class:`~sim.embedded.state.State`).

    Releases the GIL: the world runs disjoint ranges of scenarios on several threads."""
    for b in range(first, stop):
        _step_one(m, sc, w, p, actions[b, 0], actions[b, 1], active[b], b)


@njit(_nrt=False, cache=True, nogil=True)
def refresh(m: MapArrays, sc: Any, w: Any, p: Params, envs: Any) -> None:
    """Recompute poses, lights, occupancy and the ego's view of the given scenarios (after a reset)."""
    for i in range(len(envs)):
        _refresh_one(m, sc, w, p, envs[i])


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _step_one(m: MapArrays, sc: Any, w: Any, p: Params, steer: float, accel: float, active: bool, b: int) -> None:
    sc.outcome.ev_n[b] = 0
    if not active:
        return
    progress = sc.route.progress_m[b]
    for k in range(w.control_loss.start_m.shape[1]):  # a stretch of bad road: the controls slip
        if w.control_loss.start_m[b, k] <= progress < w.control_loss.end_m[b, k]:
            steer += w.control_loss.steer[b, k]
            accel += w.control_loss.accel[b, k]
    _move_ego(sc, w, p, b, steer, accel)
    sc.time_s[b] += p.dt
    set_off_events(m, sc, w, b)
    update_lights(m, sc, w, p, b)
    move_vehicles(m, sc, w, p, b)
    move_pedestrians(m, sc, w, p, b)
    follow_tracks(sc, w, b)
    respawn_vehicles(m, sc, w, p, b)
    look_and_judge(m, sc, p, b)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _refresh_one(m: MapArrays, sc: Any, w: Any, p: Params, b: int) -> None:
    update_lights(m, sc, w, p, b)
    for v in range(sc.vehicles.lanes.shape[1]):
        if sc.actors.valid[b, v]:
            vehicle_pose(m, sc, w, b, v)
    for q in range(w.pedestrians.walk.shape[1]):
        if sc.actors.valid[b, sc.vehicles.lanes.shape[1] + q]:
            pedestrian_pose(m, sc, w, b, q)
    follow_tracks(sc, w, b)
    look(m, sc, p, b)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _move_ego(sc: Any, w: Any, p: Params, b: int, steer_cmd: float, accel_cmd: float) -> None:
    sc.ego.x_m[b], sc.ego.y_m[b], sc.ego.yaw_rad[b], sc.ego.speed_mps[b], sc.ego.steer_rad[b], sc.ego.accel_mps2[b] \
        = bicycle(
        p.bicycle, sc.ego.x_m[b], sc.ego.y_m[b], sc.ego.yaw_rad[b], sc.ego.speed_mps[b], sc.ego.steer_rad[b], \
            steer_cmd, accel_cmd, p.dt)
