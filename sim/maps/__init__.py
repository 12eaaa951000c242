"""Maps as lane graphs, and the registry of named maps."""

from __future__ import annotations

import functools
import re

from sim.maps.lane_graph import Lane, LaneGraph, LanePath, LanePiece
from sim.maps.procedural import connector_id, four_way_junction

__all__ = ["Lane", "LaneGraph", "LanePath", "LanePiece", "connector_id", "four_way_junction", "get_map"]

_JUNCTION = re.compile(r"junction4-(?P<arm>\d+(\.\d+)?)")


@functools.cache
def get_map(name: str) -> LaneGraph:
    """Return the map registered under ``name`` (built once per process).

    Known names: ``junction4-<arm length in metres>``, e.g. ``junction4-60``.
    """
    match = _JUNCTION.fullmatch(name)
    if match is None:
        raise ValueError(f"unknown map {name!r}: expected a name like 'junction4-60'")
    return four_way_junction(arm_length_m=float(match["arm"]))
