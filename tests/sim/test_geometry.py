import numpy as np

from sim.geometry import (
    convex_hull,
    cumulative_length,
    interpolate_along,
    project_to_polylines,
    resample_polyline,
    to_local_frame,
    to_map_frame,
    wrap_angle,
)
from sim.scene.kernels.geometry import boxes_touch


def test_wrap_angle() -> None:
    np.testing.assert_allclose(wrap_angle(np.array([0.0, 3 * np.pi / 2, -3 * np.pi / 2])), [0.0, -np.pi / 2, np.pi / 2])


def test_cumulative_length_and_resample() -> None:
    square = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(cumulative_length(square), [0.0, 3.0, 7.0])
    dense = resample_polyline(square, 0.5)
    assert len(dense) == 15
    np.testing.assert_allclose(dense[0], [0.0, 0.0])
    np.testing.assert_allclose(dense[-1], [3.0, 4.0])
    np.testing.assert_allclose(np.diff(cumulative_length(dense)), 0.5, atol=1e-9)


def test_interpolate_along_an_l_shaped_path() -> None:
    path = np.array([[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [10.0, 10.0]]])  # padded with its last vertex
    s = cumulative_length(path)
    xy, heading = interpolate_along(path, s, np.array([[5.0, 15.0, 25.0]]))
    np.testing.assert_allclose(xy[0], [[5.0, 0.0], [10.0, 5.0], [10.0, 10.0]])
    np.testing.assert_allclose(heading[0, :2], [0.0, np.pi / 2])


def test_interpolate_along_past_the_end_is_the_same_whatever_the_padding() -> None:
    # a path north then west, alone and padded (as in a batch beside a longer route) by repeating its last vertex
    path = np.array([[0.0, 0.0], [0.0, 10.0], [-10.0, 10.0]])
    padded = np.concatenate([path, np.repeat(path[-1:], 4, axis=0)])
    arc = np.array([0.0, 10.0, 20.0])
    padded_arc = np.concatenate([arc, np.full(4, 20.0)])
    queries = np.array([[5.0, 15.0, 20.0, 26.0]])
    alone = interpolate_along(path[None], arc[None], queries)
    batched = interpolate_along(padded[None], padded_arc[None], queries)
    np.testing.assert_array_equal(batched[0], alone[0])
    np.testing.assert_array_equal(batched[1], alone[1])
    np.testing.assert_allclose(alone[0][0, 3], [-10.0, 10.0])
    assert alone[1][0, 3] == np.pi and alone[1][0, 0] == np.pi / 2  # west on the last segment, north on the first


def test_local_frame_is_forward_left() -> None:
    local = to_local_frame(np.array([0.0, 5.0]), np.array([0.0, 0.0]), np.array(np.pi / 2))
    np.testing.assert_allclose(local, [5.0, 0.0], atol=1e-12)
    local = to_local_frame(np.array([-3.0, 0.0]), np.array([0.0, 0.0]), np.array(np.pi / 2))
    np.testing.assert_allclose(local, [0.0, 3.0], atol=1e-12)


def test_map_frame_undoes_the_local_frame() -> None:
    # facing north from (10, 20): 5 m ahead and 3 m to the left is (7, 25)
    np.testing.assert_allclose(to_map_frame(np.array([5.0, 3.0]), np.array([10.0, 20.0]), np.array(np.pi / 2)),
                               [7.0, 25.0], atol=1e-12)
    rng = np.random.default_rng(0)
    points, origin, yaw = rng.normal(size=(4, 6, 2)) * 50, rng.normal(size=(4, 1, 2)) * 50, rng.normal(size=(4, 1))
    np.testing.assert_allclose(to_map_frame(to_local_frame(points, origin, yaw), origin, yaw), points, atol=1e-9)


def test_box_overlap_separating_axes() -> None:
    def touch(x: float, y: float, yaw: float) -> bool:  # a 4 x 2 m box at the origin against one at (x, y, yaw)
        return bool(boxes_touch(0.0, 0.0, 0.0, 4.0, 2.0, x, y, yaw, 4.0, 2.0))

    assert touch(3.9, 0.0, 0.0)
    assert not touch(4.1, 0.0, 0.0)
    # rotated 45 degrees, its lowest corner lies (2 + 1) * sin(45 deg) = 2.12 m below its centre; a's top is y = 1
    assert touch(0.0, 3.0, np.pi / 4)
    assert not touch(0.0, 3.25, np.pi / 4)


def test_convex_hull() -> None:
    points = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.0, 2.0], [1.0, 0.5]])
    hull = convex_hull(points)
    assert {tuple(p) for p in hull} == {(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)}


def test_project_to_polylines_extends_the_ends_and_signs_the_offset() -> None:
    l_shape = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])
    polylines = np.stack([l_shape] * 4)
    xy = np.array([[4.0, 1.0], [11.0, 5.0], [-3.0, -2.0], [10.0, 14.0]])
    arc, lateral = project_to_polylines(polylines, xy)
    # left of the first leg; right of the second (heading +y, x grows to the right); behind the start on the
    # first leg extended; past the end on the last leg extended
    np.testing.assert_allclose(arc, [4.0, 15.0, -3.0, 24.0])
    np.testing.assert_allclose(lateral, [1.0, -1.0, -2.0, 0.0])
