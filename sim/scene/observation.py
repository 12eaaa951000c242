"""Observations of the ego: a BEV raster plus an ego/route state vector.

``state`` (float32, ``STATE_SIZE``), every feature clipped to ``[-STATE_BOUND, STATE_BOUND]``:

=======  ==========================================================================================
index    meaning
=======  ==========================================================================================
0        speed / 10 m/s
1        steering angle / max steering angle
2        applied acceleration / 8 m/s^2
3..14    route points ``ROUTE_LOOKAHEAD_M`` ahead of the ego's route progress, in the ego frame
         (forward, left) / 20 m, interleaved
15       speed limit of the lane under the ego / 10 m/s
16       distance from the front bumper to the next stop line on the route / 50 m (1 when none within 50 m)
17..19   that stop line's control: red-or-yellow light, green light, stop sign (one-hot; all 0 when none)
20       whether the ego must stop at that line now (red, yellow it can stop for, stop sign not yet served,
         or the junction behind it is not clear)
21..24   route command at the next junction (one-hot): left, right, straight, follow lane
25       gap from the front bumper to the nearest actor in the ego's path along the route (ground-truth
         perception: vehicles, pedestrians about to cross, obstacles not being passed) / 50 m (1 when none)
26       that actor's speed along the route / 10 m/s (0 when none)
27       distance from the ego's centre to the robotaxi mission's next curbside stop along the route / 50 m
         (1 when none within 50 m)
28       the lateral offset of that stop (negative: right, towards the curb) / 2 m
29       dwell time still to stand there / 10 s
30       an emergency vehicle's siren within ``SIREN_RANGE_M`` (1, else 0) ...
31..32   ... and its position in the ego frame (forward, left) / 50 m
33       the planned path's lateral offset from the route here (left +; moving round an obstacle, keeping
         right of an oncoming vehicle that cuts in, pulling over for an emergency vehicle or to the curb) / 2 m
34       the offset it is moving towards / 2 m (the actor in the path, 25, is the first one on this path)
35       off its lane at the curb (a parking place), whether the ego must wait for a gap in the traffic coming
         along the lane before pulling in
36       whether the ego gives way at the next junction entry now (someone crosses or is about to, someone who
         stopped earlier goes first, or there is no room past it): the part of 20 that is not the line's own
         control, and shown also where no line is painted
37       distance from the front bumper to that junction entry / 50 m (1 when none within 50 m)
=======  ==========================================================================================

The layout of the observation (the BEV's channels and the features above) has a version,
:data:`OBSERVATION_FORMAT`, which every file that keeps observations or was trained on them records: learned
drivers' checkpoints, training checkpoints and stored episodes. A file of another version is refused
(:func:`check_observation_format`), never converted.
"""

from __future__ import annotations

from enum import IntEnum

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from sim.geometry import interpolate_along, to_local_frame, wrap_angle
from sim.scene import codes
from sim.scene.bev import BevRenderer, BevSpec, Channel
from sim.scene.source import SceneSource

ROUTE_LOOKAHEAD_M = (2.0, 4.0, 7.0, 10.0, 15.0, 20.0)
#: Speeds are divided by this, distances (stop line, actor in the path, junction entry, curbside stop, siren) by
#: the next, in the state vector.
SPEED_SCALE_MPS = 10.0
DISTANCE_SCALE_M = 50.0
#: Route points (3..14) are divided by this, lateral offsets (28, 33, 34) by the next.
ROUTE_SCALE_M = 20.0
OFFSET_SCALE_M = 2.0
STATE_SIZE = 38
#: Version of the observation's layout: increase it whenever a BEV channel or a state feature is added, removed,
#: moved or changes its meaning or scale (files of the old version are then refused).
OBSERVATION_FORMAT = 1
#: An emergency vehicle's siren is heard this far (metres).
SIREN_RANGE_M = 60.0
#: State features are clipped to [-STATE_BOUND, STATE_BOUND].
STATE_BOUND = 4.0
#: How far ahead the route command looks for the next turn.
COMMAND_HORIZON_M = 30.0

Observation = dict[str, NDArray[np.generic]]


class ObservationFormatError(ValueError):
    """A file that records another observation format than :data:`OBSERVATION_FORMAT` (or none)."""


