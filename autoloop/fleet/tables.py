"""Reading and validating the columnar files of fleet logs (Arrow IPC / Feather and Parquet).

Every check raises :class:`FleetLogError` naming the file, the field and what was wrong, so that ingest can
quarantine the log with that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
from numpy.typing import NDArray

#: The kinds of column a log file must hold: name -> predicate on the Arrow type.
_KINDS = {
    "int": pa.types.is_integer,
    "float": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
    "str": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)
    or (pa.types.is_dictionary(t) and pa.types.is_string(t.value_type)),
    "bool": pa.types.is_boolean,
}
#: The field named when a whole file cannot be read.
WHOLE_FILE = "(file)"


class FleetLogError(ValueError):
    """A fleet log file that does not hold what it should.

    :param path: the offending file.
    :param field: the column or JSON field (``"(file)"`` when the file as a whole cannot be read).
    :param problem: what was wrong, and what was expected.
    """

    def __init__(self, path: Path, field: str, problem: str) -> None:
        super().__init__(f"{path}: {field}: {problem}")
        self.path = Path(path)
        self.field = field
        self.problem = problem


def read_table(path: Path, columns: Mapping[str, str]) -> dict[str, NDArray[Any]]:
    """Read a Feather (``.feather``) or Parquet file and check its columns.

    :param columns: required column name -> kind (``int``, ``float``, ``str`` or ``bool``); only those are read.
    :returns: column name -> numpy array (``float`` columns as float64, ``str`` as an object array of str).
    :raises FleetLogError: if the file is missing or unreadable (truncated, not the format), a column is missing,
        of another type, or holds nulls.
    """
    path = Path(path)
    if not path.is_file():
        raise FleetLogError(path, WHOLE_FILE, "the file is missing")
    try:
        table = pq.read_table(path) if path.suffix == ".parquet" else feather.read_table(path)
    except (OSError, pa.ArrowException) as error:
        raise FleetLogError(path, WHOLE_FILE, f"not a readable {path.suffix} table ({error})") from error
    arrays: dict[str, NDArray[Any]] = {}
    for name, kind in columns.items():
        if name not in table.column_names:
            raise FleetLogError(path, name, f"required column is missing (the file has {table.column_names})")
        column = table.column(name)
        if not _KINDS[kind](column.type):
            raise FleetLogError(path, name, f"column of type {column.type}, expected {kind}")
        if column.null_count:
            raise FleetLogError(path, name, f"{column.null_count} null values")
        if kind == "str":
            arrays[name] = np.array(column.to_pylist(), dtype=object)
        elif kind == "float":
            arrays[name] = column.to_numpy().astype(np.float64)
        else:
            arrays[name] = column.to_numpy()
    return arrays


def require_finite(path: Path, table: Mapping[str, NDArray[Any]], names: tuple[str, ...]) -> None:
    """:raises FleetLogError: at the first of ``names`` holding NaN or infinity."""
    for name in names:
        bad = np.flatnonzero(~np.isfinite(table[name]))
        if len(bad):
            raise FleetLogError(path, name, f"{len(bad)} non-finite values (NaN or inf), first at row {bad[0]}")


def require_increasing(path: Path, field: str, times: NDArray[Any], groups: NDArray[Any] | None = None) -> None:
    """:raises FleetLogError: unless ``times`` increase strictly in file order (within each group when given)."""
    if groups is None:
        bad = np.flatnonzero(np.diff(times) <= 0) + 1
    else:
        order = np.argsort(groups, kind="stable")
        same = groups[order][1:] == groups[order][:-1]
        bad = order[1:][same & (np.diff(times[order]) <= 0)]
    if len(bad):
        before = "the previous row of its track" if groups is not None else "the row before it"
        problem = f"time is not strictly increasing: row {int(bad[0])} is not after {before}"
        raise FleetLogError(path, field, problem)
