"""A bad stretch of road where the ego's controls slip."""

from __future__ import annotations

import numpy as np

from sim.embedded.placement import Placement
from sim.embedded.staging.route_geometry import RouteGeometry, Slots, Stager, event_name
from sim.scenarios.events import ControlLoss

#: Where past the trigger the ego's controls slip (the Leaderboard's debris), and over how far either side of each.
SLIP_AT_M = (14.0, 48.0, 74.0)
SLIP_REACH_M = 2.0
#: How much the controls slip there (in the actions' units: steering and acceleration in [-1, 1]): a mean of either
#: sign and a spread, drawn once per place (the Leaderboard's, which draws its noise anew each tick).
STEER_SLIP, STEER_SPREAD = 0.055, 0.015
ACCEL_SLIP, ACCEL_SPREAD = 0.03, 0.01


def _stage_control_loss(placement: Placement, event: ControlLoss, geometry: RouteGeometry, slots: Slots) -> None:
    last = event.trigger_s_m + SLIP_AT_M[-1] + SLIP_REACH_M
    if not geometry.route.offsets[0] <= event.trigger_s_m or last > geometry.s[-1]:
        raise ValueError(f"{event_name(event)}: the slippery stretch {event.trigger_s_m:.1f}..{last:.1f} m does not "
                         f"fit on the route (0..{geometry.s[-1]:.1f} m)")
    rng = np.random.default_rng([int(placement.state.seed[placement.env]) % 2**32, round(event.trigger_s_m * 100)])
    for at in SLIP_AT_M:
        steer = float(rng.choice([-1.0, 1.0]) * rng.normal(STEER_SLIP, STEER_SPREAD))
        accel = float(rng.choice([-1.0, 1.0]) * rng.normal(ACCEL_SLIP, ACCEL_SPREAD))
        s = event.trigger_s_m + at
        placement.add_control_loss(s - SLIP_REACH_M, s + SLIP_REACH_M, steer=steer, accel=accel)


#: The stager of each event type this module stages.
STAGERS: dict[str, Stager] = {"ControlLoss": _stage_control_loss}