def check_observation_format(found: object, *, what: str, remedy: str) -> None:
    """Refuse a file whose observations are not of this observation format.

    :param found: the format the file records (``None``: it records none, being written before formats were).
    :param what: the file, as the message names it (``driver checkpoint /path/last.pt``).
    :param remedy: what to do instead (``retrain it (`autoloop train`)``).
    :raises ObservationFormatError: one line: what, which format it has, which one this code reads, the remedy.
    """
    if found == OBSERVATION_FORMAT:
        return
    has = f"has observation format {found}" if found is not None else "records no observation format"
    raise ObservationFormatError(f"{what} {has}, this autoloop reads observation format {OBSERVATION_FORMAT}: "
                                 f"{remedy}")


def _distance(metres: NDArray[np.float64]) -> NDArray[np.float64]:
    """A distance feature: ``metres / DISTANCE_SCALE_M`` clipped to [-0.1, 1], 1 where there is none (``inf``)."""
    return np.where(np.isfinite(metres), np.clip(metres / DISTANCE_SCALE_M, -0.1, 1.0), 1.0)


class Feature(IntEnum):
    """Indices of the state features read outside this module (the table above)."""

    SPEED = 0
    ROUTE = 3
    STOP_LINE_AHEAD = 16
    MUST_STOP = 20
    LEADER_GAP = 25
    LEADER_SPEED = 26
    CURB_STOP_AHEAD = 27
    CURB_STOP_OFFSET = 28
    CURB_DWELL = 29
    SIREN = 30
    PATH_OFFSET = 33
    PATH_TARGET = 34
    PULL_IN_WAIT = 35
    GIVE_WAY = 36
    JUNCTION_AHEAD = 37


class Command(IntEnum):
    """High-level route command (as CARLA's RoadOption): what the route does at the next junction."""

    LEFT = 0
    RIGHT = 1
    STRAIGHT = 2
    FOLLOW_LANE = 3


def observation_space(spec: BevSpec = BevSpec()) -> gym.spaces.Dict:
    """The observation space of one ego."""
    return gym.spaces.Dict({
        "bev": gym.spaces.Box(0, 1, (len(Channel), spec.size_px, spec.size_px), dtype=np.uint8),
        "state": gym.spaces.Box(-STATE_BOUND, STATE_BOUND, (STATE_SIZE,), dtype=np.float32),
    })


