"""Observations of the ego: a BEV raster plus an ego/route state vector.

``state`` (float32, ``STATE_SIZE``):

=====  ==========================================================================
index  meaning
=====  ==========================================================================
0      speed / 10 m/s
1      steering angle / max steering angle
2      applied acceleration / 8 m/s^2
3..    route points ``ROUTE_LOOKAHEAD_M`` ahead of the ego's route progress, in the ego frame
       (forward, left) / 20 m, interleaved
=====  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from sim.embedded.bev import BevRenderer, BevSpec, Channel
from sim.embedded.world import World
from sim.geometry import interpolate_along, to_local_frame

ROUTE_LOOKAHEAD_M = (2.0, 4.0, 7.0, 10.0, 15.0, 20.0)
STATE_SIZE = 3 + 2 * len(ROUTE_LOOKAHEAD_M)
#: State features are clipped to [-STATE_BOUND, STATE_BOUND].
STATE_BOUND = 4.0

Observation = dict[str, NDArray[np.generic]]


def observation_space(spec: BevSpec = BevSpec()) -> gym.spaces.Dict:
    """The observation space of one ego."""
    return gym.spaces.Dict({
        "bev": gym.spaces.Box(0, 1, (len(Channel), spec.size_px, spec.size_px), dtype=np.uint8),
        "state": gym.spaces.Box(-STATE_BOUND, STATE_BOUND, (STATE_SIZE,), dtype=np.float32),
    })


class Observer:
    """Turns a world's state into observations (keeps each scenario's route raster)."""

    def __init__(self, world: World, spec: BevSpec = BevSpec()) -> None:
        self.world = world
        self.renderer = BevRenderer(world.map, spec)
        self._routes = np.zeros((world.batch_size,) + self.renderer.map_raster.layers.shape[1:], dtype=bool)

    def reset(self, envs: Sequence[int] | None = None) -> None:
        """Redraw the route rasters of env slots that were just reset (all by default)."""
        for env in range(self.world.batch_size) if envs is None else envs:
            self._routes[env] = self.renderer.route_layer(self.world.route_xy[env])

    def observe(self) -> Observation:
        """Observations of every ego: ``bev`` ``(B, C, H, W)`` uint8 and ``state`` ``(B, STATE_SIZE)`` float32."""
        world = self.world
        ego = world.ego
        ego_xy = np.stack([ego.x_m, ego.y_m], axis=-1)
        vehicles = world.vehicles()
        bev = self.renderer.render(ego_xy, ego.yaw_rad, self._routes, vehicles.xy, vehicles.yaw,
                                   vehicles.length_m, vehicles.width_m, vehicles.valid, world.lights)
        ahead = world.progress_s[:, None] + np.asarray(ROUTE_LOOKAHEAD_M)[None, :]
        points, _ = interpolate_along(world.route_xy, world.route_s, ahead)
        local = to_local_frame(points, ego_xy[:, None, :], ego.yaw_rad[:, None]) / 20.0
        state = np.concatenate([
            (ego.speed_mps / 10.0)[:, None],
            (ego.steer_rad / world.config.bicycle.max_steer_rad)[:, None],
            (world.ego_accel_mps2 / 8.0)[:, None],
            local.reshape(world.batch_size, -1),
        ], axis=1)
        return {"bev": bev, "state": np.clip(state, -STATE_BOUND, STATE_BOUND).astype(np.float32)}
