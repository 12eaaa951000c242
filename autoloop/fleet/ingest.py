"""Ingest fleet logs into the episode store: validate, land, or quarantine with a reason.

Each path given is an AV2 sensor log folder, a forecasting scenario folder, or a folder holding several (searched
recursively; links to folders are not followed, so a link loop cannot hang the search). For each log:

0. a file that is a link to somewhere outside the paths given sends the log to quarantine with that reason, and
   the linked file is neither read nor copied;
1. its **content hash** (sha256 over the relative names and bytes of the files the importer reads) is computed;
   a log whose hash is already some fleet episode's ``origin_sha256`` is *skipped*, so re-ingesting is idempotent;
2. it is read and validated (:mod:`autoloop.fleet.av2`): a :class:`~autoloop.fleet.tables.FleetLogError` sends it
   to ``<quarantine>/<log name>-<hash8>/``: a copy of its files (relative layout kept) and ``reason.json``
   (``file``, ``field``, ``problem``, ``dataset``, ``time``, ``log``, ``origin_sha256``), written to a hidden
   folder and renamed into place; the batch goes on;
3. otherwise its map goes to the store (``put_map``, where the store has it) and the episode is written
   atomically (nothing half-written is ever visible).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from autoloop.episodes.store import EpisodeStore
from autoloop.fleet.av2 import dataset_of, log_files, read_log, read_map
from autoloop.fleet.tables import WHOLE_FILE, FleetLogError
from autoloop.progress import Progress

logger = logging.getLogger(__name__)
REASON_FILE = "reason.json"


@dataclass(frozen=True)
class Quarantined:
    """A log that did not land: where its copy and reason are, and the reason."""

    log: Path
    folder: Path
    file: str
    field: str
    problem: str


@dataclass
class IngestReport:
    """What one :func:`ingest` call did.

    :param landed: ids of the episodes written.
    :param skipped: ids of the episodes already in the store with the same content hash.
    :param quarantined: the logs that failed, with their reasons.
    :param not_found: paths given that hold no AV2 log.
    """

    landed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    not_found: list[Path] = field(default_factory=list)

    @property
    def logs(self) -> int:
        """Logs found (landed, skipped or quarantined)."""
        return len(self.landed) + len(self.skipped) + len(self.quarantined)


def ingest(paths: Iterable[Path], store: EpisodeStore, quarantine_dir: Path) -> IngestReport:
    """Import every AV2 log under ``paths`` into ``store``; bad logs go to ``quarantine_dir`` (see the module)."""
    report = IngestReport()
    known = {meta.get("origin_sha256"): episode_id for episode_id, meta in store.metadata("fleet").items()}
    paths = [Path(path) for path in paths]
    roots = [path.resolve() for path in paths]
    found = {path: find_logs(path) for path in paths}
    report.not_found = [path for path, logs in found.items() if not logs]
    every = [log_dir for logs in found.values() for log_dir in logs]
    with Progress("ingest", len(every), "logs") as progress:
        for log_dir in every:
            progress.update(report.logs)
            outside = _linked_outside(log_dir, roots)
            if outside is not None:
                digest = hashlib.sha256(f"{log_dir.resolve()}\0{outside.problem}".encode()).hexdigest()
                report.quarantined.append(quarantine(log_dir, outside, digest=digest, quarantine_dir=quarantine_dir,
                                                     roots=roots))
                continue
            digest = content_hash(log_dir)
            if digest in known:
                report.skipped.append(known[digest])
                continue
            try:
                episode_id = _land(log_dir, digest, store)
            except FleetLogError as error:
                report.quarantined.append(quarantine(log_dir, error, digest=digest, quarantine_dir=quarantine_dir))
            except Exception as error:  # a batch goes on past a log the importer cannot handle
                logger.exception("importing %s failed", log_dir)
                problem = f"the importer failed: {type(error).__name__}: {error}"
                report.quarantined.append(quarantine(log_dir, FleetLogError(log_dir, WHOLE_FILE, problem),
                                                     digest=digest, quarantine_dir=quarantine_dir))
            else:
                known[digest] = episode_id
                report.landed.append(episode_id)
        progress.update(report.logs)
    return report


def find_logs(path: Path) -> list[Path]:
    """The AV2 log folders at or under ``path`` (sorted; hidden folders and links to folders are not searched)."""
    if dataset_of(path):
        return [path]
    if not path.is_dir():
        return []
    return [log for child in sorted(path.iterdir())
            if child.is_dir() and not child.is_symlink() and not child.name.startswith(".")
            for log in find_logs(child)]


def _linked_outside(log_dir: Path, roots: list[Path]) -> FleetLogError | None:
    """The first file of the log that resolves outside every folder given to :func:`ingest`, as the reason to
    quarantine the log (``None``: all inside)."""
    for path in log_files(log_dir):
        target = path.resolve()
        if not any(target.is_relative_to(root) for root in roots):
            return FleetLogError(path, WHOLE_FILE, f"a link to {target}, outside the folders given to ingest "
                                                   "(not read)")
    return None


def content_hash(log_dir: Path) -> str:
    """sha256 over the relative names and the bytes of the files the importer reads for ``log_dir``."""
    digest = hashlib.sha256()
    for path in log_files(log_dir):
        digest.update(path.relative_to(log_dir).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def quarantine(log_dir: Path, error: FleetLogError, *, digest: str, quarantine_dir: Path,
               roots: list[Path] | None = None) -> Quarantined:
    """Copy the log's files and write ``reason.json`` to ``quarantine_dir/<name>-<hash8>/`` (atomically); with
    ``roots``, only the files that resolve inside them are copied."""
    folder = Path(quarantine_dir) / f"{log_dir.name}-{digest[:8]}"
    record = Quarantined(log=log_dir, folder=folder, file=str(error.path), field=error.field, problem=error.problem)
    logger.warning("quarantined %s: %s", log_dir, error)
    if folder.exists():  # the same content was quarantined before, with the same reason
        return record
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.with_name(f".{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        for path in log_files(log_dir):
            if roots is not None and not any(path.resolve().is_relative_to(root) for root in roots):
                continue
            target = temporary / path.relative_to(log_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        reason = {"file": record.file, "field": record.field, "problem": record.problem,
                  "dataset": dataset_of(log_dir), "time": datetime.now(UTC).isoformat(timespec="seconds"),
                  "log": str(log_dir), "origin_sha256": digest}
        temporary.mkdir(parents=True, exist_ok=True)
        (temporary / REASON_FILE).write_text(json.dumps(reason, indent=1) + "\n")
        os.replace(temporary, folder)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return record


def _land(log_dir: Path, digest: str, store: EpisodeStore) -> str:
    """Read and validate a log, then write its map and episode; returns the episode id."""
    episode = read_log(log_dir)
    lane_graph = read_map(log_dir)
    episode.metadata["origin_sha256"] = digest
    if episode.episode_id in store.episode_ids("fleet"):
        raise FleetLogError(log_dir, "episode_id", f"{episode.episode_id} is already in the store, from other "
                            "content (a different origin_sha256)")
    put_map = getattr(store, "put_map", None)  # the store keeps maps from schema v2 on
    if put_map is not None:
        try:
            put_map(lane_graph)
        except ValueError as error:
            raise FleetLogError(log_dir, "map", f"the store holds another map {lane_graph.name}: {error}") from error
    store.write(episode)
    return episode.episode_id
