"""Maps as lane graphs, and the registry of named maps."""

from __future__ import annotations

import functools
import re
from typing import Literal

from sim.maps.lane_graph import CurbsideStop, Lane, LaneGraph, LanePath, LanePiece, Walkway
from sim.maps.procedural import connector_id, four_way_junction
from sim.maps.town import TownSpec, procedural_town

__all__ = ["CurbsideStop", "Lane", "LaneGraph", "LanePath", "LanePiece", "TownSpec", "Walkway", "connector_id",
           "four_way_junction", "get_map", "procedural_town"]

_JUNCTION = re.compile(r"junction4-(?P<arm>\d+(\.\d+)?)")
_TOWN = re.compile(r"town-((?P<layout>grid|irregular)-)?(?P<seed>\d+)")


@functools.cache
def get_map(name: str) -> LaneGraph:
    """Return the map registered under ``name`` (built once per process).

    Known names: ``junction4-<arm length in metres>`` (e.g. ``junction4-60``), and procedural towns
    ``town-<seed>`` (the seed picks the layout) or ``town-grid-<seed>`` / ``town-irregular-<seed>``.
    """
    match = _JUNCTION.fullmatch(name)
    if match is not None:
        return four_way_junction(arm_length_m=float(match["arm"]))
    match = _TOWN.fullmatch(name)
    if match is not None:
        layouts: dict[str | None, Literal["grid", "irregular"] | None] = {
            "grid": "grid", "irregular": "irregular", None: None}
        return procedural_town(int(match["seed"]), TownSpec(layout=layouts[match["layout"]]))
    raise ValueError(f"unknown map {name!r}: expected a name like 'junction4-60', 'town-7' or 'town-grid-7'")
