"""Conversions between the map frame and the frames of map and route sources.

The map frame is right-handed (x east, y north, yaw counter-clockwise). CARLA's world frame is left-handed: its y
axis points the other way and its yaws (degrees) turn clockwise, so a CARLA location ``(x, y)`` is ``(x, -y)``
in the map frame and a CARLA yaw ``d`` degrees is ``-radians(d)``. OpenDRIVE itself is right-handed; CARLA flips
y when it loads a map, so everything read through CARLA (maps, route XML) is converted here.
"""

from __future__ import annotations

import numpy as np

from sim.geometry import FloatArray


def from_carla_xy(xy: FloatArray) -> FloatArray:
    """CARLA world ``(..., 2)`` locations to the map frame."""
    xy = np.asarray(xy, dtype=np.float64)
    return np.stack([xy[..., 0], -xy[..., 1]], axis=-1)


def from_carla_yaw(yaw_deg: FloatArray | float) -> FloatArray:
    """CARLA yaws (degrees, clockwise) to map-frame headings (radians, counter-clockwise)."""
    return np.asarray(-np.radians(yaw_deg), dtype=np.float64)
