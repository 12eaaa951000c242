"""Argoverse 2 logs as episodes: sensor-dataset logs and motion-forecasting scenarios.

Both are read in the **city frame** of their vector map (right-handed, metres), which is the map frame of the
lane graph that :func:`read_map` builds, so ego and actors lie on ``read_map(log_dir)`` as they do in the log.

**Sensor logs** (``<log id>/city_SE3_egovehicle.feather``, ``annotations.feather`` or its variant
``annotations_with_ego.feather``, ``map/log_map_archive_*.json``):
the ego pose (≈100 Hz, a quaternion and a translation city <- ego) is resampled to a 10 Hz grid (x, y and the
unwrapped yaw interpolated linearly); the grid is aligned with the 10 Hz lidar sweeps that the annotations are
taken at. Speed, acceleration and yaw rate are finite differences on the grid, smoothed over 0.5 s. The
annotations are 3D cuboids in the ego frame at their sweep's timestamp; they are moved into the city frame with
the ego pose of that timestamp and matched to the nearest ego step. The ego's own cuboid (category
``EGO_VEHICLE``, in the ``annotations_with_ego`` variant) is the ego, never an actor. An actor's speed is the
finite difference of its own track. AV2 has no takeover flag: ``intervention`` is False throughout.

**Forecasting scenarios** (``<scenario id>/scenario_<id>.parquet``, ``log_map_archive_<id>.json``): 110 steps at
10 Hz of tracked agents; the track ``"AV"`` is the ego (position, heading and velocity as given), every other
track an actor with the file's ``observed`` flag. The forecasting data has no sizes: an actor's length and width
come from its object type (:data:`FORECASTING_SIZES_M`).

Episode ids are ``av2s-<log id>`` and ``av2f-<scenario id>``, taken from the log's folder name (AV2's layout); the
map is named ``av2:<log or scenario id>``. Any file that does not hold what it should raises
:class:`~autoloop.fleet.tables.FleetLogError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autoloop.episodes.store import Episode
from autoloop.fleet.tables import WHOLE_FILE, FleetLogError, read_table, require_finite, require_increasing
from sim.maps.argoverse import load_av2_map
from sim.maps.lane_graph import LaneGraph

DT_S = 0.1
SENSOR, FORECASTING = "av2-sensor", "av2-forecasting"
EGO_POSE_FILE = "city_SE3_egovehicle.feather"
#: A sensor log's annotations, by the names the Argoverse 2 tooling writes them under (the first found is read).
ANNOTATIONS_FILES = ("annotations.feather", "annotations_with_ego.feather")
#: The annotation category of the ego's own cuboid.
EGO_CATEGORY = "EGO_VEHICLE"
MAP_PATTERN, SCENARIO_PATTERN = "log_map_archive_*.json", "scenario_*.parquet"
_NS = 1_000_000_000
_SMOOTHING_STEPS = 5  # 0.5 s moving average on the finite differences

#: AV2 sensor-dataset annotation categories -> our actor kinds (anything else is "other").
SENSOR_KINDS = {
    **dict.fromkeys(("REGULAR_VEHICLE", "LARGE_VEHICLE", "BUS", "SCHOOL_BUS", "ARTICULATED_BUS", "BOX_TRUCK",
                     "TRUCK", "TRUCK_CAB", "VEHICULAR_TRAILER", "RAILED_VEHICLE"), "vehicle"),
    **dict.fromkeys(("PEDESTRIAN", "OFFICIAL_SIGNALER", "WHEELCHAIR", "STROLLER"), "pedestrian"),
    **dict.fromkeys(("BICYCLIST", "MOTORCYCLIST", "WHEELED_RIDER", "BICYCLE", "MOTORCYCLE"), "cyclist"),
    **dict.fromkeys(("BOLLARD", "CONSTRUCTION_CONE", "CONSTRUCTION_BARREL", "SIGN", "STOP_SIGN",
                     "MOBILE_PEDESTRIAN_CROSSING_SIGN", "MESSAGE_BOARD_TRAILER"), "static"),
}
#: AV2 forecasting object types -> our actor kinds (anything else is "other").
FORECASTING_KINDS = {
    "vehicle": "vehicle", "bus": "vehicle", "pedestrian": "pedestrian", "cyclist": "cyclist",
    "motorcyclist": "cyclist", "static": "static", "construction": "static", "riderless_bicycle": "static",
}
#: Length and width (metres) given to forecasting actors by object type (typical sizes: a US passenger car or
#: SUV, a 40 ft transit bus, a person, a bicycle or motorcycle with rider, a cone/barrel); others get 1 x 1 m.
FORECASTING_SIZES_M = {
    "vehicle": (4.7, 2.0), "bus": (12.0, 2.6), "pedestrian": (0.7, 0.7), "cyclist": (1.8, 0.7),
    "motorcyclist": (2.2, 0.9), "riderless_bicycle": (1.8, 0.6), "construction": (0.5, 0.5),
}
_QUATERNION = ("qw", "qx", "qy", "qz")
_EGO_COLUMNS = {"timestamp_ns": "int", **dict.fromkeys((*_QUATERNION, "tx_m", "ty_m"), "float")}
_ANNOTATION_COLUMNS = {"timestamp_ns": "int", "track_uuid": "str", "category": "str",
                       **dict.fromkeys(("length_m", "width_m", *_QUATERNION, "tx_m", "ty_m", "tz_m"), "float")}
_SCENARIO_COLUMNS = {"track_id": "str", "object_type": "str", "timestep": "int", "observed": "bool",
                     **dict.fromkeys(("position_x", "position_y", "heading", "velocity_x", "velocity_y"), "float")}


def dataset_of(log_dir: Path) -> str | None:
    """``"av2-sensor"``, ``"av2-forecasting"`` or None for a folder that is neither."""
    log_dir = Path(log_dir)
    if (log_dir / EGO_POSE_FILE).exists() or any((log_dir / name).exists() for name in ANNOTATIONS_FILES):
        return SENSOR
    if any(log_dir.glob(SCENARIO_PATTERN)):
        return FORECASTING
    return None


def log_files(log_dir: Path) -> list[Path]:
    """The files the importer reads for a log (those that exist), in a fixed order."""
    log_dir = Path(log_dir)
    if dataset_of(log_dir) == SENSOR:
        found = [log_dir / EGO_POSE_FILE, annotations_file(log_dir), *sorted((log_dir / "map").glob(MAP_PATTERN))]
    else:
        found = [*sorted(log_dir.glob(SCENARIO_PATTERN)), *sorted(log_dir.glob(MAP_PATTERN))]
    return [path for path in found if path.is_file()]


def annotations_file(log_dir: Path) -> Path:
    """The sensor log's annotations: the first of :data:`ANNOTATIONS_FILES` that exists (else the first name)."""
    return next((Path(log_dir) / name for name in ANNOTATIONS_FILES if (Path(log_dir) / name).is_file()),
                Path(log_dir) / ANNOTATIONS_FILES[0])


