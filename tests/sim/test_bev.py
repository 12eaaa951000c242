"""The BEV's pixel convention: where a map point lands in an ego's BEV, worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sim.scene.bev import BevSpec


def test_map_points_land_ahead_and_left_of_the_ego_as_the_convention_says() -> None:
    spec = BevSpec(size_px=128, resolution_m=0.5, ego_row=96)
    ego, north = np.array([10.0, 5.0]), np.pi / 2
    # heading north: 8 m north is 16 rows up; 4 m west is 4 m left, 8 columns left of the centre (63.5)
    points = np.array([[10.0, 13.0], [6.0, 5.0], [10.0, 5.0]])
    assert spec.pixels(points, ego, north) == pytest.approx(np.array([[80.0, 63.5], [96.0, 55.5], [96.0, 63.5]]))
    # the inverse of the pixel centres' ego-frame offsets (forward, left), for any heading
    offsets = spec.ego_frame_offsets()
    yaw = 0.7
    c, s = np.cos(yaw), np.sin(yaw)
    world = ego + offsets[..., :1] * np.array([c, s]) + offsets[..., 1:] * np.array([-s, c])
    rows, cols = np.meshgrid(np.arange(128), np.arange(128), indexing="ij")
    assert spec.pixels(world, ego, yaw) == pytest.approx(np.stack([rows, cols], axis=-1).astype(float))
