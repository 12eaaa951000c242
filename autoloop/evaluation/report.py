"""The evaluation report: Markdown beside its figures, and one self-contained HTML page (images inline as base64).

Contents: the summary with bootstrap intervals, per-scenario-type and per-town tables, infractions per km, the
comparison with the champion (champion first, each metric's paired difference with its interval; regressed routes
linked in the replay viewer), the charts (:mod:`autoloop.evaluation.charts`: one quantity each, every bar with its
interval; their data in ``figures/charts.json`` and on each chart's ``<figure data-chart>`` in the page), a map of
where infractions happened, and animated clips of the worst routes (:mod:`autoloop.evaluation.clips`: the
simulator's bird's-eye view with the route and each infraction marked).

matplotlib (Agg) and Pillow are imported when a report is written, not with the package.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoloop.episodes import EpisodeStore
from autoloop.evaluation.charts import Chart, comparison_charts, pyplot, result_charts, save
from autoloop.evaluation.clips import Clip, render_clip
from autoloop.evaluation.compare import Comparison, episode_link
from autoloop.evaluation.results import EvaluationResult, RouteResult
from autoloop.evaluation.stats import Interval
from sim.maps import Lane, get_map


@dataclass(frozen=True)
class ReportFiles:
    """The written report: ``report.md`` (with ``figures/`` and ``clips/`` beside it) and ``report.html``."""

    folder: Path
    markdown: Path
    html: Path
    figures: tuple[Path, ...]


Table = tuple[list[str], list[list[str]]]
#: A figure of the report: caption, image file, and the chart it draws (``None`` for the map and the clips).
Figure = tuple[str, Path, Chart | None]


def write_report(result: EvaluationResult, folder: Path, *, store: EpisodeStore, comparison: Comparison | None = None,
                 clips: int = 3, title: str = "Evaluation report") -> ReportFiles:
    """Write the report of ``result`` (and its ``comparison`` with the champion) into ``folder``."""
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    charts = (comparison_charts(comparison) if comparison is not None else []) + result_charts(result)
    figures: list[Figure] = [(chart.title, save(chart, folder / "figures"), chart) for chart in charts]
    (folder / "figures" / "charts.json").write_text(json.dumps([chart.to_json() for chart in charts], indent=1))
    infraction_map = _infraction_map(result, folder)
    if infraction_map is not None:
        figures.append(("Where infractions happened", infraction_map, None))
    clip_files: list[Figure] = [
        (f"Route {route.index} ({route.scenario_type}, {route.town}): DS {route.driving_score:.1f}, {route.status}"
         + "".join(f"; {event.kind} at {event.time_s:.1f} s" for event in route.infractions), clip.path, None)
        for route, clip in _clips(result, store, folder, clips)]
    sections = _sections(result, comparison)
    markdown = _markdown(title, result, sections, figures, clip_files, folder)
    page = _html(title, result, sections, figures, clip_files)
    (folder / "report.md").write_text(markdown)
    (folder / "report.html").write_text(page)
    return ReportFiles(folder, folder / "report.md", folder / "report.html",
                       tuple(path for _, path, _ in figures + clip_files))


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
                         f"Champion `{comparison.champion_policy}` and the candidate on the same routes and seeds: "
                         f"mean paired DS difference (candidate minus champion) {d.mean:+.2f}, "
                         f"{100 * d.confidence:.0f} % CI [{d.low:+.2f}, {d.high:+.2f}].",
                         (["metric", "champion", "candidate", "difference"], [
                             [name.replace("_", " "), f"{m.champion.mean:.2f} {_ci(m.champion)}",
                              f"{m.candidate.mean:.2f} {_ci(m.candidate)}",
                              f"{m.difference.mean:+.2f} {_ci(m.difference)}"]
                             for name, m in comparison.metrics.items()])))
        sections.append(("Versus the champion per scenario type", "",
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
              figures: Sequence[Figure], clips: Sequence[Figure], folder: Path) -> str:
    lines = [f"# {title}", ""]
    for heading, note, (header, rows) in sections:
        lines += [f"## {heading}", ""] + ([note, ""] if note else [])
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows] + [""]
    lines += ["## Figures", "", "(each chart's data: `figures/charts.json`)", ""]
    lines += [f"![{caption}]({path.relative_to(folder)})" for caption, path, _ in figures] + [""]
    if clips:
        lines += ["## Worst routes", ""] + [f"{caption}\n\n![{caption}]({path.relative_to(folder)})\n"
                                            for caption, path, _ in clips]
    return "\n".join(lines) + "\n"


def _html(title: str, result: EvaluationResult, sections: list[tuple[str, str, Table]],
          figures: Sequence[Figure], clips: Sequence[Figure]) -> str:
    def cell(text: str) -> str:
        if text.startswith("http://") or text.startswith("https://"):
            return f'<a href="{html.escape(text)}">replay</a>'
        return html.escape(text)

    def image(caption: str, path: Path, chart: Chart | None) -> str:
        kind = "gif" if path.suffix == ".gif" else "png"
        data = base64.b64encode(path.read_bytes()).decode()
        attribute = f' data-chart="{html.escape(json.dumps(chart.to_json()))}"' if chart is not None else ""
        return (f'<figure{attribute}><img alt="{html.escape(caption)}" src="data:image/{kind};base64,{data}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, note, (header, rows) in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if note:
            body.append(f"<p>{html.escape(note).replace('`', '')}</p>")
        body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
                    + "</table>")
    body.append("<h2>Figures</h2>" + "".join(image(*figure) for figure in figures))
    if clips:
        body.append("<h2>Worst routes</h2>" + "".join(image(*clip) for clip in clips))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "margin-bottom:1em}td,th{border:1px solid #ccc;padding:2px 8px;font-size:90%}"
             "figure{display:inline-block;margin:0.5em}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def _infraction_map(result: EvaluationResult, folder: Path) -> Path | None:
    """Infraction locations over the lanes of each town (one panel per town, at most three)."""
    towns = sorted({route.town for route in result.routes if route.infractions})[:3]
    if not towns:
        return None
    plt = pyplot()
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


def _clips(result: EvaluationResult, store: EpisodeStore, folder: Path, count: int) -> list[tuple[RouteResult, Clip]]:
    clips = []
    for route in worst_routes(result, count):
        assert route.episode_id is not None
        clips.append((route, render_clip(store, route.episode_id, folder / "clips" / f"route_{route.index:03d}.gif",
                                         infractions=route.infractions)))
    return clips
