"""A real episode store for the viewer's tests: sim episodes from closed-loop rollouts (one with an infraction), a
copy whose metadata holds markup (the page must show it as text), and, where the shared data is present, an
Argoverse 2 log imported with ``autoloop ingest``'s code; every episode mined for triggers as ``autoloop mine``
does."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from autoloop.config import SimConfig
from autoloop.episodes import EpisodeStore
from autoloop.fleet import ingest
from autoloop.fleet.mining import mine, save_triggers
from autoloop.rollout import RolloutOptions, expert_driver, rollout
from sim.scenarios import sample_scenario

#: Markup stored as a policy name: the page shows it, never runs it.
HOSTILE_POLICY = '<img src=x onerror="window.__pwned=1">'


def build_viewer_store(root: Path, *, av2_forecasting: Path | None) -> EpisodeStore:
    """Two noisy expert rollouts on ``junction4-60`` (seeds 12 and 3, so that seed 12 collides; labelled, so that
    they keep the expert's input, and with its planned waypoints), a copy of the first
    with :data:`HOSTILE_POLICY` as its policy, and the AV2 forecasting log(s) under ``av2_forecasting``."""
    store = EpisodeStore(root)
    scenarios = [sample_scenario(seed, traffic_vehicles=4) for seed in (12, 3)]
    results = rollout(scenarios, sim=SimConfig(traffic_vehicles=4, batch_size=2), driver=expert_driver,
                      policy_name="expert", tags={"purpose": "eval", "suite": "viewer-test"},
                      options=RolloutOptions(action_noise=0.6, noise_seed=5, labels=True))
    for episode, _ in results:
        store.write(episode)
    first = results[0][0]
    store.write(replace(first, episode_id=f"hostile-{first.episode_id}",
                        metadata={**first.metadata, "policy": HOSTILE_POLICY}))
    if av2_forecasting is not None:
        report = ingest([av2_forecasting], store, root.parent / "quarantine")
        assert report.landed, report
    for episode_id in store.episode_ids():
        save_triggers(store, episode_id, mine(store.read(episode_id)))
    return store