def read_log(log_dir: Path) -> Episode:
    """Read a sensor log or a forecasting scenario, whichever ``log_dir`` holds."""
    if dataset_of(log_dir) == SENSOR:
        return read_sensor_log(log_dir)
    return read_forecasting_scenario(log_dir)


def read_map(log_dir: Path) -> LaneGraph:
    """The log's vector map (``log_dir/map/`` for a sensor log, ``log_dir`` for a scenario) as ``av2:<id>``."""
    log_dir = Path(log_dir)
    folder = log_dir / "map" if dataset_of(log_dir) == SENSOR else log_dir
    archives = sorted(folder.glob(MAP_PATTERN))
    if len(archives) != 1:
        raise FleetLogError(folder, WHOLE_FILE, f"expected one {MAP_PATTERN}, found {len(archives)}")
    try:
        return load_av2_map(archives[0], name=f"av2:{log_dir.name}")
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        problem = str(error).removeprefix(f"{archives[0]}: ")
        field = problem.split("'")[1] if problem.startswith("missing field '") else _map_field(problem)
        raise FleetLogError(archives[0], field, f"the vector map does not parse: {problem}") from error


def read_sensor_log(log_dir: Path) -> Episode:
    """An AV2 sensor-dataset log as an episode ``av2s-<log id>`` (see the module docstring)."""
    log_dir = Path(log_dir)
    pose_path, annotations_path = log_dir / EGO_POSE_FILE, annotations_file(log_dir)
    pose = read_table(pose_path, _EGO_COLUMNS)
    require_finite(pose_path, pose, (*_QUATERNION, "tx_m", "ty_m"))
    _require_unit_quaternions(pose_path, pose)
    require_increasing(pose_path, "timestamp_ns", pose["timestamp_ns"])
    if not annotations_path.is_file():
        raise FleetLogError(annotations_path, WHOLE_FILE, f"the file is missing (and so is {ANNOTATIONS_FILES[1]})")
    boxes = read_table(annotations_path, _ANNOTATION_COLUMNS)
    others = boxes["category"] != EGO_CATEGORY  # the ego's own cuboid is the ego, not an actor
    boxes = {name: column[others] for name, column in boxes.items()}
    require_finite(annotations_path, boxes, tuple(k for k, v in _ANNOTATION_COLUMNS.items() if v == "float"))
    _require_unit_quaternions(annotations_path, boxes)
    require_increasing(annotations_path, "timestamp_ns", boxes["timestamp_ns"], boxes["track_uuid"])

    pose_ns = pose["timestamp_ns"].astype(np.int64)
    first_ns = pose_ns[0]
    if len(boxes["timestamp_ns"]):  # align the grid with the lidar sweeps
        sweep_ns = int(boxes["timestamp_ns"].min())
        first_ns = sweep_ns - max(0, (sweep_ns - int(pose_ns[0])) // (_NS // 10)) * (_NS // 10)
    count = int((pose_ns[-1] - first_ns) // (_NS // 10)) + 1
    if len(pose_ns) < 2 or count < 2:
        raise FleetLogError(pose_path, "timestamp_ns", f"{len(pose_ns)} poses over less than {DT_S} s; need 2 steps")
    grid_ns = first_ns + np.arange(count, dtype=np.int64) * (_NS // 10)
    pose_s, grid_s = (pose_ns - first_ns) / _NS, (grid_ns - first_ns) / _NS
    yaw = np.unwrap(yaw_from_quaternion(*(pose[q] for q in _QUATERNION)))
    x, y = np.interp(grid_s, pose_s, pose["tx_m"]), np.interp(grid_s, pose_s, pose["ty_m"])
    heading = np.interp(grid_s, pose_s, yaw)
    speed = np.hypot(np.gradient(x, DT_S), np.gradient(y, DT_S))
    steps = _ego_steps(x, y, heading, _smooth(speed))

    # annotations: ego frame at the sweep -> city frame with the pose of that sweep (AV2 logs a pose per sweep)
    at = np.clip(np.searchsorted(pose_ns, boxes["timestamp_ns"]), 1, len(pose_ns) - 1)
    at -= (boxes["timestamp_ns"] - pose_ns[at - 1]) < (pose_ns[at] - boxes["timestamp_ns"])
    ego_q = tuple(pose[q][at] for q in _QUATERNION)
    rows = _rotation_xy(*ego_q)
    offset = np.stack([boxes["tx_m"], boxes["ty_m"], boxes["tz_m"]], axis=1)
    actor_x = pose["tx_m"][at] + np.sum(rows[0] * offset, axis=1)
    actor_y = pose["ty_m"][at] + np.sum(rows[1] * offset, axis=1)
    actor_yaw = yaw_from_quaternion(*_multiply(ego_q, tuple(boxes[q] for q in _QUATERNION)))
    box_s = (boxes["timestamp_ns"] - first_ns) / _NS
    actor_speed = _track_speeds(boxes["track_uuid"], box_s, actor_x, actor_y)
    step = np.rint(box_s / DT_S).astype(np.int64)
    # one row per (step, actor): the annotation nearest the step
    track = np.unique(boxes["track_uuid"], return_inverse=True)[1]
    order = np.lexsort((np.abs(box_s - step * DT_S), step, track))
    keep = order[(step[order] >= 0) & (step[order] < count)]
    _, first = np.unique(track[keep] * count + step[keep], return_index=True)
    keep = np.sort(keep[first])
    actors = _actor_table(
        step=step[keep], actor_id=boxes["track_uuid"][keep],
        kind=np.array([SENSOR_KINDS.get(c, "other") for c in boxes["category"][keep]], dtype=object),
        x_m=actor_x[keep], y_m=actor_y[keep], yaw_rad=actor_yaw[keep], length_m=boxes["length_m"][keep],
        width_m=boxes["width_m"][keep], speed_mps=actor_speed[keep], observed=np.ones(len(keep), dtype=bool))
    city = next((p.stem.rsplit("____", 1)[-1].split("_")[0] for p in (log_dir / "map").glob(MAP_PATTERN)), "")
    return _episode(f"av2s-{log_dir.name}", SENSOR, log_dir, steps, actors,
                    {"city": city, "start_timestamp_ns": int(first_ns)})


def read_forecasting_scenario(scenario_dir: Path) -> Episode:
    """An AV2 motion-forecasting scenario as an episode ``av2f-<scenario id>`` (see the module docstring)."""
    scenario_dir = Path(scenario_dir)
    files = sorted(scenario_dir.glob(SCENARIO_PATTERN))
    if len(files) != 1:
        raise FleetLogError(scenario_dir, WHOLE_FILE, f"expected one {SCENARIO_PATTERN}, found {len(files)}")
    path = files[0]
    table = read_table(path, _SCENARIO_COLUMNS)
    require_finite(path, table, tuple(k for k, v in _SCENARIO_COLUMNS.items() if v == "float"))
    require_increasing(path, "timestep", table["timestep"], table["track_id"])
    is_ego = table["track_id"] == "AV"
    ego_steps = table["timestep"][is_ego]
    if len(ego_steps) < 2:
        raise FleetLogError(path, "track_id", f"the 'AV' track has {len(ego_steps)} timesteps; need at least 2")
    if np.any(np.diff(ego_steps) != 1):
        raise FleetLogError(path, "timestep", "the 'AV' track skips timesteps; the ego needs every 10 Hz step")
    speed = np.hypot(table["velocity_x"][is_ego], table["velocity_y"][is_ego])
    steps = _ego_steps(table["position_x"][is_ego], table["position_y"][is_ego],
                       np.unwrap(table["heading"][is_ego]), speed)
    step = table["timestep"] - ego_steps[0]
    keep = np.flatnonzero(~is_ego & (step >= 0) & (step < len(ego_steps)))
    types = table["object_type"][keep]
    sizes = np.array([FORECASTING_SIZES_M.get(t, (1.0, 1.0)) for t in types]).reshape(-1, 2)
    actors = _actor_table(
        step=step[keep], actor_id=table["track_id"][keep],
        kind=np.array([FORECASTING_KINDS.get(t, "other") for t in types], dtype=object),
        x_m=table["position_x"][keep], y_m=table["position_y"][keep], yaw_rad=table["heading"][keep],
        length_m=sizes[:, 0], width_m=sizes[:, 1],
        speed_mps=np.hypot(table["velocity_x"][keep], table["velocity_y"][keep]), observed=table["observed"][keep])
    return _episode(f"av2f-{scenario_dir.name}", FORECASTING, scenario_dir, steps, actors,
                    {"first_timestep": int(ego_steps[0])})


def yaw_from_quaternion(qw: NDArray[Any], qx: NDArray[Any], qy: NDArray[Any], qz: NDArray[Any]) -> NDArray[Any]:
    """Heading (rad, about +z) of rotations given as unit quaternions."""
    yaw: NDArray[Any] = np.arctan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz))
    return yaw


def _rotation_xy(qw: NDArray[Any], qx: NDArray[Any], qy: NDArray[Any], qz: NDArray[Any]) -> NDArray[Any]:
    """The first two rows ``(2, N, 3)`` of the rotation matrices of unit quaternions."""
    return np.array([
        np.stack([1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)], axis=1),
        np.stack([2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)], axis=1),
    ])


