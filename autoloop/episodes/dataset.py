"""Dataset snapshots: immutable manifests of episodes, identified by a content hash.

A snapshot lists episode ids with the SHA-256 of each episode's manifest (its ``episode.json``, which holds the
SHA-256 of each of the episode's Parquet files), the filters that chose them and the schema version; its digest is
the SHA-256 of that manifest. Loading training arrays checks every episode's manifest against the snapshot and
every file it reads against the episode's manifest, so a model's lineage always points at exactly the data it was
trained on, and refuses observations of another observation format than this code's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from autoloop.episodes.schema import SCHEMA_VERSION, from_table, read_table
from autoloop.episodes.store import MANIFEST, OBSERVATION_COLUMNS, EpisodeStore
from sim.scene.observation import check_observation_format

#: The ego columns training reads.
TRAINING_COLUMNS = ["obs_bev", "obs_state", "label"]


#: The part of a snapshot's episodes that no part given to :func:`create_snapshot` names.
BASE_PART = "base"


@dataclass(frozen=True)
class SnapshotPart:
    """A named group of a snapshot's episodes.

    :param name: unique among the snapshot's parts.
    :param reason: why these episodes are in the dataset (free text: "DAgger round 2", "failures of cycle 7").
    :param episode_ids: the part's episodes.
    :param weight: sampling weight (> 0): training repeats each of the part's samples this many times as often as
        a sample of weight 1 (multiplied into the repeat factors of :mod:`autoloop.training.balance`).
    """

    name: str
    reason: str
    episode_ids: tuple[str, ...]
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a snapshot part needs a name")
        if not (math.isfinite(self.weight) and self.weight > 0.0):
            raise ValueError(f"snapshot part {self.name!r}: weight {self.weight}, expected a finite number > 0")


@dataclass(frozen=True)
class DatasetSnapshot:
    """A stored manifest.

    :param digest: SHA-256 (hex) of the manifest.
    :param path: where the manifest lies.
    :param episode_ids: episodes in the snapshot.
    :param num_steps: total steps over the episodes.
    :param filters: how the episodes were chosen.
    :param parts: its parts, by name (empty: a snapshot made without parts, every episode of weight 1).
    """

    digest: str
    path: Path
    episode_ids: tuple[str, ...]
    num_steps: int
    filters: dict[str, Any]
    parts: tuple[SnapshotPart, ...] = ()

    def weights(self) -> dict[str, float]:
        """Each episode's sampling weight: its part's (1 without parts)."""
        weights = dict.fromkeys(self.episode_ids, 1.0)
        for part in self.parts:
            weights.update(dict.fromkeys(part.episode_ids, part.weight))
        return weights


def unpack_bev(packed: NDArray[np.uint8], rows: NDArray[np.intp], shape: tuple[int, int, int]) -> NDArray[np.uint8]:
    """Rows of ``numpy.packbits``-packed BEVs (``(N, bytes)``, as the store keeps ``obs_bev``) unpacked to
    ``(len(rows), C, H, W)``."""
    size = int(np.prod(shape))
    unpacked: NDArray[np.uint8] = np.unpackbits(packed[rows], axis=1, count=size).reshape((len(rows), *shape))
    return unpacked


@dataclass(frozen=True)
class TrainingArrays:
    """Behaviour-cloning samples: packed BEVs ``(N, bytes)``, states ``(N, S)``, expert labels ``(N, 2)``."""

    bev_packed: NDArray[np.uint8]
    bev_shape: tuple[int, int, int]
    state: NDArray[np.float32]
    label: NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.label)

    def bev(self, rows: NDArray[np.intp]) -> NDArray[np.uint8]:
        """Unpacked BEVs ``(len(rows), C, H, W)``."""
        return unpack_bev(self.bev_packed, rows, self.bev_shape)


def create_snapshot(store: EpisodeStore, folder: Path, episode_ids: Sequence[str], filters: dict[str, Any], *,
                    parts: Sequence[SnapshotPart] | None = None) -> DatasetSnapshot:
    """Write (or find) the snapshot of ``episode_ids`` under ``folder``.

    :param parts: groups of ``episode_ids`` with their reasons and weights; the episodes no part names form the
        part ``base`` (no reason, weight 1). ``None``: a snapshot without parts (every episode of weight 1).
    :raises ValueError: for an episode of a part that is not in ``episode_ids``, in two parts, or left for
        ``base`` when a part is already named so; for two parts of one name.
    """
    if not episode_ids:
        raise ValueError("a dataset snapshot needs at least one episode")
    folders = store.folders()
    entries = []
    for episode_id in sorted(episode_ids):
        if episode_id not in folders:
            raise KeyError(f"no episode {episode_id!r} in {store.root}")
        marker = (folders[episode_id] / MANIFEST).read_bytes()
        entries.append({"episode_id": episode_id, "sha256": hashlib.sha256(marker).hexdigest(),
                        "steps": json.loads(marker)["num_steps"]})
    manifest: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "filters": filters, "episodes": entries}
    if parts is not None:
        manifest["parts"] = [{"name": part.name, "reason": part.reason, "weight": part.weight,
                              "episode_ids": sorted(part.episode_ids)}
                             for part in _complete_parts(parts, episode_ids)]
    text = json.dumps(manifest, sort_keys=True, indent=1)
    digest = hashlib.sha256(text.encode()).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.json"
    if not path.exists():
        temporary = folder / f".{digest}.{os.getpid()}.tmp"
        temporary.write_text(text)
        os.replace(temporary, path)
    return load_snapshot(path)


def _complete_parts(parts: Sequence[SnapshotPart], episode_ids: Sequence[str]) -> list[SnapshotPart]:
    """``parts`` checked against ``episode_ids`` and completed by the ``base`` part, sorted by name."""
    names = [part.name for part in parts]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"two snapshot parts are named {name!r}")
    wanted = set(episode_ids)
    owner: dict[str, str] = {}
    for part in parts:
        for episode_id in part.episode_ids:
            if episode_id not in wanted:
                raise ValueError(f"episode {episode_id!r} of snapshot part {part.name!r} is not among the "
                                 "snapshot's episodes")
            if episode_id in owner:
                raise ValueError(f"episode {episode_id!r} is in two snapshot parts, {owner[episode_id]!r} and "
                                 f"{part.name!r}: an episode belongs to one part")
            owner[episode_id] = part.name
    rest = tuple(sorted(wanted - owner.keys()))
    complete = list(parts)
    if rest:
        if BASE_PART in names:
            raise ValueError(f"episode {rest[0]!r} is in no snapshot part, and the part {BASE_PART!r} that would "
                             "take it is given: name it in a part")
        complete.append(SnapshotPart(name=BASE_PART, reason="", episode_ids=rest))
    return sorted(complete, key=lambda part: part.name)


def load_snapshot(path: Path) -> DatasetSnapshot:
    """Read a snapshot manifest and check its digest."""
    text = Path(path).read_text()
    digest = hashlib.sha256(text.encode()).hexdigest()
    if Path(path).stem != digest:
        raise ValueError(f"dataset snapshot {path}: content hash {digest} does not match its name")
    manifest = json.loads(text)
    return DatasetSnapshot(
        digest=digest,
        path=Path(path),
        episode_ids=tuple(entry["episode_id"] for entry in manifest["episodes"]),
        num_steps=sum(entry["steps"] for entry in manifest["episodes"]),
        filters=manifest["filters"],
        parts=tuple(SnapshotPart(name=part["name"], reason=part["reason"], episode_ids=tuple(part["episode_ids"]),
                                 weight=float(part["weight"])) for part in manifest.get("parts", ())),
    )


def load_training_arrays(store: EpisodeStore, snapshot: DatasetSnapshot) -> TrainingArrays:
    """Concatenate the labelled observations of every episode in a snapshot, checking each episode's manifest
    against the snapshot and each ego file against its episode's manifest."""
    episodes = read_snapshot_columns(store, snapshot, TRAINING_COLUMNS)
    bev_shape = _bev_shape(episodes)
    return TrainingArrays(
        bev_packed=np.concatenate([columns["obs_bev"] for _, columns in episodes]),
        bev_shape=bev_shape,
        state=np.concatenate([columns["obs_state"] for _, columns in episodes]).astype(np.float32, copy=False),
        label=np.concatenate([columns["label"] for _, columns in episodes]).astype(np.float32, copy=False),
    )


