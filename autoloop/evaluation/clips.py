"""Animated clips of stored sim episodes (the evaluation report's worst routes).

Every frame is the simulator's own bird's-eye view of the recorded scene (:class:`sim.scene.bev.BevRenderer`, the
renderer of the policies' observations) at :data:`CLIP_SPEC`, larger and finer than a policy's, coloured channel by
channel: the drivable area and lane lines, the planned route (from the scenario's start to its end), stop lines in
their lights' state, static obstacles, pedestrians and vehicles; the ego is drawn over them. Ego-centred, heading
up. Each infraction is marked where it happened, from the frame it happened at on: a ring, and a label naming its
kind and time; the frame it happened at (always one of the clip's frames) is framed in the marker's colour and held
:data:`INFRACTION_FRAME_MS`. An infraction without a time (a CARLA Leaderboard's) is marked on every frame.

Pillow is imported when a clip is rendered, not with the package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autoloop.episodes import EpisodeStore
from autoloop.evaluation.results import InfractionEvent
from sim.embedded.config import WorldConfig
from sim.maps import LaneGraph, get_map
from sim.scene.bev import BevRenderer, BevSpec, Channel
from sim.scene.records import ActorKind
from sim.scene.route_path import RoutePath

#: The clips' BEV: 320 px square at 0.25 m per pixel (80 m), the ego 200 rows down (50 m ahead, 30 m behind).
CLIP_SPEC = BevSpec(size_px=320, resolution_m=0.25, ego_row=200)
#: Frames spread evenly over an episode (plus the frame of each infraction), and how long each shows.
CLIP_FRAMES, CLIP_FRAME_MS, INFRACTION_FRAME_MS = 32, 120, 1500
#: Colours (RGB): the background off the drivable area, then each BEV channel, painted in this order.
BACKGROUND = (242, 242, 242)
CHANNEL_COLOURS: Mapping[Channel, tuple[int, int, int]] = {
    Channel.DRIVABLE: (196, 196, 196), Channel.LANE_LINES: (255, 255, 255), Channel.ROUTE: (150, 200, 245),
    Channel.LIGHT_GREEN: (0, 170, 80), Channel.LIGHT_YELLOW: (235, 185, 0), Channel.LIGHT_RED: (255, 70, 70),
    Channel.OBSTACLES: (105, 105, 105), Channel.PEDESTRIANS: (30, 150, 50), Channel.VEHICLES: (40, 80, 180)}
EGO_COLOUR, MARK_COLOUR, TEXT_COLOUR = (170, 0, 0), (230, 0, 230), (0, 0, 0)
#: The marker: ring radius and line width, the highlighted frame's border width (px).
MARK_RADIUS_PX, MARK_WIDTH_PX, BORDER_PX = 14, 3, 6
_KINDS = {"vehicle": ActorKind.VEHICLE, "cyclist": ActorKind.VEHICLE, "pedestrian": ActorKind.PEDESTRIAN}


@dataclass(frozen=True)
class ClipMark:
    """An infraction as a clip shows it: its kind, the clip frame it happened at (``None``: time unknown, marked on
    every frame), and its place ``(row, col)`` (fractional pixels) in each frame."""

    kind: str
    frame: int | None
    pixels: NDArray[np.float64]


@dataclass(frozen=True)
class Clip:
    """A rendered clip: the GIF, the episode step each frame shows, and the infractions marked."""

    path: Path
    steps: tuple[int, ...]
    marks: tuple[ClipMark, ...]


def render_clip(store: EpisodeStore, episode_id: str, path: Path, *,
                infractions: Sequence[InfractionEvent] = ()) -> Clip:
    """Render the stored episode ``episode_id`` into the animated GIF ``path``, marking ``infractions``."""
    from PIL import Image, ImageDraw, ImageFont

    episode = store.read(episode_id)
    steps, metadata = episode.steps, episode.metadata
    graph = episode_map(store, str(metadata["map_name"]))
    time_s = np.asarray(steps["time_s"], dtype=np.float64)
    count = len(time_s)
    at = [None if not math.isfinite(event.time_s)
          else min(int(np.searchsorted(time_s, event.time_s - 1e-4)), count - 1) for event in infractions]
    spread = np.linspace(0, count - 1, min(CLIP_FRAMES, count)).astype(np.intp)
    frames = np.unique(np.concatenate([spread, np.array([k for k in at if k is not None], dtype=np.intp)]))
    ego_xy = np.stack([np.asarray(steps["x_m"], dtype=np.float64)[frames],
                       np.asarray(steps["y_m"], dtype=np.float64)[frames]], axis=-1)
    ego_yaw = np.asarray(steps["yaw_rad"], dtype=np.float64)[frames]
    route_x, route_y, route_n, route_ds, progress = _route(graph, metadata, steps, frames)
    kind, actor_xy, actor_yaw, length, width, valid = _actors(episode.actors, frames)
    bev = BevRenderer(graph, CLIP_SPEC).render(ego_xy, ego_yaw, route_x, route_y, route_n, route_ds, progress, kind,
                                               actor_xy, actor_yaw, length, width, valid,
                                               _lights(steps, frames, graph))
    marks = tuple(ClipMark(kind=event.kind, frame=None if k is None else int(np.searchsorted(frames, k)),
                           pixels=np.stack([CLIP_SPEC.pixels(np.array([event.x_m, event.y_m]), ego_xy[f], ego_yaw[f])
                                            for f in range(len(frames))]))
                  for event, k in zip(infractions, at, strict=True))
    size = CLIP_SPEC.size_px
    world = WorldConfig()
    half_l, half_w = 0.5 * world.ego_length_m / CLIP_SPEC.resolution_m, 0.5 * world.ego_width_m / CLIP_SPEC.resolution_m
    ego_col = size / 2.0 - 0.5
    font = ImageFont.load_default(size=13)
    palette = _palette()
    images, durations = [], []
    for f, frame in enumerate(frames):
        image = Image.fromarray(colour(bev[f]))
        draw = ImageDraw.Draw(image)
        draw.rectangle([ego_col - half_w, CLIP_SPEC.ego_row - half_l, ego_col + half_w, CLIP_SPEC.ego_row + half_l],
                       fill=EGO_COLOUR)
        labels = [f"{float(time_s[frame]):.2f} s"]
        highlighted = False
        for mark, event in zip(marks, infractions, strict=True):
            if mark.frame is not None and f < mark.frame:
                continue
            row, col = (float(v) for v in mark.pixels[f])
            draw.ellipse([col - MARK_RADIUS_PX, row - MARK_RADIUS_PX, col + MARK_RADIUS_PX, row + MARK_RADIUS_PX],
                         outline=MARK_COLOUR, width=MARK_WIDTH_PX)
            labels.append(event.kind + (f" at {event.time_s:.2f} s" if mark.frame is not None else ""))
            highlighted |= mark.frame == f
        if highlighted:
            draw.rectangle([0, 0, size - 1, size - 1], outline=MARK_COLOUR, width=BORDER_PX)
        for line, label in enumerate(labels):
            draw.text((BORDER_PX + 2, BORDER_PX + 2 + 16 * line), label, font=font,
                      fill=TEXT_COLOUR if line == 0 else MARK_COLOUR, stroke_width=2, stroke_fill=(255, 255, 255))
        images.append(image.quantize(palette=palette, dither=Image.Dither.NONE))
        durations.append(INFRACTION_FRAME_MS if highlighted else CLIP_FRAME_MS)
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return Clip(path=path, steps=tuple(int(k) for k in frames), marks=marks)


def colour(bev: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """An RGB image ``(H, W, 3)`` of one BEV ``(C, H, W)``: :data:`CHANNEL_COLOURS` painted in order over
    :data:`BACKGROUND`."""
    image = np.empty((*bev.shape[1:], 3), dtype=np.uint8)
    image[:] = BACKGROUND
    for channel, rgb in CHANNEL_COLOURS.items():
        image[bev[channel] != 0] = rgb
    return image


def episode_map(store: EpisodeStore, name: str) -> LaneGraph:
    """The map an episode ran on: the one kept in the store (file maps), else the built-in map of that name.

    :raises ValueError: for a map neither stored nor built in.
    """
    try:
        return store.get_map(name)
    except KeyError:
        return get_map(name)


def _route(graph: LaneGraph, metadata: Mapping[str, Any], steps: Mapping[str, NDArray[Any]],
           frames: NDArray[np.intp]) -> tuple[Any, ...]:
    """The renderer's route arguments: the scenario's route from its start to its end (none without a scenario), and
    the ego's progress along it at each frame."""
    b = len(frames)
    scenario = metadata.get("scenario")
    if not scenario or "route_progress_m" not in steps:
        return (np.zeros((b, 2)), np.zeros((b, 2)), np.ones(b, dtype=np.int64), np.ones(b), np.zeros(b))
    route = RoutePath.build(graph, [int(lane) for lane in scenario["route"]])
    points, first_m = route.between(float(scenario["start_s_m"]), float(scenario["end_s_m"]))
    progress = np.asarray(steps["route_progress_m"], dtype=np.float64)[frames] - first_m
    return (np.ascontiguousarray(np.broadcast_to(points[:, 0], (b, len(points)))),
            np.ascontiguousarray(np.broadcast_to(points[:, 1], (b, len(points)))),
            np.full(b, len(points), dtype=np.int64), np.full(b, route.spacing_m), progress)


