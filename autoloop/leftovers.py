"""What a killed process leaves in a home, found and cleared when the next stage starts.

- **Hidden temporaries**: every writer stages its files as ``.<name>.<pid>[.<suffix>].tmp`` beside the final one
  (episodes, maps, snapshots, the ledger, checkpoints) and renames them into place; a write killed in between
  leaves one. An entry whose writer is gone (its pid not running, or running since after the entry was last
  written: a reused pid) is removed; so is ``.<name>.<pid>.<suffix>.deleted``, an episode deletion killed midway.
- **Runs** (:mod:`autoloop.tracking.leftovers`): a run still RUNNING whose process on this host is gone is marked
  KILLED, with what it left in the tracking store; here, a killed training run's checkpoint folder without its
  model is removed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from autoloop.paths import Paths
from autoloop.proc import running, started_at_s
from autoloop.tracking.leftovers import clear_dead_runs

log = logging.getLogger(__name__)

_TEMPORARY = re.compile(r"^\..+?\.(?P<pid>\d+)(\.[0-9a-f]{8}|\.\d+)?\.(tmp(-journal|-wal|-shm)?|deleted)$")
#: Folders of a home not searched for temporaries (MLflow's own artifacts).
_NOT_SEARCHED = ("mlartifacts",)


@dataclass
class Cleared:
    """What :func:`clear` removed or marked."""

    temporaries: list[Path] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)


def clear(paths: Paths, experiment_id: str, model_name: str) -> Cleared:
    """Clear what killed processes left in ``paths``' home and tracking store (see the module)."""
    cleared = Cleared(temporaries=stale_temporaries(paths.home))
    for path in cleared.temporaries:
        log.info("removing %s, left by a write that was killed", path)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    cleared.runs, cleared.models, cleared.versions = clear_dead_runs(experiment_id, model_name)
    for run_id in cleared.runs:
        folder = paths.checkpoints / run_id
        if folder.is_dir() and not (paths.checkpoints / f"{run_id}.pt").exists():
            shutil.rmtree(folder, ignore_errors=True)
            cleared.checkpoints.append(folder)
    return cleared


def stale_temporaries(home: Path) -> list[Path]:
    """The hidden temporaries under ``home`` whose writer is gone."""
    found = []
    for folder, names, files in os.walk(home):
        if Path(folder) == home:
            names[:] = [name for name in names if name not in _NOT_SEARCHED]
        for name in [*names, *files]:
            match = _TEMPORARY.match(name)
            if match is None:
                continue
            path = Path(folder) / name
            if _writer_gone(int(match["pid"]), path):
                found.append(path)
        # (a temporary is removed whole; an episode store's partition holds its writers' temporaries beside the
        # committed episodes, and nothing inside those: the walk does not visit every episode's folder)
        names[:] = [] if Path(folder).name.startswith("date=") else \
            [name for name in names if not _TEMPORARY.match(name)]
    return sorted(found)


def _writer_gone(pid: int, path: Path) -> bool:
    if not running(pid):
        return True
    started = started_at_s(pid)
    try:
        written = path.lstat().st_mtime
    except OSError:
        return False
    return started is not None and started > written + 1.0  # the pid was reused by a process started since