def read_snapshot_columns(store: EpisodeStore, snapshot: DatasetSnapshot, columns: Sequence[str],
                          ) -> list[tuple[dict[str, Any], dict[str, NDArray[Any]]]]:
    """Each episode's metadata and the ego ``columns`` asked for (those it has), in snapshot order, checking each
    episode's manifest against the snapshot and each ego file against its episode's manifest.

    :raises ~sim.scene.observation.ObservationFormatError: naming the first episode whose observations (asked
        for and stored) are of another observation format.
    """
    manifest = json.loads(snapshot.path.read_text())
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"dataset snapshot {snapshot.path}: schema version {manifest['schema_version']}, this "
                         f"autoloop reads {SCHEMA_VERSION}: collect a new dataset (`autoloop collect`)")
    folders = store.folders()
    missing = [entry["episode_id"] for entry in manifest["episodes"] if entry["episode_id"] not in folders]
    if missing:
        raise KeyError(f"episode {missing[0]!r} of snapshot {snapshot.digest} is not in {store.root}")
    # (hashing and Parquet decoding release the GIL: episodes are read on a few threads, in order)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda entry: _episode_columns(folders[entry["episode_id"]], entry, snapshot,
                                                            list(columns)), manifest["episodes"]))


def read_episode_columns(store: EpisodeStore, snapshot: DatasetSnapshot, position: int, columns: Sequence[str],
                         ) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """The metadata and ego ``columns`` (those it has) of the snapshot's ``position``-th episode, checked as
    :func:`read_snapshot_columns` checks each."""
    entry = _snapshot_entries(snapshot.path)[position]
    return _episode_columns(store.folder(entry["episode_id"]), entry, snapshot, list(columns))


