"""The compiled map: uniform lane points, the spatial grid and junction conflicts."""

import numpy as np

from sim.maps import connector_id, get_map
from sim.maps.compiled import compile_map
from sim.scene import codes
from sim.scene.kernels import geometry


def test_lane_pose_and_locate_agree_with_the_lane_graph() -> None:
    town = get_map("town-2")
    arrays = compile_map(town)
    assert compile_map(town) is arrays
    rng = np.random.default_rng(0)
    out = [np.zeros(codes.MAX_LOCATED, dtype=np.int64)] + [np.zeros(codes.MAX_LOCATED) for _ in range(4)]
    for lane_id in rng.choice(len(town.lanes), 40):
        lane = town.lanes[lane_id]
        s = float(rng.uniform(0.0, lane.length_m))
        x, y, heading = geometry.lane_pose(arrays, int(lane_id), s)
        expected = town.locate(np.array([[x, y]]))
        assert abs(expected.lateral_m[0]) < 0.05  # resampled curves: chords within centimetres
        count = geometry.locate(arrays, x, y, 0.0, *out)
        found = dict(zip(out[0][:count].tolist(), out[1][:count].tolist(), strict=True))
        assert int(lane_id) in found and abs(found[int(lane_id)] - s) < 0.05
        if s + 0.2 < lane.length_m:  # the heading points along the lane
            x2, y2, _ = geometry.lane_pose(arrays, int(lane_id), s + 0.2)
            assert abs(np.angle(np.exp(1j * (np.arctan2(y2 - y, x2 - x) - heading)))) < 0.2
    # a point 10 m off every lane is on none
    x0, y0, *_ = town.bounds_m
    assert geometry.locate(arrays, x0 - 50.0, y0 - 50.0, 0.0, *out) == 0


def test_junction_conflicts() -> None:
    junction = get_map("junction4-60")
    conflict = compile_map(junction).conflict
    east_to_west, north_to_south = connector_id(0, 2), connector_id(1, 3)
    east_right, west_right = connector_id(0, 1), connector_id(2, 3)
    assert conflict[east_to_west, north_to_south]  # crossing
    assert conflict[east_to_west, east_right]  # diverging from one lane
    assert conflict[connector_id(1, 0), connector_id(3, 0)] is not None
    assert conflict[connector_id(2, 0), connector_id(3, 0)]  # merging into one lane
    assert not conflict[east_right, west_right]  # opposite right turns stay apart
    assert not conflict[0, 1] and not conflict.diagonal().any()
