"""Collections started at once on one home never drive the same seeds."""

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from autoloop.config import load_config
from autoloop.paths import Paths
from autoloop.stages import SEEDS_FILE, reserve_seeds


def _reserve(home: str, start: Any, out: Any) -> None:
    config = load_config(profile="quick")
    start.wait()
    out.put(reserve_seeds(Paths(Path(home)), config, set()))


def test_collections_started_at_once_get_disjoint_seeds(tmp_path: Path) -> None:
    episodes = load_config(profile="quick").collect.episodes
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    workers = [context.Process(target=_reserve, args=(str(tmp_path), start, out)) for _ in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    firsts = sorted(out.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    ranges = [set(range(first, first + episodes)) for first in firsts]
    assert all(not (a & b) for i, a in enumerate(ranges) for b in ranges[i + 1:]), firsts
    assert firsts == [firsts[0] + k * episodes for k in range(4)]


def test_seeds_go_on_after_the_stored_and_the_handed_out_ones(tmp_path: Path) -> None:
    config = load_config(profile="quick")
    paths = Paths(tmp_path)
    first = reserve_seeds(paths, config, set())
    assert reserve_seeds(paths, config, {first}) == first + config.collect.episodes
    assert reserve_seeds(paths, config, {10_000}) == 10_001
    (tmp_path / SEEDS_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=rf"{SEEDS_FILE}: not a seed record"):
        reserve_seeds(paths, config, set())
