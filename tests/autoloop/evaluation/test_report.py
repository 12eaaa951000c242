"""The evaluation report's charts and clips: every chart carries one quantity with its interval (checked on the
chart data the report writes and on the drawn figure's bars and error bars), and a clip of an episode with a
collision shows the planned route and marks the collision where and when it happened (checked on the GIF's
pixels)."""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer
from numpy.typing import NDArray
from PIL import Image

from autoloop.episodes import Episode, EpisodeStore
from autoloop.evaluation import COMPLETED, EvaluationResult, InfractionEvent, RouteResult, aggregate, compare
from autoloop.evaluation.charts import Chart, draw, pyplot
from autoloop.evaluation.clips import (
    BORDER_PX,
    CHANNEL_COLOURS,
    CLIP_FRAME_MS,
    CLIP_SPEC,
    EGO_COLOUR,
    INFRACTION_FRAME_MS,
    MARK_COLOUR,
    MARK_RADIUS_PX,
    render_clip,
)
from autoloop.evaluation.report import write_report
from sim.geometry import cumulative_length, interpolate_along
from sim.maps import get_map
from sim.scenarios.suites import build_suite
from sim.scene.bev import Channel
from sim.scene.route_path import RoutePath


def route(index: int, score: float, *, kind: str, town: str = "town-1", episode: str | None = None,
          infractions: tuple[InfractionEvent, ...] = ()) -> RouteResult:
    """A driven route scoring ``score`` (its completion; a success when 100) with no infraction penalty."""
    completion = score / 100.0
    record = {"route_completion": completion, "infractions": {event.kind: 1 for event in infractions},
              "outside_lanes_share": 0.0, "status": "completed" if completion == 1.0 else "failed_agent_blocked",
              "driven_m": 100.0 * completion, "route_length_m": 100.0, "min_speed_percentages": []}
    return RouteResult(index=index, scenario_seed=1000 + index, scenario_type=kind, town=town,
                       episode_id=episode or f"ep-{index}", status=COMPLETED, driving_score=score,
                       route_completion=score, infraction_penalty=1.0, driven_m=100.0 * completion,
                       record=record, infractions=infractions)


def result_of(scores: list[tuple[float, str, str]], policy: str) -> EvaluationResult:
    return aggregate([route(i, score, kind=kind, town=town) for i, (score, kind, town) in enumerate(scores)],
                     policy=policy, suite="s", suite_hash="h", scorer="lb2", resamples=2000)


# ---------------------------------------------------------------------------------------------- charts

CHAMPION = [(100.0, "A", "town-1"), (0.0, "A", "town-1"), (80.0, "B", "town-2"), (60.0, "B", "town-2")]
CANDIDATE = [(100.0, "A", "town-1"), (100.0, "A", "town-1"), (90.0, "B", "town-2"), (30.0, "B", "town-2")]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvaluationResult, Path]:
    champion, candidate = result_of(CHAMPION, "champ"), result_of(CANDIDATE, "cand")
    folder = tmp_path_factory.mktemp("report")
    write_report(candidate, folder, store=EpisodeStore(folder / "episodes"), clips=0,
                 comparison=compare(candidate, champion, resamples=2000))
    return candidate, folder


def charts_of(folder: Path) -> dict[str, Chart]:
    data = json.loads((folder / "figures" / "charts.json").read_text())
    return {chart["name"]: Chart(**{key: tuple(value) if isinstance(value, list) else value
                                   for key, value in chart.items()}) for chart in data}


