"""The privileged expert: a rule-based driver that reads the true world state.

It follows the route with pure pursuit, keeps its speed below the speed limit and what the route's curvature
allows, follows whatever occupies its route ahead (vehicles, pedestrians, obstacles) with the Intelligent Driver
Model, stops for red lights (and yellow ones it can stop for), comes to a full stop at stop signs, and waits while
the junction ahead is not clear or someone who stopped earlier goes first, yields to vehicles that ignore their
light or priority, and passes obstacles blocking its lane on the left once that corridor is clear. The world
computes the privileged facts (leader on the route, the next stop line and whether to stop there, the offset
that clears obstacles) in its step. It labels training data and sets the bar for learned drivers.
:class:`NaiveDriver` is the control case for scenario events: it keeps its speed whatever happens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sim.embedded.dynamics import IdmParams, idm_acceleration
from sim.embedded.kernels import NUDGE_RATE
from sim.embedded.observation import Observation
from sim.embedded.world import World
from sim.geometry import interpolate_along, to_local_frame, wrap_angle


@dataclass(frozen=True)
class ExpertParams:
    """Tuning of the expert.

    :param cruise_speed_mps: speed on a free straight road (capped by the lane's speed limit).
    :param max_lateral_accel_mps2: bound on ``v^2 * curvature`` for the route ahead.
    :param lookahead_min_m: pure-pursuit look-ahead at standstill.
    :param lookahead_gain_s: look-ahead added per m/s of speed.
    :param curvature_horizon_m: how far ahead curvature limits the speed.
    :param stop_margin_m: where the front bumper stops before a stop line.
    :param passing_speed_mps: speed while moving sideways around an obstacle.
    :param pull_over_speed_mps: speed while pulling over for an emergency vehicle (it then stops).
    :param plan_steps: points of the intended future trajectory the expert emits, ...
    :param plan_dt_s: ... this far apart in time.
    """

    cruise_speed_mps: float = 9.0
    max_lateral_accel_mps2: float = 2.0
    lookahead_min_m: float = 4.0
    lookahead_gain_s: float = 0.5
    curvature_horizon_m: float = 20.0
    stop_margin_m: float = 1.0
    passing_speed_mps: float = 6.0
    pull_over_speed_mps: float = 3.0
    plan_steps: int = 8
    plan_dt_s: float = 0.5
    idm: IdmParams = IdmParams(max_accel_mps2=2.5, comfort_decel_mps2=3.0, min_gap_m=3.0, time_headway_s=1.2)


def pure_pursuit(world: World, lookahead_min_m: float, lookahead_gain_s: float,
                 offset_m: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """Steering commands ``(B,)`` in [-1, 1] that follow each route, aiming from the rear axle at the route point
    ``lookahead_min_m + lookahead_gain_s * speed`` past the ego's progress, shifted ``offset_m`` to the left."""
    ego, bicycle = world.ego, world.config.bicycle
    ego_xy = np.stack([ego.x_m, ego.y_m], axis=-1)
    heading = np.stack([np.cos(ego.yaw_rad), np.sin(ego.yaw_rad)], axis=-1)
    rear_xy = ego_xy - bicycle.rear_to_center_m * heading
    lookahead = lookahead_min_m + lookahead_gain_s * ego.speed_mps
    target, along = interpolate_along(world.route_xy, world.route_s, (world.progress_s + lookahead)[:, None])
    target = target[:, 0]
    if offset_m is not None:
        target = target + offset_m[:, None] * np.stack([-np.sin(along[:, 0]), np.cos(along[:, 0])], axis=-1)
    local = to_local_frame(target, rear_xy, ego.yaw_rad)
    distance2 = np.maximum(np.sum(local**2, axis=-1), 1.0)
    curvature = 2.0 * local[:, 1] / distance2
    steer: NDArray[np.float64] = np.clip(np.arctan(curvature * bicycle.wheelbase_m) / bicycle.max_steer_rad, -1, 1)
    return steer


class NaiveDriver:
    """Follows the route at a constant speed and nothing else: no braking for anyone, no lights, no yielding.

    The control case for scenario events: whatever an event stages, this driver runs into it."""

    def __init__(self, world: World, speed_mps: float = 8.0) -> None:
        self.world = world
        self.speed_mps = speed_mps

    def reset(self, done: NDArray[np.bool_]) -> None:
        """No memory."""

    def act(self, observation: Observation | None = None) -> NDArray[np.float32]:
        """Actions ``(B, 2)``: steer along the route, accelerate or brake gently towards the set speed."""
        world = self.world
        steer = pure_pursuit(world, 4.0, 0.5)
        error = self.speed_mps - world.ego.speed_mps
        accel = np.clip(error, -1.0, 1.0) * 0.5
        actions: NDArray[np.float32] = np.stack([steer, accel], axis=-1).astype(np.float32)
        return actions


class ExpertDriver:
    """Drives every ego of a :class:`~sim.embedded.world.World` from its privileged state."""

    def __init__(self, world: World, params: ExpertParams = ExpertParams()) -> None:
        self.world = world
        self.params = params
        batch, steps = world.batch_size, params.plan_steps
        #: The intended future trajectory from the last :meth:`act`: ``(B, K, 2)`` positions in the ego frame
        #: (x forward, y left, metres) ``plan_dt_s`` apart, and the planned speeds ``(B, K)``.
        self.plan_xy: NDArray[np.float64] = np.zeros((batch, steps, 2))
        self.plan_speed: NDArray[np.float64] = np.zeros((batch, steps))

    def reset(self, done: NDArray[np.bool_]) -> None:
        """The expert has no memory."""

    def act(self, observation: Observation | None = None) -> NDArray[np.float32]:
        """Actions ``(B, 2)`` for the world's current state (the observation is not needed)."""
        world, p = self.world, self.params
        ego, cfg = world.ego, world.config
        bicycle = cfg.bicycle
        st = world.state
        # around obstacles: aim where the sideways move will be at the look-ahead point
        lookahead = p.lookahead_min_m + p.lookahead_gain_s * ego.speed_mps
        ahead = np.clip(st.ego_nudge - st.ego_offset, -NUDGE_RATE * lookahead, NUDGE_RATE * lookahead)
        steer = pure_pursuit(world, p.lookahead_min_m, p.lookahead_gain_s, st.ego_offset + ahead)
        # longitudinal: speed limit and curvature ahead, IDM on the leader and on a stop line it must stop at
        samples = world.progress_s[:, None] + np.arange(0.0, p.curvature_horizon_m, 2.0)[None, :]
        _, headings = interpolate_along(world.route_xy, world.route_s, samples)
        turn = np.abs(wrap_angle(np.diff(headings, axis=1))) / 2.0
        curve_speed = np.sqrt(p.max_lateral_accel_mps2 / np.maximum(turn.max(axis=1), 1e-4))
        desired = np.minimum(np.minimum(p.cruise_speed_mps, st.ego_speed_limit), curve_speed)
        sideways = (np.abs(st.ego_offset) > 0.2) | (st.ego_nudge_need != 0.0)
        desired = np.where(sideways, np.minimum(desired, p.passing_speed_mps), desired)
        # an emergency vehicle behind: pull over (the world's ego_nudge), then stand until it has passed
        _, here = interpolate_along(world.route_xy, world.route_s, world.progress_s[:, None])
        straight = np.abs(wrap_angle(ego.yaw_rad - here[:, 0])) < 0.05
        pulled_over = (world.lateral_m < st.ego_nudge + 0.15) & straight
        desired = np.where(st.ego_yield_emg, np.where(pulled_over, 0.0, p.pull_over_speed_mps), desired)
        front = st.ego_stop_dist - 0.5 * cfg.ego_length_m
        stop_gap = np.where(st.ego_must_stop & (front > -1.0), np.maximum(front - p.stop_margin_m, 0.0)
                            + p.idm.min_gap_m, np.inf)
        # a curbside stop of the mission: stop with the centre on it; off the lane at the curb, wait to pull in
        to_curb = st.ego_stop_target - world.progress_s
        stop_gap = np.minimum(stop_gap, np.where(to_curb > -1.0, np.maximum(to_curb, 0.0) + p.idm.min_gap_m, np.inf))
        desired = np.where(st.ego_merge_wait, 0.0, desired)
        use_stop = stop_gap < st.ego_leader_gap
        accel = idm_acceleration(ego.speed_mps, desired, np.where(use_stop, stop_gap, st.ego_leader_gap),
                                 np.where(use_stop, 0.0, st.ego_leader_speed), p.idm)
        # come to a clean stop at the line (a stop sign counts only below 0.1 m/s)
        hold = use_stop & (((front - p.stop_margin_m < 0.5) & st.ego_must_stop) | (np.abs(to_curb) < 0.5)) \
            & (ego.speed_mps < 1.0)
        hold |= st.ego_merge_wait & (ego.speed_mps < 1.0)
        accel = np.where(hold, -bicycle.max_brake_mps2, accel)
        self._plan(desired, np.where(use_stop, stop_gap, st.ego_leader_gap),
                   np.where(use_stop, 0.0, st.ego_leader_speed), hold)
        accel_cmd = np.where(accel >= 0.0, accel / bicycle.max_accel_mps2, accel / bicycle.max_brake_mps2)
        actions: NDArray[np.float32] = np.clip(np.stack([steer, accel_cmd], axis=-1), -1.0, 1.0).astype(np.float32)
        return actions

    def _plan(self, desired: NDArray[np.float64], gap: NDArray[np.float64], leader_speed: NDArray[np.float64],
              hold: NDArray[np.bool_]) -> None:
        """Roll the longitudinal plan forward (IDM against the leader or stop point, the leader keeping its speed)
        and lay it along the route, shifted as the expert moves around obstacles."""
        world, p = self.world, self.params
        ego, st, bicycle = world.ego, world.state, world.config.bicycle
        speed = ego.speed_mps.astype(np.float64)
        travelled = np.zeros((len(speed), p.plan_steps))
        distance = np.zeros_like(speed)
        for k in range(p.plan_steps):
            t = (k + 1) * p.plan_dt_s
            room = gap + leader_speed * t - distance
            accel = idm_acceleration(speed, desired, np.maximum(room, 0.01), leader_speed, p.idm)
            accel = np.where(hold, -bicycle.max_brake_mps2, np.clip(accel, -bicycle.max_brake_mps2,
                                                                    bicycle.max_accel_mps2))
            new_speed = np.clip(speed + accel * p.plan_dt_s, 0.0, None)
            distance = distance + 0.5 * (speed + new_speed) * p.plan_dt_s
            speed = new_speed
            self.plan_speed[:, k], travelled[:, k] = speed, distance
        shift = st.ego_offset[:, None] + np.clip((st.ego_nudge - st.ego_offset)[:, None], -NUDGE_RATE * travelled,
                                                 NUDGE_RATE * travelled)
        point, heading = interpolate_along(world.route_xy, world.route_s, world.progress_s[:, None] + travelled)
        xy = point + shift[..., None] * np.stack([-np.sin(heading), np.cos(heading)], axis=-1)
        ego_xy = np.stack([ego.x_m, ego.y_m], axis=-1)
        self.plan_xy[:] = to_local_frame(xy, ego_xy[:, None], ego.yaw_rad[:, None])
