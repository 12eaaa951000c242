"""Trajectory imitation (as TCP / TransFuser, small): the shared observation encoder predicts the ego's next K
waypoints in the ego frame and a target speed, and a controller turns them into ``[steer, accel]``; an auxiliary
direct control head predicts the action too and may drive instead.

Frames and units: waypoints are positions of the ego's reference point (the box centre) ``waypoint_dt_s``,
``2 * waypoint_dt_s``, ... ahead in time, in the ego frame at the observation (x forward, y left, metres); the target
speed (m/s) is the speed ``waypoint_dt_s`` ahead.

Controller: lateral pure pursuit from the rear axle at the point of the predicted path (the origin, then the
waypoints) ``lookahead_min_m + lookahead_gain_s * speed`` along it, or (``steering="route"``) the Stanley law along
the route the state vector holds, shifted by its planned offset (:func:`route_steer`; the network then sets the
speed alone); longitudinal P control that reaches the target
speed in ``waypoint_dt_s`` (``accel = (target - speed) / waypoint_dt_s``), braking fully below ``stop_speed_mps`` or,
slowing down, when the predicted path is shorter than ``stop_path_m``; and a safety brake on what the state vector
perceives (as InterFuser's safety controller): full brake while the actor in the ego's path, or a stop line,
junction entry or curbside stop the ego must stop at (:func:`safety_leader`), is nearer than the ego can close
up on it braking at ``safety_decel_mps2``, plus ``safety_margin_m``. The network's regressed speed under-reacts to
an actor that appears close ahead (a pedestrian stepping out): states the expert, braking at once, seldom shows it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from policies.bc import torch_inputs
from policies.checkpoint import write_checkpoint
from policies.encoder import EncoderConfig, ObservationEncoder
from sim.geometry import cumulative_length, interpolate_along, project_to_polylines
from sim.scene.kernels.planner import NUDGE_RATE
from sim.scene.observation import (
    DISTANCE_SCALE_M,
    OFFSET_SCALE_M,
    ROUTE_LOOKAHEAD_M,
    ROUTE_SCALE_M,
    SPEED_SCALE_MPS,
    Feature,
    Observation,
)
from sim.scene.params import BicycleParams

ControlMode = Literal["controller", "head", "blend"]
Steering = Literal["waypoints", "route"]
#: Route steering needs this much of the route ahead in the state (else it steers along the waypoints) ...
_ROUTE_STEER_MIN_M = 5.0
#: ... and takes the route's heading over a chord this long, on the route extended straight this far at both ends.
_ROUTE_CHORD_M = 2.0
_ROUTE_EXTEND_M = 50.0
#: The safety brake holds the ego at a curbside stop (:func:`_curb_hold`) at most this far short of it ...
_CURB_HOLD_M = 1.0
#: ... and no longer once it is this far past it (the stops' tolerance is 2 m) ...
_CURB_PAST_M = 1.5
#: ... with its centre within this of the stop's offset towards the curb.
_CURB_AT_M = 0.2


@dataclass(frozen=True)
class WaypointNetConfig:
    """Architecture of :class:`WaypointNet`.

    :param bev_channels: BEV channels ``C``.
    :param bev_size_px: BEV height and width.
    :param state_size: length of the state vector.
    :param width: channels of the encoder's first convolution.
    :param hidden: width of the encoder's BEV projection and of the heads.
    :param waypoints: ``K``, future positions predicted.
    :param waypoint_dt_s: time between them (the first is this far ahead).
    """

    bev_channels: int
    bev_size_px: int
    state_size: int
    width: int = 16
    hidden: int = 128
    waypoints: int = 4
    waypoint_dt_s: float = 0.5

    def encoder(self) -> EncoderConfig:
        return EncoderConfig(self.bev_channels, self.bev_size_px, self.state_size, self.width, self.hidden)


class Prediction(NamedTuple):
    """Outputs of :class:`WaypointNet` for a batch: ``waypoints (B, K, 2)`` metres in the ego frame,
    ``speed (B,)`` m/s, ``control (B, 2)`` in [-1, 1]."""

    waypoints: torch.Tensor
    speed: torch.Tensor
    control: torch.Tensor


class WaypointNet(nn.Module):
    """``(bev uint8 (B, C, H, W), state float (B, S))`` -> :class:`Prediction`."""

    def __init__(self, config: WaypointNetConfig) -> None:
        super().__init__()
        self.config = config
        features = config.encoder().features
        self.encoder = ObservationEncoder(config.encoder())
        self.trunk = nn.Sequential(nn.Linear(features, config.hidden), nn.ReLU())
        self.waypoint_head = nn.Linear(config.hidden, 2 * config.waypoints)
        self.speed_head = nn.Linear(config.hidden, 1)
        self.control_head = nn.Sequential(nn.Linear(config.hidden, 2), nn.Tanh())

    def forward(self, bev: torch.Tensor, state: torch.Tensor) -> Prediction:
        hidden = self.trunk(self.encoder(bev, state))
        # waypoints as steps from one to the next: a stopped car predicts all zeros
        steps = self.waypoint_head(hidden).view(-1, self.config.waypoints, 2)
        return Prediction(torch.cumsum(steps, dim=1), self.speed_head(hidden)[:, 0], self.control_head(hidden))


@dataclass(frozen=True)
class ControllerParams:
    """Tuning of the waypoint controller (see the module docstring).

    :param lookahead_min_m: pure-pursuit look-ahead at standstill.
    :param lookahead_gain_s: look-ahead added per m/s.
    :param stop_speed_mps: a target speed below this brakes fully.
    :param stop_path_m: so does a predicted path (to the last waypoint) shorter than this while the car moves
        above ``stop_speed_mps`` and the target speed is not above its speed: the waypoints of a car about to stand
        bunch up, where the regressed target speed tends to stay a little above zero and the car would creep (as
        TransFuser's controller brakes on the waypoints' spacing; 0: off).
    :param safety_decel_mps2: the safety brake acts while the ego could not stop short of the actor in its path,
        or of a line or junction entry it must stop at (closing speed^2 / 2 / this, plus ``safety_margin_m``),
        braking this hard (0: off).
    :param safety_margin_m: the room it keeps.
    :param mode: ``controller`` (waypoints and speed), ``head`` (the direct control head), ``blend`` (their mean);
        the safety brake acts on ``controller`` and ``blend``.
    :param steering: what the controller steers along: ``waypoints`` (pure pursuit on the predicted path) or
        ``route`` (:func:`route_steer`: the route in the state vector, shifted by its planned offset; the network
        then sets the speed alone).
    :param route_gain: ``route`` steering: Stanley's cross-track gain ...
    :param route_soft_mps: ... its softening speed ...
    :param route_preview_s: ... how far ahead (in time at the present speed) the route's heading is taken ...
    :param route_max_approach_rad: ... and the largest angle at which it steers back to the path.
    :param bicycle: the vehicle (wheelbase, steering range, acceleration limits).
    """

    lookahead_min_m: float = 4.0
    lookahead_gain_s: float = 0.5
    stop_speed_mps: float = 0.3
    stop_path_m: float = 3.0
    safety_decel_mps2: float = 4.0
    safety_margin_m: float = 2.0
    mode: ControlMode = "controller"
    steering: Steering = "waypoints"
    route_gain: float = 3.0
    route_soft_mps: float = 1.0
    route_preview_s: float = 0.1
    route_max_approach_rad: float = 0.35
    bicycle: BicycleParams = BicycleParams()


def control(waypoints: NDArray[np.float64], target_speed_mps: NDArray[np.float64], speed_mps: NDArray[np.float64],
            waypoint_dt_s: float, params: ControllerParams = ControllerParams(),
            leader: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
            steer: NDArray[np.float64] | None = None) -> NDArray[np.float32]:
    """``[steer, accel]`` ``(B, 2)`` in [-1, 1] that follow ``waypoints (B, K, 2)`` (ego frame, metres) at
    ``target_speed_mps (B,)`` from ``speed_mps (B,)``; ``leader``: the gap to the actor in the ego's path (m,
    ``inf``: none) and its speed along the path (m/s), ``(B,)`` each, for the safety brake; ``steer``: steering
    ``(B,)`` to use instead of pure pursuit where it is not NaN (:func:`route_steer`)."""
    bicycle = params.bicycle
    batch = len(speed_mps)
    path = np.concatenate([np.zeros((batch, 1, 2)), waypoints], axis=1)
    length = np.concatenate([np.zeros((batch, 1)),
                             np.cumsum(np.linalg.norm(np.diff(path, axis=1), axis=-1), axis=1)], axis=1)
    lookahead = params.lookahead_min_m + params.lookahead_gain_s * speed_mps
    # the aim point: on the path at the look-ahead, extended straight past its end
    segment = np.clip((length < lookahead[:, None]).sum(axis=1) - 1, 0, path.shape[1] - 2)
    rows = np.arange(batch)
    start, end = path[rows, segment], path[rows, segment + 1]
    span = np.maximum(length[rows, segment + 1] - length[rows, segment], 1e-6)
    aim = start + (end - start) * ((lookahead - length[rows, segment]) / span)[:, None]
    rear = aim + np.array([bicycle.rear_to_center_m, 0.0])
    curvature = 2.0 * rear[:, 1] / np.maximum(np.sum(rear**2, axis=-1), 1.0)
    pursuit = np.arctan(curvature * bicycle.wheelbase_m) / bicycle.max_steer_rad
    if steer is not None:
        pursuit = np.where(np.isnan(steer), pursuit, steer)
    # too short a path to aim along (standing): keep the wheels straight
    steering = np.where(length[:, -1] > 0.5, pursuit, 0.0)
    accel_mps2 = (target_speed_mps - speed_mps) / waypoint_dt_s
    # (only when slowing down: a car pulling away predicts a short path too)
    bunched = (length[:, -1] < params.stop_path_m) & (speed_mps > params.stop_speed_mps) & (
        target_speed_mps <= speed_mps)
    stop = (target_speed_mps < params.stop_speed_mps) | bunched
    if leader is not None and params.safety_decel_mps2 > 0.0:
        gap_m, leader_speed_mps = leader
        closing = np.maximum(speed_mps - leader_speed_mps, 0.0)
        stop |= gap_m < closing**2 / (2.0 * params.safety_decel_mps2) + params.safety_margin_m
    accel_mps2 = np.where(stop, -bicycle.max_brake_mps2, accel_mps2)
    accel = np.where(accel_mps2 >= 0.0, accel_mps2 / bicycle.max_accel_mps2, accel_mps2 / bicycle.max_brake_mps2)
    actions: NDArray[np.float32] = np.clip(np.stack([steering, accel], axis=-1), -1.0, 1.0).astype(np.float32)
    return actions


def safety_leader(state: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """What the safety brake keeps clear of, read off states ``(B, S)``: the gap (m, from the front bumper, ``inf``:
    none) and speed (m/s) along the route of the nearest of the actor in the ego's path (features 25-26), the stop
    line while the ego must stop there (16, 20: a red light, a yellow one it can stop for, a stop sign not yet
    served), the junction entry while it gives way (36-37) and a curbside stop at the curb (:func:`_curb_hold`), the
    last three standing.

    The network learns to stop at lines and junction entries too, but not surely enough: one that stood a little
    short of a stop sign's line (where the expert's label is "drive up to it") rolls on through it, and one for
    whom giving way comes on close to the entry brakes gently and enters a junction whose traffic has the right of
    way."""
    near = state[:, Feature.LEADER_GAP] < 1.0
    gap = np.where(near, state[:, Feature.LEADER_GAP] * DISTANCE_SCALE_M, np.inf)
    speed = state[:, Feature.LEADER_SPEED] * SPEED_SCALE_MPS
    must_stop = (state[:, Feature.MUST_STOP] > 0.5) & (state[:, Feature.STOP_LINE_AHEAD] < 1.0)
    hold = np.where(must_stop, state[:, Feature.STOP_LINE_AHEAD] * DISTANCE_SCALE_M, np.inf)
    give_way = state[:, Feature.GIVE_WAY] > 0.5
    hold = np.minimum(hold, np.where(give_way, state[:, Feature.JUNCTION_AHEAD] * DISTANCE_SCALE_M, np.inf))
    hold = np.minimum(hold, _curb_hold(state))
    return np.minimum(gap, hold), np.where(hold < gap, 0.0, speed)


def _curb_hold(state: NDArray[np.float64]) -> NDArray[np.float64]:
    """The gap ``(B,)`` the safety brake keeps to a curbside stop of the mission (features 27-29) while its dwell is
    still to stand, the ego at the curb (its centre, off the route in the state, within ``_CURB_AT_M`` of the
    stop's offset): one that puts the ego's centre at most ``_CURB_HOLD_M`` short of the stop (``safety_margin_m``
    at its default), and none once it is ``_CURB_PAST_M`` past. ``inf`` elsewhere.

    The network slows down for a curbside stop too late and too little (standing there is a sliver of the data,
    and the expert brakes for it within the last few metres), and drives through it; away from the curb, where
    standing would not serve the stop, it does not hold."""
    _, ego_lateral = project_to_polylines(_route_points(state), np.zeros((len(state), 2)))
    offset = state[:, Feature.CURB_STOP_OFFSET] * OFFSET_SCALE_M
    ahead = state[:, Feature.CURB_STOP_AHEAD] * DISTANCE_SCALE_M
    pending = (state[:, Feature.CURB_DWELL] > 0.0) & (state[:, Feature.CURB_STOP_AHEAD] < 1.0)
    at_curb = (offset < 0.0) & (ego_lateral <= offset + _CURB_AT_M)
    hold = ahead + ControllerParams.safety_margin_m - _CURB_HOLD_M
    return np.where(pending & at_curb & (ahead > -_CURB_PAST_M), hold, np.inf)


def _route_points(state: NDArray[np.float64]) -> NDArray[np.float64]:
    """The route points of states ``(B, S)`` (features 3-14): ``(B, 6, 2)``, metres in the ego frame."""
    points = len(ROUTE_LOOKAHEAD_M)
    route: NDArray[np.float64] = state[:, Feature.ROUTE:Feature.ROUTE + 2 * points].reshape(len(state), points, 2)
    return route * ROUTE_SCALE_M


def route_steer(state: NDArray[np.float64], speed_mps: NDArray[np.float64],
                params: ControllerParams = ControllerParams()) -> NDArray[np.float64]:
    """Steering ``(B,)`` in [-1, 1] along the route of states ``(B, S)`` (features 3-14) shifted by the planned
    offset (33-34, moving towards its target at the world's ``NUDGE_RATE``): the
    Stanley law on the front axle, the route's heading ``route_preview_s`` ahead plus
    ``atan(route_gain * cross-track error / (route_soft_mps + speed))``, that last term at most
    ``route_max_approach_rad``. NaN where the state holds less than ``_ROUTE_STEER_MIN_M`` of route (at its end).

    Pure pursuit on the predicted waypoints cuts junction turns: its look-ahead (7 m at 6 m/s) aims across the
    bend, and the network's waypoints lie inside it where the ego already does (up to 1.8 m in a right turn of
    6 m radius, where the expert's labels lie on the route). Both put a left-turning ego into the path of
    oncoming traffic turning too."""
    batch, bicycle = len(state), params.bicycle
    route = _route_points(state)
    front_m = bicycle.wheelbase_m - bicycle.rear_to_center_m
    arc, lateral = project_to_polylines(route, np.broadcast_to(np.array([front_m, 0.0]), (batch, 2)))
    here = state[:, Feature.PATH_OFFSET] * OFFSET_SCALE_M
    reach = NUDGE_RATE * (front_m + params.route_preview_s * speed_mps)
    offset = here + np.clip(state[:, Feature.PATH_TARGET] * OFFSET_SCALE_M - here, -reach, reach)
    # the route's heading over a chord ahead, the route extended straight at both ends
    ends = np.stack([route[:, 1] - route[:, 0], route[:, -1] - route[:, -2]], axis=1)
    ends /= np.maximum(np.linalg.norm(ends, axis=-1, keepdims=True), 1e-9)
    extended = np.concatenate([route[:, :1] - _ROUTE_EXTEND_M * ends[:, :1], route,
                               route[:, -1:] + _ROUTE_EXTEND_M * ends[:, 1:]], axis=1)
    arc_s = cumulative_length(extended) - _ROUTE_EXTEND_M
    middle = arc + params.route_preview_s * speed_mps
    chord, _ = interpolate_along(extended, arc_s, middle[:, None] + np.array([-0.5, 0.5]) * _ROUTE_CHORD_M)
    direction = chord[:, 1] - chord[:, 0]
    approach = np.arctan2(params.route_gain * (offset - lateral), params.route_soft_mps + speed_mps)
    angle = np.arctan2(direction[:, 1], direction[:, 0]) + np.clip(approach, -params.route_max_approach_rad,
                                                                    params.route_max_approach_rad)
    steer = np.clip(angle / bicycle.max_steer_rad, -1.0, 1.0)
    enough = cumulative_length(route)[:, -1] >= _ROUTE_STEER_MIN_M
    return np.where(enough, steer, np.nan)


class WaypointPolicy:
    """A :class:`~policies.base.LearnedPolicy` and :class:`~policies.base.Planner`: a :class:`WaypointNet` and its
    controller; ``plan_xy`` holds the waypoints the network predicted at the last :meth:`act`."""

    kind = "waypoints"

    def __init__(self, net: WaypointNet, params: ControllerParams = ControllerParams()) -> None:
        self.net = net.eval()
        self.params = params
        self.plan_xy: NDArray[np.float64] = np.zeros((0, net.config.waypoints, 2))

    def act(self, observation: Observation) -> NDArray[np.float32]:
        with torch.inference_mode():
            prediction: Prediction = self.net(*torch_inputs(self.net, observation))
        waypoints = prediction.waypoints.double().cpu().numpy()
        self.plan_xy = waypoints
        target = prediction.speed.double().cpu().numpy()
        head: NDArray[np.float32] = prediction.control.float().cpu().numpy()
        if self.params.mode == "head":
            return head
        state = np.asarray(observation["state"], dtype=np.float64)
        speed = state[:, Feature.SPEED] * SPEED_SCALE_MPS
        steer = route_steer(state, speed, self.params) if self.params.steering == "route" else None
        actions = control(waypoints, target, speed, self.net.config.waypoint_dt_s, self.params, safety_leader(state),
                          steer)
        if self.params.mode == "blend":
            actions = (0.5 * (actions + head)).astype(np.float32)
        return actions

    def reset(self, done: NDArray[np.bool_]) -> None:
        """The network is memoryless."""

    def save(self, path: Path) -> None:
        params = asdict(self.params)
        write_checkpoint(path, self.kind, {
            "config": asdict(self.net.config), "state_dict": self.net.state_dict(),
            "controller": {key: value for key, value in params.items() if key != "bicycle"},
            "bicycle": self.params.bicycle._asdict()})


def from_checkpoint(checkpoint: dict[str, Any]) -> WaypointPolicy:
    net = WaypointNet(WaypointNetConfig(**checkpoint["config"]))
    net.load_state_dict(checkpoint["state_dict"])
    params = ControllerParams(**checkpoint["controller"], bicycle=BicycleParams(**checkpoint["bicycle"]))
    return WaypointPolicy(net, params)
