import numpy as np

from sim.geometry import (
    box_corners,
    boxes_overlap,
    cumulative_length,
    interpolate_along,
    project_onto_polylines,
    resample_polyline,
    to_local_frame,
    wrap_angle,
)


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


def test_project_onto_polylines_gives_arc_length_and_signed_offset() -> None:
    path = np.array([[[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]]] * 2)
    s = cumulative_length(path)
    points = np.array([[12.0, 1.5], [4.0, -2.0]])
    arc, lateral = project_onto_polylines(path, s, points, np.ones((2, 2), dtype=bool))
    np.testing.assert_allclose(arc, [12.0, 4.0])
    np.testing.assert_allclose(lateral, [1.5, -2.0])


def test_local_frame_is_forward_left() -> None:
    local = to_local_frame(np.array([0.0, 5.0]), np.array([0.0, 0.0]), np.array(np.pi / 2))
    np.testing.assert_allclose(local, [5.0, 0.0], atol=1e-12)
    local = to_local_frame(np.array([-3.0, 0.0]), np.array([0.0, 0.0]), np.array(np.pi / 2))
    np.testing.assert_allclose(local, [0.0, 3.0], atol=1e-12)


def test_box_overlap_separating_axes() -> None:
    a = box_corners(np.array([0.0, 0.0]), np.array(0.0), np.array(4.0), np.array(2.0))
    touching = box_corners(np.array([3.9, 0.0]), np.array(0.0), np.array(4.0), np.array(2.0))
    apart = box_corners(np.array([4.1, 0.0]), np.array(0.0), np.array(4.0), np.array(2.0))
    # rotated 45 degrees, its lowest corner lies (2 + 1) * sin(45 deg) = 2.12 m below its centre; a's top is y = 1
    diagonal = box_corners(np.array([0.0, 3.0]), np.array(np.pi / 4), np.array(4.0), np.array(2.0))
    far_diagonal = box_corners(np.array([0.0, 3.25]), np.array(np.pi / 4), np.array(4.0), np.array(2.0))
    assert boxes_overlap(a, touching)
    assert not boxes_overlap(a, apart)
    assert boxes_overlap(a, diagonal)
    assert not boxes_overlap(a, far_diagonal)
