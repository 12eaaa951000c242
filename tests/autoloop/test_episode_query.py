import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from autoloop.episodes import EpisodeStore
from autoloop.episodes.query import QueryError
from sim.maps import get_map
from tests.autoloop.test_episodes import _episode, _fleet_episode


@pytest.fixture
def store(tmp_path: Path) -> EpisodeStore:
    store = EpisodeStore(tmp_path)
    store.write(_fleet_episode("log-1"))
    sim = _episode("sim-1", steps=6)
    sim.metadata.update({"map_name": "town-1", "policy": "expert", "dt_s": 0.05,
                         "score": {"driving_score": 80.0, "route_completion": 100.0, "infraction_penalty": 0.8}})
    sim.events = {name: np.array([], dtype=float if name.endswith("_m") else object)  # recorded: none happened
                  for name in ("time_s", "kind", "x_m", "y_m", "actor_id", "detail")}
    store.write(sim)
    return store


def test_episodes_view_has_one_row_per_episode(store: EpisodeStore) -> None:
    rows = store.query("SELECT * FROM episodes ORDER BY episode_id").to_pylist()
    assert [r["episode_id"] for r in rows] == ["log-1", "sim-1"]
    fleet, sim = rows
    assert (fleet["source"], fleet["map_name"], fleet["dt_s"], fleet["duration_s"], fleet["num_steps"]) == (
        "fleet", "av2:log-1", 0.1, 0.4, 4)
    assert json.loads(fleet["tags"]) == ["hard_brake"] and fleet["synthetic"] is False
    assert (sim["source"], sim["policy"], sim["driving_score"], sim["num_steps"]) == ("sim", "expert", 80.0, 6)
    assert sim["duration_s"] == pytest.approx(0.3) and sim["dataset"] is None
    seed = store.query("SELECT metadata->>'$.scenario.traffic_seed' AS seed, tags->>'$.purpose' AS purpose "
                       "FROM episodes WHERE source = 'sim'").to_pylist()
    assert seed == [{"seed": "0", "purpose": "collect"}]


def test_table_views_join_with_episodes(store: EpisodeStore) -> None:
    ego = store.query("SELECT episode_id, source, count(*) AS n, sum(intervention::INT) AS takeovers FROM ego "
                      "GROUP BY ALL ORDER BY episode_id").to_pylist()
    assert ego == [{"episode_id": "log-1", "source": "fleet", "n": 4, "takeovers": 1},
                   {"episode_id": "sim-1", "source": "sim", "n": 6, "takeovers": None}]
    actors = store.query("SELECT a.actor_id, a.kind, e.map_name FROM actors a JOIN episodes e USING (episode_id) "
                         "WHERE a.step = 0 ORDER BY a.actor_id").to_pylist()
    assert actors == [{"actor_id": "a", "kind": "vehicle", "map_name": "av2:log-1"},
                      {"actor_id": "b", "kind": "pedestrian", "map_name": "av2:log-1"}]
    events = store.query("SELECT kind, x_m, strftime(date, '%Y-%m-%d') AS day FROM events").to_pylist()
    assert events == [{"kind": "intervention", "x_m": 2.0, "day": store.manifest("log-1")["date"]}]
    assert {name: len(values) for name, values in (store.read("sim-1").events or {}).items()} == {
        "time_s": 0, "kind": 0, "x_m": 0, "y_m": 0, "actor_id": 0, "detail": 0}
    df = store.query("SELECT obs_state FROM ego WHERE episode_id = 'sim-1' ORDER BY step").to_pandas()
    np.testing.assert_allclose(np.stack(df["obs_state"]), _episode("sim-1", steps=6).steps["obs_state"])


def test_empty_store_and_bad_sql(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path)
    assert store.query("SELECT count(*) AS n FROM episodes")["n"].to_pylist() == [0]
    assert store.query("SELECT count(*) AS n FROM actors")["n"].to_pylist() == [0]
    with pytest.raises(QueryError, match=r"(?i)syntax error"):
        store.query("SELEKT 1")
    with pytest.raises(QueryError, match="no_such_table"):
        store.query("SELECT * FROM no_such_table")


def test_maps_are_stored_once_by_id(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path)
    town = get_map("town-1")
    assert store.put_map(town) == "town-1"
    assert store.put_map(town) == "town-1"  # the same map again: nothing to do
    assert (tmp_path / "maps" / "town-1.json").is_file()
    assert store.get_map("town-1").to_dict() == town.to_dict()
    with pytest.raises(ValueError, match="a different map is already stored"):
        store.put_map(dataclasses.replace(get_map("junction4-60"), name="town-1"))
    with pytest.raises(KeyError, match="no map 'av2:x'"):
        store.get_map("av2:x")


@pytest.mark.parametrize("sql", [
    "COPY (SELECT * FROM episodes) TO '{out}'", "ATTACH '{out}' AS other", "SET enable_external_access = true",
    "INSTALL httpfs", "CREATE TABLE t AS SELECT 1", "SELECT 1; COPY (SELECT 1) TO '{out}'", "",
])
def test_only_one_select_runs(store: EpisodeStore, tmp_path: Path, sql: str) -> None:
    out = tmp_path.parent / f"{tmp_path.name}-out.csv"
    with pytest.raises(QueryError, match="expected one SELECT query"):
        store.query(sql.format(out=out))
    assert not out.exists()


@pytest.mark.parametrize("sql", ["SELECT * FROM read_text('/etc/hostname')",
                                 "SELECT * FROM read_csv('/etc/passwd')",
                                 "SELECT * FROM read_parquet('{outside}')"])
def test_a_query_reads_nothing_outside_the_store(store: EpisodeStore, tmp_path: Path, sql: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    outside = tmp_path.parent / f"{tmp_path.name}-outside.parquet"
    pq.write_table(pa.table({"secret": [1]}), outside)
    with pytest.raises(QueryError, match="disabled by config"):
        store.query(sql.format(outside=outside))
    assert store.query("SELECT count(*) AS n FROM ego").to_pylist()[0]["n"] > 0  # the store's own files are read