def _actors(actors: Mapping[str, NDArray[Any]] | None, frames: NDArray[np.intp]) -> tuple[Any, ...]:
    """The renderer's actor arguments ``(B, N)`` (kind, xy, yaw, length, width, valid) of the actors at each
    frame."""
    b = len(frames)
    step = np.asarray(actors["step"]) if actors else np.zeros(0, dtype=np.int32)
    rows = [np.flatnonzero(step == frame) for frame in frames]
    n = max([len(r) for r in rows] + [1])
    kind = np.zeros((b, n), dtype=np.int8)
    xy = np.zeros((b, n, 2))
    yaw, length, width = np.zeros((b, n)), np.zeros((b, n)), np.zeros((b, n))
    valid = np.zeros((b, n), dtype=bool)
    for f, r in enumerate(rows):
        if not len(r):
            continue
        assert actors is not None
        k = len(r)
        kind[f, :k] = [_KINDS.get(str(name), ActorKind.STATIC) for name in np.asarray(actors["kind"])[r]]
        xy[f, :k, 0], xy[f, :k, 1] = np.asarray(actors["x_m"])[r], np.asarray(actors["y_m"])[r]
        yaw[f, :k] = np.asarray(actors["yaw_rad"])[r]
        length[f, :k], width[f, :k] = np.asarray(actors["length_m"])[r], np.asarray(actors["width_m"])[r]
        valid[f, :k] = True
    return kind, xy, yaw, length, width, valid


def _lights(steps: Mapping[str, NDArray[Any]], frames: NDArray[np.intp], graph: LaneGraph) -> NDArray[np.int8]:
    """Each light group's state at each frame ``(B, groups)`` (green where the episode recorded none)."""
    if "light_states" in steps:
        return np.ascontiguousarray(np.asarray(steps["light_states"])[frames].astype(np.int8))
    return np.zeros((len(frames), graph.light_groups), dtype=np.int8)


def _palette() -> Any:
    """A palette image of the clips' colours (frames are quantized to it, so a GIF keeps them exactly)."""
    from PIL import Image

    colours = [BACKGROUND, *CHANNEL_COLOURS.values(), EGO_COLOUR, MARK_COLOUR, TEXT_COLOUR, (255, 255, 255)]
    flat = [value for rgb in dict.fromkeys(colours) for value in rgb]
    palette = Image.new("P", (1, 1))
    palette.putpalette(flat + flat[:3] * (256 - len(flat) // 3))
    return palette