class Observer:
    """Turns a backend's scene into observations."""

    def __init__(self, world: SceneSource, spec: BevSpec = BevSpec()) -> None:
        self.world = world
        self.renderer = BevRenderer(world.map, spec)
        self._junction_lane = world.arrays.lane_junction >= 0

    def observe(self) -> Observation:
        """Observations of every ego: ``bev`` ``(B, C, H, W)`` uint8 and ``state`` ``(B, STATE_SIZE)`` float32."""
        sc = self.world.scene
        ego_xy = np.stack([sc.ego.x_m, sc.ego.y_m], axis=-1)
        actor_xy = np.stack([sc.actors.x_m, sc.actors.y_m], axis=-1)
        route, actors = sc.route, sc.actors
        bev = self.renderer.render(ego_xy, sc.ego.yaw_rad, route.x_m, route.y_m, route.n, route.ds_m,
                                   route.progress_m, actors.kind, actor_xy, actors.yaw_rad, actors.length_m,
                                   actors.width_m, actors.valid, sc.lights)
        return {"bev": bev, "state": self.state_vector()}

    def state_vector(self) -> NDArray[np.float32]:
        """The ``state`` part of the observations alone."""
        world, sc = self.world, self.world.scene
        b = world.batch_size
        ego_xy = np.stack([sc.ego.x_m, sc.ego.y_m], axis=-1)
        route_xy, route_s = world.route_xy, world.route_s
        ahead = sc.route.progress_m[:, None] + np.asarray(ROUTE_LOOKAHEAD_M)[None, :]
        points, _ = interpolate_along(route_xy, route_s, ahead)
        local = to_local_frame(points, ego_xy[:, None, :], sc.ego.yaw_rad[:, None]) / ROUTE_SCALE_M
        front = sc.facts.line_dist_m - 0.5 * world.params.ego_length
        has_line = (sc.facts.line_kind != codes.LINE_NONE) & (front < 50.0)
        light = sc.facts.line_kind == codes.LINE_LIGHT
        control = np.stack([
            has_line & light & (sc.facts.line_state != codes.GREEN),
            has_line & light & (sc.facts.line_state == codes.GREEN),
            has_line & (sc.facts.line_kind == codes.LINE_STOP),
        ], axis=1)
        command = np.zeros((b, len(Command)))
        command[np.arange(b), self.commands()] = 1.0
        state = np.concatenate([
            (sc.ego.speed_mps / SPEED_SCALE_MPS)[:, None],
            (sc.ego.steer_rad / world.params.bicycle.max_steer_rad)[:, None],
            (sc.ego.accel_mps2 / 8.0)[:, None],
            local.reshape(b, -1),
            (sc.facts.speed_limit_mps / SPEED_SCALE_MPS)[:, None],
            _distance(np.where(has_line, front, np.inf))[:, None],
            control,
            (has_line & sc.facts.must_stop)[:, None],
            command,
            self._leader(),
            self._mission(),
            self._siren(ego_xy),
            (sc.facts.offset_m / OFFSET_SCALE_M)[:, None],
            (sc.facts.nudge_m / OFFSET_SCALE_M)[:, None],
            sc.facts.merge_wait[:, None],
            sc.facts.give_way[:, None],
            _distance(sc.facts.junction_dist_m)[:, None],
        ], axis=1)
        vector: NDArray[np.float32] = np.clip(state, -STATE_BOUND, STATE_BOUND).astype(np.float32)
        return vector

    def _leader(self) -> NDArray[np.float64]:
        sc = self.world.scene
        gap = _distance(sc.facts.leader_gap_m)
        speed = np.where(np.isfinite(sc.facts.leader_gap_m) & (gap < 1.0),
                         sc.facts.leader_speed_mps / SPEED_SCALE_MPS, 0.0)
        return np.stack([gap, speed], axis=1)

    def _mission(self) -> NDArray[np.float64]:
        world, sc = self.world, self.world.scene
        rows = np.arange(world.batch_size)
        pending = sc.mission.stop_next < sc.mission.stop_n
        k = np.minimum(sc.mission.stop_next, sc.mission.stop_s_m.shape[1] - 1)
        ahead = sc.mission.stop_s_m[rows, k] - sc.route.progress_m
        near = pending & (ahead < 50.0)
        standing = np.isfinite(sc.mission.stop_since_s)
        stood_s = np.where(standing, sc.time_s - np.where(standing, sc.mission.stop_since_s, 0.0), 0.0)
        dwell = sc.mission.stop_dwell_s[rows, k] - stood_s
        return np.stack([_distance(np.where(near, ahead, np.inf)),
                         np.where(near, sc.mission.stop_offset_m[rows, k] / OFFSET_SCALE_M, 0.0),
                         np.where(near, np.maximum(dwell, 0.0) / 10.0, 0.0)], axis=1)

    def _siren(self, ego_xy: NDArray[np.float64]) -> NDArray[np.float64]:
        sc = self.world.scene
        rows = np.arange(self.world.batch_size)
        slot = np.maximum(sc.emergency.slot, 0)
        where = np.stack([sc.actors.x_m[rows, slot], sc.actors.y_m[rows, slot]], axis=-1)
        local = to_local_frame(where[:, None, :], ego_xy[:, None, :], sc.ego.yaw_rad[:, None])[:, 0]
        heard = (sc.emergency.slot >= 0) & sc.actors.valid[rows, slot] & ~sc.emergency.done & (
            np.hypot(local[:, 0], local[:, 1]) < SIREN_RANGE_M)
        return np.stack([heard, np.where(heard, local[:, 0] / DISTANCE_SCALE_M, 0.0),
                         np.where(heard, local[:, 1] / DISTANCE_SCALE_M, 0.0)], axis=1)

    def commands(self) -> NDArray[np.intp]:
        """:class:`Command` of every ego: the route's heading change over the next ``COMMAND_HORIZON_M``, or
        straight/follow-lane by whether a junction lies within it."""
        world, sc = self.world, self.world.scene
        samples = sc.route.progress_m[:, None] + np.array([2.0, COMMAND_HORIZON_M])[None, :]
        _, heading = interpolate_along(world.route_xy, world.route_s, samples)
        turn = wrap_angle(heading[:, 1] - heading[:, 0])
        pieces = np.arange(sc.route.piece_lane.shape[1])[None, :] < sc.route.piece_n[:, None]
        in_reach = (sc.route.piece_offset_m > sc.route.progress_m[:, None] - 1.0) & (
            sc.route.piece_offset_m < sc.route.progress_m[:, None] + COMMAND_HORIZON_M)
        junction = (self._junction_lane[sc.route.piece_lane] & pieces & in_reach).any(axis=1)
        command = np.where(junction, Command.STRAIGHT, Command.FOLLOW_LANE)
        command = np.where(turn > 0.5, Command.LEFT, np.where(turn < -0.5, Command.RIGHT, command))
        return command.astype(np.intp)
