"""The viewer's episode index: one row per episode of a store in a DuckDB table, refreshed as the store changes.

The browser's list (filters, sorting, pages) runs as SQL on this table, so a request never reads manifests.
The index reads each episode's manifest once: a refresh lists the store's partitions (``<source>/date=<day>``)
and reads only the manifests of episodes it has not seen in a partition whose modification time changed
(committing or deleting an episode renames a folder in its partition, which changes that time). Mined triggers
(``<store>/triggers/<episode_id>.parquet``) are re-read when their folder changes.

Columns of the ``episodes`` table: ``episode_id``, ``source``, ``date``, ``num_steps``, ``duration_s``,
``map_name``, ``model`` (the policy: ``expert`` or a model URI such as ``models:/driver@champion``),
``purpose`` and ``suite`` (sim episodes' tags), ``scenario_types`` (the scenario's event types; fleet logs:
their dataset), ``outcome`` (how the route ended), ``driving_score``, ``route_completion`` (percent),
``infractions`` (kinds that occurred), ``infraction_count``, ``triggers`` (kinds of the mined triggers),
``tags`` (fleet tags, and ``key=value`` of sim tags), ``traffic_seed`` and ``policy_alias``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from autoloop.episodes.store import MANIFEST, SOURCES, EpisodeStore, subfolders

log = logging.getLogger(__name__)
#: Filters of :meth:`EpisodeIndex.page`: name -> (column, whether the column is a list).
FILTERS: Mapping[str, tuple[str, bool]] = {
    "source": ("source", False), "suite": ("suite", False), "purpose": ("purpose", False),
    "scenario_type": ("scenario_types", True), "map": ("map_name", False), "model": ("model", False),
    "outcome": ("outcome", False), "infraction": ("infractions", True), "trigger": ("triggers", True),
    "tag": ("tags", True), "seed": ("traffic_seed", False),
}
SORTABLE = ("episode_id", "date", "source", "map_name", "model", "outcome", "driving_score", "route_completion",
            "duration_s", "num_steps", "infraction_count", "traffic_seed")
MAX_PAGE_SIZE = 500
#: The last page number a request may ask for (its offset stays far inside DuckDB's integers).
MAX_PAGE = 1_000_000
_SCHEMA = pa.schema([
    ("episode_id", pa.string()), ("source", pa.string()), ("date", pa.string()), ("num_steps", pa.int64()),
    ("duration_s", pa.float64()), ("map_name", pa.string()), ("model", pa.string()), ("policy_alias", pa.string()),
    ("purpose", pa.string()), ("suite", pa.string()), ("scenario_types", pa.list_(pa.string())),
    ("outcome", pa.string()), ("driving_score", pa.float64()), ("route_completion", pa.float64()),
    ("infractions", pa.list_(pa.string())), ("infraction_count", pa.int64()), ("tags", pa.list_(pa.string())),
    ("traffic_seed", pa.int64()), ("triggers", pa.list_(pa.string())),
])


class FilterError(ValueError):
    """A list request the index cannot answer (unknown filter or sort column, bad page); names the parameter."""


@dataclass(frozen=True)
class Page:
    """One page of the filtered, sorted list: ``rows`` (dicts of the index's columns and ``triggers``) of
    ``total`` matching episodes."""

    total: int
    rows: list[dict[str, Any]]


class EpisodeIndex:
    """The episodes of ``store`` as a DuckDB table (see the module docstring); thread-safe.

    :param min_refresh_s: a list request re-checks the store at most this often (and less often while re-checking
        takes longer than a tenth of that).
    """

    def __init__(self, store: EpisodeStore, *, min_refresh_s: float = 1.0, threads: int = 8) -> None:
        self.store = store
        self._root = store.root.resolve()
        self._min_refresh_s = min_refresh_s
        self._threads = threads
        self._lock = threading.Lock()
        self._partitions: dict[Path, tuple[int, set[str]]] = {}  # date folder -> (mtime, episode ids)
        self._mined: dict[Path, int] = {}  # triggers file -> mtime
        self._mined_folder_mtime = -1
        self._next_check = -float("inf")
        self._connection = duckdb.connect()
        self._connection.execute(f"CREATE TABLE episodes ({_columns_sql()})")
        self._facets: dict[str, list[Any]] = {}
        self._update_facets()

    # ------------------------------------------------------------------ refreshing
    def refresh(self, *, force: bool = False) -> bool:
        """Re-read what changed in the store (new and removed episodes, changed trigger files); whether anything
        did. The work is proportional to the changes and the number of partitions, not to the episodes."""
        with self._lock:
            now = time.monotonic()
            if not force and now < self._next_check:
                return False
            changed = self._refresh_episodes()
            changed = self._refresh_triggers() or changed
            if changed:
                self._update_facets()
            self._next_check = time.monotonic() + max(self._min_refresh_s, 9 * (time.monotonic() - now))
            return changed

    def _refresh_episodes(self) -> bool:
        seen: set[Path] = set()
        added: dict[str, Path] = {}
        removed: set[str] = set()
        for source in SOURCES:
            for day in subfolders(self.store.root / source):
                if not day.resolve().is_relative_to(self._root):  # (a partition or a source linked out)
                    continue
                seen.add(day)
                mtime = day.stat().st_mtime_ns
                known_mtime, known = self._partitions.get(day, (None, set()))
                if known_mtime == mtime:
                    continue
                names = _visible_names(day)
                # only new names are checked (a committed episode's folder is never replaced in place)
                fresh = {name: day / name for name in names - known
                         if self._inside(day / name) and (day / name / MANIFEST).is_file()}
                removed |= known - names
                added.update(fresh)
                self._partitions[day] = (mtime, (known & names) | set(fresh))
        for gone in set(self._partitions) - seen:
            removed |= self._partitions.pop(gone)[1]
        if removed:
            self._connection.execute("DELETE FROM episodes WHERE list_contains(?, episode_id)", [sorted(removed)])
        if added:
            with ThreadPoolExecutor(self._threads) as pool:  # reading files releases the GIL
                rows = [row for row in pool.map(_read_row, added.items()) if row is not None]
            unreadable = set(added) - {row["episode_id"] for row in rows}
            if unreadable:  # not listed, and read again after their partition next changes
                self._partitions = {day: (mtime, ids - unreadable) for day, (mtime, ids) in self._partitions.items()}
            mined = self._mined_kinds([row["episode_id"] for row in rows])
            for row in rows:
                row["triggers"] = mined.get(row["episode_id"], [])
            self._connection.register("added", pa.Table.from_pylist(rows, schema=_SCHEMA))
            self._connection.execute("INSERT INTO episodes SELECT * FROM added")
            self._connection.unregister("added")
        return bool(removed or added)

    def _refresh_triggers(self) -> bool:
        """Re-read the trigger files that changed since the last refresh into the ``triggers`` column."""
        folder = self.store.root / "triggers"
        mtime = folder.stat().st_mtime_ns if folder.is_dir() else -1
        if mtime == self._mined_folder_mtime:
            return False
        self._mined_folder_mtime = mtime
        files = {path: path.stat().st_mtime_ns for path in _trigger_files(folder)}
        changed = {path for path, stamp in files.items() if self._mined.get(path) != stamp}
        changed |= set(self._mined) - set(files)
        self._mined = files
        if not changed:
            return False
        kinds = self._mined_kinds([path.stem for path in changed])
        update = pa.table({"episode_id": [path.stem for path in changed],
                           "kinds": [kinds.get(path.stem, []) for path in changed]},
                          schema=pa.schema([("episode_id", pa.string()), ("kinds", pa.list_(pa.string()))]))
        self._connection.register("mined", update)
        self._connection.execute(
            "UPDATE episodes SET triggers = mined.kinds FROM mined WHERE episodes.episode_id = mined.episode_id")
        self._connection.unregister("mined")
        return True

    def _mined_kinds(self, episode_ids: list[str]) -> dict[str, list[str]]:
        """Episode id -> sorted distinct kinds of its mined triggers (for those that have a trigger file)."""
        folder = self.store.root / "triggers"
        found = {}
        for episode_id in episode_ids:
            path = folder / f"{episode_id}.parquet"
            if path.is_file() and not path.is_symlink():
                kinds = pq.ParquetFile(path).read(columns=["kind"]).column("kind").to_pylist()
                found[episode_id] = sorted({str(kind) for kind in kinds})
        return found

    def _inside(self, path: Path) -> bool:
        """Whether ``path`` (perhaps a symbolic link) lies inside the store."""
        return not path.is_symlink() or path.resolve().is_relative_to(self._root)

    def _update_facets(self) -> None:
        self._facets = {}
        for name, (column, is_list) in FILTERS.items():
            values = f"unnest({column})" if is_list else column
            result = self._connection.execute(
                f"SELECT DISTINCT v FROM (SELECT {values} AS v FROM episodes) WHERE v IS NOT NULL ORDER BY v LIMIT 1000"
            ).fetchall()
            self._facets[name] = [value for (value,) in result]
        aliases = self._connection.execute(
            "SELECT DISTINCT policy_alias FROM episodes WHERE policy_alias IS NOT NULL ORDER BY 1").fetchall()
        self._facets["model"] = [*(f"@{alias}" for (alias,) in aliases), *self._facets["model"]]

    # ------------------------------------------------------------------ reading
    def facets(self) -> dict[str, list[Any]]:
        """Filter name -> the values it can take (at most 1000 each); ``model`` also lists ``@<alias>``."""
        self.refresh()
        with self._lock:
            return dict(self._facets)

    def page(self, filters: Mapping[str, str], *, sort: str = "episode_id", descending: bool = False,
             page: int = 1, page_size: int = 50, text: str = "") -> Page:
        """Episodes matching every filter (a list column matches when it holds the value; ``model=@alias``
        matches that alias of any model), sorted, one page of them (pages count from 1).

        :param text: a substring of the episode id.
        :raises FilterError: naming the parameter, for an unknown filter or sort column, or a bad page.
        """
        unknown = sorted(set(filters) - set(FILTERS))
        if unknown:
            raise FilterError(f"unknown filter(s) {unknown}; expected some of {sorted(FILTERS)}")
        if sort not in SORTABLE:
            raise FilterError(f"sort: unknown column {sort!r}; expected one of {SORTABLE}")
        if not 1 <= page <= MAX_PAGE or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise FilterError(f"page must be in 1..{MAX_PAGE} and page_size in 1..{MAX_PAGE_SIZE} "
                              f"(got {page}, {page_size})")
        where: list[str] = []
        parameters: list[str | int] = []
        for name, value in filters.items():
            column, is_list = FILTERS[name]
            if name == "model" and value.startswith("@"):
                where.append("policy_alias = ?")
                parameters.append(value[1:])
            elif name == "seed":
                try:
                    parameters.append(int(value))
                except ValueError:
                    raise FilterError(f"seed: expected an integer, got {value!r}") from None
                where.append("traffic_seed = ?")
            else:
                where.append(f"list_contains({column}, ?)" if is_list else f"{column} = ?")
                parameters.append(value)
        if text:
            where.append("contains(episode_id, ?)")
            parameters.append(text)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        order = f"{sort} {'DESC' if descending else 'ASC'} NULLS LAST, episode_id"
        self.refresh()
        with self._lock:
            cursor = self._connection.cursor()
            (total,) = cursor.execute(f"SELECT count(*) FROM episodes {clause}", parameters).fetchone() or (0,)
            cursor.execute(f"SELECT * FROM episodes {clause} ORDER BY {order} LIMIT ? OFFSET ?",
                           [*parameters, page_size, (page - 1) * page_size])
            rows = _dicts(cursor)
        return Page(total=int(total), rows=rows)

    def uses_map(self, map_name: str) -> bool:
        """Whether some episode in the store drives on ``map_name`` (refreshing first)."""
        self.refresh()
        with self._lock:
            cursor = self._connection.cursor()
            found = cursor.execute("SELECT 1 FROM episodes WHERE map_name = ? LIMIT 1", [map_name]).fetchone()
        return found is not None

    def get(self, episode_id: str) -> dict[str, Any] | None:
        """The index row of one episode (refreshing first), or ``None``."""
        self.refresh()
        with self._lock:
            cursor = self._connection.cursor()
            rows = _dicts(cursor.execute("SELECT * FROM episodes WHERE episode_id = ?", [episode_id]))
        return rows[0] if rows else None


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _row(episode_id: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The index row of one episode (its folder's name is its id, as for the store), from its manifest."""
    metadata = manifest["metadata"]
    scenario = metadata.get("scenario") or {}
    score, record = metadata.get("score") or {}, metadata.get("record") or {}
    raw_tags = metadata.get("tags") or {}
    tags = [f"{k}={v}" for k, v in sorted(raw_tags.items())] if isinstance(raw_tags, dict) else list(raw_tags)
    sim_tags = raw_tags if isinstance(raw_tags, dict) else {}
    infractions = {kind: int(count) for kind, count in (record.get("infractions") or {}).items() if count}
    dt_s = metadata.get("dt_s")
    policy = metadata.get("policy")
    types = [str(event.get("type")) for event in scenario.get("events") or ()]
    if not scenario and metadata.get("dataset"):
        types = [str(metadata["dataset"])]
    return {
        "episode_id": episode_id, "source": manifest["source"], "date": manifest["date"],
        "num_steps": manifest["num_steps"],
        "duration_s": metadata.get("duration_s", manifest["num_steps"] * dt_s if dt_s else None),
        "map_name": metadata.get("map_name"), "model": policy,
        "policy_alias": policy.rpartition("@")[2] if isinstance(policy, str) and "@" in policy else None,
        "purpose": sim_tags.get("purpose"), "suite": sim_tags.get("suite"),
        "scenario_types": sorted(set(types)), "outcome": record.get("status"),
        "driving_score": score.get("driving_score"), "route_completion": score.get("route_completion"),
        "infractions": sorted(infractions), "infraction_count": sum(infractions.values()), "tags": tags,
        "traffic_seed": scenario.get("traffic_seed"),
    }


def _read_row(item: tuple[str, Path]) -> dict[str, Any] | None:
    """The index row of the episode in a folder, or ``None`` (logged) when its manifest is unreadable."""
    episode_id, folder = item
    path = folder / MANIFEST
    try:
        return _row(episode_id, json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("%s: not listed, the manifest is unreadable (%s: %s)", path, type(error).__name__, error)
        return None


def _trigger_files(folder: Path) -> list[Path]:
    """``<store>/triggers/*.parquet`` (no hidden or linked files)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    return [Path(e.path) for e in entries if e.name.endswith(".parquet") and not e.name.startswith(".")
            and e.is_file(follow_symlinks=False)]


def _columns_sql() -> str:
    types = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.list_(pa.string()): "VARCHAR[]"}
    return ", ".join(f"{field.name} {types[field.type]}" for field in _SCHEMA)


def _visible_names(folder: Path) -> set[str]:
    """Names of the visible sub-folders (no ``Path`` per entry: partitions hold many)."""
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries if entry.is_dir() and not entry.name.startswith(".")}
    except FileNotFoundError:
        return set()