def test_each_chart_carries_one_quantity_with_its_interval(report: tuple[EvaluationResult, Path]) -> None:
    _, folder = report
    charts = charts_of(folder)
    assert set(charts) == {"driving_score_by_type", "success_rate_by_type", "driving_score_by_town",
                           "success_rate_by_town", "difference_by_metric", "difference_by_type"}
    page = (folder / "report.html").read_text()
    embedded = [json.loads(html.unescape(text)) for text in re.findall(r'<figure data-chart="([^"]+)"', page)]
    assert sorted(chart["name"] for chart in embedded) == sorted(charts)  # each figure carries its data
    for chart in charts.values():
        assert "BCa bootstrap" in chart.interval and "95 %" in chart.interval
        assert len(chart.categories) == len(chart.values) == len(chart.low) == len(chart.high) > 0
        assert all(low <= value <= high for low, value, high in zip(chart.low, chart.values, chart.high, strict=True))
        assert (folder / "figures" / f"{chart.name}.png").is_file()
        # the drawn figure: one set of bars at the values, one set of error bars spanning [low, high], one y label
        fig = draw(chart)
        [ax] = fig.axes
        [bars] = [c for c in ax.containers if isinstance(c, BarContainer)]
        [errors] = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert [bar.get_height() for bar in bars] == pytest.approx(chart.values)
        [segments] = [collection.get_segments() for collection in errors.lines[2]]
        assert [s[0][1] for s in segments] == pytest.approx(chart.low)
        assert [s[1][1] for s in segments] == pytest.approx(chart.high)
        assert ax.get_ylabel() == chart.quantity
        assert [t.get_text() for t in ax.get_xticklabels()] == list(chart.categories)
        pyplot().close(fig)


def test_success_rate_has_its_own_chart_and_interval(report: tuple[EvaluationResult, Path]) -> None:
    result, folder = report
    charts = charts_of(folder)
    ds, success = charts["driving_score_by_type"], charts["success_rate_by_type"]
    assert "success" not in ds.quantity.lower() and "driving score" in ds.quantity
    assert "driving score" not in success.quantity.lower() and "success rate" in success.quantity
    # all routes first (the evaluation's own intervals), then each type with the route count
    assert ds.categories == success.categories == ("all (4)", "A (2)", "B (2)")
    overall = result.intervals["driving_score"]
    assert (ds.values[0], ds.low[0], ds.high[0]) == (overall.mean, overall.low, overall.high)
    assert ds.values[1:] == pytest.approx((100.0, 60.0))
    # type B: successes [0, 0] (none completed); type A: [100, 100]; all: [100, 100, 0, 0]
    assert success.values == pytest.approx((50.0, 100.0, 0.0))
    assert (success.low[1], success.high[1], success.low[2], success.high[2]) == (100.0, 100.0, 0.0, 0.0)
    assert success.low[0] < 50.0 < success.high[0]
    # type B's driving scores [90, 30]: the resampled means are 30, 60 and 90, so the 95 % interval is [30, 90]
    assert (ds.low[2], ds.high[2]) == pytest.approx((30.0, 90.0))


def test_comparison_chart_shows_each_metric_difference_with_its_interval(
        report: tuple[EvaluationResult, Path]) -> None:
    _, folder = report
    charts = charts_of(folder)
    per_metric = charts["difference_by_metric"]
    assert per_metric.signed and "candidate − champion" in per_metric.quantity
    # champion first under each metric: DS 60.0 -> 80.0, success 25 % -> 50 %, penalty 1 -> 1 (x 100)
    assert per_metric.categories == ("driving score\n60.0 → 80.0", "route completion\n60.0 → 80.0",
                                     "success rate\n25.0 → 50.0", "infraction penalty\n100.0 → 100.0")
    # paired differences: DS [0, 100, 10, -30] (mean 20), success [0, 100, 0, 0] (mean 25), penalty [0] * 4
    assert per_metric.values == pytest.approx((20.0, 20.0, 25.0, 0.0))
    assert per_metric.low[0] < 20.0 < per_metric.high[0]
    assert (per_metric.low[3], per_metric.high[3]) == (0.0, 0.0)
    per_type = charts["difference_by_type"]
    assert per_type.categories == ("A (2)", "B (2)") and per_type.values == pytest.approx((50.0, -10.0))
    # type B's differences [10, -30]: resampled means -30, -10 and 10
    assert (per_type.low[1], per_type.high[1]) == pytest.approx((-30.0, 10.0))
    markdown = (folder / "report.md").read_text()
    assert "| metric | champion | candidate | difference |" in markdown
    assert "| driving score | 60.00 [" in markdown


