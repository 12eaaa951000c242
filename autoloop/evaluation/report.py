"""The evaluation report: Markdown beside its figures, and one self-contained HTML page (images inline as base64).

Contents: the summary with bootstrap intervals, per-scenario-type and per-town tables and bar charts, infractions
per km, a map of where infractions happened, the comparison with the champion (regressed routes linked in the
replay viewer), and animated top-down clips of the worst routes rendered from the stored episodes.

matplotlib (Agg) and Pillow are imported when a report is written, not with the package.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autoloop.episodes import EpisodeStore
from autoloop.evaluation.compare import Comparison, episode_link
from autoloop.evaluation.results import EvaluationResult, RouteResult
from autoloop.evaluation.stats import Interval
from sim.maps import Lane, get_map

#: Clips: frame size (px), metres shown around the ego, frames per clip, milliseconds per frame.
CLIP_PX, CLIP_VIEW_M, CLIP_FRAMES, CLIP_FRAME_MS = 160, 70.0, 24, 120


@dataclass(frozen=True)
class ReportFiles:
    """The written report: ``report.md`` (with ``figures/`` and ``clips/`` beside it) and ``report.html``."""

    folder: Path
    markdown: Path
    html: Path
    figures: tuple[Path, ...]


Table = tuple[list[str], list[list[str]]]


def write_report(result: EvaluationResult, folder: Path, *, store: EpisodeStore, comparison: Comparison | None = None,
                 clips: int = 3, title: str = "Evaluation report") -> ReportFiles:
    """Write the report of ``result`` (and its ``comparison`` with the champion) into ``folder``."""
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, Path]] = [("Driving score per scenario type", _bar_chart(result, folder, "type")),
                                       ("Driving score per town", _bar_chart(result, folder, "town"))]
    infraction_map = _infraction_map(result, folder)
    if infraction_map is not None:
        figures.append(("Where infractions happened", infraction_map))
    if comparison is not None:
        figures.append(("Paired driving-score difference to the champion per scenario type",
                        _difference_chart(comparison, folder)))
    clip_files = [(f"Route {route.index} ({route.scenario_type}, {route.town}): DS {route.driving_score:.1f}, "
                   f"{route.status}", path)
                  for route, path in _clips(result, store, folder, clips)]
    sections = _sections(result, comparison)
    markdown = _markdown(title, result, sections, figures, clip_files, folder)
    page = _html(title, result, sections, figures, clip_files)
    (folder / "report.md").write_text(markdown)
    (folder / "report.html").write_text(page)
    return ReportFiles(folder, folder / "report.md", folder / "report.html",
                       tuple(path for _, path in figures + clip_files))


def _sections(result: EvaluationResult, comparison: Comparison | None) -> list[tuple[str, str, Table]]:
    """``(heading, note, table)`` of every tabular section, shared by both formats."""
    ci = result.intervals
    level = f"{100 * ci['driving_score'].confidence:.0f} %"
    summary: Table = (["metric", "value", f"{level} CI"], [
        ["driving score", f"{result.driving_score:.2f}", _ci(ci["driving_score"])],
        ["route completion", f"{result.route_completion:.2f}", _ci(ci["route_completion"])],
        ["infraction penalty", f"{result.infraction_penalty:.3f}", _ci(ci["infraction_penalty"], 3)],
        ["success rate %", f"{result.success_rate:.1f}", _ci(ci["success_rate"])],
        ["collisions / km", f"{result.collisions_per_km:.3f}", ""],
        ["comfort", f"{result.comfort:.3f}", ""],
        ["driven km", f"{result.driven_km:.2f}", ""],
        ["routes", f"{len(result.routes)} ({result.completed_routes} completed, {result.failed_runs} failed to run)",
         ""],
    ])
    sections = [("Summary", f"`{result.policy}` on suite `{result.suite}` ({result.suite_hash}), scorer "
                            f"`{result.scorer}`; means over all planned routes, bootstrap intervals over routes.",
                 summary)]
    for heading, breakdown in (("Per scenario type", result.by_type), ("Per town", result.by_town)):
        sections.append((heading, "", (["", "routes", "DS", "RC", "success %", "collisions/km"], [
            [name, str(b.routes), f"{b.driving_score:.1f}", f"{b.route_completion:.1f}", f"{b.success_rate:.0f}",
             f"{b.collisions_per_km:.2f}"] for name, b in breakdown.items()])))
    sections.append(("Infractions per km", "", (["infraction", "per km"], [
        [kind, f"{rate:.3f}"] for kind, rate in sorted(result.infractions_per_km.items())] or [["none", "0"]])))
    if comparison is not None:
        d = comparison.difference
        sections.append(("Versus the champion",
                         f"Candidate minus `{comparison.champion_policy}` (DS {comparison.champion_driving_score:.1f})"
                         f" on the same routes and seeds: mean paired DS difference {d.mean:+.2f}, "
                         f"{100 * d.confidence:.0f} % CI [{d.low:+.2f}, {d.high:+.2f}].",
                         (["scenario type", "mean DS difference"],
                          [[kind, f"{mean:+.1f}"] for kind, mean in comparison.by_type.items()])))
        sections.append(("Regressed routes", "Routes where the candidate scored below the champion, worst first "
                                             "(side by side in the replay viewer: `autoloop replay`).",
                         (["route", "type", "town", "candidate", "champion", "difference", "replay"], [
                             [str(r.index), r.scenario_type, r.town, f"{r.candidate_score:.1f} ({r.candidate_status})",
                              f"{r.champion_score:.1f} ({r.champion_status})", f"{r.difference:+.1f}", r.link]
                             for r in comparison.regressed()] or [["none", "", "", "", "", "", ""]])))
    sections.append(("Routes", "", (["route", "type", "town", "status", "DS", "RC", "infractions", "episode"], [
        [str(r.index), r.scenario_type, r.town, r.status, f"{r.driving_score:.1f}", f"{r.route_completion:.1f}",
         ", ".join(f"{e.kind} at {e.time_s:.1f} s ({e.x_m:.0f}, {e.y_m:.0f})" for e in r.infractions) or r.error,
         episode_link(r.episode_id) if r.episode_id else ""] for r in result.routes])))
    return sections


def _ci(interval: Interval, digits: int = 2) -> str:
    return f"[{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


def _markdown(title: str, result: EvaluationResult, sections: list[tuple[str, str, Table]],
              figures: Sequence[tuple[str, Path]], clips: Sequence[tuple[str, Path]], folder: Path) -> str:
    lines = [f"# {title}", ""]
    for heading, note, (header, rows) in sections:
        lines += [f"## {heading}", ""] + ([note, ""] if note else [])
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows] + [""]
    lines += ["## Figures", ""] + [f"![{caption}]({path.relative_to(folder)})" for caption, path in figures] + [""]
    if clips:
        lines += ["## Worst routes", ""] + [f"{caption}\n\n![{caption}]({path.relative_to(folder)})\n"
                                            for caption, path in clips]
    return "\n".join(lines) + "\n"


def _html(title: str, result: EvaluationResult, sections: list[tuple[str, str, Table]],
          figures: Sequence[tuple[str, Path]], clips: Sequence[tuple[str, Path]]) -> str:
    def cell(text: str) -> str:
        if text.startswith("http://") or text.startswith("https://"):
            return f'<a href="{html.escape(text)}">replay</a>'
        return html.escape(text)

    def image(caption: str, path: Path) -> str:
        kind = "gif" if path.suffix == ".gif" else "png"
        data = base64.b64encode(path.read_bytes()).decode()
        return (f'<figure><img alt="{html.escape(caption)}" src="data:image/{kind};base64,{data}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, note, (header, rows) in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if note:
            body.append(f"<p>{html.escape(note).replace('`', '')}</p>")
        body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
                    + "</table>")
    body.append("<h2>Figures</h2>" + "".join(image(caption, path) for caption, path in figures))
    if clips:
        body.append("<h2>Worst routes</h2>" + "".join(image(caption, path) for caption, path in clips))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "margin-bottom:1em}td,th{border:1px solid #ccc;padding:2px 8px;font-size:90%}"
             "figure{display:inline-block;margin:0.5em}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bar_chart(result: EvaluationResult, folder: Path, by: str) -> Path:
    """Mean driving score per scenario type (``by="type"``) or town, with the route counts."""
    plt = _pyplot()
    breakdown = result.by_type if by == "type" else result.by_town
    names = list(breakdown)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(names) + 2), 3.2), dpi=80)
    ax.bar(range(len(names)), [b.driving_score for b in breakdown.values()], color="#4477aa", label="driving score")
    ax.bar(range(len(names)), [b.success_rate for b in breakdown.values()], color="#88ccee", width=0.4,
           label="success %")
    ax.set_xticks(range(len(names)), [f"{n} ({b.routes})" for n, b in breakdown.items()], rotation=60, ha="right",
                  fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_ylabel("driving score")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = folder / "figures" / f"ds_by_{by}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _difference_chart(comparison: Comparison, folder: Path) -> Path:
    """Mean paired driving-score difference (candidate minus champion) per scenario type; red below zero."""
    plt = _pyplot()
    names = list(comparison.by_type)
    values = [comparison.by_type[name] for name in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(names) + 2), 3.2), dpi=80)
    ax.bar(range(len(names)), values, color=["#cc3311" if v < 0 else "#009988" for v in values])
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("DS difference (points)")
    fig.tight_layout()
    path = folder / "figures" / "difference_by_type.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _infraction_map(result: EvaluationResult, folder: Path) -> Path | None:
    """Infraction locations over the lanes of each town (one panel per town, at most three)."""
    towns = sorted({route.town for route in result.routes if route.infractions})[:3]
    if not towns:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(towns), figsize=(4.0 * len(towns), 4.0), dpi=80, squeeze=False)
    for ax, town in zip(axes[0], towns, strict=True):
        for lane in _lanes(town):
            ax.plot(lane.centerline[:, 0], lane.centerline[:, 1], color="#cccccc", linewidth=0.5)
        events = [event for route in result.routes if route.town == town for event in route.infractions]
        kinds = sorted({event.kind for event in events})
        for kind in kinds:
            points = np.array([(e.x_m, e.y_m) for e in events if e.kind == kind])
            ax.scatter(points[:, 0], points[:, 1], s=14, label=kind)
        ax.set_title(town, fontsize=9)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    fig.tight_layout()
    path = folder / "figures" / "infractions_map.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _lanes(town: str) -> tuple[Lane, ...]:
    """The lanes of ``town`` to draw under its infractions; none for a town autoloop has no map of (a CARLA town
    of an evaluation in CARLA: its lane graph came from the server)."""
    try:
        return tuple(get_map(town).lanes)
    except (ValueError, OSError):
        return ()


def worst_routes(result: EvaluationResult, count: int) -> list[RouteResult]:
    """The ``count`` lowest-scoring routes that ran (ties: the earlier route)."""
    ran = [route for route in result.routes if route.episode_id is not None]
    return sorted(ran, key=lambda route: (route.driving_score, route.index))[:count]


def _clips(result: EvaluationResult, store: EpisodeStore, folder: Path, count: int) -> list[tuple[RouteResult, Path]]:
    clips = []
    for route in worst_routes(result, count):
        assert route.episode_id is not None
        path = folder / "clips" / f"route_{route.index:03d}.gif"
        render_clip(store, route.episode_id, route.town, path,
                    marks=[(event.x_m, event.y_m) for event in route.infractions])
        clips.append((route, path))
    return clips


def render_clip(store: EpisodeStore, episode_id: str, town: str, path: Path,
                marks: Sequence[tuple[float, float]] = ()) -> None:
    """An animated top-down GIF of a stored episode: lanes, the ego (red), vehicles (blue), pedestrians (green),
    static obstacles (grey), ``marks`` (infraction places, map frame) as orange crosses; centred on the ego,
    north up, ``CLIP_FRAMES`` frames spread over the episode."""
    from PIL import Image, ImageDraw

    episode = store.read(episode_id)
    steps, actors = episode.steps, episode.actors or {}
    count = len(steps["x_m"])
    frames = np.unique(np.linspace(0, count - 1, min(CLIP_FRAMES, count)).astype(int))
    lanes = [lane.centerline for lane in get_map(town).lanes]
    scale = CLIP_PX / CLIP_VIEW_M
    colours = {"vehicle": (60, 100, 200), "pedestrian": (40, 160, 60), "static": (130, 130, 130)}
    images = []
    for frame in frames:
        cx, cy = float(steps["x_m"][frame]), float(steps["y_m"][frame])

        def px(x: Any, y: Any, cx: float = cx, cy: float = cy) -> Any:
            return np.stack([(np.asarray(x) - cx) * scale + CLIP_PX / 2,
                             CLIP_PX / 2 - (np.asarray(y) - cy) * scale], axis=-1)

        image = Image.new("RGB", (CLIP_PX, CLIP_PX), (250, 250, 250))
        draw = ImageDraw.Draw(image)
        for centre in lanes:
            near = np.abs(centre - (cx, cy)).max(axis=1) < CLIP_VIEW_M
            if near.any():
                draw.line([tuple(p) for p in px(centre[:, 0], centre[:, 1])], fill=(200, 200, 200), width=1)
        rows = np.flatnonzero(actors["step"] == frame) if "step" in actors else np.zeros(0, dtype=np.intp)
        for row in rows:
            box = _box(actors["x_m"][row], actors["y_m"][row], actors["yaw_rad"][row], actors["length_m"][row],
                       actors["width_m"][row])
            draw.polygon([tuple(p) for p in px(box[:, 0], box[:, 1])],
                         fill=colours.get(str(actors["kind"][row]), (120, 120, 120)))
        for mark in px(*np.array(marks, dtype=np.float64).reshape(-1, 2).T):
            x, y = float(mark[0]), float(mark[1])
            draw.line([(x - 4, y - 4), (x + 4, y + 4)], fill=(255, 140, 0), width=2)
            draw.line([(x - 4, y + 4), (x + 4, y - 4)], fill=(255, 140, 0), width=2)
        ego = _box(cx, cy, float(steps["yaw_rad"][frame]), 4.6, 2.0)
        draw.polygon([tuple(p) for p in px(ego[:, 0], ego[:, 1])], fill=(220, 40, 40))
        draw.text((3, 2), f"{float(steps['time_s'][frame]):.1f} s", fill=(0, 0, 0))
        images.append(image)
    images[0].save(path, save_all=True, append_images=images[1:], duration=CLIP_FRAME_MS, loop=0)


def _box(x: float, y: float, yaw: float, length: float, width: float) -> NDArray[np.float64]:
    """The corners of a box centred at ``(x, y)`` heading ``yaw`` (map frame)."""
    corners = np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, -0.5], [-0.5, 0.5]]) * (length, width)
    c, s = np.cos(yaw), np.sin(yaw)
    box: NDArray[np.float64] = corners @ np.array([[c, s], [-s, c]]) + (x, y)
    return box
