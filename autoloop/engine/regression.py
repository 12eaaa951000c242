"""The regression suite: every route a champion once failed, and every fleet moment used, kept for good.

Each entry is one JSON file ``<folder>/<number>-<key>.json`` (the failure: key, source, type, place, reason and
scenario); the key is the scenario's content hash (a fleet moment's: episode, step and kind), so a failure enters
once however often it recurs. Entries are numbered in the order they entered, and the suite lists them in that
order. Every candidate drives them beside the fixed evaluation suite (:func:`with_regression`); the gate holds back
a candidate that fails routes the champion passes (:func:`autoloop.gating.decide`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from autoloop.engine.failures import Failure
from autoloop.engine.generate import scenario_hash
from autoloop.episodes import EpisodeStore
from autoloop.fleet.mining import stored_map
from autoloop.locks import exclusive
from sim.maps import get_map
from sim.scenarios.suites import SUITE_VERSION, Suite

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegressionSuite:
    """The regression routes of one autoloop home, in ``folder``."""

    folder: Path

    def entries(self) -> list[Failure]:
        """Every entry, in the order they entered."""
        if not self.folder.is_dir():
            return []
        return [Failure.from_json(json.loads(path.read_text())) for path in sorted(self.folder.glob("*.json"))]

    def keys(self) -> set[str]:
        return {path.stem.split("-", 1)[1] for path in self.folder.glob("*.json")} if self.folder.is_dir() else set()

    def add(self, failures: Sequence[Failure]) -> list[Failure]:
        """Keep the failures not kept yet (by key; once each); the ones added."""
        with exclusive(self.folder / ".lock"):
            known = self.keys()
            number = len(list(self.folder.glob("*.json")))
            added = []
            for failure in failures:
                if failure.key in known:
                    continue
                known.add(failure.key)
                path = self.folder / f"{number:05d}-{failure.key}.json"
                temporary = self.folder / f".{path.name}.{os.getpid()}.tmp"
                temporary.write_text(json.dumps(failure.to_json(), sort_keys=True, indent=1))
                os.replace(temporary, path)
                number += 1
                added.append(failure)
        if added:
            log.info("regression suite: %d routes added (%d in all)", len(added), number)
        return added

    def routes(self, store: EpisodeStore) -> list[Failure]:
        """The entries whose maps this process can load (a fleet log's map from the store, registered); those it
        cannot are left out with the reason logged."""
        usable = []
        for failure in self.entries():
            try:
                get_map(failure.scenario.map_name)
            except (ValueError, OSError):
                try:
                    stored_map(store, failure.scenario.map_name)
                except (KeyError, ValueError, OSError) as error:
                    log.warning("regression route %s left out: its map %s cannot be loaded (%s)", failure.key,
                                failure.scenario.map_name, error)
                    continue
            usable.append(failure)
        return usable


def with_regression(base: Suite, regression: Sequence[Failure]) -> Suite:
    """``base`` followed by the regression routes it does not hold already, as the suite ``<base>+regression``
    (``base``'s name when it holds them all); its ``regression`` lists the indices of every regression route (those
    of ``base`` included). Without regression routes, ``base`` itself."""
    if not regression:
        return base
    keys = [scenario_hash(scenario) for scenario in base.scenarios]
    position = {key: index for index, key in enumerate(keys)}
    scenarios = list(base.scenarios)
    marked = []
    for failure in regression:
        key = scenario_hash(failure.scenario)
        if key not in position:
            position[key] = len(scenarios)
            scenarios.append(failure.scenario)
        marked.append(position[key])
    appended = len(scenarios) > len(base.scenarios)
    return replace(base, name=f"{base.name}+regression" if appended else base.name,
                   version=SUITE_VERSION if appended and base.version else base.version,
                   scenarios=tuple(scenarios), regression=tuple(sorted(set(marked))))
