"""The codes, slot counts and parameters every kernel shares."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.embedded.dynamics import BicycleParams, IdmParams

# actor kinds
NONE, VEHICLE, PEDESTRIAN, STATIC = 0, 1, 2, 3
# light states (sim.embedded.traffic.LightState)
GREEN, YELLOW, RED = 0, 1, 2
# next-control kinds for the ego
LINE_NONE, LINE_LIGHT, LINE_STOP = 0, 1, 2
# infraction indices (sim.embedded.world.INFRACTIONS order)
INF_PEDESTRIAN, INF_VEHICLE, INF_STATIC, INF_RED, INF_STOP, INF_EMERGENCY, INF_MISSED_STOP = 0, 1, 2, 3, 4, 6, 12
# route status codes (sim.embedded.world.STATUSES order; -1 running)
RUNNING, COMPLETED, DEVIATION, BLOCKED, TIMEOUT = -1, 0, 1, 2, 3
#: Events a scenario may record in one step.
MAX_EVENTS = 8
#: Collision locations remembered per scenario.
MAX_REGISTERED = 8
#: Lanes one located point may occupy.
MAX_LOCATED = 4
#: Checkpoints of the minimum-speed test along a route (Leaderboard 2.0 route scenarios use 4).
MIN_SPEED_SECTIONS = 4
# scripted-vehicle flags (State.veh_flags)
HIDDEN, IGNORE_LIGHTS, IGNORE_PRIORITY, FOLLOW_ROUTE, CUT_IN, EMERGENCY, KEEP_OFFSET, NO_CURB_YIELD = \
    1, 2, 4, 8, 16, 32, 64, 128
INF = np.inf


class Params(NamedTuple):
    """Scalar parameters of a world (see :class:`sim.embedded.world.WorldConfig`)."""

    dt: float
    ego_length: float
    ego_width: float
    bicycle: BicycleParams
    idm: IdmParams
    route_deviation: float
    blocked_s: float
    completion_tol: float
    green_s: float
    yellow_s: float
    all_red_s: float
    horizon: float
    collision_time_s: float
    collision_area_m: float
    collision_forget_m: float
    stop_speed: float
    stop_distance: float
    min_speed_radius: float
