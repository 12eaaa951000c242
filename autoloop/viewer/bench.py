"""``autoloop bench viewer``: how fast the replay viewer opens episodes and lists a store (JSON).

Per episode (an Argoverse 2 log; a synthesized long sim episode written with the store's writer): building and
serializing its payload as the API does, and, where Debian's Chromium and Playwright are installed, the whole open
in a headless browser (fetch, decode, first drawn frame). For the list: the first scan of a store of N episodes,
a refresh after one more lands, and one filtered, sorted page. Each episode's timed opens show as progress
(``bench viewer: <episode>``).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autoloop.episodes import Episode, EpisodeStore
from autoloop.progress import counted
from autoloop.viewer.index import EpisodeIndex
from autoloop.viewer.payload import decode, episode_payload, load_map, map_payload
from sim.maps import get_map
from sim.scenarios import sample_scenario

#: Debian's Chromium, which the browser tests and this benchmark drive (Playwright never downloads one here).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run")


def launch_chromium(playwright: Any) -> Any:
    """A headless :data:`CHROMIUM` through Playwright's ``sync_api`` object."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS))


@dataclass(frozen=True)
class ViewerBenchCase:
    """Opening one episode in the replay viewer.

    :param seconds: building and serializing the payload, as the API does: median over the repeats (the map is
        cached, as the app caches it).
    :param first_seconds: the first build, which also reads and builds the episode's map.
    :param browser_seconds: in headless Chromium, from asking for the episode to its first drawn frame (fetch,
        decode, draw; median of 3), or ``None`` without Chromium/Playwright.
    """

    name: str
    steps: int
    actor_rows: int
    payload_mb: float
    map_mb: float
    seconds: float
    first_seconds: float
    browser_seconds: float | None


@dataclass(frozen=True)
class ViewerIndexBench:
    """The viewer's episode list over a store of ``episodes`` episodes.

    :param scan_seconds: first read of every manifest into the index.
    :param refresh_seconds: re-checking the store after one more episode landed.
    :param page_seconds: one filtered (infraction, model alias, suite), sorted page of 50 (median of 20).
    :param matching: episodes the last of those queries matched.
    """

    episodes: int
    scan_seconds: float
    refresh_seconds: float
    page_seconds: float
    matching: int


def bench_viewer(root: Path, *, av2_log: Path | None, minutes: float = 5.0, actors: int = 50, repeats: int = 5,
                 index_episodes: int = 2000, browser: bool = True, seed: int = 0,
                 ) -> tuple[list[ViewerBenchCase], ViewerIndexBench]:
    """Time the replay viewer on the AV2 log at ``av2_log`` (imported into a store under ``root``; left out when
    ``None``) and on a sim episode of ``minutes`` at 20 Hz with ``actors`` actors on ``town-1``, and its list over
    ``index_episodes`` small episodes.

    :param browser: also time opening each episode in headless Chromium (when it and Playwright are installed).
    """
    from autoloop.fleet import ingest

    store = EpisodeStore(root / "episodes")
    cases: list[tuple[str, str]] = []
    if av2_log is not None:
        landed = ingest([av2_log], store, root / "quarantine").landed
        cases += [(f"av2 log {episode_id}", episode_id) for episode_id in landed]
    rng = np.random.default_rng(seed)
    store.write(long_sim_episode("bench-sim-long", minutes=minutes, actors=actors, rng=rng))
    cases.append((f"sim {minutes:g} min, {actors} actors", "bench-sim-long"))
    in_browser = _browser_seconds(store, [episode_id for _, episode_id in cases]) if browser else {}
    results = []
    for name, episode_id in cases:
        timings: list[float] = []
        map_text = ""
        for _ in counted(range(repeats + 1), f"bench viewer: {name}", "opens"):
            start = time.perf_counter()
            payload = episode_payload(store, episode_id)
            text = json.dumps(payload, separators=(",", ":"))
            if not map_text:  # the first open also builds the map, as the app does once per map
                map_text = json.dumps(map_payload(load_map(store, payload["map_name"])), separators=(",", ":"))
            timings.append(time.perf_counter() - start)
        results.append(ViewerBenchCase(
            name=name, steps=payload["num_steps"],
            actor_rows=int(decode(payload["actors"]["frame_start"])[-1]) if payload["actors"] else 0,
            payload_mb=round(len(text) / 2**20, 2), map_mb=round(len(map_text) / 2**20, 2),
            seconds=round(statistics.median(timings[1:]), 4), first_seconds=round(timings[0], 4),
            browser_seconds=in_browser.get(episode_id)))
    return results, _bench_index(root / "index", index_episodes, rng)


