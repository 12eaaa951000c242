"""Where a run writes: everything under ``AUTOLOOP_HOME`` (default ``./.autoloop``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


class UnwritableHome(ValueError):
    """A home folder autoloop cannot create or write in."""


@dataclass(frozen=True)
class Paths:
    """The layout of an autoloop home folder."""

    home: Path

    @classmethod
    def from_env(cls) -> Paths:
        """``$AUTOLOOP_HOME`` if set, else ``.autoloop`` in the working directory."""
        return cls(Path(os.environ.get("AUTOLOOP_HOME") or Path.cwd() / ".autoloop").resolve())

    def check_writable(self) -> None:
        """Check that the home folder can be created and written in (by doing it, then removing what the check
        made): a home that cannot take the tracking store or an episode fails here at once, not after minutes of
        retries.

        :raises UnwritableHome: naming the folder and why.
        """
        missing = [folder for folder in (self.home, *self.home.parents) if not folder.exists()]
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.home, prefix=".write-check-"):
                pass
        except OSError as error:
            raise UnwritableHome(f"home {self.home}: cannot write there ({error.strerror or error})") from None
        finally:  # (made again by the first command that writes there: a check leaves nothing behind)
            for folder in missing:
                with contextlib.suppress(OSError):
                    folder.rmdir()

    @property
    def episodes(self) -> Path:
        return self.home / "episodes"

    @property
    def quarantine(self) -> Path:
        """Fleet logs that failed validation, each with its ``reason.json`` (see ``autoloop.fleet.ingest``)."""
        return self.home / "quarantine"

    @property
    def datasets(self) -> Path:
        return self.home / "datasets"

    @property
    def engine(self) -> Path:
        """The data engine's findings, used fleet moments and regression suite (see ``autoloop.engine.ledger``)."""
        return self.home / "engine"

    @property
    def checkpoints(self) -> Path:
        return self.home / "checkpoints"

    @property
    def evaluations(self) -> Path:
        """Evaluation checkpoints (JSON lines, one file per driver and suite: see ``autoloop.evaluation.runner``)."""
        return self.home / "evaluations"

    @property
    def reports(self) -> Path:
        """Evaluation reports, one folder per MLflow run (also logged to that run)."""
        return self.home / "reports"

    @property
    def mlflow_db(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def tracking_uri(self) -> str:
        """``$MLFLOW_TRACKING_URI`` if set, else the SQLite store in the home folder."""
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.mlflow_db}"
