"""The scene's readers in the order every backend runs them once it has filled a scene."""

from __future__ import annotations

from typing import Any

from numba import njit

from sim.maps.compiled import MapArrays
from sim.scene.kernels.infractions import count_infractions
from sim.scene.kernels.junction import note_approaching
from sim.scene.kernels.occupancy import occupy_lanes
from sim.scene.kernels.planner import ego_facts, plan_path
from sim.scene.kernels.route import project_ego
from sim.scene.params import Params


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def look(m: MapArrays, sc: Any, p: Params, b: int) -> None:
    """Scenario ``b`` as its ego sees it now: its progress along the route, the lanes everyone occupies, its planned
    path and the privileged facts, who comes to its next junction."""
    project_ego(sc, b)
    occupy_lanes(m, sc, p, b)
    plan_path(m, sc, p, b)
    ego_facts(m, sc, p, b)
    note_approaching(m, sc, b)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def look_and_judge(m: MapArrays, sc: Any, p: Params, b: int) -> None:
    """:func:`look`, then count this step's infractions and end the route where it ends."""
    look(m, sc, p, b)
    count_infractions(m, sc, p, b)


@njit(_nrt=False, cache=True)
def read_scene(m: MapArrays, sc: Any, p: Params, b: int, judge: bool) -> None:
    """:func:`look_and_judge` (``judge``) or :func:`look` from Python, for a backend that fills its scene there."""
    if judge:
        look_and_judge(m, sc, p, b)
    else:
        look(m, sc, p, b)
