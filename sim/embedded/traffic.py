"""Traffic rules as pure functions: traffic-light phases and "who is ahead of me on my path"."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from sim.geometry import FloatArray, interpolate_along, to_local_frame


class LightState(IntEnum):
    GREEN = 0
    YELLOW = 1
    RED = 2


@dataclass(frozen=True)
class LightTiming:
    """Split phasing: light groups turn green one after another.

    :param green_s: green time per group.
    :param yellow_s: yellow time after each green.
    :param all_red_s: clearance time when every group is red.
    """

    green_s: float = 5.0
    yellow_s: float = 2.0
    all_red_s: float = 1.0

    @property
    def phase_s(self) -> float:
        return self.green_s + self.yellow_s + self.all_red_s

    def cycle_s(self, groups: int) -> float:
        return self.phase_s * groups


def light_states(time_s: FloatArray, offset_s: FloatArray, groups: int, timing: LightTiming) -> NDArray[np.int8]:
    """States ``(B, groups)`` of every light group at simulation time ``time_s`` ``(B,)``."""
    phase = np.mod(time_s + offset_s, timing.cycle_s(groups))[:, None] - timing.phase_s * np.arange(groups)
    state = np.full(phase.shape, LightState.RED, dtype=np.int8)
    state[(phase >= 0) & (phase < timing.green_s)] = LightState.GREEN
    yellow = (phase >= timing.green_s) & (phase < timing.green_s + timing.yellow_s)
    state[yellow] = LightState.YELLOW
    return state


def path_leaders(
    path_xy: FloatArray,
    path_s: FloatArray,
    position_s: FloatArray,
    others_xy: FloatArray,
    others_yaw: FloatArray,
    others_speed_mps: FloatArray,
    others_half_width_m: FloatArray,
    candidate: NDArray[np.bool_],
    *,
    horizon_m: float = 40.0,
    step_m: float = 1.0,
    lateral_margin_m: float = 1.4,
) -> tuple[FloatArray, NDArray[np.intp], FloatArray]:
    """Distance along each follower's path to the nearest other actor on it, and that actor's speed.

    Followers are ``N`` paths; each may be blocked by any of ``M`` other actors.

    :param path_xy: ``(N, P, 2)`` follower paths (map frame).
    :param path_s: ``(N, P)`` cumulative arc length of the paths.
    :param position_s: ``(N,)`` where each follower's reference point is along its path.
    :param others_xy, others_yaw, others_speed_mps, others_half_width_m: ``(N, M, ...)`` the other actors as seen
        by each follower (usually the same actors broadcast).
    :param candidate: ``(N, M)`` which others may count (valid, and not the follower itself).
    :param lateral_margin_m: an actor counts when its centre is within its half width plus this of the path.
    :return: ``(N,)`` centre-to-centre distance along the path (``inf`` if none), the leader's index among
        the others (meaningless where the distance is ``inf``) and its speed along the path direction (m/s).
    """
    ahead = position_s[:, None] + np.arange(0.0, horizon_m, step_m)[None, :]
    samples_xy, samples_heading = interpolate_along(path_xy, path_s, ahead)
    # others in each sample's frame: (N, M, K, 2)
    local = to_local_frame(others_xy[:, :, None, :], samples_xy[:, None, :, :], samples_heading[:, None, :])
    near = (np.abs(local[..., 0]) <= 0.5 * step_m) & (
        np.abs(local[..., 1]) <= others_half_width_m[:, :, None] + lateral_margin_m
    )
    near &= candidate[:, :, None] & (ahead[:, None, :] <= path_s[:, None, -1:] + 0.5 * step_m)
    distance = np.where(near, ahead[:, None, :] + local[..., 0] - position_s[:, None, None], np.inf)
    distance = np.where(distance > 0.0, distance, np.inf)
    flat = distance.reshape(distance.shape[0], -1)
    best = np.argmin(flat, axis=-1)
    gap = flat[np.arange(flat.shape[0]), best]
    leader = best // distance.shape[2]
    sample = best % distance.shape[2]
    rows = np.arange(flat.shape[0])
    heading_diff = others_yaw[rows, leader] - samples_heading[rows, sample]
    leader_speed = np.where(np.isfinite(gap), others_speed_mps[rows, leader] * np.cos(heading_diff), 0.0)
    return gap, leader, leader_speed
