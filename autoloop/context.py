"""What every stage runs in: the config, the home, the tracking store's experiment and the MLflow runs to nest
under (:class:`StageContext`), opened by :func:`open_context` before a stage or a registry command starts.

It is apart from :mod:`autoloop.stages` so that commands that only read the registry open it without importing
the stages' machinery (training, simulation, evaluation).
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autoloop import leftovers, tracking
from autoloop.compute import Compute
from autoloop.config import AutoloopConfig
from autoloop.paths import Paths

if TYPE_CHECKING:
    from autoloop.episodes import EpisodeStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageContext:
    """What every stage needs: the config, where to write, and which MLflow runs to nest under."""

    config: AutoloopConfig
    paths: Paths
    experiment_id: str
    parent_run_id: str | None = None
    #: tags every run of the stages carries besides their own (e.g. the Prefect flow run that runs them)
    run_tags: tuple[tuple[str, str], ...] = ()

    @property
    def store(self) -> EpisodeStore:
        from autoloop.episodes import EpisodeStore

        return EpisodeStore(self.paths.episodes)


def open_context(config: AutoloopConfig, *, paths: Paths | None = None, parent_run_id: str | None = None,
                 run_tags: Mapping[str, str] | None = None) -> StageContext:
    """Connect to the tracking store (creating the experiment) and build the stage context (its runs carry
    ``run_tags``)."""
    paths = paths or Paths.from_env()
    paths.check_writable()
    experiment_id = tracking.configure(paths, config.registry.experiment)
    cleared = leftovers.clear(paths, experiment_id, config.registry.model_name)
    revision = git_revision()
    run_tags = {**({"mlflow.source.git.commit": revision.removesuffix("-dirty")} if revision != "unknown" else {}),
                **(run_tags or {})}
    if any(dataclasses.astuple(cleared)):
        log.info("cleared what killed runs left: %d temporaries, %d runs marked killed, %d models failed, "
                 "%d checkpoint folders, %d pending verdicts", len(cleared.temporaries), len(cleared.runs),
                 len(cleared.models), len(cleared.checkpoints), len(cleared.versions))
    return StageContext(config=config, paths=paths, experiment_id=experiment_id, parent_run_id=parent_run_id,
                        run_tags=tuple(sorted((run_tags or {}).items())))


def check_servers(config: AutoloopConfig, paths: Paths) -> None:
    """Fail within seconds, before any work, when the tracking server or the Ray cluster does not answer.

    :raises autoloop.network.Unreachable: naming the address (never a password).
    """
    tracking.check_store(paths)
    Compute.from_config(config.compute).check()


def git_revision() -> str:
    """The code revision (git SHA, ``-dirty`` with uncommitted changes), or ``unknown`` outside a checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha
