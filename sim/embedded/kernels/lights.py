"""Traffic lights: each junction's split-phase program, or the states a scenario event holds."""

from __future__ import annotations

from typing import Any

from numba import njit

from sim.maps.compiled import MapArrays
from sim.scene.codes import GREEN, RED, YELLOW
from sim.scene.params import Params


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def update_lights(m: MapArrays, sc: Any, w: Any, p: Params, b: int) -> None:
    phase_s = p.green_s + p.yellow_s + p.all_red_s
    forced = sc.time_s[b] < w.program.force_until_s[b]
    then = not forced and sc.time_s[b] < w.program.force_until_s[b] + w.program.then_hold_s[b]
    for g in range(sc.lights.shape[1]):
        if forced and w.program.force[b, g] >= 0:  # a scenario event sets this junction's lights
            sc.lights[b, g] = w.program.force[b, g]
            continue
        if then and w.program.then[b, g] >= 0:  # ... and then others
            sc.lights[b, g] = w.program.then[b, g]
            continue
        j = m.light_junction[g]
        cycle = phase_s * m.junction_phases[j]
        t = (sc.time_s[b] + w.program.offset_s[b, j]) % cycle - phase_s * m.light_phase[g]
        if 0.0 <= t < p.green_s:
            sc.lights[b, g] = GREEN
        elif p.green_s <= t < p.green_s + p.yellow_s:
            sc.lights[b, g] = YELLOW
        else:
            sc.lights[b, g] = RED