def _multiply(a: tuple[NDArray[Any], ...], b: tuple[NDArray[Any], ...]) -> tuple[NDArray[Any], ...]:
    """Hamilton product ``a b`` of quaternions ``(w, x, y, z)``: rotation ``b`` then ``a``."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw)


def _require_unit_quaternions(path: Path, table: dict[str, NDArray[Any]]) -> None:
    norm = np.sqrt(sum(table[q] ** 2 for q in _QUATERNION))
    bad = np.flatnonzero(np.abs(norm - 1) > 1e-3)
    if len(bad):
        raise FleetLogError(path, "qw", f"{len(bad)} rotations are not unit quaternions, first at row {bad[0]}")


def _smooth(values: NDArray[Any]) -> NDArray[Any]:
    """Centred moving average over ``_SMOOTHING_STEPS`` (edges padded with the end values)."""
    half = min(_SMOOTHING_STEPS // 2, (len(values) - 1) // 2)
    window = 2 * half + 1
    return np.convolve(np.pad(values, half, mode="edge"), np.ones(window) / window, mode="valid")


def _ego_steps(x: NDArray[Any], y: NDArray[Any], unwrapped_yaw: NDArray[Any],
               speed: NDArray[Any]) -> dict[str, NDArray[Any]]:
    """The ego table on a 10 Hz grid; acceleration and yaw rate are smoothed finite differences."""
    count = len(x)
    return {
        "step": np.arange(count, dtype=np.int32),
        "time_s": (np.arange(count) * DT_S).astype(np.float32),
        "x_m": np.asarray(x, dtype=np.float64),
        "y_m": np.asarray(y, dtype=np.float64),
        "yaw_rad": np.angle(np.exp(1j * unwrapped_yaw)).astype(np.float32),
        "speed_mps": np.asarray(speed, dtype=np.float32),
        "accel_mps2": _smooth(np.gradient(speed, DT_S)).astype(np.float32),
        "yaw_rate_radps": _smooth(np.gradient(unwrapped_yaw, DT_S)).astype(np.float32),
        "intervention": np.zeros(count, dtype=bool),
    }


def _track_speeds(track: NDArray[Any], time_s: NDArray[Any], x: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]:
    """Each row's speed from the finite differences of its own track (0 for a track seen once)."""
    speed = np.zeros(len(track))
    for rows in _groups(track):
        if len(rows) > 1:
            speed[rows] = np.hypot(np.gradient(x[rows], time_s[rows]), np.gradient(y[rows], time_s[rows]))
    return speed


