"""Maps as lane graphs, and the registry of named maps."""

from __future__ import annotations

import functools
import re
from typing import Literal

from sim.maps.lane_graph import CurbsideStop, Lane, LaneGraph, LanePath, LanePiece, Walkway
from sim.maps.procedural import connector_id, four_way_junction
from sim.maps.town import TownSpec, procedural_town

__all__ = ["CurbsideStop", "Lane", "LaneGraph", "LanePath", "LanePiece", "TownSpec", "Walkway", "connector_id",
           "four_way_junction", "get_map", "procedural_town", "register_map"]

_REGISTERED: dict[str, LaneGraph] = {}


def register_map(lane_graph: LaneGraph) -> LaneGraph:
    """Make an imported map (OpenDRIVE, Argoverse 2, ...) known to :func:`get_map` under its name."""
    known = _REGISTERED.get(lane_graph.name)
    if known is not None and known is not lane_graph:
        raise ValueError(f"another map is already registered as {lane_graph.name!r}")
    _REGISTERED[lane_graph.name] = lane_graph
    return lane_graph

_JUNCTION = re.compile(r"junction4-(?P<arm>\d+(\.\d+)?)")
_TOWN = re.compile(r"town-((?P<layout>grid|irregular)-)?(?P<seed>\d+)")


def get_map(name: str) -> LaneGraph:
    """Return the map called ``name``: one given to :func:`register_map`, or a built-in one (built once per
    process).

    Known names: ``junction4-<arm length in metres>`` (e.g. ``junction4-60``), and procedural towns
    ``town-<seed>`` (the seed picks the layout) or ``town-grid-<seed>`` / ``town-irregular-<seed>``.
    """
    registered = _REGISTERED.get(name)
    return registered if registered is not None else _builtin_map(name)


@functools.cache
def _builtin_map(name: str) -> LaneGraph:
    match = _JUNCTION.fullmatch(name)
    if match is not None:
        return four_way_junction(arm_length_m=float(match["arm"]))
    match = _TOWN.fullmatch(name)
    if match is not None:
        layouts: dict[str | None, Literal["grid", "irregular"] | None] = {
            "grid": "grid", "irregular": "irregular", None: None}
        return procedural_town(int(match["seed"]), TownSpec(layout=layouts[match["layout"]]))
    raise ValueError(f"unknown map {name!r}: expected a name like 'junction4-60', 'town-7' or 'town-grid-7'")
