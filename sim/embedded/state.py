"""The embedded world's own state, beside the scene it fills (:mod:`sim.scene.records`): what moves its traffic,
pedestrians, lights and recorded tracks, with a leading batch dimension ``B``.

Frames and units: map frame (right-handed, metres), seconds, radians; speeds in m/s.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from sim.embedded.config import WorldConfig
from sim.geometry import FloatArray


class Traffic(NamedTuple):
    """What moves the vehicle slots ``[0, V)`` besides what the scene shows of them, ``(B, V)``."""

    desired_mps: FloatArray  # the speed it would like to drive
    draws: NDArray[np.int64]  # random draws taken (route choices, respawns)
    pending: NDArray[np.bool_]  # an event armed for this vehicle, set off at trigger_m (the ego's route progress)
    trigger_m: FloatArray
    meet_s_m: FloatArray  # when revealed: where on its lanes (from the first's start) it meets the ego, or -1 ...
    meet_route_m: FloatArray  # ... and where that is on the ego's route
    brake_decel_mps2: FloatArray  # set off: brake this hard (0: not at all) ...
    brake_hold_s: FloatArray  # ... and stand this long
    brake_until_s: FloatArray
    reveal_at_s: FloatArray  # a hidden vehicle set off before its lanes begin appears at this time
    expire_m: FloatArray  # an event's vehicle leaves when the ego's route progress reaches this


class Pedestrians(NamedTuple):
    """The pedestrian slots' walks, ``(B, P)``."""

    walk: NDArray[np.int64]  # the walkway it is on (-1: an event's own path) ...
    next: NDArray[np.int64]  # ... and the one it takes next
    s_m: FloatArray  # how far along
    speed_mps: FloatArray
    start_s: FloatArray  # starts walking at this time
    draws: NDArray[np.int64]
    path_x_m: FloatArray  # (B, P, PED_PATH_POINTS) an event's own path ...
    path_y_m: FloatArray
    path_s_m: FloatArray
    path_n: NDArray[np.int64]
    pending: NDArray[np.bool_]  # an event armed for this pedestrian, set off at trigger_m (route progress)
    careless: NDArray[np.bool_]  # walks on whoever comes (an event's hazard), instead of stopping for vehicles
    trigger_m: FloatArray
    meet_route_m: FloatArray  # where on the ego's route it meets the ego ...
    meet_walk_m: FloatArray  # ... after walking this far


class LightProgram(NamedTuple):
    """The signal programs: each junction's phase offset, and a scenario event's held light states."""

    offset_s: FloatArray  # (B, J)
    force: NDArray[np.int8]  # (B, G) an event's light states (-1: the program's) ...
    force_pending: NDArray[np.bool_]  # (B,) ... set when the route progress reaches force_trigger_m ...
    force_trigger_m: FloatArray
    force_hold_s: FloatArray  # ... for this long
    force_until_s: FloatArray
    then: NDArray[np.int8]  # (B, G) the states held next (-1: the program's) ...
    then_hold_s: FloatArray  # (B,) ... for this long after force_until_s


class Tracks(NamedTuple):
    """Recorded tracks the static slots may follow (a non-reactive log replay), ``(B, S)`` / ``(B, S, T)``."""

    n: NDArray[np.int64]  # samples of slot j's track (0: none, the slot stands) ...
    i: NDArray[np.int64]  # ... the sample at or before the time last looked up ...
    t_s: FloatArray  # ... times (from the scenario's start), increasing ...
    x_m: FloatArray  # ... and poses and speeds
    y_m: FloatArray
    yaw_rad: FloatArray
    speed_mps: FloatArray


class ControlLoss(NamedTuple):
    """Stretches of the ego's route where its controls slip (a scenario event's bad road), ``(B, CONTROL_LOSS_ZONES)``:
    while the ego's route progress is in ``[start_m, end_m)``, ``steer`` and ``accel`` are added to its commands."""

    start_m: FloatArray
    end_m: FloatArray
    steer: FloatArray
    accel: FloatArray


CONTROL_LOSS_ZONES = 3


class State(NamedTuple):
    """What the embedded world moves things by, beside the scene it shows (see :mod:`sim.embedded.kernels`)."""

    seed: NDArray[np.uint64]  # (B,) each scenario's seed
    traffic: Traffic
    pedestrians: Pedestrians
    program: LightProgram
    tracks: Tracks
    control_loss: ControlLoss


PED_PATH_POINTS = 8


def allocate(b: int, junctions: int, lights: int, config: WorldConfig) -> State:
    v, p, s = config.max_vehicles, config.max_pedestrians, config.max_statics
    t = max(config.track_points, 1)

    def f(*shape: int, fill: float = 0.0) -> FloatArray:
        return np.full(shape, fill, dtype=np.float64)

    def i(*shape: int, fill: int = 0) -> NDArray[np.int64]:
        return np.full(shape, fill, dtype=np.int64)

    def z(*shape: int) -> NDArray[np.bool_]:
        return np.zeros(shape, dtype=bool)

    return State(
        seed=np.zeros(b, dtype=np.uint64),
        traffic=Traffic(desired_mps=f(b, v), draws=i(b, v), pending=z(b, v), trigger_m=f(b, v),
                        meet_s_m=f(b, v, fill=-1.0), meet_route_m=f(b, v), brake_decel_mps2=f(b, v),
                        brake_hold_s=f(b, v), brake_until_s=f(b, v, fill=-np.inf), reveal_at_s=f(b, v, fill=np.inf),
                        expire_m=f(b, v, fill=np.inf)),
        pedestrians=Pedestrians(walk=i(b, p, fill=-1), next=i(b, p, fill=-1), s_m=f(b, p), speed_mps=f(b, p),
                                start_s=f(b, p), draws=i(b, p), path_x_m=f(b, p, PED_PATH_POINTS),
                                path_y_m=f(b, p, PED_PATH_POINTS), path_s_m=f(b, p, PED_PATH_POINTS),
                                path_n=i(b, p, fill=2), pending=z(b, p), careless=z(b, p), trigger_m=f(b, p),
                                meet_route_m=f(b, p), meet_walk_m=f(b, p)),
        program=LightProgram(offset_s=f(b, max(junctions, 1)), force=np.full((b, lights), -1, dtype=np.int8),
                             force_pending=z(b), force_trigger_m=f(b), force_hold_s=f(b),
                             force_until_s=f(b, fill=-np.inf), then=np.full((b, lights), -1, dtype=np.int8),
                             then_hold_s=f(b)),
        tracks=Tracks(n=i(b, s), i=i(b, s), t_s=f(b, s, t), x_m=f(b, s, t), y_m=f(b, s, t), yaw_rad=f(b, s, t),
                      speed_mps=f(b, s, t)),
        control_loss=ControlLoss(start_m=f(b, CONTROL_LOSS_ZONES, fill=np.inf),
                                 end_m=f(b, CONTROL_LOSS_ZONES, fill=np.inf), steer=f(b, CONTROL_LOSS_ZONES),
                                 accel=f(b, CONTROL_LOSS_ZONES)),
    )