def _groups(keys: NDArray[Any]) -> list[NDArray[np.intp]]:
    """Row indices of each distinct key, in file order."""
    _, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1)


def _actor_table(**columns: NDArray[Any]) -> dict[str, NDArray[Any]]:
    types = {"step": np.int32, "actor_id": object, "kind": object, "x_m": np.float64, "y_m": np.float64,
             "yaw_rad": np.float32, "length_m": np.float32, "width_m": np.float32, "speed_mps": np.float32,
             "observed": bool}
    return {name: np.asarray(columns[name]).astype(dtype) for name, dtype in types.items()}


def _episode(episode_id: str, dataset: str, log_dir: Path, steps: dict[str, NDArray[Any]],
             actors: dict[str, NDArray[Any]], extra: dict[str, Any]) -> Episode:
    count = len(steps["step"])
    city = extra.get("city")
    metadata = {
        "map_name": f"av2:{log_dir.name}", "origin": str(log_dir), "dataset": dataset, "dt_s": DT_S,
        "duration_s": round((count - 1) * DT_S, 6), "tags": ["av2", dataset, *([city] if city else [])],
        "synthetic": False, **extra,
    }
    return Episode(episode_id=episode_id, source="fleet", steps=steps, metadata=metadata, actors=actors)


def _map_field(problem: str) -> str:
    """The JSON field a map error names (``lane_segments.<id>`` …), or ``(file)`` when it names none."""
    for word in problem.replace(":", " ").replace("'", " ").split():
        if word.startswith(("lane_segments", "pedestrian_crossings", "drivable_areas")):
            return word.strip(".,")
    return WHOLE_FILE
