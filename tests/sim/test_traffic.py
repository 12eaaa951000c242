import numpy as np

from sim.embedded.traffic import LightState, LightTiming, light_states

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
