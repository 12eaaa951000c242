"""The replay viewer's API over a real store: the episode list (filters, sorting, pages, refresh as the store
changes), the columnar payloads against what the store holds, and the refusals (malformed ids, traversal, symbolic
links out of the store)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from autoloop.episodes import EpisodeStore
from autoloop.fleet.mining import Trigger, save_triggers
from autoloop.viewer import create_app
from autoloop.viewer.payload import decode
from sim.maps import get_map
from tests.autoloop.viewer_store import HOSTILE_POLICY, build_viewer_store
from tests.conftest import SHARED_DATA

#: What a browser on this machine sends (the test client's default host, "testserver", is not served).
LOCAL = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> EpisodeStore:
    forecasting = SHARED_DATA / "av2" / "forecasting"
    return build_viewer_store(tmp_path_factory.mktemp("viewer") / "episodes",
                              av2_forecasting=forecasting if forecasting.is_dir() else None)


@pytest.fixture()
def client(store: EpisodeStore) -> Iterator[TestClient]:
    with TestClient(create_app(store.root), base_url=LOCAL) as test_client:
        yield test_client


def _sim_ids(store: EpisodeStore) -> list[str]:
    return [i for i in store.episode_ids("sim") if not i.startswith("hostile-")]


def test_the_list_filters_sorts_and_pages_server_side(client: TestClient, store: EpisodeStore) -> None:
    everything = client.get("/api/episodes").json()
    assert everything["total"] == len(store.episode_ids())
    assert [row["episode_id"] for row in everything["rows"]] == sorted(store.episode_ids())
    sim = client.get("/api/episodes", params={"source": "sim", "suite": "viewer-test"}).json()
    assert {row["episode_id"] for row in sim["rows"]} == set(store.episode_ids("sim"))
    # the infraction filter matches exactly the episodes whose record counts one
    collided = {i for i, m in store.metadata("sim").items() if m["record"]["infractions"].get("collision_vehicle")}
    assert collided, "seed 12 with this noise collides; the infraction filter needs one such episode"
    rows = client.get("/api/episodes", params={"infraction": "collision_vehicle"}).json()["rows"]
    assert {row["episode_id"] for row in rows} == collided
    scores = [row["driving_score"] for row in client.get(
        "/api/episodes", params={"source": "sim", "sort": "driving_score", "order": "desc"}).json()["rows"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    seed = client.get("/api/episodes", params={"seed": "3"}).json()["rows"]
    assert [row["traffic_seed"] for row in seed] == [3]
    second = client.get("/api/episodes", params={"page": "2", "page_size": "1"}).json()
    assert second["total"] == everything["total"] and [r["episode_id"] for r in second["rows"]] == \
        [everything["rows"][1]["episode_id"]]
    assert client.get("/api/episodes", params={"model": HOSTILE_POLICY}).json()["total"] == 1
    assert client.get("/api/info").json() == {"store": str(store.root), "episodes": everything["total"]}
    facets = client.get("/api/facets").json()
    assert "collision_vehicle" in facets["infraction"] and set(facets["source"]) <= {"sim", "fleet"}
    for bad in ({"sort": "metadata; DROP TABLE episodes"}, {"order": "sideways"}, {"page": "0"},
                {"page_size": "100000"}, {"colour": "red"}, {"seed": "x"}):
        response = client.get("/api/episodes", params=bad)
        assert response.status_code == 400, bad
        assert next(iter(bad)) in response.json()["error"]


def test_fleet_logs_are_listed_with_their_dataset(client: TestClient, store: EpisodeStore) -> None:
    fleet = store.episode_ids("fleet")
    if not fleet:
        pytest.skip(f"the AV2 forecasting log is not at {SHARED_DATA / 'av2' / 'forecasting'}")
    rows = client.get("/api/episodes", params={"source": "fleet"}).json()["rows"]
    assert [row["episode_id"] for row in rows] == fleet
    assert rows[0]["scenario_types"] == ["av2-forecasting"] and rows[0]["map_name"].startswith("av2:")
    payload = client.get(f"/api/episodes/{fleet[0]}").json()
    assert payload["route"] is None and payload["num_steps"] == store.num_steps(fleet[0])
    # a log has no controls, score, plan or policy input to plot
    assert payload["bev"] is None and not {"action", "running_ds", "plan"} & set(payload["ego"])
    assert client.get(f"/api/maps/{payload['map_name']}").status_code == 200


def test_the_index_follows_the_store(client: TestClient, store: EpisodeStore) -> None:
    index = client.app.state.index  # type: ignore[attr-defined]
    before = client.get("/api/episodes").json()["total"]
    copy = replace(store.read(_sim_ids(store)[0]), episode_id="late-arrival")
    broken = store.folder(_sim_ids(store)[0]).with_name("broken-manifest")
    store.write(copy)
    try:
        assert index.refresh(force=True)
        assert client.get("/api/episodes").json()["total"] == before + 1
        assert client.get("/api/episodes", params={"q": "late-arr"}).json()["rows"][0]["episode_id"] == "late-arrival"
        assert not index.refresh(force=True)  # nothing changed since
        # mining it later tags it
        save_triggers(store, "late-arrival", [Trigger("late_kind", 3, 0.15, 0.0, 0.0, 1.0, "")])
        assert index.refresh(force=True)
        rows = client.get("/api/episodes", params={"trigger": "late_kind"}).json()["rows"]
        assert [row["episode_id"] for row in rows] == ["late-arrival"]
        # an unreadable manifest leaves its episode out, and the rest listed
        broken.mkdir()
        (broken / "episode.json").write_text("{not json")
        assert index.refresh(force=True)
        assert client.get("/api/episodes").json()["total"] == before + 1
    finally:
        store.delete("late-arrival")
        (store.root / "triggers" / "late-arrival.parquet").unlink()
        shutil.rmtree(broken, ignore_errors=True)
    assert index.refresh(force=True)
    assert client.get("/api/episodes").json()["total"] == before
    assert client.get("/api/episodes", params={"trigger": "late_kind"}).json()["total"] == 0


def test_the_episode_payload_holds_the_stored_columns(client: TestClient, store: EpisodeStore) -> None:
    episode_id = next(i for i in _sim_ids(store) if store.metadata()[i]["record"]["infractions"])
    stored = store.read(episode_id)
    payload = client.get(f"/api/episodes/{episode_id}").json()
    origin = np.array(payload["origin"])
    ego = payload["ego"]
    np.testing.assert_allclose(decode(ego["x"]) + origin[0], stored.steps["x_m"], atol=1e-3)
    np.testing.assert_allclose(decode(ego["y"]) + origin[1], stored.steps["y_m"], atol=1e-3)
    np.testing.assert_array_equal(decode(ego["action"]), stored.steps["action"])
    lights = decode(ego["lights"])
    assert lights.shape == (stored.num_steps, get_map("junction4-60").light_groups)
    assert set(np.unique(lights)) <= {0.0, 1.0, 2.0}
    # actors: one row per stored (step, actor) row, grouped by frame
    actors, table = payload["actors"], stored.actors
    assert table is not None
    start = decode(actors["frame_start"])
    assert len(start) == stored.num_steps + 1 and start[-1] == len(table["step"])
    np.testing.assert_array_equal(np.diff(start), np.bincount(table["step"], minlength=stored.num_steps))
    ids = np.array(actors["ids"])[decode(actors["actor"])]
    order = np.argsort(table["step"], kind="stable")
    np.testing.assert_array_equal(ids, table["actor_id"][order])
    np.testing.assert_allclose(decode(actors["x"]) + origin[0], table["x_m"][order], atol=1e-3)
    # events carry the frame they happened at; the running score ends at the recorded one
    events = stored.events
    sent = [e for e in payload["events"] if not e["kind"].startswith("trigger:")]
    assert events is not None and sorted(e["kind"] for e in sent) == sorted(events["kind"].tolist())
    for event in sent:
        assert abs(stored.steps["time_s"][event["step"]] - event["time_s"]) < 0.051
        if event["actor_id"]:  # an infraction names its actor as the actors table does, present then
            assert event["actor_id"] in set(table["actor_id"][table["step"] == event["step"]])
    running = decode(ego["running_ds"])
    score = stored.metadata["score"]
    assert running[-1] == pytest.approx(score["driving_score"], abs=1e-3)
    completion = decode(ego["completion"])
    assert completion[-1] == pytest.approx(score["route_completion"], abs=1e-3)
    assert np.all(np.diff(completion[:-1]) >= -1e-3) and completion[0] < 1.0  # progress only grows
    # each infraction event scales the running score by its penalty from its frame on
    collision = next(e for e in payload["events"] if e["kind"] == "collision_vehicle")
    k = collision["step"]
    if k > 0:
        before = running[k - 1] / max(completion[k - 1], 1e-6)
        assert running[k] / completion[k] == pytest.approx(0.6 * before, rel=1e-3)
    route = decode(payload["route"]) + origin
    assert np.linalg.norm(route[0] - [stored.steps["x_m"][0], stored.steps["y_m"][0]]) < 3.0
    assert payload["summary"]["traffic_seed"] == stored.metadata["scenario"]["traffic_seed"]


def test_mined_triggers_are_filters_and_markers(client: TestClient, store: EpisodeStore) -> None:
    mined = {i: pq.read_table(store.root / "triggers" / f"{i}.parquet").to_pydict() for i in store.episode_ids()}
    braking = {i for i, table in mined.items() if "hard_brake" in table["kind"]}
    assert braking, "the noisy rollouts brake hard"
    rows = client.get("/api/episodes", params={"trigger": "hard_brake", "page_size": "500"}).json()["rows"]
    assert {row["episode_id"] for row in rows} == braking
    episode_id = sorted(braking)[0]
    events = client.get(f"/api/episodes/{episode_id}").json()["events"]
    markers = [(e["kind"], e["step"]) for e in events if e["kind"].startswith("trigger:")]
    assert sorted(markers) == sorted((f"trigger:{k}", s) for k, s in zip(mined[episode_id]["kind"],
                                                                            mined[episode_id]["step"], strict=True))


def test_planned_waypoints_travel_when_stored(client: TestClient, store: EpisodeStore) -> None:
    original = store.read(_sim_ids(store)[0])
    steps = original.num_steps
    stored = original.steps["plan_xy"].reshape(steps, -1, 2)  # the expert's plan, kept by the rollout
    payload = client.get(f"/api/episodes/{original.episode_id}").json()
    np.testing.assert_allclose(decode(payload["ego"]["plan"]) + np.array(payload["origin"]), stored, atol=1e-2)
    plan = np.stack([original.steps["x_m"], original.steps["y_m"]], axis=1)[:, None, :] + np.arange(4)[None, :, None]
    store.write(replace(original, episode_id="planned", steps={**original.steps, "plan_xy": plan.reshape(steps, 8)}))
    unplanned = {name: values for name, values in original.steps.items() if name != "plan_xy"}
    store.write(replace(original, episode_id="unplanned", steps=unplanned))
    try:
        payload = client.get("/api/episodes/planned").json()
        sent = decode(payload["ego"]["plan"]) + np.array(payload["origin"])
        assert sent.shape == (steps, 4, 2)
        np.testing.assert_allclose(sent, plan, atol=1e-2)
        assert "plan" not in client.get("/api/episodes/unplanned").json()["ego"]
    finally:
        store.delete("planned")
        store.delete("unplanned")


def test_the_payload_carries_the_series_and_the_policy_input(client: TestClient, store: EpisodeStore) -> None:
    from autoloop.config import SimConfig
    from sim.scene.bev import Channel

    episode_id = _sim_ids(store)[0]
    stored = store.read(episode_id)
    payload = client.get(f"/api/episodes/{episode_id}").json()
    ego = payload["ego"]
    for sent, column in (("speed", "speed_mps"), ("accel", "accel_mps2"), ("steer", "steer_rad")):
        np.testing.assert_array_equal(decode(ego[sent]), stored.steps[column])
    assert decode(ego["action"]).shape == (stored.num_steps, 2) and decode(ego["running_ds"]).shape == (
        stored.num_steps,)
    # the BEV the expert saw: its layout in the payload, its frames in blocks from their own route
    shape, bev = stored.metadata["bev_shape"], SimConfig().bev()
    assert payload["bev"] == {"shape": shape, "names": [c.name.lower() for c in Channel], "frames_per_request": 64,
                              "resolution_m": bev.resolution_m, "ego_row": bev.ego_row}
    answer = client.get(f"/api/episodes/{episode_id}/bev", params={"start": "60", "count": "64"}).json()
    frames = decode(answer["frames"])
    assert (answer["start"], answer["count"], answer["shape"]) == (60, 64, shape)
    np.testing.assert_array_equal(frames, stored.steps["obs_bev"][60:124])
    last = client.get(f"/api/episodes/{episode_id}/bev", params={"start": str(stored.num_steps - 2),
                                                                 "count": "64"}).json()
    assert last["count"] == 2, "a block is cut at the episode's end"
    for bad, message in (({"count": "0"}, "count must be in 1..64"), ({"count": "65"}, "count must be in 1..64"),
                         ({"start": "-1"}, "start must be in 0.."), ({"start": str(stored.num_steps)}, "start must"),
                         ({"start": "9" * 40}, "start must"), ({"start": "x"}, "must be integers"),
                         ({"rows": "1"}, "unknown query parameter")):
        response = client.get(f"/api/episodes/{episode_id}/bev", params=bad)
        assert response.status_code == 400 and message in response.json()["error"], (bad, response.text)
    # an episode that does not keep the policy's input says so
    unobserved = {name: values for name, values in stored.steps.items() if not name.startswith("obs_")}
    store.write(replace(stored, episode_id="unobserved", steps=unobserved))
    try:
        assert client.get("/api/episodes/unobserved").json()["bev"] is None
        response = client.get("/api/episodes/unobserved/bev")
        assert response.status_code == 404 and "stores no BEV" in response.json()["error"]
    finally:
        store.delete("unobserved")
    for path in ("/api/episodes/..%2F..%2Fetc/bev", "/api/episodes/.hidden/bev", "/api/episodes/nope-0000/bev"):
        assert client.get(path).status_code in (400, 404), path


def test_the_viewer_benchmark_reports_each_case(tmp_path: Path) -> None:
    from autoloop.viewer.bench import bench_viewer

    cases, index = bench_viewer(tmp_path, av2_log=None, minutes=0.05, actors=3, repeats=1, index_episodes=5,
                                browser=False)
    (case,) = cases
    assert case.steps == 60 and case.actor_rows == 180 and case.payload_mb > 0 and case.seconds > 0
    assert case.browser_seconds is None
    assert index.episodes == 6 and index.page_seconds > 0


def test_the_map_payload_holds_every_lane(client: TestClient) -> None:
    graph = get_map("junction4-60")
    payload = client.get("/api/maps/junction4-60").json()
    offsets = decode(payload["centerlines"]["offsets"])
    assert len(offsets) == len(graph.lanes) + 1
    points = decode(payload["centerlines"]["points"]) + np.array(payload["origin"])
    np.testing.assert_allclose(points[offsets[3]:offsets[4]], graph.lanes[3].centerline, atol=1e-3)
    assert decode(payload["stop_lines"]).shape == (len(graph.stop_lines()), 4)


@pytest.mark.parametrize("path", [
    "/api/episodes/.hidden", "/api/episodes/..", "/api/episodes/a%20b", "/api/episodes/" + "x" * 200,
    "/api/maps/..", "/api/maps/av2:%2Fetc%2Fpasswd", "/api/maps/opendrive:..%5C..%5Cx",
])
def test_malformed_ids_are_refused(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (400, 404), response.text
    assert "error" in response.json()


@pytest.mark.parametrize("path", [
    "/api/episodes/..%2F..%2Fetc%2Fpasswd", "/static/../app.py", "/static/%2e%2e/app.py",
    "/static/%2e%2e%2f%2e%2e%2fpyproject.toml", "/api/episodes/nope-0000", "/api/maps/town-unknown",
])
def test_traversal_and_unknown_ids_find_nothing(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert "def create_app" not in response.text and "[project]" not in response.text


def test_symbolic_links_out_of_the_store_are_refused(client: TestClient, store: EpisodeStore,
                                                     tmp_path: Path) -> None:
    index = client.app.state.index  # type: ignore[attr-defined]
    source = store.folder(_sim_ids(store)[0])
    outside = tmp_path / "elsewhere" / "outsider"
    shutil.copytree(source, outside)
    manifest = json.loads((outside / "episode.json").read_text())
    (outside / "episode.json").write_text(json.dumps({**manifest, "episode_id": "outsider"}))
    link = source.parent / "outsider"
    link.symlink_to(outside, target_is_directory=True)
    secret = tmp_path / "secret.parquet"
    shutil.copy(source / "ego.parquet", secret)
    inside = source.parent / "linked-table"
    shutil.copytree(source, inside)
    (inside / "ego.parquet").unlink()
    (inside / "ego.parquet").symlink_to(secret)
    escaping = source.parent / "escaping-manifest"
    shutil.copytree(source, escaping)
    entry = json.loads((escaping / "episode.json").read_text())
    entry["tables"]["ego"]["file"] = "../../../../secret.parquet"
    (escaping / "episode.json").write_text(json.dumps({**entry, "episode_id": "escaping-manifest"}))
    linked_day = store.root / "sim" / "date=1999-01-01"
    linked_day.symlink_to(outside.parent, target_is_directory=True)  # a whole partition linked out
    map_link = store.root / "maps" / "stolen-map.json"
    map_link.parent.mkdir(exist_ok=True)
    map_link.symlink_to(secret)
    try:
        for episode_id in ("outsider", "linked-table", "escaping-manifest"):
            response = client.get(f"/api/episodes/{episode_id}")
            assert response.status_code == 403, (episode_id, response.text)
            assert client.get(f"/api/episodes/{episode_id}/bev").status_code == 403, episode_id
            assert "outside the store" in response.json()["error"] or "not a file name" in response.json()["error"]
        assert client.get("/api/maps/stolen-map").status_code == 403
        index.refresh(force=True)
        listed = {row["episode_id"] for row in client.get("/api/episodes", params={"page_size": "500"}).json()["rows"]}
        assert "outsider" not in listed and "linked-table" in listed
    finally:
        for path in (link, map_link, linked_day):
            path.unlink()
        for folder in (inside, escaping):
            shutil.rmtree(folder)
        index.refresh(force=True)


def test_a_source_folder_linked_out_of_the_store_is_neither_listed_nor_served(store: EpisodeStore,
                                                                              tmp_path: Path) -> None:
    episode_id = _sim_ids(store)[0]
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(store.folder(episode_id).parent, elsewhere / "date=2000-01-01")
    other = EpisodeStore(tmp_path / "store")
    other.root.mkdir()
    (other.root / "sim").symlink_to(elsewhere, target_is_directory=True)
    with TestClient(create_app(other.root), base_url=LOCAL) as client:
        assert client.get("/api/episodes").json()["total"] == 0
        assert client.get(f"/api/episodes/{episode_id}").status_code == 403


def test_damaged_episodes_answer_errors_that_name_the_file(client: TestClient, store: EpisodeStore) -> None:
    source = store.folder(_sim_ids(store)[0])
    damaged = {name: source.with_name(name) for name in ("torn-table", "torn-manifest", "no-ego-column")}
    for folder in damaged.values():
        shutil.copytree(source, folder)
    (damaged["torn-table"] / "actors.parquet").write_bytes(b"PAR1 not really")
    (damaged["torn-manifest"] / "episode.json").write_text('{"tables": ')
    without_x = pq.read_table(source / "ego.parquet").drop_columns(["x_m"])
    pq.write_table(without_x, damaged["no-ego-column"] / "ego.parquet")
    try:
        for name, file in (("torn-table", "actors.parquet"), ("torn-manifest", "episode.json"),
                           ("no-ego-column", "ego.parquet")):
            response = client.get(f"/api/episodes/{name}")
            assert response.status_code == 422, response.text
            assert str(damaged[name] / file) in response.json()["error"]
        assert "x_m" in client.get("/api/episodes/no-ego-column").json()["error"]
    finally:
        for folder in damaged.values():
            shutil.rmtree(folder)


def test_the_page_and_its_assets_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    for path in ("/static/index.html", "/static/viewer.js", "/api/info", "/api/episodes/nope-0000"):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
    assert "<script src=\"/static/viewer.js\"" in page.text
    script = client.get("/static/viewer.js").text
    assert "innerHTML" not in script and "eval(" not in script and "new Function" not in script


@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:8765", "127.0.0.1.evil.example.com",
                                  "testserver", ""])
def test_hosts_it_is_not_bound_to_are_refused(client: TestClient, store: EpisodeStore, host: str) -> None:
    """A page on another site that rebinds its name to 127.0.0.1 sends its own name as the Host."""
    response = client.get("/api/info", headers={"host": host})
    assert response.status_code == 400 and str(store.root) not in response.text
    assert "is not served here" in response.json()["error"]


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "LOCALHOST", "[::1]:8765"])
def test_the_loopback_names_are_served(client: TestClient, host: str) -> None:
    assert client.get("/api/info", headers={"host": host}).status_code == 200


def test_a_public_viewer_answers_the_names_it_is_given(store: EpisodeStore) -> None:
    with TestClient(create_app(store.root, allowed_hosts=("viewer.example.com",))) as client:
        assert client.get("/api/info", headers={"host": "viewer.example.com"}).status_code == 200
        assert client.get("/api/info", headers={"host": "other.example.com"}).status_code == 400


@pytest.mark.parametrize("query", ["page=9223372036854775807", "page=1000001", "page=0", "page_size=501",
                                   "page_size=99999999999999999999", "page=-1"])
def test_numeric_parameters_are_bounded(client: TestClient, query: str) -> None:
    response = client.get(f"/api/episodes?{query}")
    assert response.status_code == 400, response.text
    assert "page must be in 1..1000000 and page_size in 1..500" in response.json()["error"]


def test_only_maps_that_an_episode_drives_on_are_built(client: TestClient) -> None:
    assert client.get("/api/maps/junction4-60").status_code == 200  # the store's episodes drive on it
    for unused in ("town-5", "town-grid-77", "junction4-61"):
        response = client.get(f"/api/maps/{unused}")
        assert response.status_code == 404 and "no episode in the store drives on map" in response.json()["error"]


def test_a_non_loopback_address_needs_public(store: EpisodeStore) -> None:
    import subprocess
    import sys

    for arguments, message in ((["--host", "0.0.0.0"], "--host 0.0.0.0: not a loopback address; add --public"),
                               (["--allow-host", "x.example.com"], "--allow-host: further host names are for a")):
        done = subprocess.run([sys.executable, "-c", "from autoloop.cli import app; app()", "replay", "--store",
                               str(store.root), "--port", "0", *arguments], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
        assert done.returncode == 2 and message in done.stdout and len(done.stdout.strip().splitlines()) == 1


def test_links_name_the_views_the_page_opens(store: EpisodeStore) -> None:
    import subprocess
    import sys

    from autoloop.viewer import replay_url

    assert replay_url("eval-1") == "http://127.0.0.1:8765/#/episode/eval-1"
    assert replay_url("a.1", compare_with="b-2", frame=40, base="http://host:9/") == \
        "http://host:9/#/compare/a.1/b-2?f=40"
    code = "import sys, autoloop.viewer; heavy = {'starlette', 'duckdb'} & set(sys.modules); assert not heavy, heavy"
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})


def test_a_missing_store_lists_nothing(tmp_path: Path) -> None:
    with TestClient(create_app(tmp_path / "nowhere"), base_url=LOCAL) as client:
        assert client.get("/api/episodes").json() == {"total": 0, "page": 1, "page_size": 50, "rows": []}
        assert client.get("/api/episodes/anything").status_code == 404


def test_replay_command_serves_the_store(store: EpisodeStore) -> None:
    import subprocess
    import sys
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-c", "from autoloop.cli import app; app()", "replay", "--store", str(store.root),
         "--port", "0", "--open", _sim_ids(store)[0]],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"#/episode/{_sim_ids(store)[0]}" in line and "http://127.0.0.1:" in line
        base = line.split(" at ")[1].split("#")[0]
        with urllib.request.urlopen(base + "api/episodes") as response:
            assert json.load(response)["total"] == len(store.episode_ids())
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_report_links_follow_the_viewers_address_and_put_the_champion_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from autoloop.evaluation import compare_link, episode_link

    assert compare_link("candidate-1", "champion-1") == "http://127.0.0.1:8765/#/compare/champion-1/candidate-1"
    monkeypatch.setenv("AUTOLOOP_VIEWER_URL", "http://viewer.example.com:9000/")
    assert episode_link("eval-1") == "http://viewer.example.com:9000/#/episode/eval-1"
