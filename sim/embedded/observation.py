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
=======  ==========================================================================================
"""

from __future__ import annotations

from enum import IntEnum

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from sim.embedded import kernels
from sim.embedded.bev import BevRenderer, BevSpec, Channel
from sim.embedded.world import World
from sim.geometry import interpolate_along, to_local_frame, wrap_angle

ROUTE_LOOKAHEAD_M = (2.0, 4.0, 7.0, 10.0, 15.0, 20.0)
STATE_SIZE = 25
#: State features are clipped to [-STATE_BOUND, STATE_BOUND].
STATE_BOUND = 4.0
#: How far ahead the route command looks for the next turn.
COMMAND_HORIZON_M = 30.0

Observation = dict[str, NDArray[np.generic]]


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
    """Turns a world's state into observations."""

    def __init__(self, world: World, spec: BevSpec = BevSpec()) -> None:
        self.world = world
        self.renderer = BevRenderer(world.map, spec)
        self._junction_lane = world.arrays.lane_junction >= 0

    def observe(self) -> Observation:
        """Observations of every ego: ``bev`` ``(B, C, H, W)`` uint8 and ``state`` ``(B, STATE_SIZE)`` float32."""
        _world, st = self.world, self.world.state
        ego_xy = np.stack([st.ego_x, st.ego_y], axis=-1)
        bev = self.renderer.render(ego_xy, st.ego_yaw, st.route_x, st.route_y, st.route_n, st.route_ds,
                                   st.progress, st.act_kind, np.stack([st.act_x, st.act_y], axis=-1), st.act_yaw,
                                   st.act_len, st.act_wid, st.act_valid, st.lights)
        return {"bev": bev, "state": self.state_vector()}

    def state_vector(self) -> NDArray[np.float32]:
        """The ``state`` part of the observations alone."""
        world, st = self.world, self.world.state
        b = world.batch_size
        ego_xy = np.stack([st.ego_x, st.ego_y], axis=-1)
        route_xy, route_s = world.route_xy, world.route_s
        ahead = st.progress[:, None] + np.asarray(ROUTE_LOOKAHEAD_M)[None, :]
        points, _ = interpolate_along(route_xy, route_s, ahead)
        local = to_local_frame(points, ego_xy[:, None, :], st.ego_yaw[:, None]) / 20.0
        front = st.ego_line_dist - 0.5 * world.config.ego_length_m
        has_line = (st.ego_line_kind != kernels.LINE_NONE) & (front < 50.0)
        light = st.ego_line_kind == kernels.LINE_LIGHT
        control = np.stack([
            has_line & light & (st.ego_line_state != kernels.GREEN),
            has_line & light & (st.ego_line_state == kernels.GREEN),
            has_line & (st.ego_line_kind == kernels.LINE_STOP),
        ], axis=1)
        command = np.zeros((b, len(Command)))
        command[np.arange(b), self.commands()] = 1.0
        state = np.concatenate([
            (st.ego_v / 10.0)[:, None],
            (st.ego_steer / world.config.bicycle.max_steer_rad)[:, None],
            (st.ego_accel / 8.0)[:, None],
            local.reshape(b, -1),
            (st.ego_speed_limit / 10.0)[:, None],
            np.where(has_line, np.clip(front / 50.0, -0.1, 1.0), 1.0)[:, None],
            control,
            (has_line & st.ego_must_stop)[:, None],
            command,
        ], axis=1)
        vector: NDArray[np.float32] = np.clip(state, -STATE_BOUND, STATE_BOUND).astype(np.float32)
        return vector

    def commands(self) -> NDArray[np.intp]:
        """:class:`Command` of every ego: the route's heading change over the next ``COMMAND_HORIZON_M``, or
        straight/follow-lane by whether a junction lies within it."""
        world, st = self.world, self.world.state
        samples = st.progress[:, None] + np.array([2.0, COMMAND_HORIZON_M])[None, :]
        _, heading = interpolate_along(world.route_xy, world.route_s, samples)
        turn = wrap_angle(heading[:, 1] - heading[:, 0])
        pieces = np.arange(st.piece_lane.shape[1])[None, :] < st.piece_n[:, None]
        in_reach = (st.piece_offset > st.progress[:, None] - 1.0) & (
            st.piece_offset < st.progress[:, None] + COMMAND_HORIZON_M)
        junction = (self._junction_lane[st.piece_lane] & pieces & in_reach).any(axis=1)
        command = np.where(junction, Command.STRAIGHT, Command.FOLLOW_LANE)
        command = np.where(turn > 0.5, Command.LEFT, np.where(turn < -0.5, Command.RIGHT, command))
        return command.astype(np.intp)
