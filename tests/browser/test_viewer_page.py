"""The replay viewer in a real browser: list and filter episodes, open one, play it, jump to an infraction, compare
two in sync, and check the canvas shows the scene where the lanes and the ego are."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from autoloop.episodes import EpisodeStore
from sim.geometry import resample_polyline
from sim.maps import LaneGraph, get_map
from tests.autoloop.viewer_store import HOSTILE_POLICY

pytestmark = pytest.mark.browser
BACKGROUND = (0x15, 0x18, 0x1D)  # the canvas's background (viewer.js BACKGROUND)


def _sim(store: EpisodeStore) -> list[str]:
    return [i for i in store.episode_ids("sim") if not i.startswith("hostile-")]


def _collided(store: EpisodeStore) -> str:
    return next(i for i in _sim(store) if store.metadata()[i]["record"]["infractions"].get("collision_vehicle"))


def _frame(page: Any) -> int:
    return int(page.locator("#frame-counter").get_attribute("data-frame"))


def test_the_browser_lists_filters_and_opens_episodes(page: Any, viewer_store: EpisodeStore) -> None:
    page.goto("/")
    rows = page.locator("#episodes tbody tr")
    rows.first.wait_for()
    rows_total = len(viewer_store.episode_ids())
    assert rows.count() == rows_total
    page.select_option("#filters select[name=infraction]", "collision_vehicle")
    page.wait_for_function("() => document.querySelectorAll('#episodes tbody tr').length === 2")
    listed = sorted(rows.nth(k).get_attribute("data-episode-id") for k in range(rows.count()))
    assert listed == sorted([_collided(viewer_store), f"hostile-{_collided(viewer_store)}"])
    assert "infraction=collision_vehicle" in page.url
    page.select_option("#filters select[name=outcome]", "failed_route_deviation")  # a second filter: none left
    page.wait_for_function("() => document.querySelectorAll('#episodes tbody tr').length === 0")
    assert page.locator("#total").text_content() == "0 episodes"
    page.click("#clear-filters")
    page.wait_for_function(f"() => document.querySelectorAll('#episodes tbody tr').length === {rows_total}")
    page.click("th[data-sort=driving_score]")
    page.click("th[data-sort=driving_score]")  # twice: descending
    page.locator("#episodes[data-loaded='sort=driving_score&order=desc']").wait_for()
    scores = viewer_store.metadata()
    first = rows.first.get_attribute("data-episode-id")
    assert scores[first]["score"]["driving_score"] == max(
        m["score"]["driving_score"] for m in scores.values() if "score" in m)
    page.locator("#episodes tbody tr a").first.click()
    page.locator("#stages canvas[data-frame]").wait_for()
    assert "#/episode/" in page.url and page.locator("#error").is_hidden()


def test_playing_advances_the_frame_and_keys_step_it(page: Any, viewer_store: EpisodeStore) -> None:
    page.goto(f"/#/episode/{_sim(viewer_store)[0]}")
    page.locator("#stages canvas[data-frame]").wait_for()
    assert _frame(page) == 0
    page.click("#play")
    page.wait_for_function("() => Number(document.querySelector('#frame-counter').dataset.frame) >= 5")
    page.keyboard.press(" ")  # pause
    paused = _frame(page)
    page.keyboard.press("ArrowRight")
    assert _frame(page) == paused + 1
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert _frame(page) == paused - 1
    assert f"f={paused - 1}" in page.url  # the view's URL follows the frame
    speed = page.locator("#speed")
    page.keyboard.press("]")
    assert speed.input_value() == "2"
    # dragging pans (and stops following the ego), the wheel zooms; the URL keeps all of it
    canvas = page.locator("#stages canvas")
    before = {name: float(canvas.get_attribute(f"data-{name}")) for name in ("cx", "cy", "scale")}
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 200, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 260, box["y"] + 200, steps=4)
    page.mouse.up()
    assert not page.locator("#follow").is_checked()
    moved = float(canvas.get_attribute("data-cx"))
    assert moved == pytest.approx(before["cx"] - 60 / before["scale"], abs=0.5)
    state = parse_qs(urlsplit(page.url).fragment.partition("?")[2])
    assert state["follow"] == ["0"] and float(state["cx"][0]) == pytest.approx(moved, abs=0.06)
    page.mouse.wheel(0, -300)
    page.wait_for_function(f"() => Number(document.querySelector('#stages canvas').dataset.scale) > {before['scale']}")
    zoom = float(canvas.get_attribute("data-scale"))
    page.wait_for_function(f"() => location.hash.includes('zoom={zoom:.2f}')")
    assert "speed=2" in page.url
    view = {name: float(canvas.get_attribute(f"data-{name}")) for name in ("cx", "cy", "scale")}
    page.reload()
    page.locator(f"#stages canvas[data-frame='{paused - 1}']").wait_for()
    assert speed.input_value() == "2" and not page.locator("#follow").is_checked()
    for name, value in view.items():  # the same view of the scene
        assert float(canvas.get_attribute(f"data-{name}")) == pytest.approx(value, abs=0.06)


def test_clicking_an_infraction_marker_jumps_to_its_frame(page: Any, viewer_store: EpisodeStore) -> None:
    episode_id = _collided(viewer_store)
    events = viewer_store.read(episode_id).events
    assert events is not None
    page.goto(f"/#/episode/{episode_id}")
    marker = page.locator(".marker.infraction[data-kind=collision_vehicle]").first
    marker.wait_for()
    target = int(marker.get_attribute("data-frame"))
    steps = viewer_store.read(episode_id, columns=["time_s"]).steps["time_s"]
    collision_s = float(events["time_s"][list(events["kind"]).index("collision_vehicle")])
    assert abs(steps[target] - collision_s) < 0.051
    assert _frame(page) != target
    marker.click()
    assert _frame(page) == target
    assert page.locator("#stages canvas").get_attribute("data-frame") == str(target)
    assert f"f={target}" in page.url
    # mined triggers are markers too
    triggers = page.locator(".marker.trigger")
    frames = [int(triggers.nth(k).get_attribute("data-frame")) for k in range(triggers.count())]
    assert any(frame != target for frame in frames), "the noisy rollout brakes hard or jerks away from the collision"
    others = [*frames, target]
    # the trigger farthest from every other marker (markers a few frames apart overlap)
    jump = max((f for f in frames if f != target), key=lambda f: min(abs(f - o) for o in others if o != f))
    triggers.nth(frames.index(jump)).click()
    assert _frame(page) == jump
    # and the copy of this episode (same map and seed) is offered for comparison
    page.locator(f"#same-scenario a[href$='/hostile-{episode_id}']").click()
    page.wait_for_function("() => document.querySelectorAll('#stages canvas[data-frame]').length === 2")
    assert f"#/compare/{episode_id}/hostile-{episode_id}" in page.url


def test_compare_shows_two_canvases_in_sync_with_metric_differences(page: Any, viewer_store: EpisodeStore) -> None:
    first, second = _sim(viewer_store)
    page.goto(f"/#/compare/{first}/{second}?f=40")
    canvases = page.locator("#stages canvas")
    page.locator("#compare-metrics").wait_for()
    assert canvases.count() == 2
    page.wait_for_function("() => document.querySelectorAll('#stages canvas[data-frame]').length === 2")
    times = [viewer_store.read(i, columns=["time_s"]).steps["time_s"] for i in (first, second)]

    def in_sync() -> None:
        frames = [int(canvases.nth(k).get_attribute("data-frame")) for k in range(2)]
        assert frames[0] == _frame(page)
        expected = int(np.searchsorted(times[1], times[0][frames[0]] + 1e-6) - 1)
        assert frames[1] == min(expected, len(times[1]) - 1)

    in_sync()
    page.click("#play")
    page.wait_for_function("() => Number(document.querySelector('#frame-counter').dataset.frame) >= 50")
    page.click("#play")
    in_sync()
    # from A's last frame, playing goes on until the longer B ends
    page.keyboard.press("End")
    page.select_option("#speed", "8")
    page.click("#play")
    last = [len(t) - 1 for t in times]
    page.wait_for_function("() => document.querySelector('#play').textContent === '▶'", timeout=60_000)
    assert [int(canvases.nth(k).get_attribute("data-frame")) for k in range(2)] == last
    scores = [viewer_store.metadata()[i]["score"]["driving_score"] for i in (first, second)]
    row = page.locator("#compare-metrics tr[data-metric=driving_score] td")
    assert float(row.nth(3).text_content()) == pytest.approx(scores[1] - scores[0], abs=0.006)


def _scene_pixels(page: Any) -> tuple[np.ndarray, dict[str, float]]:
    from PIL import Image

    canvas = page.locator("#stages canvas").first
    view = {name: float(canvas.get_attribute(f"data-{name}")) for name in ("cx", "cy", "scale")}
    image = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")).astype(int)
    return image, view


def _drawn(image: np.ndarray, x: float, y: float) -> bool:
    """Whether the 5x5 pixels around (x, y) hold anything but the background."""
    patch = image[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3]
    return bool(np.abs(patch - np.array(BACKGROUND)).sum(axis=-1).max() > 30)


def _check_scene(page: Any, graph: LaneGraph) -> None:
    image, view = _scene_pixels(page)
    height, width = image.shape[:2]
    # the ego (followed: at the centre) is drawn in its colour
    centre = image[height // 2 - 1:height // 2 + 2, width // 2 - 1:width // 2 + 2].reshape(-1, 3)
    assert any(abs(r - 0xF0) < 40 and abs(g - 0x88) < 40 and abs(b - 0x3E) < 40 for r, g, b in centre), centre
    # the lanes: every lane centre-line point in view (a point every 2 m) is on drawn road
    points = np.concatenate([resample_polyline(lane.centerline, 2.0) for lane in graph.lanes])
    px = width / 2 + (points[:, 0] - view["cx"]) * view["scale"]
    py = height / 2 - (points[:, 1] - view["cy"]) * view["scale"]
    inside = (px > 10) & (px < width - 10) & (py > 10) & (py < height - 10)
    assert inside.sum() >= 10
    drawn = [_drawn(image, x, y) for x, y in zip(px[inside], py[inside], strict=True)]
    assert np.mean(drawn) >= 0.95
    # and most of the picture away from the road is background
    assert (np.abs(image - np.array(BACKGROUND)).sum(axis=-1) <= 30).mean() > 0.2


def test_a_screenshot_shows_the_lanes_and_the_ego(page: Any, viewer_store: EpisodeStore) -> None:
    page.goto(f"/#/episode/{_sim(viewer_store)[0]}?f=20")
    page.locator("#stages canvas[data-frame='20']").wait_for()
    _check_scene(page, get_map("junction4-60"))


def test_an_imported_av2_log_is_listed_and_drawn(page: Any, viewer_store: EpisodeStore) -> None:
    fleet = viewer_store.episode_ids("fleet")
    if not fleet:
        pytest.skip("no AV2 log in the test store: ../shared/data/av2/forecasting is absent")
    page.goto("/#/episodes?source=fleet")
    page.wait_for_function("() => document.querySelectorAll('#episodes tbody tr').length === 1")
    assert page.locator("#episodes tbody tr").first.get_attribute("data-episode-id") == fleet[0]
    page.locator("#episodes tbody tr a").first.click()
    page.locator("#stages canvas[data-frame='0']").wait_for()
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("+")
    page.locator("#stages canvas[data-frame='10']").wait_for()
    _check_scene(page, viewer_store.get_map(viewer_store.metadata()[fleet[0]]["map_name"]))


def test_episode_data_is_shown_as_text_and_errors_are_shown(page: Any, viewer_store: EpisodeStore) -> None:
    page.goto("/#/episodes?q=hostile")
    page.wait_for_function("() => document.querySelectorAll('#episodes tbody tr').length === 1")
    assert page.locator("#episodes tbody td", has_text="onerror").first.text_content() == HOSTILE_POLICY
    assert page.locator("#episodes tbody img").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.goto("/#/episode/no-such-episode")
    page.locator("#error").wait_for(state="visible")
    assert "404" in page.locator("#error-text").text_content()
    assert "no-such-episode" in page.locator("#error-text").text_content()


def test_a_bad_episode_id_after_a_good_one_leaves_nothing_of_the_good_one(page: Any,
                                                                         viewer_store: EpisodeStore) -> None:
    good = _sim(viewer_store)[0]
    page.goto(f"/#/episode/{good}")
    page.wait_for_function("() => document.querySelectorAll('#panels .panel').length > 0")
    page.evaluate("location.hash = '#/episode/no-such-episode'")
    page.locator("#stages .stage h2", has_text="no-such-episode: not loaded").wait_for()
    assert page.locator("#error").is_visible() and "no-such-episode" in page.locator("#error-text").text_content()
    assert page.locator("#panels .panel").count() == 0 and page.locator("#markers button").count() == 0
    heading = page.locator("#stages .stage h2").text_content()
    assert heading == "no-such-episode: not loaded" and "loading" not in page.locator("#stages").text_content()


def _canvas_rgb(page: Any, selector: str) -> np.ndarray:
    """The pixels ``(H, W, 3)`` of a canvas as drawn (its own resolution)."""
    width, height, data = page.evaluate(
        "(selector) => { const c = document.querySelector(selector); const ctx = c.getContext('2d');"
        " return [c.width, c.height, Array.from(ctx.getImageData(0, 0, c.width, c.height).data)]; }", selector)
    return np.array(data, dtype=int).reshape(height, width, 4)[..., :3]


def test_the_series_the_policy_input_and_the_planned_waypoints_are_drawn(page: Any,
                                                                        viewer_store: EpisodeStore) -> None:
    from autoloop.episodes.dataset import unpack_bev
    from sim.geometry import to_local_frame
    from sim.scene.bev import Channel

    episode_id = _sim(viewer_store)[0]
    stored = viewer_store.read(episode_id)
    steps, t = stored.num_steps, stored.steps["time_s"]
    page.goto(f"/#/episode/{episode_id}?f=60")
    page.locator("canvas.bev[data-frame='60']").wait_for()
    # one chart per quantity, a point per step, the cursor at the frame's time
    charts = page.locator("#series figure.chart")
    assert [charts.nth(k).get_attribute("data-series") for k in range(charts.count())] == [
        "speed", "accel", "steer", "controls", "running_ds"]
    for series, lines in (("speed", 1), ("controls", 2), ("running_ds", 1)):
        polylines = page.locator(f"#series [data-series={series}] polyline")
        assert polylines.count() == lines
        for k in range(lines):
            assert len(polylines.nth(k).get_attribute("points").split()) == steps, series
    speed = page.locator("#series [data-series=speed] polyline").get_attribute("points").split()
    ys = np.array([float(point.split(",")[1]) for point in speed])
    fastest = int(np.argmax(stored.steps["speed_mps"]))
    assert ys[fastest] == pytest.approx(ys.min(), abs=1e-6) and ys.min() == pytest.approx(0.0, abs=0.01)
    cursor = page.locator("#series [data-series=speed] line.cursor")
    assert float(cursor.get_attribute("x1")) == pytest.approx(1000 * (t[60] - t[0]) / (t[-1] - t[0]), abs=0.01)
    assert f"{stored.steps['speed_mps'][60]:.2f}" in page.locator("#series [data-series=speed] .value").text_content()
    # clicking a chart seeks to the time under the click
    box = page.locator("#series [data-series=speed] svg").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    target = int(np.searchsorted(t, t[0] + 0.75 * (t[-1] - t[0]) + 1e-6) - 1)
    assert abs(_frame(page) - target) <= 1
    frame = _frame(page)
    page.locator(f"canvas.bev[data-frame='{frame}']").wait_for()
    # the BEV: a box per channel, and with one channel on, exactly its stored bits lit
    labels = page.locator(".bev-panel .channels label")
    assert [labels.nth(k).text_content() for k in range(labels.count())] == [
        *(c.name.lower() for c in Channel), "ego and plan"]
    bev = unpack_bev(stored.steps["obs_bev"], np.array([frame]), tuple(stored.metadata["bev_shape"]))[0]
    page.locator(".bev-panel input[data-overlay=plan]").set_checked(False)
    for channel in (Channel.DRIVABLE, Channel.ROUTE):
        for k in range(len(Channel)):
            page.locator(f".bev-panel input[data-channel='{k}']").set_checked(k == channel)
        page.locator(f"canvas.bev[data-channels='{int(channel)}']").wait_for()
        lit = np.abs(_canvas_rgb(page, "canvas.bev") - np.array(BACKGROUND)).sum(axis=-1) > 0
        assert bev[channel].any()
        np.testing.assert_array_equal(lit, bev[channel].astype(bool))
    # over it, the driver's plan where the BEV puts it: (ego_row - ahead / resolution, width / 2 - 0.5 - left / ...),
    # at the frame where most of the plan lies on the raster clear of the ego
    size, resolution, ego_row = bev.shape[1], stored.metadata["bev_resolution_m"], stored.metadata["bev_ego_row"]
    plan = stored.steps["plan_xy"].reshape(steps, -1, 2).astype(np.float64)
    local = to_local_frame(plan, np.stack([stored.steps["x_m"], stored.steps["y_m"]], axis=-1)[:, None],
                           stored.steps["yaw_rad"].astype(np.float64)[:, None])
    rows = np.round(ego_row - local[..., 0] / resolution).astype(int)
    cols = np.round(size / 2 - 0.5 - local[..., 1] / resolution).astype(int)
    on = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size) & (np.abs(rows - ego_row) > 2)
    shown = int(np.argmax(on.sum(axis=1)))
    assert on[shown].sum() >= 3
    page.evaluate(f"location.hash = '#/episode/{episode_id}?f={shown}'")
    page.locator(f"canvas.bev[data-frame='{shown}'][data-overlay='1']").wait_for()
    cyan_bev = np.all(_canvas_rgb(page, "canvas.bev") == (0x39, 0xC5, 0xCF), axis=-1)  # no channel's colour
    for row, col in zip(rows[shown][on[shown]], cols[shown][on[shown]], strict=True):
        assert cyan_bev[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2].any(), (row, col)  # (float32 rounding)
    assert cyan_bev.sum() <= plan.shape[1]
    # and on the scene, where they lie (those clear of the ego's box)
    image, view = _scene_pixels(page)
    height, width = image.shape[:2]
    px = width / 2 + (plan[shown, :, 0] - view["cx"]) * view["scale"]
    py = height / 2 - (plan[shown, :, 1] - view["cy"]) * view["scale"]
    ego = np.array([stored.steps["x_m"][shown], stored.steps["y_m"][shown]])
    clear = (np.linalg.norm(plan[shown] - ego, axis=1) > 3.5) & (px > 5) & (px < width - 5) & (py > 5) & (
        py < height - 5)
    assert clear.sum() >= 3
    cyan = [np.abs(image[int(y), int(x)] - np.array([0x39, 0xC5, 0xCF])).sum() < 60
            for x, y in zip(px[clear], py[clear], strict=True)]
    assert np.mean(cyan) >= 0.8, cyan


def test_compare_plots_both_episodes_and_shows_both_inputs(page: Any, viewer_store: EpisodeStore) -> None:
    first, second = _sim(viewer_store)
    page.goto(f"/#/compare/{first}/{second}?f=10")
    page.wait_for_function("() => document.querySelectorAll('canvas.bev[data-frame]').length === 2")
    assert page.locator("#series [data-series=speed] polyline.s1").count() == 1
    steps = viewer_store.num_steps(second)
    assert len(page.locator("#series [data-series=speed] polyline.s1").get_attribute("points").split()) == steps
    titles = page.locator(".bev-panel h3")
    assert titles.nth(0).text_content().startswith("A: ") and titles.nth(1).text_content().startswith("B: ")
