"""The episode store: one Parquet file per episode, written atomically.

Layout: ``<root>/<source>/<episode_id>.parquet`` (``source`` is ``sim`` or ``fleet``). A file is written to a
hidden temporary name in the same folder, fsynced, then renamed into place, so a reader never sees a
half-written episode; readers ignore hidden files.

Schema version 1 — one row per simulation step:

==================  =============================  =============================================
column              type                           meaning
==================  =============================  =============================================
step                int32                          step index from 0
time_s              float32                        simulation time
x_m, y_m            float64                        ego position, map frame
yaw_rad             float32                        ego heading, map frame
speed_mps           float32                        ego speed
steer_rad           float32                        ego steering angle
accel_mps2          float32                        applied acceleration
route_progress_m    float32                        arc length along the route
action              fixed_size_list<float32>[2]    executed ``[steer, accel]`` in [-1, 1]
label               fixed_size_list<float32>[2]    expert's ``[steer, accel]``
obs_state           fixed_size_list<float32>[S]    state vector
obs_bev             binary                         BEV, ``numpy.packbits`` of ``(C, H, W)`` 0/1 bytes
==================  =============================  =============================================

``label``, ``obs_state`` and ``obs_bev`` are present only in episodes recorded for training.

Episode metadata (JSON in the Parquet key-value metadata under ``autoloop``): ``schema_version``,
``episode_id``, ``source``, ``map_name``, ``scenario`` (the scenario as data), ``policy``, ``tags``, ``dt_s``,
``bev_shape``, ``record`` (the Leaderboard route record), ``score`` and ``events``.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

SCHEMA_VERSION = 1
METADATA_KEY = b"autoloop"
SOURCES = ("sim", "fleet")
_EPISODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass
class Episode:
    """One episode in memory: per-step columns plus metadata.

    :param episode_id: unique id (letters, digits, ``_ . -``).
    :param source: ``sim`` or ``fleet``.
    :param steps: column name -> per-step array (see the module's schema table).
    :param metadata: JSON-serializable episode metadata.
    :param actors: long format, one row per (step, actor) where the actor is known (``step``, ``actor_id``,
        ``kind``, ``x_m``, ``y_m``, ``yaw_rad``, ``length_m``, ``width_m``, ``speed_mps``, ``observed``).
    :param events: one row per event (``time_s``, ``kind``, ``x_m``, ``y_m``, ``actor_id``, ``detail``).
    """

    episode_id: str
    source: str
    steps: dict[str, NDArray[Any]]
    metadata: dict[str, Any] = field(default_factory=dict)
    actors: dict[str, NDArray[Any]] | None = None
    events: dict[str, NDArray[Any]] | None = None

    @property
    def num_steps(self) -> int:
        return len(self.steps["step"])


def new_episode_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class EpisodeStore:
    """Episodes under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, source: str, episode_id: str) -> Path:
        if source not in SOURCES:
            raise ValueError(f"unknown episode source {source!r}; expected one of {SOURCES}")
        if not _EPISODE_ID.fullmatch(episode_id):
            raise ValueError(f"invalid episode id {episode_id!r}")
        return self.root / source / f"{episode_id}.parquet"

    def write(self, episode: Episode) -> Path:
        """Write an episode atomically; refuses to overwrite an existing one."""
        final = self.path(episode.source, episode.episode_id)
        if final.exists():
            raise FileExistsError(f"episode {episode.episode_id} already exists at {final}")
        final.parent.mkdir(parents=True, exist_ok=True)
        table = _to_table(episode)
        temporary = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(temporary, "wb") as handle:
                pq.write_table(table, handle, compression="zstd")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_dir(final.parent)
        return final

    def episode_ids(self, source: str | None = None) -> list[str]:
        """Ids of every complete episode (sorted), optionally of one source."""
        return sorted(path.stem for path in self._files(source))

    def read(self, episode_id: str, *, columns: list[str] | None = None) -> Episode:
        """Read one episode (optionally only some columns)."""
        for source in SOURCES:
            path = self.path(source, episode_id)
            if path.exists():
                return _from_table(pq.read_table(path, columns=columns), path)
        raise KeyError(f"no episode {episode_id!r} in {self.root}")

    def num_steps(self, episode_id: str) -> int:
        """Steps in a stored episode (from the file footer)."""
        return int(pq.read_metadata(self.file(episode_id)).num_rows)

    def metadata(self, source: str | None = None) -> dict[str, dict[str, Any]]:
        """Episode id -> metadata of every complete episode (reads only file footers)."""
        found = {}
        for path in self._files(source):
            found[path.stem] = _metadata(pq.read_schema(path), path)
        return found

    def file(self, episode_id: str) -> Path:
        """Path of a stored episode."""
        for source in SOURCES:
            path = self.path(source, episode_id)
            if path.exists():
                return path
        raise KeyError(f"no episode {episode_id!r} in {self.root}")

    def _files(self, source: str | None) -> Iterator[Path]:
        for name in (source,) if source else SOURCES:
            folder = self.root / name
            if folder.is_dir():
                yield from (p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def _to_table(episode: Episode) -> pa.Table:
    columns: dict[str, pa.Array] = {}
    for name, values in episode.steps.items():
        if name == "obs_bev":
            columns[name] = pa.array([row.tobytes() for row in values], type=pa.binary())
        elif values.ndim == 2:
            flat = pa.array(values.reshape(-1).astype(np.float32))
            columns[name] = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
        else:
            columns[name] = pa.array(values)
    metadata = {"schema_version": SCHEMA_VERSION, "episode_id": episode.episode_id, "source": episode.source,
                **episode.metadata}
    return pa.table(columns).replace_schema_metadata({METADATA_KEY: json.dumps(metadata).encode()})


def _metadata(schema: pa.Schema, path: Path) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path}: not an autoloop episode (no '{METADATA_KEY.decode()}' metadata)")
    metadata: dict[str, Any] = json.loads(raw)
    if metadata.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version {metadata.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    return metadata


def _from_table(table: pa.Table, path: Path) -> Episode:
    metadata = _metadata(table.schema, path)
    steps: dict[str, NDArray[Any]] = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if name == "obs_bev":
            steps[name] = np.stack([np.frombuffer(v, dtype=np.uint8) for v in column.to_pylist()])
        elif pa.types.is_fixed_size_list(column.type):
            width = column.type.list_size
            steps[name] = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
        else:
            steps[name] = column.to_numpy(zero_copy_only=False)
    episode_id, source = metadata.pop("episode_id"), metadata.pop("source")
    metadata.pop("schema_version")
    return Episode(episode_id=episode_id, source=source, steps=steps, metadata=metadata)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
