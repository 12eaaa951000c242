"""The privileged expert: a rule-based driver that reads the true world state.

It follows the route with pure pursuit, drives at the lane's speed limit and slows down in time for curves, lower
limits and stop points ahead, follows whatever occupies its route ahead (vehicles, pedestrians, obstacles) with the
Intelligent Driver Model, stops for red lights (and yellow ones it can stop for), comes to a full stop at stop
signs, and waits while the junction ahead is not clear or someone who stopped earlier goes first (creeping in past
vehicles that stand in the junction when they and the expert wait for each other), yields to vehicles that ignore
their light or priority (or have the right of way over its turn), slows down to pass an oncoming vehicle close by,
passes obstacles blocking its lane on
the left once that corridor is clear, keeps right of oncoming vehicles that invade its lane, pulls over for
emergency vehicles, stops at the curb for the robotaxi mission's pick-ups and drop-offs, and pulls in from the curb
through a gap in the traffic. The world computes the privileged facts (leader on the route, the next stop line and
whether to stop there, the offset that clears obstacles) in its step. It labels training data and sets the bar for
learned drivers.
:class:`NaiveDriver` is the control case for scenario events: it keeps its speed whatever happens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sim.embedded.dynamics import idm_acceleration
from sim.geometry import interpolate_along, to_local_frame, wrap_angle
from sim.scene.codes import LINE_LIGHT, YELLOW
from sim.scene.kernels.planner import NUDGE_RATE
from sim.scene.observation import Observation
from sim.scene.params import IdmParams
from sim.scene.source import SceneSource


@dataclass(frozen=True)
class ExpertParams:
    """Tuning of the expert.

    :param max_lateral_accel_mps2: bound on ``v^2 * curvature`` along the route ahead.
    :param brake_mps2: deceleration the expert plans with to slow down for curves, lower speed limits and stop
        points ahead (it brakes harder only when something forces it to).
    :param speed_horizon_m: how far ahead curvature and speed limits are looked at.
    :param lookahead_min_m: pure-pursuit look-ahead at standstill.
    :param lookahead_gain_s: look-ahead added per m/s of speed.
    :param stop_margin_m: where the front bumper stops before a stop line.
    :param yellow_brake_mps2: the expert stops for a yellow light whenever this deceleration (or less) stops it
        in time; closer, it drives on (a yellow light lasts a couple of seconds).
    :param passing_speed_mps: speed while moving sideways around an obstacle.
    :param pull_over_speed_mps: speed while pulling over for an emergency vehicle (it then stops).
    :param creep_speed_mps: speed while creeping into a junction past vehicles that stand there waiting for the
        ego (which waited for them: ``creep_lane``).
    :param oncoming_gap_m: passing an oncoming vehicle closer than this side to side, the expert slows down ...
    :param oncoming_speed_mps: ... to this speed plus ...
    :param oncoming_speed_per_m: ... this much per metre of gap.
    :param plan_steps: points of the intended future trajectory the expert emits, ...
    :param plan_dt_s: ... this far apart in time.
    :param idm: car following (the desired speed is the speed profile's).
    """

    max_lateral_accel_mps2: float = 3.0
    brake_mps2: float = 2.5
    speed_horizon_m: float = 50.0
    lookahead_min_m: float = 4.0
    lookahead_gain_s: float = 0.5
    stop_margin_m: float = 1.0
    yellow_brake_mps2: float = 5.0
    passing_speed_mps: float = 6.0
    pull_over_speed_mps: float = 3.0
    creep_speed_mps: float = 1.5
    oncoming_gap_m: float = 1.0
    oncoming_speed_mps: float = 1.5
    oncoming_speed_per_m: float = 5.0
    plan_steps: int = 8
    plan_dt_s: float = 0.5
    idm: IdmParams = IdmParams(max_accel_mps2=3.0, comfort_decel_mps2=3.0, min_gap_m=3.0, time_headway_s=1.2)


#: Spacing of the route samples whose curvature limits the speed.
_CURVE_STEP_M = 2.0
#: Below this distance to a speed limit point, the braking it needs is reckoned over this much time of driving
#: (a point reached, or nearly, is not worth an unbounded deceleration).
_BRAKE_REACTION_S = 0.5
#: Past a curbside stop, the expert still stops for it up to its tolerance less this (at least 1 m past).
_CURB_MARGIN_M = 0.5
#: Slower than this at the curb within a curbside stop's tolerance (less the margin), the expert stands there.
_CURB_STAND_MPS = 0.5


def pure_pursuit(world: SceneSource, lookahead_min_m: float, lookahead_gain_s: float,
                 offset_m: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """Steering commands ``(B,)`` in [-1, 1] that follow each route, aiming from the rear axle at the route point
    ``lookahead_min_m + lookahead_gain_s * speed`` past the ego's progress, shifted ``offset_m`` to the left."""
    ego, bicycle = world.ego, world.params.bicycle
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

    def __init__(self, world: SceneSource, speed_mps: float = 8.0) -> None:
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
    """Drives every ego of a backend (:class:`~sim.scene.source.SceneSource`) from its scene: the privileged facts.

    Longitudinally it follows a speed profile along the route: the lane's speed limit, and for every point ahead
    that must be passed slower (a curve at ``max_lateral_accel_mps2``, a lower speed limit, a stop point at 0) the
    speed from which ``brake_mps2`` gets there in time; it brakes along that profile and follows its leader with
    the IDM. The same control law rolls the intended trajectory forward (:attr:`plan_xy`)."""

    def __init__(self, world: SceneSource, params: ExpertParams = ExpertParams()) -> None:
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
        ego, bicycle = world.ego, world.params.bicycle
        sc = world.scene
        # around obstacles: aim where the sideways move will be at the look-ahead point
        lookahead = p.lookahead_min_m + p.lookahead_gain_s * ego.speed_mps
        ahead = np.clip(sc.facts.nudge_m - sc.facts.offset_m, -NUDGE_RATE * lookahead, NUDGE_RATE * lookahead)
        steer = pure_pursuit(world, p.lookahead_min_m, p.lookahead_gain_s, sc.facts.offset_m + ahead)
        limit_s, limit_v, stop_s = self._speed_limits()
        speed = ego.speed_mps.astype(np.float64)
        accel = self._accel(speed, np.zeros_like(speed), sc.facts.leader_gap_m, sc.facts.leader_speed_mps, limit_s,
                            limit_v,
                            stop_s)
        self._plan(speed, limit_s, limit_v, stop_s)
        accel_cmd = np.where(accel >= 0.0, accel / bicycle.max_accel_mps2, accel / bicycle.max_brake_mps2)
        actions: NDArray[np.float32] = np.clip(np.stack([steer, accel_cmd], axis=-1), -1.0, 1.0).astype(np.float32)
        return actions

    def _speed_limits(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Points ahead on the route (distance from the ego's centre ``(B, M)``) that the ego must pass no faster
        than a speed ``(B, M)``: the route's curvature, the speed limits of the lanes it enters, the present limit,
        the passing speed while moving around an obstacle (or pulling over for an emergency vehicle), and the stop
        point (also returned alone, ``(B,)``, ``inf`` when there is none): the front bumper ``stop_margin_m``
        before the line it must stop at (or a yellow light it can stop for), the centre on a curbside stop of the
        mission; here, pulled over for an emergency vehicle or waiting for a gap to pull in from the curb."""
        world, p, sc = self.world, self.params, self.world.scene
        batch = world.batch_size
        # curvature: the turn over each stretch of _CURVE_STEP_M limits the speed from its start on
        offsets = np.arange(0.0, p.speed_horizon_m + _CURVE_STEP_M, _CURVE_STEP_M)
        _, headings = interpolate_along(world.route_xy, world.route_s, world.progress_s[:, None] + offsets[None, :])
        curvature = np.abs(wrap_angle(np.diff(headings, axis=1))) / _CURVE_STEP_M
        curve_v = np.sqrt(p.max_lateral_accel_mps2 / np.maximum(curvature, 1e-4))
        curve_s = np.broadcast_to(offsets[:-1], curve_v.shape)
        # the lanes the route enters ahead
        piece_s = sc.route.piece_offset_m - world.progress_s[:, None]
        entered = (np.arange(sc.route.piece_lane.shape[1]) < sc.route.piece_n[:, None]) & (piece_s > 0.0)
        piece_v = np.where(entered, world.arrays.lane_speed[sc.route.piece_lane], np.inf)
        # here: the present limit, and the passing speed while moving sideways
        sideways = (np.abs(sc.facts.offset_m) > 0.2) | (sc.facts.nudge_need_m != 0.0)
        here_v = np.minimum(sc.facts.speed_limit_mps, np.where(sideways, p.passing_speed_mps, np.inf))
        here_v = np.where(sc.facts.creep_lane >= 0, np.minimum(here_v, p.creep_speed_mps), here_v)
        # an oncoming vehicle passing close: slow down to meet it at a speed for the gap
        close = sc.facts.oncoming_gap_m < p.oncoming_gap_m
        ego_v = world.ego.speed_mps.astype(np.float64)
        meet_s = np.where(close, sc.facts.oncoming_dist_m, 0.0) * ego_v \
            / np.maximum(ego_v + sc.facts.oncoming_speed_mps, 0.1)
        gap = np.where(close, sc.facts.oncoming_gap_m, 0.0)
        meet_v = np.where(close, p.oncoming_speed_mps + p.oncoming_speed_per_m * gap, np.inf)
        half = 0.5 * world.params.ego_length
        front = sc.facts.stop_dist_m - half
        # (standing with the front past the line, its centre not yet: it stays)
        stop_s = np.where(sc.facts.must_stop, np.maximum(front - p.stop_margin_m, 0.0), np.inf)
        line_s = sc.facts.line_dist_m - half - p.stop_margin_m
        yellow = (sc.facts.line_kind == LINE_LIGHT) & (sc.facts.line_state == YELLOW)
        stop_for_yellow = yellow & (world.ego.speed_mps**2 < 2.0 * p.yellow_brake_mps2 * line_s)
        stop_s = np.where(stop_for_yellow, np.minimum(stop_s, line_s), stop_s)
        # an emergency vehicle behind: pull over (the world's ego_nudge) slowly, then stand until it has passed
        straight = np.abs(wrap_angle(world.ego.yaw_rad - headings[:, 0])) < 0.05  # (offsets[0] = 0: here)
        pulled_over = sc.facts.yield_emergency & (world.lateral_m < sc.facts.nudge_m + 0.15) & straight
        here_v = np.where(sc.facts.yield_emergency, np.minimum(here_v, p.pull_over_speed_mps), here_v)
        # a curbside stop of the mission: stand with the centre on it; off the lane at the curb, wait to pull in
        # (a car at the curb that got past the stop, as a learner may, still stops within the stop's tolerance)
        to_curb = sc.facts.stop_target_m - world.progress_s
        rows, k = np.arange(batch), np.minimum(sc.mission.stop_next, sc.mission.stop_tol_m.shape[1] - 1)
        reach = sc.mission.stop_tol_m[rows, k] - _CURB_MARGIN_M
        at_curb = world.lateral_m <= sc.mission.stop_lat_m[rows, k]
        within = to_curb > np.where(at_curb, -np.maximum(reach, 1.0), -1.0)
        stop_s = np.minimum(stop_s, np.where(within, np.maximum(to_curb, 0.0), np.inf))
        # (and one that came to a stop at the curb short of it, within its tolerance, stands there: the dwell
        # counts where it stands, and creeping up to the centre would teach a learner to drive on at the stop)
        short = at_curb & (np.abs(to_curb) <= reach) & (world.ego.speed_mps < _CURB_STAND_MPS)
        stop_s = np.where(short, 0.0, stop_s)
        stop_s = np.where(pulled_over | sc.facts.merge_wait, 0.0, stop_s)
        limit_s = np.concatenate([curve_s, piece_s, np.zeros((batch, 1)), meet_s[:, None], stop_s[:, None]], axis=1)
        limit_v = np.concatenate([curve_v, piece_v, here_v[:, None], meet_v[:, None], np.zeros((batch, 1))], axis=1)
        return limit_s, limit_v, stop_s

    def _accel(self, speed: NDArray[np.float64], travelled: NDArray[np.float64], gap: NDArray[np.float64],
               leader_speed: NDArray[np.float64], limit_s: NDArray[np.float64], limit_v: NDArray[np.float64],
               stop_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """Acceleration ``(B,)`` at ``speed`` after driving ``travelled`` metres on from where the speed limits
        (:meth:`_speed_limits`) were taken, ``gap`` metres (bumper to bumper) behind a leader at ``leader_speed``:
        the IDM towards the speed profile's speed here; braking along the profile once above it; a full brake
        standing (or all but) at the stop point."""
        p, bicycle = self.params, self.world.params.bicycle
        distance = limit_s - travelled[:, None]
        reach = np.maximum(distance, 0.0)
        profile = np.sqrt(limit_v**2 + 2.0 * p.brake_mps2 * reach).min(axis=1, initial=np.inf)
        accel = idm_acceleration(speed, np.minimum(profile, bicycle.max_speed_mps), gap, leader_speed, p.idm)
        # above the profile: the deceleration that meets the tightest limit ahead
        room = np.maximum(distance, _BRAKE_REACTION_S * speed[:, None])
        needed = np.where(distance > -1.0, (limit_v**2 - speed[:, None] ** 2) / (2.0 * np.maximum(room, 0.05)),
                          np.inf).min(axis=1, initial=np.inf)
        accel = np.where(speed >= profile, np.minimum(accel, needed), accel)
        # come to a clean stop at the line (a stop sign counts only below 0.1 m/s)
        hold = (stop_s - travelled < 0.5) & (speed < 1.0)
        accel = np.where(hold, -bicycle.max_brake_mps2, accel)
        return np.asarray(np.clip(accel, -bicycle.max_brake_mps2, bicycle.max_accel_mps2), dtype=np.float64)

    def _plan(self, speed: NDArray[np.float64], limit_s: NDArray[np.float64], limit_v: NDArray[np.float64],
              stop_s: NDArray[np.float64]) -> None:
        """Roll the control law forward (the leader keeping its speed) and lay the plan along the route, shifted as
        the expert moves around obstacles."""
        world, p = self.world, self.params
        ego, sc = world.ego, world.scene
        travelled = np.zeros((len(speed), p.plan_steps))
        distance = np.zeros_like(speed)
        for k in range(p.plan_steps):
            t = k * p.plan_dt_s
            gap = np.maximum(sc.facts.leader_gap_m + sc.facts.leader_speed_mps * t - distance, 0.01)
            accel = self._accel(speed, distance, gap, sc.facts.leader_speed_mps, limit_s, limit_v, stop_s)
            new_speed = np.clip(speed + accel * p.plan_dt_s, 0.0, None)
            distance = distance + 0.5 * (speed + new_speed) * p.plan_dt_s
            speed = new_speed
            self.plan_speed[:, k], travelled[:, k] = speed, distance
        shift = sc.facts.offset_m[:, None] + np.clip((sc.facts.nudge_m - sc.facts.offset_m)[:, None],
                                                     -NUDGE_RATE * travelled,
                                                 NUDGE_RATE * travelled)
        point, heading = interpolate_along(world.route_xy, world.route_s, world.progress_s[:, None] + travelled)
        xy = point + shift[..., None] * np.stack([-np.sin(heading), np.cos(heading)], axis=-1)
        ego_xy = np.stack([ego.x_m, ego.y_m], axis=-1)
        self.plan_xy[:] = to_local_frame(xy, ego_xy[:, None], ego.yaw_rad[:, None])
