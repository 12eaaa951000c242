"""The episode store: Parquet (zstd) tables per episode, partitioned by source and date, committed atomically.

Layout (schema version 2)::

    <root>/<source>/date=YYYY-MM-DD/<episode_id>/ego.parquet      one row per step
                                                /actors.parquet   one row per (step, actor); only if given
                                                /events.parquet   one row per event; only if given
                                                /episode.json     the commit marker: the episode's manifest
    <root>/maps/<map id>.json                                     lane graphs, stored once by id

``source`` is ``sim`` (the embedded simulator), ``fleet`` (real logs) or ``carla`` (driven in a CARLA server);
``date`` is the UTC day the episode was written. A writer stages every file in a hidden folder
(``.<episode_id>.<pid>.<random>.tmp``) beside the final one, fsyncs each file, writes the manifest ``episode.json``
last, then renames the folder into place: the rename is atomic and fails when the episode's folder already exists,
so of several processes writing one episode id exactly one wins (the others get ``FileExistsError``) and a reader
(which lists only folders holding ``episode.json`` and skips hidden ones) never sees a half-written episode. An id
is refused when any partition already holds it; two writers racing with one id on different days (around midnight
UTC) are not excluded.

The manifest ``episode.json`` holds ``schema_version``, ``episode_id``, ``source``, ``date``, ``num_steps``,
``tables`` (per table: ``file``, ``rows``, ``sha256`` of the file), ``metadata`` (the episode's metadata) and, for an
episode that holds observations (``obs_state``, ``obs_bev``), their ``observation_format``
(:data:`sim.scene.observation.OBSERVATION_FORMAT` when it was written): training refuses the observations of
another format (:func:`autoloop.episodes.dataset.read_snapshot_columns`).

``ego`` — per step, map frame (x east, y north, yaw counter-clockwise from +x):

==================  =============================  ===================================================
column              type                           meaning
==================  =============================  ===================================================
step                int32                          step index from 0
time_s              float32                        time since the episode's start
x_m, y_m            float64                        ego position
yaw_rad             float32                        ego heading
speed_mps           float32                        ego speed
accel_mps2          float32                        longitudinal acceleration
yaw_rate_radps      float32                        yaw rate (optional)
steer_rad           float32                        steering angle (optional)
route_progress_m    float32                        arc length along the route (optional)
action              fixed_size_list<float32>[2]    executed ``[steer, accel]`` in [-1, 1] (optional)
label               fixed_size_list<float32>[2]    expert's ``[steer, accel]`` (training episodes)
obs_state           fixed_size_list<float32>[S]    state vector (training episodes)
obs_bev             fixed_size_binary[bytes]       BEV, ``numpy.packbits`` of ``(C, H, W)`` 0/1 (training)
intervention        bool                           fleet logs: a disengagement/takeover at this step
light_states        fixed_size_list<float32>[G]    sim: state of each traffic-light group of the map
                                                   (``sim.embedded.traffic.LightState``: 0 green, 1 yellow,
                                                   2 red), indexed like ``LaneGraph.stop_lines()``'s groups
                                                   (optional; maps without lights have none)
plan_xy             fixed_size_list<float32>[2K]   the driver's planned waypoints, map frame, flattened
                                                   ``x0, y0, x1, y1, ...`` (rollouts of a driver that plans,
                                                   ``policies.base.Planner``; the viewer draws them)
==================  =============================  ===================================================

``actors`` — per (step, actor): ``step`` int32 (index into ``ego``), ``actor_id`` string, ``kind`` string
(``vehicle``, ``pedestrian``, ``cyclist``, ``static``, ``other``), ``x_m``, ``y_m`` float64 (map frame),
``yaw_rad``, ``length_m``, ``width_m``, ``speed_mps`` float32, ``observed`` bool.

``events`` — per event: ``time_s`` float32, ``kind`` string (a ``sim.metrics.Infraction`` value,
``intervention`` or ``trigger:<name>``), ``x_m``, ``y_m`` float64, ``actor_id`` string (``""`` for none),
``detail`` string (JSON text or ``""``).

Metadata (JSON): sim episodes carry ``map_name``, ``scenario`` (the scenario as data), ``policy``, ``tags``,
``dt_s``, ``bev_shape`` (with ``bev_resolution_m`` and ``bev_ego_row``: where the ego is in it), ``record`` (the
Leaderboard route record, with how the route ended) and ``score``, and an ``events`` table of their infractions;
fleet episodes
``map_name``, ``origin``, ``origin_sha256``, ``dataset``, ``dt_s``, ``duration_s``, ``tags``, ``synthetic``.

Schema version 1 stored one file per episode (``<root>/<source>/<episode_id>.parquet``, metadata in the file);
this store refuses such files with an error naming one and :meth:`EpisodeStore.migrate_v1` converts them.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from autoloop.episodes.schema import SCHEMA_VERSION, SchemaError, file_entry, from_table, read_table, to_table
from sim.scene.observation import OBSERVATION_FORMAT

if TYPE_CHECKING:
    from sim.maps import LaneGraph

log = logging.getLogger(__name__)
SOURCES = ("sim", "fleet", "carla")
MANIFEST = "episode.json"
#: What every manifest holds.
_MANIFEST_KEYS = ("schema_version", "episode_id", "source", "date", "num_steps", "metadata", "tables")
#: The ego columns that hold observations, whose format the manifest records.
OBSERVATION_COLUMNS = ("obs_state", "obs_bev")
_EPISODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass
class Episode:
    """One episode in memory: per-step ego columns, optional actors and events, and metadata.

    :param episode_id: unique id (letters, digits, ``_ . -``).
    :param source: ``sim``, ``fleet`` or ``carla``.
    :param steps: the ego table: column name -> per-step array (see the module's schema table).
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
    """Episodes (and the maps they drive on) under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ writing
    def write(self, episode: Episode) -> Path:
        """Write an episode atomically (see the module docstring); returns its folder.

        :raises FileExistsError: when the store already holds an episode with this id.
        """
        _check_name(episode.source, episode.episode_id)
        if self._find(episode.episode_id) is not None:
            raise FileExistsError(f"episode {episode.episode_id} already exists in {self.root}")
        given = {"ego": episode.steps, "actors": episode.actors, "events": episode.events}
        tables = {name: to_table(name, columns, episode_id=episode.episode_id)
                  for name, columns in given.items() if columns is not None}
        observed = any(column in episode.steps for column in OBSERVATION_COLUMNS)
        return self._commit(episode, tables, datetime.now(UTC).date().isoformat(),
                            observation_format=OBSERVATION_FORMAT if observed else None)

    def write_many(self, episodes: Sequence[Episode], *, threads: int = 4) -> list[Path]:
        """Write episodes (each atomically, as :meth:`write`) with a few threads, so that one episode's fsyncs
        overlap the next one's encoding; returns their folders in order. A failure is raised once the others have
        been tried; the episodes that were written stay."""
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(self.write, episodes))

    def _commit(self, episode: Episode, tables: dict[str, pa.Table], date: str, *,
                observation_format: int | None = None) -> Path:
        final = self.root / episode.source / f"date={date}" / episode.episode_id
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.with_name(f".{episode.episode_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        staging.mkdir()
        try:
            entries = {name: _write_parquet(table, staging / f"{name}.parquet") for name, table in tables.items()}
            manifest = {"schema_version": SCHEMA_VERSION, "episode_id": episode.episode_id,
                        "source": episode.source, "date": date, "num_steps": tables["ego"].num_rows,
                        "tables": entries, "metadata": episode.metadata}
            if observation_format is not None:
                manifest["observation_format"] = observation_format
            _write_durably(staging / MANIFEST, json.dumps(manifest).encode())
            _fsync_dir(staging)
            try:
                os.rename(staging, final)
            except OSError as error:
                if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise FileExistsError(f"episode {episode.episode_id} already exists at {final}") from None
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _fsync_dir(final.parent)
        return final

    def delete(self, episode_id: str) -> None:
        """Remove an episode (it disappears at once: its folder is renamed to a hidden name, then removed)."""
        folder = self.folder(episode_id)
        hidden = folder.with_name(f".{episode_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}.deleted")
        os.rename(folder, hidden)
        shutil.rmtree(hidden)

    # ------------------------------------------------------------------ reading
    def episode_ids(self, source: str | None = None) -> list[str]:
        """Ids of every complete episode (sorted), optionally of one source."""
        return sorted(self.folders(source))

    def folders(self, source: str | None = None) -> dict[str, Path]:
        """Episode id -> folder of every complete episode, optionally of one source."""
        return {folder.name: folder for folder in self._folders(source)}

    def manifests(self, source: str | None = None) -> dict[str, dict[str, Any]]:
        """Episode id -> manifest (``episode.json``) of every complete episode; an episode whose manifest does not
        read is left out, with a warning naming its file."""
        found = {}
        for folder in self._folders(source):
            try:
                found[folder.name] = _read_manifest(folder / MANIFEST)
            except (SchemaError, OSError) as error:
                log.warning("skipped a damaged episode: %s", error)
        return found

    def metadata(self, source: str | None = None) -> dict[str, dict[str, Any]]:
        """Episode id -> metadata of every complete episode (reads only the manifests)."""
        return {episode_id: manifest["metadata"] for episode_id, manifest in self.manifests(source).items()}

    def manifest(self, episode_id: str) -> dict[str, Any]:
        return _read_manifest(self.file(episode_id))

    def num_steps(self, episode_id: str) -> int:
        """Steps in a stored episode (from its manifest)."""
        return int(self.manifest(episode_id)["num_steps"])

    def read(self, episode_id: str, *, columns: list[str] | None = None) -> Episode:
        """Read one episode; with ``columns``, only those ego columns (and neither actors nor events)."""
        manifest = self.manifest(episode_id)
        folder = self.folder(episode_id)
        tables = {name: from_table(read_table(folder / entry["file"], columns if name == "ego" else None))
                  for name, entry in manifest["tables"].items() if columns is None or name == "ego"}
        return Episode(episode_id=episode_id, source=manifest["source"], steps=tables["ego"],
                       metadata=manifest["metadata"], actors=tables.get("actors"), events=tables.get("events"))

    def folder(self, episode_id: str) -> Path:
        """The folder of a stored episode."""
        folder = self._find(episode_id)
        if folder is None:
            raise KeyError(f"no episode {episode_id!r} in {self.root}")
        return folder

    def file(self, episode_id: str) -> Path:
        """The manifest (commit marker) of a stored episode: it names and hashes every file of the episode."""
        return self.folder(episode_id) / MANIFEST

    def files(self, episode_id: str) -> dict[str, Path]:
        """Table name -> Parquet file of a stored episode."""
        manifest = self.manifest(episode_id)
        return {name: self.table_path(manifest, name) for name in manifest["tables"]}

    def table_path(self, manifest: dict[str, Any], table: str) -> Path:
        """The Parquet file of one table of the episode a manifest describes."""
        folder: Path = self.root / manifest["source"] / f"date={manifest['date']}" / manifest["episode_id"]
        return folder / str(manifest["tables"][table]["file"])

    def query(self, sql: str) -> pa.Table:
        """Run DuckDB SQL over the views ``episodes``, ``ego``, ``actors``, ``events`` and ``triggers``
        (see :mod:`autoloop.episodes.query`)."""
        from autoloop.episodes.query import query

        return query(self, sql)

    # ------------------------------------------------------------------ maps
    def put_map(self, lane_graph: LaneGraph) -> str:
        """Store a lane graph once under ``maps/<name>.json``; returns its id (the name).

        :raises ValueError: when another map is stored under that name.
        """
        text = json.dumps(lane_graph.to_dict(), sort_keys=True)
        path = self._map_path(lane_graph.name)
        if path.exists():
            if path.read_text() != text:
                raise ValueError(f"map {lane_graph.name!r}: a different map is already stored at {path}")
            return lane_graph.name
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            _write_durably(temporary, text.encode())
            os.link(temporary, path)  # fails if another writer stored it meanwhile
        except FileExistsError:
            if path.read_text() != text:
                raise ValueError(f"map {lane_graph.name!r}: a different map is already stored at {path}") from None
        finally:
            temporary.unlink(missing_ok=True)
        return lane_graph.name

    def get_map(self, map_id: str) -> LaneGraph:
        """A lane graph stored with :meth:`put_map`."""
        from sim.maps import LaneGraph

        path = self._map_path(map_id)
        if not path.is_file():
            raise KeyError(f"no map {map_id!r} in {self.root} (expected {path})")
        return LaneGraph.from_dict(json.loads(path.read_text()))

    def _map_path(self, map_id: str) -> Path:
        from urllib.parse import quote

        return self.root / "maps" / f"{quote(map_id, safe=':')}.json"

    # ------------------------------------------------------------------ schema 1
    def migrate_v1(self) -> list[str]:
        """Convert every schema-1 episode file to the current layout (dated by the file's modification time)
        and remove it; returns the converted ids."""
        converted = []
        for path in self._v1_files():
            table = read_table(path)
            metadata = file_entry(table.schema, path)
            episode_id, source = metadata.pop("episode_id"), metadata.pop("source")
            metadata.pop("schema_version")
            episode = Episode(episode_id=episode_id, source=source, steps=from_table(table), metadata=metadata)
            if self._find(episode.episode_id, check_v1=False) is None:
                date = datetime.fromtimestamp(path.stat().st_mtime, UTC).date().isoformat()
                self._commit(episode, {"ego": to_table("ego", episode.steps, episode_id=episode.episode_id)}, date)
            path.unlink()
            converted.append(episode.episode_id)
        return converted

    def _v1_files(self) -> list[Path]:
        return sorted(path for source in SOURCES for path in (self.root / source).glob("*.parquet")
                      if not path.name.startswith("."))

    def _check_v1(self) -> None:
        old = self._v1_files()
        if old:
            raise SchemaError(
                f"{old[0]}: an episode file of schema version 1 ({len(old)} in {self.root}); this autoloop "
                f"reads schema version {SCHEMA_VERSION}. Convert them with `autoloop episodes migrate --home "
                f"{self.root.parent}` or move {self.root} away.")

    # ------------------------------------------------------------------ layout
    def _folders(self, source: str | None) -> Iterator[Path]:
        self._check_v1()
        for name in (source,) if source else SOURCES:
            for day in subfolders(self.root / name):
                for folder in subfolders(day):
                    if (folder / MANIFEST).is_file():
                        yield folder

    def _find(self, episode_id: str, *, check_v1: bool = True) -> Path | None:
        if check_v1:
            self._check_v1()
        for source in SOURCES:
            for day in subfolders(self.root / source):
                if (day / episode_id / MANIFEST).is_file():
                    return day / episode_id
        return None


def _check_name(source: str, episode_id: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"unknown episode source {source!r}; expected one of {SOURCES}")
    if not _EPISODE_ID.fullmatch(episode_id):
        raise ValueError(f"invalid episode id {episode_id!r}")


def subfolders(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted (none when ``folder`` does not exist)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    return sorted(Path(e.path) for e in entries if e.is_dir() and not e.name.startswith("."))


def _read_manifest(path: Path) -> dict[str, Any]:
    """A manifest, checked for what every reader needs.

    :raises SchemaError: naming the file, when it is not JSON, not a manifest, or of another schema version.
    """
    try:
        manifest: Any = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SchemaError(f"{path}: not valid JSON ({error})") from None
    missing = [key for key in _MANIFEST_KEYS if key not in manifest] if isinstance(manifest, dict) else ["(all)"]
    if missing:
        raise SchemaError(f"{path}: not an episode manifest (lacks {', '.join(missing)})")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise SchemaError(f"{path}: schema_version {manifest.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    return dict(manifest)


def _write_parquet(table: pa.Table, path: Path) -> dict[str, Any]:
    """Write a table as zstd Parquet (durably); its manifest entry."""
    sink = pa.BufferOutputStream()
    # dictionaries only for strings: tried on floats they cost 3x the time and 40 % more bytes
    strings = [field.name for field in table.schema if pa.types.is_string(field.type)]
    pq.write_table(table, sink, compression="zstd", use_dictionary=strings)
    data = sink.getvalue()
    _write_durably(path, data)
    return {"file": path.name, "rows": table.num_rows, "sha256": hashlib.sha256(data).hexdigest()}


def _write_durably(path: Path, data: bytes | pa.Buffer) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