def test_comparison_pairs_every_metric_champion_first() -> None:
    champion, candidate = result_of(CHAMPION, "champ"), result_of(CANDIDATE, "cand")
    comparison = compare(candidate, champion, resamples=2000)
    for name, compared in comparison.metrics.items():
        assert compared.champion == champion.intervals[name] and compared.candidate == candidate.intervals[name]
    assert comparison.metrics["success_rate"].difference.mean == pytest.approx(25.0)
    assert comparison.difference == comparison.metrics["driving_score"].difference


# ---------------------------------------------------------------------------------------------- clips

STEPS, DT_S, SPEED_MPS = 60, 0.1, 5.0
#: The parked vehicle stands this far along the route from the ego's start; the ego reaches it at COLLISION_STEP.
PARKED_AHEAD_M, COLLISION_STEP = 20.0, 33


@dataclass(frozen=True)
class Collision:
    store: EpisodeStore
    episode_id: str
    event: InfractionEvent
    ego_xy: NDArray[np.float64]
    ego_yaw: NDArray[np.float64]
    route: RoutePath
    start_s_m: float


@pytest.fixture(scope="module")
def collision(tmp_path_factory: pytest.TempPathFactory) -> Collision:
    """A stored sim episode on the smoke suite's first route: the ego drives along the route at 5 m/s into a
    vehicle parked 20 m ahead, colliding with it at step 33 (3.3 s)."""
    scenario = build_suite("smoke").scenarios[0]
    route_path = RoutePath.build(get_map(scenario.map_name), scenario.route)
    arc = cumulative_length(route_path.points)[None]
    progress = scenario.start_s_m + SPEED_MPS * DT_S * np.arange(STEPS)
    xy, yaw = interpolate_along(route_path.points[None], arc, progress[None])
    parked, parked_yaw = interpolate_along(route_path.points[None], arc,
                                           np.array([[scenario.start_s_m + PARKED_AHEAD_M]]))
    steps = {"step": np.arange(STEPS, dtype=np.int32), "time_s": (DT_S * np.arange(STEPS)).astype(np.float32),
             "x_m": xy[0, :, 0], "y_m": xy[0, :, 1], "yaw_rad": yaw[0].astype(np.float32),
             "speed_mps": np.full(STEPS, SPEED_MPS, dtype=np.float32),
             "route_progress_m": progress.astype(np.float32)}
    actors = {"step": np.arange(STEPS, dtype=np.int32), "actor_id": np.array(["a0"] * STEPS, dtype=object),
              "kind": np.array(["vehicle"] * STEPS, dtype=object), "x_m": np.full(STEPS, parked[0, 0, 0]),
              "y_m": np.full(STEPS, parked[0, 0, 1]), "yaw_rad": np.full(STEPS, parked_yaw[0, 0], dtype=np.float32),
              "length_m": np.full(STEPS, 4.6, dtype=np.float32), "width_m": np.full(STEPS, 2.0, dtype=np.float32),
              "speed_mps": np.zeros(STEPS, dtype=np.float32), "observed": np.ones(STEPS, dtype=bool)}
    event = InfractionEvent("collision_vehicle", round(COLLISION_STEP * DT_S, 3), float(parked[0, 0, 0]),
                            float(parked[0, 0, 1]))
    events = {"time_s": np.array([event.time_s], dtype=np.float32), "kind": np.array([event.kind], dtype=object),
              "x_m": np.array([event.x_m]), "y_m": np.array([event.y_m]), "actor_id": np.array(["a0"], dtype=object),
              "detail": np.array([""], dtype=object)}
    store = EpisodeStore(tmp_path_factory.mktemp("clips") / "episodes")
    metadata = {"map_name": scenario.map_name, "scenario": scenario.model_dump(mode="json"), "dt_s": DT_S}
    store.write(Episode("eval-collision", "sim", steps, metadata, actors=actors, events=events))
    return Collision(store, "eval-collision", event, xy[0], yaw[0], route_path, scenario.start_s_m)


def pixel(point: NDArray[np.float64], ego_xy: NDArray[np.float64], ego_yaw: float) -> tuple[float, float]:
    """Row and column of a map point in a clip frame (heading up, 0.25 m per pixel, the ego at row 200 and between
    columns 159 and 160), worked out here rather than taken from the renderer."""
    dx, dy = point - ego_xy
    forward = dx * np.cos(ego_yaw) + dy * np.sin(ego_yaw)
    left = -dx * np.sin(ego_yaw) + dy * np.cos(ego_yaw)
    return 200.0 - forward / 0.25, 159.5 - left / 0.25


