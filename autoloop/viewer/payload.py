"""What the viewer sends the page: one episode, or one map, as compact columns.

Numeric columns travel as base64 of little-endian typed arrays (``{"type": "f32", "shape": [...], "b64": ...}``,
decoded in the page into ``Float32Array``/``Int32Array``/``Uint8Array``), never as one JSON object per actor per
frame. Positions are float32 offsets, in metres, from an ``origin`` (map frame: x east, y north) sent beside
them, so float32 keeps centimetres on maps whose coordinates run to thousands of metres.

Only files inside the store are read: an episode id must be a valid id (:data:`EPISODE_ID`), its folder and files
must resolve inside the store (a symbolic link out of it is refused), and a manifest's file names must be plain
names. Maps come from the store (``maps/<id>.json``) or are built-in procedural maps (``junction4-*``,
``town-*``); a map name naming a file is never opened.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from autoloop.episodes.schema import SchemaError, from_table, read_table
from autoloop.episodes.store import MANIFEST, EpisodeStore
from sim.maps import LaneGraph
from sim.metrics import LB2_PENALTIES, Infraction
from sim.scene.bev import Channel
from sim.scene.observation import OBSERVATION_FORMAT
from sim.scene.route_path import RoutePath

#: Valid episode ids (as the store writes them).
EPISODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
#: Valid map ids: built-in names (``town-7``) and imported ones (``av2:<log id>``).
MAP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
_BUILTIN_MAP = re.compile(r"junction4-\d+(\.\d+)?|town-((grid|irregular)-)?\d+")
#: Ego columns sent to the page (those an episode has).
EGO_COLUMNS = ("step", "time_s", "x_m", "y_m", "yaw_rad", "speed_mps", "accel_mps2", "steer_rad", "route_progress_m",
               "action", "intervention", "light_states", "plan_xy")
ACTOR_KIND_CODES = ("vehicle", "pedestrian", "cyclist", "static", "other")
#: The most BEV frames one request for them answers (:func:`bev_frames`).
MAX_BEV_FRAMES = 64
_TYPES = {"f32": "<f4", "i32": "<i4", "u8": "u1"}


class BadRequest(ValueError):
    """A malformed id (HTTP 400)."""


class OutsideStore(PermissionError):
    """A path that resolves outside the store (HTTP 403)."""


class NotFound(LookupError):
    """No such episode or map (HTTP 404)."""


def encode(values: NDArray[Any], kind: str) -> dict[str, Any]:
    """A numeric array as ``{"type", "shape", "b64"}`` (``kind``: ``f32``, ``i32`` or ``u8``)."""
    data = np.ascontiguousarray(values, dtype=_TYPES[kind])
    return {"type": kind, "shape": list(data.shape), "b64": base64.b64encode(data.tobytes()).decode("ascii")}


def decode(column: dict[str, Any]) -> NDArray[Any]:
    """The array :func:`encode` gave (for tests and the benchmark)."""
    flat = np.frombuffer(base64.b64decode(column["b64"]), dtype=_TYPES[column["type"]])
    return flat.reshape(column["shape"])


# ---------------------------------------------------------------------- files inside the store
@dataclass(frozen=True)
class EpisodeFiles:
    """A stored episode's manifest and its table files, all checked to lie inside the store."""

    manifest: dict[str, Any]
    tables: dict[str, Path]
    triggers: Path | None


