"""The codes and slot counts of the scene that every kernel shares."""

from __future__ import annotations

import numpy as np

# actor kinds
NONE, VEHICLE, PEDESTRIAN, STATIC = 0, 1, 2, 3
# light states (sim.embedded.traffic.LightState)
GREEN, YELLOW, RED = 0, 1, 2
# next-control kinds for the ego
LINE_NONE, LINE_LIGHT, LINE_STOP = 0, 1, 2
# infraction indices (sim.scene.records.INFRACTIONS order)
INF_PEDESTRIAN, INF_VEHICLE, INF_STATIC, INF_RED, INF_STOP, INF_EMERGENCY, INF_MISSED_STOP = 0, 1, 2, 3, 4, 6, 12
# route status codes (sim.scene.records.STATUSES order; -1 running)
RUNNING, COMPLETED, DEVIATION, BLOCKED, TIMEOUT = -1, 0, 1, 2, 3
#: Events a scenario may record in one step.
MAX_EVENTS = 8
#: Collision locations remembered per scenario.
MAX_REGISTERED = 8
#: Lanes one located point may occupy.
MAX_LOCATED = 4
#: Checkpoints of the minimum-speed test along a route (Leaderboard 2.0 route scenarios use 4).
MIN_SPEED_SECTIONS = 4
# vehicle flags (Vehicles.flags)
HIDDEN, IGNORE_LIGHTS, IGNORE_PRIORITY, FOLLOW_ROUTE, CUT_IN, EMERGENCY, KEEP_OFFSET, NO_CURB_YIELD = \
    1, 2, 4, 8, 16, 32, 64, 128
INF = np.inf