def frames_of(path: Path) -> tuple[list[NDArray[np.uint8]], list[int]]:
    with Image.open(path) as gif:
        frames, durations = [], []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(int(gif.info["duration"]))
            frames.append(np.asarray(gif.convert("RGB")))
    return frames, durations


def is_colour(rgb: NDArray[np.uint8], colour: tuple[int, int, int]) -> NDArray[np.bool_]:
    return np.all(rgb == np.array(colour, dtype=np.uint8), axis=-1)


def test_a_clip_shows_the_route_and_marks_the_collision_where_and_when_it_happened(collision: Collision,
                                                                                  tmp_path: Path) -> None:
    clip = render_clip(collision.store, collision.episode_id, tmp_path / "clip.gif", infractions=(collision.event,))
    frames, durations = frames_of(clip.path)
    assert len(frames) == len(clip.steps) and frames[0].shape == (320, 320, 3) and CLIP_SPEC.size_px == 320
    [mark] = clip.marks
    assert mark.kind == "collision_vehicle" and clip.steps[mark.frame] == COLLISION_STEP  # the collision's frame
    # the ego, heading up at row 200
    assert is_colour(frames[0][195:206, 157:163], EGO_COLOUR).all()
    # the planned route 10 m ahead of the start, and not 6 m behind it (where the route's lanes go on)
    arc = cumulative_length(collision.route.points)[None]
    for ahead_m, drawn in ((10.0, True), (-6.0, False)):
        point, _ = interpolate_along(collision.route.points[None], arc, np.array([[collision.start_s_m + ahead_m]]))
        row, col = pixel(point[0, 0], collision.ego_xy[0], float(collision.ego_yaw[0]))
        assert bool(is_colour(frames[0][round(row), round(col)], CHANNEL_COLOURS[Channel.ROUTE])) is drawn, ahead_m
    # the marker: a ring around the collision's place, from the collision's frame on; that frame framed and held
    rows, cols = np.mgrid[0:320, 0:320]
    for k, frame in enumerate(frames):
        step = clip.steps[k]
        magenta = is_colour(frame, MARK_COLOUR)
        if step < COLLISION_STEP:
            assert not magenta.any(), step
            assert durations[k] == CLIP_FRAME_MS
            continue
        row, col = pixel(np.array([collision.event.x_m, collision.event.y_m]), collision.ego_xy[step],
                         float(collision.ego_yaw[step]))
        ring = np.abs(np.hypot(rows - row, cols - col) - (MARK_RADIUS_PX - 1.0)) < 0.5  # (drawn inside the radius)
        assert magenta[ring].mean() > 0.9, step
        assert not magenta[np.hypot(rows - row, cols - col) < MARK_RADIUS_PX - 4].any()  # a ring, not a disc
        assert magenta[25:40, BORDER_PX:200].any()  # the label under the time
        assert bool(magenta[-2, -2]) is (step == COLLISION_STEP)  # the border
        assert durations[k] == (INFRACTION_FRAME_MS if step == COLLISION_STEP else CLIP_FRAME_MS)


def test_the_report_clips_its_worst_route_with_the_infraction_named(collision: Collision, tmp_path: Path) -> None:
    worst = route(0, 60.0, kind="Route", episode=collision.episode_id, infractions=(collision.event,))
    result = aggregate([worst, route(1, 100.0, kind="Route")], policy="p", suite="s", suite_hash="h", scorer="lb2",
                       resamples=200)
    files = write_report(result, tmp_path / "report", store=collision.store, clips=1)
    page = files.html.read_text()
    [(caption, data)] = re.findall(r'<img alt="([^"]+)" src="data:image/gif;base64,([^"]+)"', page)
    assert "collision_vehicle at 3.3 s" in caption
    (tmp_path / "clip.gif").write_bytes(base64.b64decode(data))
    frames, durations = frames_of(tmp_path / "clip.gif")
    assert frames[0].shape == (320, 320, 3) and durations.count(INFRACTION_FRAME_MS) == 1
