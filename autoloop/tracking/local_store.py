"""The home's SQLite tracking store, created whole or not at all.

MLflow creates its tables on the first connection, through a few dozen Alembic migrations (seconds on a small
machine). A process killed in the middle, or two commands started at once on an empty home, would leave a store
that every later command refuses (``table _alembic_tmp_experiments already exists``). So the store is created under
an exclusive lock on the home, in a temporary file that is renamed into place once MLflow has created every table;
a store found incomplete (no Alembic version, or a migration's temporary table left) is set aside and created
again when it holds no run, and refused with a message saying what to do when it does.

MLflow writes absolute paths into the store (each experiment's and run's artifact location, logged models', tags
such as a report's URI). The home notes where it was last used (``.home-path``); a home copied or moved to another
folder has its store's paths rewritten to the new folder on first use, so new runs write into the copy and old
artifacts are read from it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from pathlib import Path

from autoloop.locks import exclusive

log = logging.getLogger(__name__)


class IncompleteStore(ValueError):
    """A tracking store left half-created that holds runs (so it is not rebuilt)."""


def ensure_local_store(database: Path, artifacts: Path) -> None:
    """Make sure ``database`` is a complete MLflow store, creating it (or setting aside an incomplete one that holds
    no run) under an exclusive lock.

    :raises IncompleteStore: naming the file, when it is incomplete and holds runs.
    """
    with exclusive(database.with_name(f".{database.name}.lock")):
        _follow_a_move(database)
        for stale in database.parent.glob(f".{database.name}.*.tmp*"):  # a creation that was killed (and its journal)
            stale.unlink(missing_ok=True)
        if database.exists():
            problem = incomplete(database)
            if problem is None:
                return
            if _holds_runs(database):
                raise IncompleteStore(f"{database}: the tracking store is incomplete ({problem}) and holds runs; "
                                      f"upgrade it with `mlflow db upgrade sqlite:///{database}` or move it away")
            aside = database.with_name(f"{database.name}.incomplete-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(database, aside)
            log.warning("%s was incomplete (%s) and held no run: set aside as %s, created anew", database, problem,
                        aside.name)
        temporary = database.with_name(f".{database.name}.{os.getpid()}.tmp")
        log.debug("creating the tracking store %s", database)
        _create(temporary, artifacts)
        os.replace(temporary, database)


#: Where a home notes the folder it was last used in.
HOME_PATH_FILE = ".home-path"


def _follow_a_move(database: Path) -> None:
    """Rewrite the store's paths of the folder the home was last used in to the folder it is in now."""
    home = database.parent.resolve()
    note = home / HOME_PATH_FILE
    before = note.read_text().strip() if note.is_file() else None
    if before and before != str(home) and database.exists() and incomplete(database) is None:
        changed = _replace_everywhere(database, before.rstrip("/") + "/", str(home) + "/")
        log.warning("this home was at %s: %d paths in its tracking store now point into %s", before, changed, home)
    if before != str(home):
        temporary = home / f".{HOME_PATH_FILE}.{os.getpid()}.tmp"
        temporary.write_text(f"{home}\n")
        os.replace(temporary, note)


def _replace_everywhere(database: Path, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` in every text column of every table; returns the values changed."""
    changed = 0
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')
                       if row[2].upper() in ("TEXT", "VARCHAR", "") or row[2].upper().startswith("VARCHAR")]
            for column in columns:
                cursor = connection.execute(f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                                            f'WHERE instr("{column}", ?) > 0', (old, new, old))
                changed += cursor.rowcount
    return changed


def incomplete(database: Path) -> str | None:
    """What is missing from an MLflow store (``None``: nothing): an Alembic version, or a migration finished (its
    temporary tables gone)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            left = sorted(name for name in tables if name.startswith("_alembic_tmp_"))
            if left:
                return f"a migration did not finish: {', '.join(left)}"
            if "alembic_version" not in tables:
                return "no alembic_version table"
            if connection.execute("SELECT count(*) FROM alembic_version").fetchone() != (1,):
                return "no schema version"
    except sqlite3.DatabaseError as error:
        return f"not a readable SQLite database: {error}"
    return None


def _holds_runs(database: Path) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            return bool(connection.execute("SELECT count(*) FROM runs").fetchone()[0])
    except sqlite3.DatabaseError:  # no runs table, or not a database at all
        return False


def _create(path: Path, artifacts: Path) -> None:
    """An MLflow store with every table, at ``path``."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path.unlink(missing_ok=True)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # (its table-creation lines, to stderr)
    store = SqlAlchemyStore(f"sqlite:///{path}", artifacts.as_uri())  # type: ignore[no-untyped-call]
    store.engine.dispose()
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
