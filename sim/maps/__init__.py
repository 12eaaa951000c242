"""Maps as lane graphs, and the registry of named maps."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Literal

from sim.maps.lane_graph import CurbsideStop, Lane, LaneGraph, LanePath, LanePiece, Walkway
from sim.maps.procedural import connector_id, four_way_junction
from sim.maps.town import TownSpec, procedural_town

__all__ = ["CurbsideStop", "Lane", "LaneGraph", "LanePath", "LanePiece", "TownSpec", "Walkway", "connector_id",
           "data_root", "four_way_junction", "get_map", "procedural_town", "register_map"]

_REGISTERED: dict[str, LaneGraph] = {}


def register_map(lane_graph: LaneGraph) -> LaneGraph:
    """Make an imported map (OpenDRIVE, Argoverse 2, ...) known to :func:`get_map` under its name; returns the
    registered graph (the one already known, when the same map is registered again, e.g. read twice).

    :raises ValueError: when a different map is already registered under that name.
    """
    known = _REGISTERED.get(lane_graph.name)
    if known is not None and known is not lane_graph:
        if known.to_dict() != lane_graph.to_dict():
            raise ValueError(f"another map is already registered as {lane_graph.name!r}")
        return known
    _REGISTERED[lane_graph.name] = lane_graph
    return lane_graph


_JUNCTION = re.compile(r"junction4-(?P<arm>\d+(\.\d+)?)")
_TOWN = re.compile(r"town-((?P<layout>grid|irregular)-)?(?P<seed>\d+)")


def get_map(name: str) -> LaneGraph:
    """Return the map called ``name``: one given to :func:`register_map`, or a built-in or file map (built or
    read once per process; the lane graph carries ``name`` as its name).

    Known names: ``junction4-<arm length in metres>`` (e.g. ``junction4-60``), procedural towns
    ``town-<seed>`` (the seed picks the layout) or ``town-grid-<seed>`` / ``town-irregular-<seed>``, and map
    files: ``opendrive:<path to .xodr>`` (a CARLA town, e.g. ``opendrive:carla/maps/Town01.xodr``; needs the
    ``carla`` package) or ``av2:<path to log_map_archive_*.json>`` (an Argoverse 2 vector map). A relative path
    resolves against :func:`data_root`, so a scenario naming it reads the same on every machine.

    :raises ValueError: for an unknown name, or naming the file when a map file is missing or unreadable.
    """
    registered = _REGISTERED.get(name)
    return registered if registered is not None else _builtin_map(name)


def data_root() -> Path:
    """Where relative map-file paths resolve: ``$AUTOLOOP_DATA`` if set, else ``shared/data`` beside the
    repository (``<repository root>/../shared/data``)."""
    configured = os.environ.get("AUTOLOOP_DATA")
    return Path(configured) if configured else Path(__file__).resolve().parents[3] / "shared" / "data"


@functools.cache
def _builtin_map(name: str) -> LaneGraph:
    kind, _, file = name.partition(":")
    if file and kind in _FILE_KINDS:
        return _file_map(name, kind, file)
    match = _JUNCTION.fullmatch(name)
    if match is not None:
        return four_way_junction(arm_length_m=float(match["arm"]))
    match = _TOWN.fullmatch(name)
    if match is not None:
        layouts: dict[str | None, Literal["grid", "irregular"] | None] = {
            "grid": "grid", "irregular": "irregular", None: None}
        return procedural_town(int(match["seed"]), TownSpec(layout=layouts[match["layout"]]))
    raise ValueError(f"unknown map {name!r}: expected a name like 'junction4-60', 'town-7', 'town-grid-7', "
                     f"'opendrive:<file.xodr>' or 'av2:<map.json>'")


_FILE_KINDS = ("opendrive", "av2")


def _file_map(name: str, kind: str, file: str) -> LaneGraph:
    """Read the map file of a ``<kind>:<path>`` name (importers load lazily: OpenDRIVE needs ``carla``)."""
    path = Path(file)
    if not path.is_absolute():
        path = data_root() / path
    if not path.is_file():
        raise ValueError(f"map {name!r}: no file at {path} (relative paths resolve against the data root "
                         f"{data_root()}: $AUTOLOOP_DATA, else shared/data beside the repository)")
    if kind == "opendrive":
        from sim.carla.opendrive import load_opendrive

        return load_opendrive(path, name=name)
    from sim.maps.argoverse import load_av2_map

    return load_av2_map(path, name=name)
