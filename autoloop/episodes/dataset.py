"""Dataset snapshots: immutable manifests of episodes, identified by a content hash.

A snapshot lists episode ids with the SHA-256 of each episode file, the filters that chose them and the schema
version; its digest is the SHA-256 of that manifest. Loading a snapshot checks every file against its hash,
so a model's lineage always points at exactly the data it was trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autoloop.episodes.store import SCHEMA_VERSION, EpisodeStore


@dataclass(frozen=True)
class DatasetSnapshot:
    """A stored manifest.

    :param digest: SHA-256 (hex) of the manifest.
    :param path: where the manifest lies.
    :param episode_ids: episodes in the snapshot.
    :param num_steps: total steps over the episodes.
    :param filters: how the episodes were chosen.
    """

    digest: str
    path: Path
    episode_ids: tuple[str, ...]
    num_steps: int
    filters: dict[str, Any]


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
        size = int(np.prod(self.bev_shape))
        return np.unpackbits(self.bev_packed[rows], axis=1, count=size).reshape((len(rows),) + self.bev_shape)


def create_snapshot(store: EpisodeStore, folder: Path, episode_ids: Sequence[str],
                    filters: dict[str, Any]) -> DatasetSnapshot:
    """Write (or find) the snapshot of ``episode_ids`` under ``folder``."""
    if not episode_ids:
        raise ValueError("a dataset snapshot needs at least one episode")
    entries = []
    for episode_id in sorted(episode_ids):
        path = store.file(episode_id)
        entries.append({"episode_id": episode_id, "sha256": _file_hash(path), "steps": store.num_steps(episode_id)})
    manifest = {"schema_version": SCHEMA_VERSION, "filters": filters, "episodes": entries}
    text = json.dumps(manifest, sort_keys=True, indent=1)
    digest = hashlib.sha256(text.encode()).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.json"
    if not path.exists():
        temporary = folder / f".{digest}.{os.getpid()}.tmp"
        temporary.write_text(text)
        os.replace(temporary, path)
    return load_snapshot(path)


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
    )


def load_training_arrays(store: EpisodeStore, snapshot: DatasetSnapshot) -> TrainingArrays:
    """Concatenate the labelled observations of every episode in a snapshot (checking file hashes)."""
    manifest = json.loads(snapshot.path.read_text())
    bevs, states, labels = [], [], []
    bev_shape: tuple[int, int, int] | None = None
    for entry in manifest["episodes"]:
        path = store.file(entry["episode_id"])
        if _file_hash(path) != entry["sha256"]:
            raise ValueError(f"episode {entry['episode_id']} ({path}) changed since snapshot {snapshot.digest}")
        episode = store.read(entry["episode_id"], columns=["obs_bev", "obs_state", "label"])
        shape = tuple(episode.metadata["bev_shape"])
        if bev_shape is not None and shape != bev_shape:
            raise ValueError(f"episode {entry['episode_id']}: BEV shape {shape} differs from {bev_shape}")
        bev_shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        bevs.append(episode.steps["obs_bev"])
        states.append(episode.steps["obs_state"])
        labels.append(episode.steps["label"])
    assert bev_shape is not None
    return TrainingArrays(
        bev_packed=np.concatenate(bevs),
        bev_shape=bev_shape,
        state=np.concatenate(states).astype(np.float32),
        label=np.concatenate(labels).astype(np.float32),
    )


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
