"""One step of the world: the order in which the kernels move things and then look at them."""

from __future__ import annotations

from typing import Any

from numba import njit

from sim.embedded.compiled import MapArrays
from sim.embedded.kernels.codes import Params
from sim.embedded.kernels.events import set_off_events
from sim.embedded.kernels.infractions import count_infractions
from sim.embedded.kernels.junction import note_approaching
from sim.embedded.kernels.lights import update_lights
from sim.embedded.kernels.occupancy import occupy_lanes
from sim.embedded.kernels.pedestrians import move_pedestrians, pedestrian_pose
from sim.embedded.kernels.physics import bicycle
from sim.embedded.kernels.planner import ego_facts, plan_path
from sim.embedded.kernels.replay import follow_tracks
from sim.embedded.kernels.route import project_ego
from sim.embedded.kernels.traffic import move_vehicles, respawn_vehicles, vehicle_pose
from sim.geometry import FloatArray


@njit(_nrt=False, cache=True, nogil=True)
def step(m: MapArrays, w: Any, p: Params, actions: FloatArray, active: Any, first: int, stop: int) -> None:
    """Advance the active scenarios ``first <= b < stop`` by one ``dt`` (``w``: :class:`sim.embedded.world.State`).

    Releases the GIL: the world runs disjoint ranges of scenarios on several threads."""
    for b in range(first, stop):
        _step_one(m, w, p, actions[b, 0], actions[b, 1], active[b], b)


@njit(_nrt=False, cache=True, nogil=True)
def refresh(m: MapArrays, w: Any, p: Params, envs: Any) -> None:
    """Recompute poses, lights, occupancy and the ego's view of the given scenarios (after a reset)."""
    for i in range(len(envs)):
        _refresh_one(m, w, p, envs[i])


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _step_one(m: MapArrays, w: Any, p: Params, steer: float, accel: float, active: bool, b: int) -> None:
    w.ev_n[b] = 0
    if not active:
        return
    _move_ego(w, p, b, steer, accel)
    w.time[b] += p.dt
    set_off_events(m, w, b)
    update_lights(m, w, p, b)
    move_vehicles(m, w, p, b)
    move_pedestrians(m, w, p, b)
    follow_tracks(w, b)
    respawn_vehicles(m, w, p, b)
    project_ego(w, b)
    occupy_lanes(m, w, p, b)
    plan_path(m, w, p, b)
    ego_facts(m, w, p, b)
    note_approaching(m, w, b)
    count_infractions(m, w, p, b)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _refresh_one(m: MapArrays, w: Any, p: Params, b: int) -> None:
    update_lights(m, w, p, b)
    for v in range(w.veh_lane.shape[1]):
        if w.act_valid[b, v]:
            vehicle_pose(m, w, b, v)
    for q in range(w.ped_walk.shape[1]):
        if w.act_valid[b, w.veh_lane.shape[1] + q]:
            pedestrian_pose(m, w, b, q)
    follow_tracks(w, b)
    project_ego(w, b)
    occupy_lanes(m, w, p, b)
    plan_path(m, w, p, b)
    ego_facts(m, w, p, b)
    note_approaching(m, w, b)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _move_ego(w: Any, p: Params, b: int, steer_cmd: float, accel_cmd: float) -> None:
    w.ego_x[b], w.ego_y[b], w.ego_yaw[b], w.ego_v[b], w.ego_steer[b], w.ego_accel[b] = bicycle(
        p.bicycle, w.ego_x[b], w.ego_y[b], w.ego_yaw[b], w.ego_v[b], w.ego_steer[b], steer_cmd, accel_cmd, p.dt)