@functools.lru_cache(maxsize=8)
def _snapshot_entries(path: Path) -> list[dict[str, Any]]:
    """The episode entries of a snapshot manifest (immutable: its name is its hash)."""
    manifest = json.loads(path.read_text())
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"dataset snapshot {path}: schema version {manifest['schema_version']}, this "
                         f"autoloop reads {SCHEMA_VERSION}: collect a new dataset (`autoloop collect`)")
    entries: list[dict[str, Any]] = manifest["episodes"]
    return entries


def _bev_shape(episodes: Sequence[tuple[dict[str, Any], dict[str, NDArray[Any]]]]) -> tuple[int, int, int]:
    """The one BEV shape of every episode's metadata."""
    shapes = {tuple(int(n) for n in metadata["bev_shape"]) for metadata, _ in episodes}
    if len(shapes) != 1:
        raise ValueError(f"episodes of one dataset need one BEV shape, found {sorted(shapes)}")
    shape = shapes.pop()
    return shape[0], shape[1], shape[2]


def _episode_columns(folder: Path, entry: dict[str, Any], snapshot: DatasetSnapshot, columns: list[str],
                     ) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """Metadata and ego columns of one episode of a snapshot, checking its manifest and ego file."""
    marker = (folder / MANIFEST).read_bytes()
    if hashlib.sha256(marker).hexdigest() != entry["sha256"]:
        raise ValueError(f"episode {entry['episode_id']} ({folder}) changed since snapshot {snapshot.digest}")
    episode = json.loads(marker)
    ego = episode["tables"]["ego"]
    data = (folder / ego["file"]).read_bytes()
    if hashlib.sha256(data).hexdigest() != ego["sha256"]:
        raise ValueError(f"episode {entry['episode_id']}: {folder / ego['file']} changed since it was written")
    present = pq.ParquetFile(pa.BufferReader(data)).schema_arrow.names
    if any(name in present for name in OBSERVATION_COLUMNS if name in columns):
        check_observation_format(episode.get("observation_format"), what=f"episode {entry['episode_id']} ({folder})",
                                 remedy="collect a new dataset (`autoloop collect`) and train on it")
    metadata: dict[str, Any] = episode["metadata"]
    return metadata, from_table(read_table(data, [name for name in columns if name in present]))