def long_sim_episode(episode_id: str, *, minutes: float, actors: int, rng: np.random.Generator) -> Episode:
    """A synthesized sim episode on ``town-1`` at 20 Hz: every ego column a rollout records (light states too),
    ``actors`` actors present every step, a scenario (so a route) and two infractions."""
    scenario = sample_scenario(int(rng.integers(1 << 16)), map_name="town-1", traffic_vehicles=actors)
    steps = int(minutes * 60 * 20)
    columns: dict[str, Any] = {"step": np.arange(steps, dtype=np.int32),
                               "time_s": (np.arange(steps) * 0.05).astype(np.float32)}
    for name in ("x_m", "y_m"):
        columns[name] = np.cumsum(rng.normal(0, 0.4, steps))
    for name in ("yaw_rad", "speed_mps", "steer_rad", "accel_mps2"):
        columns[name] = rng.standard_normal(steps).astype(np.float32)
    columns["route_progress_m"] = np.linspace(scenario.start_s_m, scenario.end_s_m, steps, dtype=np.float32)
    columns["action"] = rng.uniform(-1, 1, (steps, 2)).astype(np.float32)
    columns["light_states"] = rng.integers(0, 3, (steps, get_map("town-1").light_groups)).astype(np.float32)
    rows = steps * actors
    table: dict[str, Any] = {
        "step": np.repeat(np.arange(steps, dtype=np.int32), actors),
        "actor_id": np.tile(np.array([f"a{k}" for k in range(actors)], dtype=object), steps),
        "kind": np.tile(np.array(["vehicle", "pedestrian"], dtype=object)[np.arange(actors) % 2], steps),
        "x_m": rng.normal(0, 100, rows), "y_m": rng.normal(0, 100, rows)}
    for name in ("yaw_rad", "length_m", "width_m", "speed_mps"):
        table[name] = rng.uniform(0.5, 5, rows).astype(np.float32)
    table["observed"] = np.ones(rows, dtype=bool)
    events = {"time_s": np.array([60.0, 200.0], dtype=np.float32),
              "kind": np.array(["red_light", "collision_vehicle"], dtype=object), "x_m": np.zeros(2),
              "y_m": np.zeros(2), "actor_id": np.array(["", "a3"], dtype=object),
              "detail": np.array(["", ""], dtype=object)}
    metadata = {"map_name": "town-1", "scenario": scenario.model_dump(mode="json"), "policy": "bench", "dt_s": 0.05,
                "tags": {"purpose": "bench"},
                "record": {"status": "completed", "infractions": {"red_light": 1, "collision_vehicle": 1}},
                "score": {"driving_score": 42.0, "route_completion": 100.0, "infraction_penalty": 0.42}}
    return Episode(episode_id, "sim", columns, metadata, actors=table, events=events)


_OPEN = """async (id) => {
  document.querySelector('#stages').replaceChildren();
  const start = performance.now();
  location.hash = '#/episode/' + encodeURIComponent(id);
  await new Promise((resolve) => {
    const drawn = () => document.querySelector('#stages canvas[data-frame]') ? resolve() : requestAnimationFrame(drawn);
    drawn();
  });
  return (performance.now() - start) / 1000;
}"""


def _browser_seconds(store: EpisodeStore, episode_ids: list[str]) -> dict[str, float]:
    """Episode id -> median seconds (of 3) from asking for it to its first drawn frame in headless Chromium; empty
    without Chromium or Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    if not CHROMIUM.exists():
        return {}
    from autoloop.viewer.app import create_app, serving

    found = {}
    with serving(create_app(store.root)) as url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.wait_for_selector("#episodes tbody tr")
        for episode_id in episode_ids:
            timings = []
            for _ in range(3):
                page.evaluate("() => { location.hash = '#/episodes'; }")
                page.wait_for_selector("#browser-view:not([hidden])")
                timings.append(float(page.evaluate(_OPEN, episode_id)))
            found[episode_id] = round(statistics.median(timings), 3)
        browser.close()
    return found


def _bench_index(root: Path, episodes: int, rng: np.random.Generator) -> ViewerIndexBench:
    store = EpisodeStore(root)
    statuses = ["completed", "failed_route_deviation", "failed_agent_blocked"]

    def episode(k: int) -> Episode:
        infractions = {"collision_vehicle": int(rng.integers(0, 2)), "red_light": int(rng.integers(0, 2))}
        return Episode(f"bench-{k:07d}", "sim", {"step": np.arange(2, dtype=np.int32)}, {
            "map_name": f"town-{k % 7}", "policy": f"models:/driver@{'champion' if k % 2 else 'challenger'}",
            "dt_s": 0.05, "tags": {"purpose": "eval", "suite": f"suite-{k % 3}"},
            "scenario": {"traffic_seed": k % 500, "events": [{"type": "PedestrianCrossing"}]},
            "record": {"status": statuses[k % 3], "infractions": infractions},
            "score": {"driving_score": float(rng.uniform(0, 100)), "route_completion": 100.0}})

    store.write_many([episode(k) for k in range(episodes)], threads=8)
    start = time.perf_counter()
    index = EpisodeIndex(store, min_refresh_s=0.0)
    index.refresh(force=True)
    scan = time.perf_counter() - start
    store.write(episode(episodes))
    start = time.perf_counter()
    index.refresh(force=True)
    refresh = time.perf_counter() - start
    timings = []
    for k in range(20):
        start = time.perf_counter()
        page = index.page({"infraction": "red_light", "model": "@champion", "suite": f"suite-{k % 3}"},
                          sort="driving_score", descending=True, page=1, page_size=50)
        timings.append(time.perf_counter() - start)
    return ViewerIndexBench(episodes=episodes + 1, scan_seconds=round(scan, 3), refresh_seconds=round(refresh, 3),
                            page_seconds=round(statistics.median(timings), 4), matching=page.total)
