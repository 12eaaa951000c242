import numpy as np

from sim.embedded.traffic import LightState, LightTiming, light_states, path_leaders
from sim.geometry import cumulative_length

G, Y, R = LightState.GREEN, LightState.YELLOW, LightState.RED


def test_split_phase_schedule() -> None:
    timing = LightTiming(green_s=5.0, yellow_s=2.0, all_red_s=1.0)  # 8 s per group, 32 s cycle for 4 groups
    times = np.array([0.0, 5.5, 7.5, 8.0, 31.0, 32.0])
    states = light_states(times, np.zeros(6), 4, timing)
    expected = [
        [G, R, R, R],
        [Y, R, R, R],
        [R, R, R, R],  # all red between groups
        [R, G, R, R],
        [R, R, R, R],
        [G, R, R, R],  # the cycle repeats
    ]
    np.testing.assert_array_equal(states, expected)
    # an offset shifts the cycle
    np.testing.assert_array_equal(light_states(np.array([0.0]), np.array([16.0]), 4, timing), [[R, R, G, R]])


def test_path_leaders_finds_nearest_actor_on_the_path() -> None:
    path = np.stack([np.linspace(0.0, 60.0, 61), np.zeros(61)], axis=-1)[None]
    s = cumulative_length(path)
    others = np.array([[[30.0, 0.3], [20.0, 5.0], [12.5, -0.5], [-5.0, 0.0]]])  # on path, off path, nearest, behind
    speeds = np.array([[3.0, 9.0, 4.0, 9.0]])
    gap, leader, speed = path_leaders(path, s, np.array([2.0]), others, np.zeros((1, 4)), speeds,
                                      np.full((1, 4), 1.0), np.ones((1, 4), dtype=bool))
    assert gap[0] == 10.5
    assert leader[0] == 2
    assert speed[0] == 4.0
    # without candidates nothing is ahead
    gap, _, _ = path_leaders(path, s, np.array([2.0]), others, np.zeros((1, 4)), np.zeros((1, 4)), np.ones((1, 4)),
                             np.zeros((1, 4), dtype=bool))
    assert np.isinf(gap[0])
