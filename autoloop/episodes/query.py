"""SQL over the episode store with DuckDB.

Views (built from the committed episodes only, so a half-written episode never shows):

- ``episodes``: one row per episode: ``episode_id``, ``source``, ``date`` (the partition day), ``num_steps``,
  ``map_name``, ``policy``, ``dt_s``, ``duration_s`` (given, else ``num_steps * dt_s``), ``tags`` (JSON text:
  an object for sim episodes, a list for fleet logs), ``driving_score``, ``route_completion`` (percent, sim
  episodes), ``status`` (how the route ended), ``dataset``, ``origin``, ``synthetic`` (fleet logs), and
  ``metadata`` (all of it, JSON text: ``metadata->>'$.scenario.traffic_seed'``); missing values are NULL.
- ``ego``, ``actors``, ``events``: the episode tables (schema in :mod:`autoloop.episodes.store`), each row
  prefixed with ``episode_id``, ``source`` and ``date``; read lazily from the Parquet files
  (``read_parquet`` with hive partitioning on ``date`` and columns unified by name).

- ``triggers``: what ``autoloop mine`` found (:func:`autoloop.fleet.mining.save_triggers`): ``episode_id``,
  ``kind``, ``step``, ``time_s``, ``x_m``, ``y_m``, ``value``, ``actor_id``, ``replay`` (the exported scenario).

Example: ``SELECT e.map_name, avg(g.speed_mps) FROM ego g JOIN episodes e USING (episode_id) GROUP BY 1``.

:func:`query` runs one ``SELECT`` (or ``EXPLAIN``) and nothing else: no ``COPY``, ``ATTACH``, ``SET``,
``INSTALL`` or ``CREATE``; the connection reads files only inside the store (DuckDB's external access is off and
its configuration locked), so a query can neither write anywhere nor read ``/etc/...``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from autoloop.episodes.schema import TABLES

if TYPE_CHECKING:
    import duckdb

    from autoloop.episodes.store import EpisodeStore


class QueryError(ValueError):
    """SQL that DuckDB refused (the message is DuckDB's)."""


def query(store: EpisodeStore, sql: str) -> pa.Table:
    """Run ``sql`` over the store's views; the result as an Arrow table (``.to_pandas()`` for a DataFrame).

    :raises QueryError: with DuckDB's message, for SQL it cannot run.
    """
    import duckdb

    connection = connect(store)
    try:
        statements = connection.extract_statements(sql)
        kinds = [statement.type for statement in statements]
        if kinds not in ([duckdb.StatementType.SELECT], [duckdb.StatementType.EXPLAIN]):
            found = ", ".join(kind.name for kind in kinds) or "nothing"
            raise QueryError(f"expected one SELECT query, got {found}")
        return connection.sql(sql).to_arrow_table()
    except duckdb.Error as error:
        raise QueryError(str(error)) from None
    finally:
        connection.close()


def connect(store: EpisodeStore) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views ``episodes``, ``ego``, ``actors``, ``events`` and
    ``triggers``, that reads files only inside the store (its configuration locked)."""
    import duckdb

    manifests = store.manifests()
    connection = duckdb.connect()
    connection.register("episodes", episodes_table(manifests))
    for name in TABLES:
        files = [str(store.table_path(manifest, name)) for manifest in manifests.values() if name in manifest["tables"]]
        connection.execute(f"CREATE VIEW {name} AS {_table_sql(files)}")
    mined = sorted(str(p) for p in (store.root / "triggers").glob("*.parquet") if p.stem in manifests)
    if mined:
        listed = ", ".join("'" + path.replace("'", "''") + "'" for path in mined)
        connection.execute(f"CREATE VIEW triggers AS SELECT * FROM read_parquet([{listed}], union_by_name = true)")
    else:
        connection.execute("CREATE VIEW triggers AS SELECT NULL::VARCHAR AS episode_id, NULL::VARCHAR AS kind, "
                           "NULL::INTEGER AS step, NULL::FLOAT AS time_s WHERE false")
    connection.execute("SET allowed_directories = ?", [[str(store.root.resolve()) + "/"]])
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return connection


def _table_sql(files: list[str]) -> str:
    if not files:
        return ("SELECT NULL::VARCHAR AS episode_id, NULL::VARCHAR AS source, NULL::DATE AS date WHERE false")
    listed = ", ".join("'" + path.replace("'", "''") + "'" for path in files)
    return (r"SELECT regexp_extract(filename, '([^/\\]+)[/\\][^/\\]+$', 1) AS episode_id, "
            r"regexp_extract(filename, '([^/\\]+)[/\\]date=', 1) AS source, date, "
            f"* EXCLUDE (filename, date) FROM read_parquet([{listed}], hive_partitioning = true, "
            "union_by_name = true, filename = true)")


def episodes_table(manifests: dict[str, dict[str, Any]]) -> pa.Table:
    """One row per episode (the ``episodes`` view)."""
    rows = []
    for episode_id, manifest in sorted(manifests.items()):
        metadata = manifest["metadata"]
        dt_s = metadata.get("dt_s")
        score, record = metadata.get("score") or {}, metadata.get("record") or {}
        rows.append({
            "episode_id": episode_id,
            "source": manifest["source"],
            "date": manifest["date"],
            "num_steps": manifest["num_steps"],
            "map_name": metadata.get("map_name"),
            "policy": metadata.get("policy"),
            "dt_s": dt_s,
            "duration_s": metadata.get("duration_s", manifest["num_steps"] * dt_s if dt_s else None),
            "tags": json.dumps(metadata["tags"]) if "tags" in metadata else None,
            "driving_score": score.get("driving_score"),
            "route_completion": score.get("route_completion"),
            "status": record.get("status"),
            "dataset": metadata.get("dataset"),
            "origin": metadata.get("origin"),
            "synthetic": metadata.get("synthetic"),
            "metadata": json.dumps(metadata),
        })
    schema = pa.schema([
        ("episode_id", pa.string()), ("source", pa.string()), ("date", pa.string()), ("num_steps", pa.int64()),
        ("map_name", pa.string()), ("policy", pa.string()), ("dt_s", pa.float64()), ("duration_s", pa.float64()),
        ("tags", pa.string()), ("driving_score", pa.float64()), ("route_completion", pa.float64()),
        ("status", pa.string()), ("dataset", pa.string()), ("origin", pa.string()), ("synthetic", pa.bool_()),
        ("metadata", pa.string()),
    ])
    table = pa.Table.from_pylist(rows, schema=schema)
    return table.set_column(2, pa.field("date", pa.date32()), table.column("date").cast(pa.date32()))