def episode_files(store: EpisodeStore, episode_id: str) -> EpisodeFiles:
    """Locate one episode's files safely.

    :raises BadRequest: for a malformed id.
    :raises NotFound: when the store holds no such episode.
    :raises OutsideStore: when its folder, manifest or a table file resolves outside the store, or the manifest
        names a file outside its folder.
    """
    if not EPISODE_ID.fullmatch(episode_id):
        raise BadRequest(f"invalid episode id {episode_id!r}: expected letters, digits and '_.-' (at most 128)")
    root = store.root.resolve()
    try:
        folder = store.folder(episode_id)
    except KeyError as error:
        raise NotFound(error.args[0]) from None
    _check_inside(folder / MANIFEST, root, what=f"episode {episode_id}")
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
        entries = {str(name): str(entry["file"]) for name, entry in manifest["tables"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SchemaError(f"{folder / MANIFEST}: not a valid manifest ({type(error).__name__}: {error})") from None
    missing = [name for name in ("metadata", "source", "date") if name not in manifest]
    missing += [] if "ego" in entries else ["tables.ego"]
    if missing:
        raise SchemaError(f"{folder / MANIFEST}: lacks field(s) {missing}")
    tables = {}
    for name, file in entries.items():
        if Path(file).name != file or file in ("", ".", ".."):
            raise OutsideStore(f"episode {episode_id}: manifest field tables.{name}.file {file!r} is not a file name")
        tables[name] = _check_inside(folder / file, root, what=f"episode {episode_id} table {name}")
    mined = store.root / "triggers" / f"{episode_id}.parquet"
    triggers = _check_inside(mined, root, what=f"triggers of {episode_id}") if mined.is_file() else None
    return EpisodeFiles(manifest=manifest, tables=tables, triggers=triggers)


def _check_inside(path: Path, root: Path, *, what: str) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise OutsideStore(f"{what}: {path} resolves outside the store {root}")
    return resolved


def load_map(store: EpisodeStore, map_id: str) -> LaneGraph:
    """A map stored in the store, else a built-in procedural map of that name.

    :raises BadRequest: for a malformed map id.
    :raises NotFound: for a map neither stored nor built in.
    :raises OutsideStore: when the stored map file resolves outside the store.
    """
    if not MAP_ID.fullmatch(map_id):
        raise BadRequest(f"invalid map id {map_id!r}: expected letters, digits and '_.:-'")
    root = store.root.resolve()
    path = store.root / "maps" / f"{map_id}.json"
    if path.is_file():
        _check_inside(path, root, what=f"map {map_id}")
        return store.get_map(map_id)
    if _BUILTIN_MAP.fullmatch(map_id):
        from sim.maps import get_map

        return get_map(map_id)
    raise NotFound(f"no map {map_id!r} in {store.root / 'maps'} and no built-in map of that name")


# ---------------------------------------------------------------------- episodes
def episode_payload(store: EpisodeStore, episode_id: str) -> dict[str, Any]:
    """One episode for the page: metadata and summary, ego columns, actors, events and markers, and (for sim
    episodes) the route, the route completion and the running driving score per step (completion so far times the
    Leaderboard 2.0 penalties of the infractions so far; the last step shows the recorded score, which also counts
    minimum speed and driving off the route's lanes).

    The ego columns the page plots under the scene are those the episode has: ``speed``, ``accel``, ``steer``,
    ``action`` (the executed ``[steer, accel]``) and ``running_ds``; ``plan`` holds the driver's planned waypoints
    ``(steps, K, 2)`` where it stored them. ``bev`` describes the policy's input where the episode stores it
    (``shape`` ``[C, H, W]``, channel ``names``; the frames come from :func:`bev_frames`), else is ``None``.
    See :func:`episode_files` for what it raises."""
    files = episode_files(store, episode_id)
    manifest = files.manifest
    metadata: dict[str, Any] = manifest["metadata"]
    ego = _read(files.tables["ego"], EGO_COLUMNS, required=("step", "x_m", "y_m"))
    steps = len(ego["step"])
    dt_s = float(metadata.get("dt_s") or 0.1)
    time_s = np.asarray(ego["time_s"] if "time_s" in ego else np.arange(steps) * dt_s, dtype=np.float64)
    origin = np.round([float(ego["x_m"][0]), float(ego["y_m"][0])]) if steps else np.zeros(2)
    columns: dict[str, Any] = {"time_s": encode(time_s, "f32"), "x": encode(ego["x_m"] - origin[0], "f32"),
                               "y": encode(ego["y_m"] - origin[1], "f32")}
    names = {"yaw_rad": "yaw", "speed_mps": "speed", "accel_mps2": "accel", "steer_rad": "steer",
             "route_progress_m": "progress", "action": "action", "light_states": "lights"}
    for stored, sent in names.items():
        if stored in ego:
            columns[sent] = encode(ego[stored], "f32")
    if "intervention" in ego:
        columns["intervention"] = encode(ego["intervention"], "u8")
    if "plan_xy" in ego:
        plan = ego["plan_xy"].reshape(steps, -1, 2) - origin
        columns["plan"] = encode(plan, "f32")
    events = _events(files, time_s, origin)
    route, completion = _route(store, metadata, ego)
    if completion is not None:
        running = completion * _running_penalty(events, steps)
        score = metadata.get("score") or {}
        if steps and score.get("driving_score") is not None:  # the route's end comes after its last step
            completion[-1], running[-1] = score["route_completion"], score["driving_score"]
        columns["completion"] = encode(completion, "f32")
        columns["running_ds"] = encode(running, "f32")
    return {
        "episode_id": episode_id, "source": manifest["source"], "date": manifest["date"], "num_steps": steps,
        "dt_s": dt_s, "map_name": metadata.get("map_name"), "origin": origin.tolist(),
        "summary": summary(metadata, steps=steps, dt_s=dt_s), "metadata": metadata, "ego": columns,
        "actors": _actors(files.tables.get("actors"), origin), "events": events,
        "route": encode(route - origin, "f32") if route is not None else None,
        "bev": _bev_layout(files),
    }


def bev_frames(store: EpisodeStore, episode_id: str, *, start: int, count: int) -> dict[str, Any]:
    """The policy's input of steps ``start .. start + count - 1`` (cut at the episode's end): ``{"start", "count",
    "shape", "frames"}``, ``frames`` ``(count, bytes)`` uint8, each row ``numpy.packbits`` of a ``(C, H, W)`` 0/1
    BEV (most significant bit first), as the store keeps ``obs_bev``.

    :raises BadRequest: when ``start`` is not a step of the episode or ``count`` not in ``1..MAX_BEV_FRAMES``.
    :raises NotFound: when the episode stores no BEV. See :func:`episode_files` for the rest.
    """
    files = episode_files(store, episode_id)
    layout = _bev_layout(files)
    if layout is None:
        raise NotFound(f"episode {episode_id} stores no BEV (no obs_bev column): only rollouts with labels keep the "
                       "policy's input")
    if not 1 <= count <= MAX_BEV_FRAMES:
        raise BadRequest(f"count must be in 1..{MAX_BEV_FRAMES}")
    packed = _read(files.tables["ego"], ("obs_bev",), required=("obs_bev",))["obs_bev"]
    if not 0 <= start < len(packed):
        raise BadRequest(f"start must be in 0..{len(packed) - 1}: the steps of episode {episode_id}")
    rows = packed[start:start + count]
    return {"start": start, "count": len(rows), "shape": layout["shape"], "frames": encode(rows, "u8")}


def _bev_layout(files: EpisodeFiles) -> dict[str, Any] | None:
    """``{"shape": [C, H, W], "names": [...], "frames_per_request", "resolution_m", "ego_row"}`` of the BEVs an
    episode stores (the ego's pixel row and the metres per pixel ``None`` where the episode does not say), ``None``
    when it stores none.

    :raises SchemaError: naming the file, when the stored rows do not hold BEVs of the metadata's ``bev_shape``.
    """
    path = files.tables["ego"]
    try:
        schema = pq.ParquetFile(path).schema_arrow
    except (pa.ArrowException, OSError) as error:
        raise SchemaError(f"{path}: unreadable ({error})") from None
    if "obs_bev" not in schema.names:
        return None
    shape = files.manifest["metadata"].get("bev_shape")
    column = schema.field("obs_bev").type
    valid = isinstance(shape, list) and len(shape) == 3 and all(isinstance(n, int) and n > 0 for n in shape)
    if not valid or not pa.types.is_fixed_size_binary(column) or column.byte_width != -(-int(np.prod(shape)) // 8):
        raise SchemaError(f"{path}: column obs_bev ({column}) does not hold BEVs of the metadata's bev_shape {shape}")
    known = files.manifest.get("observation_format") == OBSERVATION_FORMAT and shape[0] == len(Channel)
    names = [channel.name.lower() for channel in Channel] if known else [f"channel {k}" for k in range(shape[0])]
    metadata = files.manifest["metadata"]
    resolution, row = metadata.get("bev_resolution_m"), metadata.get("bev_ego_row")
    placed = isinstance(resolution, int | float) and resolution > 0 and isinstance(row, int) and 0 <= row < shape[1]
    return {"shape": shape, "names": names, "frames_per_request": MAX_BEV_FRAMES,
            "resolution_m": float(resolution) if placed else None, "ego_row": row if placed else None}


def _read(path: Path, columns: Sequence[str], *, required: Sequence[str]) -> dict[str, NDArray[Any]]:
    """The ``columns`` a Parquet file has (of those asked for), as numpy.

    :raises SchemaError: naming the file, when it is unreadable or lacks a ``required`` column.
    """
    try:
        present = set(pq.ParquetFile(path).schema_arrow.names)
        missing = [name for name in required if name not in present]
        if missing:
            raise SchemaError(f"{path}: lacks column(s) {missing}")
        return from_table(read_table(path, [name for name in columns if name in present]))
    except (pa.ArrowException, OSError) as error:
        raise SchemaError(f"{path}: unreadable ({error})") from None


def summary(metadata: dict[str, Any], *, steps: int, dt_s: float) -> dict[str, Any]:
    """The numbers compare mode sets side by side: score, completion, outcome and infraction counts."""
    score, record = metadata.get("score") or {}, metadata.get("record") or {}
    return {
        "driving_score": score.get("driving_score"), "route_completion": score.get("route_completion"),
        "infraction_penalty": score.get("infraction_penalty"), "outcome": record.get("status"),
        "driven_m": record.get("driven_m"), "duration_s": metadata.get("duration_s", steps * dt_s),
        "infractions": {k: int(v) for k, v in (record.get("infractions") or {}).items() if v},
        "policy": metadata.get("policy"), "traffic_seed": (metadata.get("scenario") or {}).get("traffic_seed"),
    }


def _events(files: EpisodeFiles, time_s: NDArray[np.float64], origin: NDArray[np.float64]) -> list[dict[str, Any]]:
    """Events and mined triggers, each with the step it happened at, sorted by time."""
    found: list[dict[str, Any]] = []

    def frame(t: float) -> int:
        return min(int(np.searchsorted(time_s, t - 1e-4)), max(len(time_s) - 1, 0))

    if "events" in files.tables:
        events = _read(files.tables["events"], ("time_s", "kind", "x_m", "y_m", "actor_id", "detail"),
                       required=("time_s", "kind", "x_m", "y_m"))
        for k in range(len(events["kind"])):
            t = float(events["time_s"][k])
            found.append({"time_s": t, "step": frame(t), "kind": str(events["kind"][k]),
                          "x": float(events["x_m"][k] - origin[0]), "y": float(events["y_m"][k] - origin[1]),
                          "actor_id": str(events["actor_id"][k]) if "actor_id" in events else "",
                          "detail": str(events["detail"][k]) if "detail" in events else ""})
    if files.triggers is not None:
        mined = _read(files.triggers, ("kind", "step", "time_s", "x_m", "y_m", "value", "actor_id"),
                      required=("kind", "step", "time_s", "x_m", "y_m", "value", "actor_id"))
        for k in range(len(mined["kind"])):
            step = int(min(max(int(mined["step"][k]), 0), max(len(time_s) - 1, 0)))
            found.append({"time_s": float(mined["time_s"][k]), "step": step, "kind": f"trigger:{mined['kind'][k]}",
                          "x": float(mined["x_m"][k] - origin[0]), "y": float(mined["y_m"][k] - origin[1]),
                          "actor_id": str(mined["actor_id"][k]), "detail": f"value {float(mined['value'][k]):.3g}"})
    return sorted(found, key=lambda event: (event["step"], event["kind"]))


def _running_penalty(events: Sequence[dict[str, Any]], steps: int) -> NDArray[np.float64]:
    """Per step, the product of the Leaderboard 2.0 penalties of the infractions so far."""
    factor = np.ones(steps)
    for event in events:
        try:
            coefficient = LB2_PENALTIES.get(Infraction(event["kind"]), 1.0)
        except ValueError:
            continue
        factor[event["step"]:] *= coefficient
    return factor


def _route(store: EpisodeStore, metadata: dict[str, Any], ego: dict[str, NDArray[Any]],
           ) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None]:
    """A sim episode's route polyline (map frame, from its scenario's start to its end) and its route completion
    (percent) per step; ``(None, None)`` when the episode has no scenario or its map is unavailable."""
    scenario = metadata.get("scenario")
    if not scenario or not metadata.get("map_name"):
        return None, None
    start, end = float(scenario["start_s_m"]), float(scenario["end_s_m"])
    try:
        graph = load_map(store, str(metadata["map_name"]))
        route, _ = RoutePath.build(graph, [int(lane) for lane in scenario["route"]]).between(start, end)
    except (NotFound, BadRequest, OutsideStore, ValueError, IndexError, KeyError, TypeError):
        return None, None
    if "route_progress_m" not in ego or end <= start:
        return route, None
    completion = np.clip((ego["route_progress_m"].astype(np.float64) - start) / (end - start), 0.0, 1.0) * 100.0
    return route, completion


def _actors(path: Path | None, origin: NDArray[np.float64]) -> dict[str, Any] | None:
    """Actors as columns: per actor ``ids``, ``kinds`` (index into ``kind_names``), ``length``, ``width``; per row
    (sorted by step) ``actor`` (index into the per-actor columns), ``x``, ``y``, ``yaw``, ``speed``; and
    ``frame_start`` (``steps + 1`` offsets: the rows of step ``k`` are ``frame_start[k]:frame_start[k+1]``)."""
    if path is None:
        return None
    names = ("step", "actor_id", "kind", "x_m", "y_m", "yaw_rad", "length_m", "width_m", "speed_mps")
    table = _read(path, names, required=names)
    order = np.argsort(table["step"], kind="stable")
    step = table["step"][order]
    ids, first, inverse = np.unique(table["actor_id"][order].astype(str), return_index=True, return_inverse=True)
    kinds = table["kind"][order][first]
    codes = np.array([ACTOR_KIND_CODES.index(k) if k in ACTOR_KIND_CODES else len(ACTOR_KIND_CODES) - 1
                      for k in kinds], dtype=np.uint8)
    last = int(step.max()) + 1 if len(step) else 0
    return {
        "ids": ids.tolist(), "kind_names": list(ACTOR_KIND_CODES), "kinds": encode(codes, "u8"),
        "length": encode(table["length_m"][order][first], "f32"),
        "width": encode(table["width_m"][order][first], "f32"),
        "actor": encode(inverse.astype(np.int32), "i32"),
        "x": encode(table["x_m"][order] - origin[0], "f32"), "y": encode(table["y_m"][order] - origin[1], "f32"),
        "yaw": encode(table["yaw_rad"][order], "f32"), "speed": encode(table["speed_mps"][order], "f32"),
        "frame_start": encode(np.searchsorted(step, np.arange(last + 1)).astype(np.int32), "i32"),
    }


# ---------------------------------------------------------------------- maps
def map_payload(graph: LaneGraph) -> dict[str, Any]:
    """A map for the page: polylines as one flat array of points each with offsets (polyline ``k`` is points
    ``offsets[k]:offsets[k+1]``): ``drivable``, ``crosswalks``, lane ``centerlines`` (with ``junction`` flags,
    ``lane_type`` codes into ``lane_types``) and lane ``left``/``right`` boundaries; ``stop_lines`` (x, y,
    heading, light group) of light-controlled lanes and ``stop_signs`` (x, y, heading); ``bounds`` and ``origin``
    (map frame)."""
    x0, y0, x1, y1 = graph.bounds_m
    origin = np.round([(x0 + x1) / 2, (y0 + y1) / 2])
    lanes = graph.lanes
    bounds = [lane.boundaries() for lane in lanes]
    lane_types = sorted({lane.lane_type for lane in lanes})
    lights = graph.stop_lines()
    signs = [(lane.centerline[-1], lane.centerline[-2]) for lane in lanes
             if lane.stop_sign and len(lane.centerline) > 1]
    return {
        "name": graph.name, "origin": origin.tolist(), "bounds": [x0, y0, x1, y1], "light_groups": graph.light_groups,
        "drivable": _polylines(graph.drivable_polygons, origin), "crosswalks": _polylines(graph.crosswalks, origin),
        "centerlines": _polylines([lane.centerline for lane in lanes], origin),
        "left": _polylines([b[0] for b in bounds], origin), "right": _polylines([b[1] for b in bounds], origin),
        "junction": encode(np.array([lane.is_junction for lane in lanes], dtype=np.uint8), "u8"),
        "lane_types": lane_types,
        "lane_type": encode(np.array([lane_types.index(lane.lane_type) for lane in lanes], dtype=np.uint8), "u8"),
        "stop_lines": encode(np.array([[xy[0] - origin[0], xy[1] - origin[1], heading, group]
                                       for _, xy, heading, group in lights]).reshape(-1, 4), "f32"),
        "stop_signs": encode(np.array([[end[0] - origin[0], end[1] - origin[1],
                                        np.arctan2(end[1] - before[1], end[0] - before[0])]
                                       for end, before in signs]).reshape(-1, 3), "f32"),
    }


def _polylines(lines: Sequence[NDArray[np.float64]], origin: NDArray[np.float64]) -> dict[str, Any]:
    points = np.concatenate([np.asarray(line, dtype=np.float64).reshape(-1, 2) for line in lines]) if lines \
        else np.zeros((0, 2))
    offsets = np.concatenate([[0], np.cumsum([len(line) for line in lines])]).astype(np.int32)
    return {"points": encode(points - origin, "f32"), "offsets": encode(offsets, "i32")}
