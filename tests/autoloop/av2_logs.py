"""The Argoverse 2 logs of the shared data, for the fleet tests."""

from __future__ import annotations

import functools
from pathlib import Path

from autoloop.fleet.av2 import read_map
from sim.maps import LaneGraph, register_map


def logs(shared_data: Path) -> list[Path]:
    """Every AV2 log folder: the sensor logs, then the motion-forecasting scenarios."""
    root = shared_data / "av2"
    return sorted((root / "sensor").iterdir()) + sorted((root / "forecasting").iterdir())


@functools.cache
def log_map(log_dir: Path) -> LaneGraph:
    """The log's map, read and registered once per test process."""
    return register_map(read_map(log_dir))
