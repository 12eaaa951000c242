"""The ``autoloop`` command line: one subcommand per stage, the whole cycle, and configuration."""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from autoloop.config import AutoloopConfig, Backend, ConfigError, dump_config, evaluate_overrides, load_config
from autoloop.paths import Paths
from sim.scenarios.suites import SUITE_NAMES

if TYPE_CHECKING:
    from autoloop.stages import CycleSummary

app = typer.Typer(help="autoloop: an open data engine for driving policies.", no_args_is_help=True,
                  add_completion=False)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
bench_app = typer.Typer(help="Benchmarks that print JSON.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
episodes_app = typer.Typer(help="The episode store: SQL queries, migration.", no_args_is_help=True)
app.add_typer(episodes_app, name="episodes")
models_app = typer.Typer(help="The model registry: versions, aliases, lineage.")
app.add_typer(models_app, name="models")
console = Console()

# A command's process ends without the cyclic garbage collector walking every object its imports made (over half a
# second once MLflow is loaded): the last exit handler (registered first) freezes them, the others run before it.
atexit.register(gc.freeze)


@app.callback()
def _hold_children() -> None:
    """Whatever a command starts (Prefect's temporary server, Ray nodes, training workers) dies with it, even when
    it is killed with SIGKILL (:mod:`autoloop.lifeline`)."""
    from autoloop import lifeline

    lifeline.hold_once()

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.", exists=False)]
ProfileOption = Annotated[str | None, typer.Option("--profile", "-p", help="Base profile: quick or default.")]
HomeOption = Annotated[
    Path | None, typer.Option("--home", help="Output folder (default $AUTOLOOP_HOME or ./.autoloop).")
]


def _load(config: Path | None, profile: str | None, suite: str | None = None, *, backend: str | None = None,
          carla: dict[str, Any] | None = None) -> AutoloopConfig:
    if suite is not None and suite not in SUITE_NAMES:
        _error(f"--suite {suite}: unknown suite; choose one of {', '.join(SUITE_NAMES)}")
        raise typer.Exit(2)
    try:
        # (a suite named on the command line is driven whole)
        return load_config(config, profile=profile,
                           overrides=evaluate_overrides(suite=suite, backend=backend, carla=carla))
    except ConfigError as error:
        _error(error)
        raise typer.Exit(2) from None


def _home(home: Path | None) -> str:
    """The home folder (created, and checked to be writable: one line and exit 2 otherwise), also as
    ``$AUTOLOOP_HOME`` for what runs next."""
    from autoloop.paths import UnwritableHome

    paths = Paths(home.resolve()) if home else Paths.from_env()
    try:
        paths.check_writable()
    except UnwritableHome as error:
        _error(error)
        raise typer.Exit(2) from None
    os.environ["AUTOLOOP_HOME"] = str(paths.home)
    return str(paths.home)


def _check_servers(config: AutoloopConfig, home: str) -> None:
    """A tracking server or Ray cluster that does not answer: one line and exit 1, before any flow run."""
    from autoloop.context import check_servers
    from autoloop.network import Unreachable

    try:
        check_servers(config, Paths(Path(home)))
    except Unreachable as error:
        console.print(f"[red]error:[/] {error}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _check_backend(config: AutoloopConfig) -> None:
    """CARLA inputs of an evaluation that cannot be used (route file, Leaderboard, CARLA or a running server): one
    line and exit 1, before any flow run."""
    from autoloop.stages import evaluation_backend

    try:
        evaluation_backend(config)
    except ValueError as error:
        _error(error)
        raise typer.Exit(1) from None


def _error(error: BaseException | str) -> None:
    """``error: <message>`` as it is (no markup read in it, no wrapping)."""
    console.print(Text.assemble(("error:", "red"), f" {error}"), highlight=False, soft_wrap=True)


def _flow_arguments(config: Path | None, profile: str | None, home: Path | None, suite: str | None = None, *,
                    evaluates: bool = False, backend: str | None = None, carla: dict[str, Any] | None = None
                    ) -> tuple[AutoloopConfig, dict[str, Any]]:
    """Check the config (with ``suite`` as its ``evaluate.suite``, ``backend`` and ``carla`` over its ``evaluate``
    section), the servers it names and, for a command that ``evaluates``, its CARLA inputs; then the config and the
    parameters every flow takes."""
    cfg = _load(config, profile, suite, backend=backend, carla=carla)
    where = _home(home)
    _check_servers(cfg, where)
    if evaluates:
        _check_backend(cfg)
    _setup_logging()
    return cfg, {"config_file": str(config.resolve()) if config else None, "profile": profile, "home": where}


def _as_flow_run() -> bool:
    """Whether a stage command runs its Prefect flow: when a Prefect API is configured (its UI, deployments and
    concurrency limits see the run). Else it runs the stage directly (:mod:`autoloop.direct`), where a flow run
    would start a temporary API server only to record itself there."""
    from flows.api import configured

    return configured()


def _split(values: str | None) -> list[str] | None:
    """``a,b`` as ``["a", "b"]`` (``None`` stays ``None``)."""
    return None if values is None else [value.strip() for value in values.split(",") if value.strip()]


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


@app.command()
def cycle(config: ConfigOption = None, profile: ProfileOption = None, home: HomeOption = None) -> None:
    """Run one full cycle: collect, train, evaluate, promote (Prefect flow ``cycle``)."""
    _, arguments = _flow_arguments(config, profile, home, evaluates=True)
    from flows.cycle import cycle_flow
    from sim.scene.observation import ObservationFormatError

    try:
        summary = cycle_flow(**arguments)
    except ObservationFormatError as error:  # a dataset, checkpoint or model of another observation format
        console.print(f"[red]error:[/] {error}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    print_summary(summary)


@app.command()
def collect(config: ConfigOption = None, profile: ProfileOption = None, home: HomeOption = None) -> None:
    """Collect new episodes the data engine's way (a share on what failed last) and snapshot the dataset."""
    cfg, arguments = _flow_arguments(config, profile, home)
    if _as_flow_run():
        from flows.stages import collect_flow

        result = collect_flow(**arguments)
    else:
        from autoloop import direct

        result = direct.collect(cfg, Paths(Path(arguments["home"])))
    console.print(f"collected {result.episodes} episodes ({result.steps} steps); dataset {result.snapshot.path}")


@app.command()
def train(config: ConfigOption = None, profile: ProfileOption = None, home: HomeOption = None,
          dataset: Annotated[Path | None, typer.Option(help="Dataset snapshot manifest (default: latest).")] = None
          ) -> None:
    """Train a driver on a dataset snapshot: imitation (`train.policy`: waypoints or bc), then optional DAgger, PPO,
    SAC."""
    cfg, arguments = _flow_arguments(config, profile, home)
    from autoloop.stages import latest_snapshot_path
    from sim.scene.observation import ObservationFormatError

    try:  # (no dataset to train on: one line, before any flow run)
        if dataset is None:
            latest_snapshot_path(Paths(Path(arguments["home"])))
        elif not dataset.is_file():
            raise FileNotFoundError(f"--dataset {dataset}: no such snapshot manifest")
    except FileNotFoundError as error:
        _error(error)
        raise typer.Exit(2) from None
    manifest = str(dataset.resolve()) if dataset else None
    try:
        if _as_flow_run():
            from flows.stages import train_flow

            result = train_flow(**arguments, dataset=manifest)
        else:
            from autoloop import direct

            result = direct.train(cfg, Paths(Path(arguments["home"])), manifest)
    except ObservationFormatError as error:  # a dataset or checkpoint of another observation format
        console.print(f"[red]error:[/] {error}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"model {result.model.model_uri} (val loss {result.val_loss:.4f})")


SuiteOption = Annotated[str | None, typer.Option(
    help="Scenario suite (smoke, eval, carla-towns, ...); default: the config's evaluate.suite, else its held-out "
         "scenarios.")]


def _carla_option(help_text: str) -> Any:
    """An option of the CARLA backend: it overrides its ``evaluate.carla`` key."""
    return typer.Option(help=help_text, rich_help_panel="CARLA backend (each option overrides its evaluate.carla key)")


BackendOption = Annotated[Backend | None, typer.Option(
    help="Where routes are driven: embedded (a suite) or carla (a route file, in the CARLA Leaderboard's "
         "evaluator); default: the config's evaluate.backend.")]
RoutesOption = Annotated[Path | None, _carla_option("Leaderboard route XML to drive (routes).")]
HostsOption = Annotated[str | None, _carla_option("Running CARLA servers, HOST:PORT[,HOST:PORT...] (hosts; else "
                                                  "$CARLA_HOST).")]
CarlaRootOption = Annotated[Path | None, _carla_option("CARLA package to start servers from (carla_root; else "
                                                       "$CARLA_ROOT).")]
LeaderboardOption = Annotated[Path | None, _carla_option("Leaderboard 2.x checkout (leaderboard_root; else "
                                                         "$LEADERBOARD_ROOT).")]
ScenarioRunnerOption = Annotated[Path | None, _carla_option("Scenario runner checkout (scenario_runner_root; else "
                                                            "$SCENARIO_RUNNER_ROOT).")]
PythonOption = Annotated[str | None, _carla_option("Interpreter that runs the evaluator (python).")]
GpusOption = Annotated[str | None, _carla_option("GPUs to start a server on, e.g. 0,1 (gpus).")]
BasePortOption = Annotated[int | None, _carla_option("RPC port of the first started server (base_port).")]
PortSpacingOption = Annotated[int | None, _carla_option("Ports between started servers (port_spacing).")]
ChunkOption = Annotated[int | None, _carla_option("Routes per evaluator run (chunk_routes).")]
HangOption = Annotated[float | None, _carla_option("Seconds without progress before an evaluator is taken for hung "
                                                   "(hang_timeout_s).")]
RepetitionsOption = Annotated[int | None, _carla_option("Runs of each route (repetitions).")]
TrackOption = Annotated[str | None, _carla_option("Leaderboard track: SENSORS or MAP (track).")]
ScorerOption = Annotated[str | None, _carla_option("Scorer: lb2, lb21 or bench2drive (scorer; else "
                                                   "evaluate.scorer).")]


@app.command()
def evaluate(config: ConfigOption = None, profile: ProfileOption = None, home: HomeOption = None,
             model: Annotated[str, typer.Option(help="Driver: 'expert', a checkpoint file, models:/NAME/VERSION or "
                                                     "models:/NAME@ALIAS.")] = "models:/autoloop-driver@champion",
             suite: SuiteOption = None, backend: BackendOption = None, routes: RoutesOption = None,
             carla_host: HostsOption = None, carla_root: CarlaRootOption = None,
             leaderboard_root: LeaderboardOption = None, scenario_runner_root: ScenarioRunnerOption = None,
             carla_python: PythonOption = None, carla_gpus: GpusOption = None, carla_base_port: BasePortOption = None,
             carla_port_spacing: PortSpacingOption = None, carla_chunk_routes: ChunkOption = None,
             carla_hang_timeout_s: HangOption = None, carla_repetitions: RepetitionsOption = None,
             carla_track: TrackOption = None, carla_scorer: ScorerOption = None) -> None:
    """Evaluate a driver closed-loop on a scenario suite, or in CARLA on a route file (--backend carla --routes
    FILE.xml); an interrupted evaluation resumes where it stopped."""
    carla = {key: value for key, value in {
        "routes": str(routes.resolve()) if routes else None,
        "hosts": _split(carla_host), "carla_root": str(carla_root.resolve()) if carla_root else None,
        "leaderboard_root": str(leaderboard_root.resolve()) if leaderboard_root else None,
        "scenario_runner_root": str(scenario_runner_root.resolve()) if scenario_runner_root else None,
        "python": carla_python, "gpus": _split(carla_gpus), "base_port": carla_base_port,
        "port_spacing": carla_port_spacing, "chunk_routes": carla_chunk_routes,
        "hang_timeout_s": carla_hang_timeout_s, "repetitions": carla_repetitions, "track": carla_track,
        "scorer": carla_scorer}.items() if value is not None}
    cfg, arguments = _flow_arguments(config, profile, home, suite, evaluates=True, backend=backend, carla=carla)
    from autoloop import tracking
    from autoloop.carla.servers import ServerError
    from autoloop.stages import resolve_driver

    try:  # a driver that does not exist or does not load: one line, before any flow run
        if model.startswith("models:/"):
            tracking.configure(Paths(Path(arguments["home"])), _load(config, profile).registry.experiment)
        resolve_driver(model)
    except ValueError as error:
        _error(f"--model: {error}")
        raise typer.Exit(2) from None

    try:
        if _as_flow_run():
            from flows.stages import evaluate_flow

            outcome = evaluate_flow(model_uri=model, suite=suite, backend=backend, carla=carla or None, **arguments)
        else:
            from autoloop import direct

            outcome = direct.evaluate(cfg, Paths(Path(arguments["home"])), model)
    except (ValueError, ServerError) as error:  # a driver that does not exist; a CARLA server that did not start
        _error(error)
        raise typer.Exit(1) from None
    result = outcome.result
    table = Table(title=f"{model} on {result.suite} ({result.suite_hash})", title_justify="left")
    table.add_column("scenario type", no_wrap=True)
    for column in ("routes", "DS [95 % CI]", "RC", "success %", "collisions/km"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, b in [*result.by_type.items(), ("all", None)]:
        if b is None:
            ci = result.intervals["driving_score"]
            table.add_row("all", str(len(result.routes)), f"{ci.mean:.1f} [{ci.low:.1f}, {ci.high:.1f}]",
                          f"{result.route_completion:.1f}", f"{result.success_rate:.0f}",
                          f"{result.collisions_per_km:.2f}", style="bold")
        else:
            table.add_row(name, str(b.routes), f"{b.driving_score:.1f}", f"{b.route_completion:.1f}",
                          f"{b.success_rate:.0f}", f"{b.collisions_per_km:.2f}")
    console.print(table)
    failed = [route for route in result.routes if route.status.startswith("Failed - ")]
    for route in failed:
        console.print(f"route {route.index} ({route.scenario_type}): {route.status} {route.error}", markup=False)
    console.print(f"report: {outcome.report_uri}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def promote(model: Annotated[str | None, typer.Option(
                help="Candidate model URI (models:/m-... from `train`).")] = None,
            rollback: Annotated[bool, typer.Option(
                "--rollback", help="Move the champion alias back to the previous champion.")] = False,
            config: ConfigOption = None, profile: ProfileOption = None, home: HomeOption = None,
            suite: SuiteOption = None) -> None:
    """Register a candidate as challenger, gate it against the thresholds and the champion on the same routes, and
    make it champion if it passes; or, with --rollback, put the previous champion back."""
    if rollback:
        from autoloop import stages
        from autoloop.context import open_context

        cfg = _load(config, profile, suite)
        _setup_logging()
        try:
            before, after = stages.rollback(open_context(cfg, paths=Paths(Path(_home(home)))))
        except ValueError as error:
            console.print(f"[red]error:[/] {error}")
            raise typer.Exit(1) from None
        console.print(f"rolled back: champion version {before} -> {after}")
        return
    if model is None:
        console.print("[red]error:[/] give --model (a candidate) or --rollback")
        raise typer.Exit(2)
    cfg, arguments = _flow_arguments(config, profile, home, suite, evaluates=True)
    from autoloop import tracking

    try:  # a candidate that does not exist: one line, before any flow run
        tracking.configure(Paths(Path(arguments["home"])), cfg.registry.experiment)
        tracking.logged_policy(model)
    except ValueError as error:
        _error(f"--model: {error}")
        raise typer.Exit(2) from None
    if _as_flow_run():
        from flows.stages import promote_flow

        result = promote_flow(model_uri=model, suite=suite, **arguments)
    else:
        from autoloop import direct

        result = direct.promote(cfg, Paths(Path(arguments["home"])), model)
    for check in result.verdict.checks:
        console.print(Text(f"{'PASS' if check.passed else 'FAIL'} {check.detail}",
                           style="green" if check.passed else "red"))
    if result.promoted and result.registered:
        console.print(f"[green]promoted[/] {model} as {result.registered.uri} (alias champion)")
    elif result.registered:
        console.print(f"[yellow]not promoted[/]: registered as {result.registered.uri} (alias challenger)")
    else:
        console.print("[yellow]not promoted[/]: the evaluation did not run every route; not registered")
    console.print(f"report: {result.report_uri}", markup=False, highlight=False, soft_wrap=True)


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context, config: ConfigOption = None, profile: ProfileOption = None,
           home: HomeOption = None) -> None:
    """List the registered versions with their aliases and headline metrics."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = _load(config, profile)
    from autoloop import tracking
    from autoloop.context import open_context

    name = open_context(cfg, paths=Paths(Path(_home(home)))).config.registry.model_name
    versions = tracking.list_versions(name)
    # scores are comparable only on one suite: a table per suite the versions were evaluated on
    by_suite: dict[tuple[str, str], list[Any]] = {}
    for info in versions:
        by_suite.setdefault((info.tags.get("suite", "?"), info.tags.get("suite_hash", "?")), []).append(info)
    for (suite, suite_hash), group in by_suite.items():
        table = Table(title=f"registered model {name}: evaluated on suite {suite} ({suite_hash})",
                      title_justify="left")
        for column in ("version", "aliases", "verdict", "DS", "DS 95 % CI", "success %", "coll/km", "dataset"):
            table.add_column(column)
        for info in group:
            tags = info.tags
            table.add_row(info.version, ", ".join(info.aliases), tags.get("verdict", ""),
                          tags.get("driving_score", ""), tags.get("driving_score_ci", ""), tags.get("success_rate", ""),
                          tags.get("collisions_per_km", ""), tags.get("dataset_digest", "")[:12])
        console.print(table)
    if not versions:
        console.print(f"no versions of {name} yet: run `autoloop cycle`")


@models_app.command("show")
def models_show(version: Annotated[str, typer.Argument(help="Version number.")], config: ConfigOption = None,
                profile: ProfileOption = None, home: HomeOption = None) -> None:
    """Print a version's lineage: dataset snapshot -> training run -> evaluation run -> gate verdict."""
    cfg = _load(config, profile)
    from autoloop import tracking
    from autoloop.context import open_context

    name = open_context(cfg, paths=Paths(Path(_home(home)))).config.registry.model_name
    try:
        lineage = tracking.lineage(name, version)
    except ValueError as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(1) from None
    tags = lineage.version.tags
    lines = [
        f"{name} version {version}" + (f"  [{', '.join(lineage.version.aliases)}]" if lineage.version.aliases else ""),
        f"  dataset snapshot   {lineage.dataset_digest}" + "".join(f"\n                     input {i}"
                                                                   for i in lineage.dataset_inputs),
        f"  -> training run    {lineage.training_run} ({lineage.training_run_name})",
        f"  -> evaluation run  {lineage.evaluation_run}: suite {tags.get('suite', '?')} "
        f"({tags.get('suite_hash', '?')}), DS {tags.get('driving_score', '?')} {tags.get('driving_score_ci', '')}, "
        f"success {tags.get('success_rate', '?')} %",
        f"  -> gate verdict    {lineage.verdict} (promote run {lineage.promote_run}, compared with version "
        f"{tags.get('compared_with', '?')}): {lineage.reasons}",
        f"  code revision      {tags.get('git_sha', 'unknown')}",
        f"  description        {lineage.version.description}",
    ]
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


@app.command("ingest")
def ingest_command(
    paths: Annotated[list[Path], typer.Argument(help="AV2 sensor log or forecasting scenario folders, or folders "
                                                     "holding several.")],
    config: ConfigOption = None, profile: ProfileOption = None, home: HomeOption = None,
) -> None:
    """Import fleet logs (Argoverse 2) into the episode store; bad files go to quarantine/ with a reason."""
    _load(config, profile)
    _setup_logging()
    from autoloop.episodes import EpisodeStore
    from autoloop.fleet import ingest

    paths_ = Paths(Path(_home(home)))
    report = ingest(paths, EpisodeStore(paths_.episodes), paths_.quarantine)
    table = Table(title=f"ingest into {paths_.episodes}", title_justify="left")
    for column in ("log", "status", "detail"):
        table.add_column(column, overflow="fold")
    for episode_id in report.landed:
        table.add_row(episode_id, Text("landed", style="green"), "")
    for episode_id in report.skipped:
        table.add_row(episode_id, "skipped", "already ingested (same origin_sha256)")
    for bad in report.quarantined:
        table.add_row(bad.log.name, Text("quarantined", style="red"),
                      Text(f"{bad.file}: {bad.field}: {bad.problem} -> {bad.folder}"))
    for missing in report.not_found:
        table.add_row(str(missing), Text("not found", style="yellow"), "no AV2 sensor log or forecasting scenario")
    console.print(table)
    console.print(f"{len(report.landed)} landed, {len(report.skipped)} skipped, {len(report.quarantined)} "
                  f"quarantined, {len(report.not_found)} paths without logs")
    if not report.logs:
        raise typer.Exit(1)


@app.command("mine")
def mine_command(
    source: Annotated[str, typer.Option(help="Episodes to scan: fleet, sim or all.")] = "fleet",
    before_s: Annotated[float, typer.Option(help="A replay starts this long before its trigger.")] = 3.0,
    replay: Annotated[bool, typer.Option(help="Also drive every replay with the expert and score it.")] = False,
    reactive: Annotated[bool, typer.Option(
        "--reactive/--non-reactive",
        help="Replayed actors react (driven on by the world from their recorded state) or follow their recorded "
             "tracks whatever the ego does.")] = True,
    config: ConfigOption = None, profile: ProfileOption = None, home: HomeOption = None,
) -> None:
    """Mine the stored episodes for triggers (hard braking, high jerk, near misses, interventions, infractions),
    tag the episodes with them (the `triggers` view of `autoloop episodes query`) and export each as a log-replay
    scenario (YAML under replays/ in the home folder; non-reactive ones end in -log.yaml)."""
    _load(config, profile)
    _setup_logging()
    from autoloop.episodes import EpisodeStore
    from autoloop.fleet.mining import drive_replay, mine, replay_scenario, save_triggers, stored_map
    from autoloop.progress import counted
    from sim.metrics import score_route

    paths_ = Paths(Path(_home(home)))
    store = EpisodeStore(paths_.episodes)
    out = paths_.home / "replays"
    out.mkdir(parents=True, exist_ok=True)
    table = Table(title=f"triggers in {paths_.episodes}", title_justify="left")
    for column in ("episode", "trigger", "time s", "value", "actor", "replay", "expert DS"):
        table.add_column(column, overflow="fold")
    for episode_id in counted(store.episode_ids(None if source == "all" else source), "mine", "episodes"):
        episode = store.read(episode_id)
        map_name = str(episode.metadata.get("map_name", ""))
        try:
            graph = stored_map(store, map_name)
        except (KeyError, ValueError) as error:
            table.add_row(episode_id, "-", "", "", "", Text(f"no map {map_name!r} in the store: {error}"), "")
            continue
        triggers, replays = mine(episode), []
        for trigger in triggers:
            start = max(trigger.step - round(before_s / max(float(episode.metadata.get("dt_s", 0.1)), 1e-3)), 0)
            try:
                scenario = replay_scenario(episode, map_name=graph.name, start_step=start, reactive=reactive)
            except ValueError as error:
                table.add_row(episode_id, trigger.kind, f"{trigger.time_s:.1f}", f"{trigger.value:.2f}",
                              trigger.actor_id, Text(str(error), style="yellow"), "")
                replays.append("")
                continue
            path = out / f"{episode_id}-{trigger.kind}-{trigger.step}{'' if reactive else '-log'}.yaml"
            path.write_text(scenario.to_yaml())
            replays.append(str(path.relative_to(paths_.home)))
            score = ""
            if replay:
                score = f"{score_route(drive_replay(scenario)).driving_score:.1f}"
            table.add_row(episode_id, trigger.kind, f"{trigger.time_s:.1f}", f"{trigger.value:.2f}",
                          trigger.actor_id, str(path.relative_to(paths_.home)), score)
        save_triggers(store, episode_id, triggers, replays)  # the episode's tags: the `triggers` view
    console.print(table)


@app.command()
def ui(home: HomeOption = None, port: int = 5000) -> None:
    """Open the MLflow UI on this home's tracking store."""
    import socket

    paths = Paths(Path(_home(home)))
    try:
        socket.create_server(("127.0.0.1", port)).close()
    except OSError as error:
        _error(f"--port {port}: cannot listen there ({os.strerror(error.errno or 0)}); choose another port")
        raise typer.Exit(2) from None
    executable = Path(sys.executable).with_name("mlflow")
    args = [str(executable), "ui", "--backend-store-uri", paths.tracking_uri, "--port", str(port)]
    console.print(" ".join(args))
    os.execv(args[0], args)


@app.command("replay")
def replay_command(
    store: Annotated[Path | None, typer.Option("--store", help="Episode store (default: the home's episodes, "
                                               "$AUTOLOOP_HOME/episodes or ./.autoloop/episodes).")] = None,
    host: Annotated[str, typer.Option(help="Address to bind: a loopback address, or any other with --public.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (0: any free port).")] = 8765,
    public: Annotated[bool, typer.Option("--public", help="Allow a non-loopback --host: anyone who can reach it "
                                         "reads every episode and map in the store.")] = False,
    allow_host: Annotated[list[str] | None, typer.Option(
        "--allow-host", help="With --public: a further host name the viewer answers to, e.g. a reverse proxy's "
                             "(repeat the option; '*': any).")] = None,
    open_episode: Annotated[str | None, typer.Option("--open", help="Episode id to show first (deep link).")] = None,
) -> None:
    """Open the replay viewer: a local web app over the episode store (list, filter, replay, compare)."""
    import socket
    import threading
    from urllib.parse import quote

    import uvicorn

    from autoloop.viewer import create_app
    from autoloop.viewer.app import LOOPBACK_HOSTS

    if host not in LOOPBACK_HOSTS and not public:
        _error(f"--host {host}: not a loopback address; add --public to expose the store to whoever can reach it")
        raise typer.Exit(2)
    if allow_host and not public:
        _error("--allow-host: further host names are for a --public viewer")
        raise typer.Exit(2)
    root = store.resolve() if store else Paths.from_env().episodes
    if not root.is_dir():
        console.print(f"[yellow]note:[/] no episode store at {root} yet; the viewer lists episodes as they land")
    hosts: tuple[str, ...] = LOOPBACK_HOSTS
    if public:
        hosts += (host, socket.gethostname(), socket.getfqdn(), *_addresses(socket.gethostname()), *(allow_host or []))
        console.print(f"[yellow]warning:[/] binding {host}: anyone who can reach this address can read the store")
    viewer = create_app(root, allowed_hosts=hosts)
    # index the store while the server starts (the first list request waits for it)
    threading.Thread(target=viewer.state.index.refresh, kwargs={"force": True}, daemon=True).start()
    listener = socket.create_server((host, port))
    bound = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/" + (f"#/episode/{quote(open_episode, safe='')}" if open_episode else "")
    print(f"autoloop replay: {root} at {url}", flush=True)
    uvicorn.Server(uvicorn.Config(viewer, log_level="warning")).run(sockets=[listener])


def _addresses(name: str) -> list[str]:
    """The addresses ``name`` resolves to (none when it does not)."""
    import socket

    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(name, None)})
    except OSError:
        return []


@bench_app.command("sim")
def bench_sim_command(
    batch: Annotated[list[int] | None, typer.Option(help="Batch sizes (repeat the option).")] = None,
    vehicles: Annotated[int, typer.Option(help="Background vehicles per scenario.")] = 30,
    pedestrians: Annotated[int, typer.Option(help="Pedestrians per scenario.")] = 10,
    map_name: Annotated[str, typer.Option("--map", help="Map (see sim.maps.get_map).")] = "town-1",
    bev_size: Annotated[int, typer.Option(help="BEV raster size, pixels.")] = 128,
    seconds: Annotated[float, typer.Option(help="Time per configuration.")] = 2.0,
) -> None:
    """Measure the embedded simulator: JSON on stdout, a table on stderr."""
    import json

    from autoloop.bench import as_json, bench_sim

    results = bench_sim(batch_sizes=batch or [1, 64, 1024], vehicles=vehicles, pedestrians=pedestrians,
                        map_name=map_name, bev_size_px=bev_size, min_seconds=seconds)
    table = Table(title="embedded simulator", title_justify="left")
    for column in ("batch", "BEV", "env-steps/s", "vehicle-steps/s", "observations/s", "peak MB"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(str(r.batch_size), "yes" if r.bev else "no", f"{r.env_steps_per_s:,.0f}",
                      f"{r.vehicle_steps_per_s:,.0f}", f"{r.observations_per_s:,.0f}", f"{r.peak_memory_mb:,.1f}")
    Console(stderr=True).print(table)
    print(json.dumps({"benchmark": "sim", "results": as_json(results)}, indent=1))


@bench_app.command("expert")
def bench_expert_command(
    suite: Annotated[str, typer.Option(help="Suite to drive (smoke, train, eval, carla-towns).")] = "eval",
    per_type: Annotated[int, typer.Option(help="eval: routes per event type.")] = 6,
) -> None:
    """Drive a suite with the privileged expert: per scenario type DS (Leaderboard 2.0; "DS b2d": Bench2Drive's
    scorer, without the minimum-speed penalty), RC, success, infractions/km, comfort (JSON on stdout, a table on
    stderr)."""
    import json

    from autoloop.bench import as_json, bench_expert

    built, rows = bench_expert(suite_name=suite, per_type=per_type)
    table = Table(title=f"expert on suite {built.name} v{built.version} ({built.content_hash})",
                  title_justify="left")
    for column in ("scenario type", "routes", "DS", "DS b2d", "RC", "success %", "infr/km", "coll/km", "comfort"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r.scenario_type, str(r.routes), f"{r.driving_score:.1f}", f"{r.driving_score_bench2drive:.1f}",
                      f"{r.route_completion:.1f}",
                      f"{r.success_rate:.0f}", f"{r.infractions_per_km:.2f}", f"{r.collisions_per_km:.2f}",
                      f"{r.comfort:.2f}")
    Console(stderr=True).print(table)
    print(json.dumps({"benchmark": "expert", "suite": built.name, "suite_version": built.version,
                      "suite_hash": built.content_hash, "results": as_json(rows)}, indent=1))


@bench_app.command("train")
def bench_train_command(
    samples: Annotated[int, typer.Option(help="Random training samples (one epoch is timed).")] = 2048,
    batch_size: Annotated[int, typer.Option(help="Samples per gradient step.")] = 128,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 1,
    ppo_envs: Annotated[int, typer.Option(help="Scenarios stepped together by PPO.")] = 8,
    ppo_timesteps: Annotated[int, typer.Option(help="PPO environment steps timed.")] = 1024,
    sac_envs: Annotated[int, typer.Option(help="Scenarios stepped together by SAC.")] = 8,
    sac_timesteps: Annotated[int, typer.Option(help="SAC environment steps timed (each vector step with a "
                                               "gradient step).")] = 512,
) -> None:
    """Measure training: imitation samples/s (waypoints and bc networks; on a GPU when there is one), PPO
    env-steps/s on the native vector env vs a gymnasium SyncVectorEnv of single envs, and SAC env-steps/s on the
    native vector env (JSON on stdout)."""
    import json
    from dataclasses import asdict

    from autoloop.bench import bench_train

    result = bench_train(samples=samples, batch_size=batch_size, threads=threads, ppo_envs=ppo_envs,
                         ppo_timesteps=ppo_timesteps, sac_envs=sac_envs, sac_timesteps=sac_timesteps)
    print(json.dumps({"benchmark": "train", **asdict(result)}, indent=1))


@bench_app.command("drive")
def bench_drive_command(
    work: Annotated[Path, typer.Option("--dir", help="Work folder (episodes, snapshots, drivers); an interrupted "
                                       "study resumes from it.")],
    train_routes: Annotated[int, typer.Option(help="Train-suite routes the expert drives.")] = 32,
    eval_every: Annotated[int, typer.Option(help="Evaluate every n-th eval-suite route (1: all).")] = 1,
    dagger_rounds: Annotated[int, typer.Option(help="DAgger rounds.")] = 2,
    dagger_routes: Annotated[int, typer.Option(help="Routes the learner drives per DAgger round.")] = 16,
    ppo_timesteps: Annotated[int, typer.Option(help="PPO fine-tuning steps (0: none).")] = 4096,
    sac_timesteps: Annotated[int, typer.Option(help="SAC fine-tuning steps (0: none).")] = 0,
    epochs: Annotated[int, typer.Option(help="Behaviour-cloning epochs.")] = 8,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 1,
    start_lateral_m: Annotated[float, typer.Option(help="Perturbed starts of the expert's drives: sideways shift "
                                                   "up to this (0: none).")] = 0.0,
    start_yaw_rad: Annotated[float, typer.Option(help="... and turn up to this.")] = 0.0,
    validation_routes: Annotated[int, typer.Option(help="Also score every driver on this many validation routes "
                                                   "(a train-suite draw no round trains on; 0: none).")] = 0,
) -> None:
    """The driving-quality study: expert, BC, each DAgger round and PPO and SAC fine-tuning on the held-out eval
    suite, in one table (JSON on stdout). Run again on a finished folder, it scores the drivers again."""
    import json

    from autoloop.config import TrainConfig
    from autoloop.training.study import StudyConfig, run_study

    _setup_logging()
    work.mkdir(parents=True, exist_ok=True)
    study = StudyConfig(train_routes=train_routes, eval_every=eval_every, dagger_rounds=dagger_rounds,
                        dagger_routes=dagger_routes, ppo_timesteps=ppo_timesteps,
                        sac_timesteps=sac_timesteps,
                        start_perturbation=(start_lateral_m, start_yaw_rad), validation_routes=validation_routes,
                        train=TrainConfig(epochs=epochs, batch_size=128, threads=threads))
    print(json.dumps({"benchmark": "drive", **run_study(work, study)}, indent=1))


@bench_app.command("engine")
def bench_engine_command(
    work: Annotated[Path, typer.Option("--dir", help="Work folder (each arm's home, engine.json, engine.png, "
                                       "an MLflow store); an interrupted bench goes on from it.")],
    cycles: Annotated[int, typer.Option(help="Cycles per arm.", min=1)] = 6,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file (both arms).")] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Base profile: quick or default.")] = None,
    curve_routes: Annotated[int | None, typer.Option(help="Score the curve on a slice of this many eval routes "
                                                     "(default: all).", min=1)] = None,
) -> None:
    """The data engine against random collection at the same budget: K cycles each from an empty home, every
    cycle's champion on the held-out eval suite; both curves and the final paired difference (JSON on stdout)."""
    import json

    from autoloop.bench_engine import bench_engine

    _setup_logging()
    loaded = _load(config, profile)
    print(json.dumps({"benchmark": "engine", **bench_engine(work, loaded, cycles=cycles, curve_routes=curve_routes)},
                     indent=1))


@bench_app.command("scale")
def bench_scale_command(
    suite: Annotated[str, typer.Option(help="Suite the expert drives (smoke, train, eval, carla-towns).")] = "eval",
    workers: Annotated[list[int] | None, typer.Option(help="Ray worker processes (repeat the option).")] = None,
    shard_scenarios: Annotated[int | None, typer.Option(help="Routes per shard (default: the batch size).")] = None,
    routes: Annotated[int | None, typer.Option(help="Drive only the suite's first N routes.")] = None,
) -> None:
    """Drive a suite with the expert in this process, then on local Ray clusters (a head and a worker node with 1,
    2, ... worker processes, started here): routes/s, the cost per shard on Ray, and whether every route's numbers
    were the same (JSON on stdout, a table on stderr)."""
    import json
    from dataclasses import asdict

    from autoloop.bench_scale import bench_scale

    results = bench_scale(suite_name=suite, workers=workers or [1, 2], shard_scenarios=shard_scenarios,
                          routes=routes)
    table = Table(title=f"suite {suite}: {results[0].routes} routes, expert", title_justify="left")
    for column in ("where", "workers", "shards", "wall s", "routes/s", "overhead/shard s", "empty shard s", "same"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r.where, str(r.workers), str(r.shards), f"{r.wall_s:.1f}", f"{r.routes_per_s:.2f}",
                      "" if r.overhead_per_shard_s is None else f"{r.overhead_per_shard_s:.2f}",
                      "" if r.empty_shard_s is None else f"{r.empty_shard_s:.3f}", "yes" if r.same_results else "NO")
    Console(stderr=True).print(table)
    print(json.dumps({"benchmark": "scale", "suite": suite, "results": [asdict(r) for r in results]}, indent=1))


@bench_app.command("cli")
def bench_cli_command(
    repeat: Annotated[int, typer.Option(help="Runs of each command (the first evaluation runs once).", min=1)] = 3,
    folder: Annotated[Path | None, typer.Option("--dir", help="Home folder of the timed commands (default: a "
                                                "temporary folder, removed afterwards).")] = None,
) -> None:
    """Measure what a command costs besides its work: the import of the CLI, help, config show, an evaluation of
    the expert on the smoke suite (driving the routes, then re-reading the finished evaluation) and models, each in
    a fresh process (JSON on stdout, a table on stderr)."""
    import json
    import tempfile
    from dataclasses import asdict

    from autoloop.bench_cli import bench_cli
    from flows.api import configured

    if folder is None:
        with tempfile.TemporaryDirectory(prefix="autoloop-bench-cli-") as temporary:
            imported, results = bench_cli(Path(temporary), repeat=repeat)
    else:
        imported, results = bench_cli(folder.resolve(), repeat=repeat)
    table = Table(title=f"autoloop commands, each in a fresh process (import of the CLI: {imported.seconds:.2f} s, "
                        f"loads {', '.join(imported.heavy) or 'no heavy package'})", title_justify="left")
    for column in ("command", "runs", "median s", "min s"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for r in results:
        table.add_row(r.name, str(len(r.seconds)), f"{r.median_s:.2f}", f"{r.min_s:.2f}")
    Console(stderr=True).print(table)
    print(json.dumps({"benchmark": "cli", "prefect_api": configured(), "import": asdict(imported),
                      "results": [asdict(r) for r in results]}, indent=1))


@bench_app.command("store")
def bench_store_command(
    episodes: Annotated[int, typer.Option(help="Episodes to write.")] = 100,
    steps: Annotated[int, typer.Option(help="Ego steps per episode.")] = 1000,
    bev_size: Annotated[int, typer.Option(help="BEV size (pixels) of the stored observations.")] = 64,
    folder: Annotated[Path | None, typer.Option("--dir", help="Where to build the store (default: a temporary "
                                                "folder, removed afterwards).")] = None,
) -> None:
    """Measure the episode store on real-format episodes: write, read back into training arrays, one DuckDB
    aggregate (JSON on stdout, a table on stderr)."""
    import json
    import tempfile
    from dataclasses import asdict

    from autoloop.bench import bench_store

    if folder is None:
        with tempfile.TemporaryDirectory(prefix="autoloop-bench-store-") as temporary:
            result = bench_store(Path(temporary), episodes=episodes, steps=steps, bev_size_px=bev_size)
    else:
        result = bench_store(folder, episodes=episodes, steps=steps, bev_size_px=bev_size)
    table = Table(title=f"episode store: {result.ego_steps:,} ego steps, {result.store_mb:,.0f} MB",
                  title_justify="left")
    for column in ("write steps/s", "read steps/s", "query s"):
        table.add_column(column, justify="right")
    table.add_row(f"{result.write_steps_per_s:,.0f}", f"{result.read_steps_per_s:,.0f}", f"{result.query_seconds:.3f}")
    Console(stderr=True).print(table)
    print(json.dumps({"benchmark": "store", **asdict(result)}, indent=1))


@bench_app.command("data")
def bench_data_command(
    episodes: Annotated[int, typer.Option(help="Episodes to write per BEV size.")] = 40,
    steps: Annotated[int, typer.Option(help="Ego steps per episode.")] = 500,
    bev_size: Annotated[list[int] | None, typer.Option(help="BEV sizes (pixels), repeatable (default: 64 and 128).")
                        ] = None,
    workers: Annotated[list[int] | None, typer.Option(help="Loader worker counts, repeatable (default: 0, 1, 2).")
                       ] = None,
    batch_size: Annotated[int, typer.Option(help="Samples per batch.")] = 256,
    threads: Annotated[int, typer.Option(help="torch CPU threads of the training step.")] = 1,
    ddp: Annotated[bool, typer.Option(help="Also train one epoch on 1 and 2 processes (DDP, gloo on CPUs).")] = True,
    folder: Annotated[Path | None, typer.Option("--dir", help="Where to build the stores (default: a temporary "
                                                "folder, removed afterwards).")] = None,
) -> None:
    """Measure the training data path: samples/s from a real-format store into collated batches per number of
    loader workers, beside the training step's own rate, and peak memory (JSON on stdout, a table on stderr)."""
    import json
    import tempfile
    from dataclasses import asdict

    from autoloop.bench_data import bench_data

    def measure(root: Path) -> list[Any]:
        return bench_data(root, episodes=episodes, steps=steps, bev_sizes=bev_size or [64, 128],
                          workers=workers or [0, 1, 2], batch_size=batch_size, threads=threads, ddp=ddp)

    if folder is None:
        with tempfile.TemporaryDirectory(prefix="autoloop-bench-data-") as temporary:
            results = measure(Path(temporary))
    else:
        results = measure(folder)
    table = Table(title="training data path (samples/s)", title_justify="left")
    for column in ("BEV", *(f"loader x{count}" for count in results[0].loader_samples_per_s), "train step",
                   "loader/train", "peak RSS MB"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row("x".join(map(str, r.bev_shape)), *(f"{rate:,.0f}" for rate in r.loader_samples_per_s.values()),
                      f"{r.train_step_samples_per_s:,.0f}", f"{r.loader_over_train:.2f}", f"{r.peak_rss_mb:,.0f}")
    Console(stderr=True).print(table)
    print(json.dumps({"benchmark": "data", "results": [asdict(r) for r in results]}, indent=1))


@bench_app.command("viewer")
def bench_viewer_command(
    av2_log: Annotated[Path | None, typer.Option("--av2", help="AV2 log folder to open (default: the 11 s "
                                                 "forecasting scenario under the shared data, if there).")] = None,
    minutes: Annotated[float, typer.Option(help="Length of the synthesized sim episode.")] = 5.0,
    actors: Annotated[int, typer.Option(help="Actors in the synthesized sim episode.")] = 50,
    index_episodes: Annotated[int, typer.Option(help="Episodes in the store whose list is timed.")] = 2000,
    browser: Annotated[bool, typer.Option(help="Also time opening each episode in headless Chromium (when "
                                          "/usr/bin/chromium and playwright are installed).")] = True,
) -> None:
    """Measure the replay viewer: building and serializing an episode's payload (an AV2 log, a long sim episode)
    and listing a store (JSON on stdout)."""
    import json
    import tempfile
    from dataclasses import asdict

    from autoloop.viewer.bench import bench_viewer
    from sim.maps import data_root

    if av2_log is None:
        default = data_root() / "av2" / "forecasting"
        av2_log = default if default.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="autoloop-bench-viewer-") as temporary:
        cases, index = bench_viewer(Path(temporary), av2_log=av2_log, minutes=minutes, actors=actors,
                                    index_episodes=index_episodes, browser=browser)
    print(json.dumps({"benchmark": "viewer", "episodes": [asdict(case) for case in cases], "index": asdict(index),
                      **({} if av2_log else {"note": "no AV2 log: pass --av2 or put the shared data in place"})},
                     indent=1))


@episodes_app.command("query")
def episodes_query(
    sql: Annotated[str, typer.Argument(help="DuckDB SQL over the views episodes, ego, actors, events, triggers.")],
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as a JSON list.")] = False,
) -> None:
    """Query the episode store with one SELECT (DuckDB SQL), e.g.
    `autoloop episodes query "SELECT map_name, count(*) FROM episodes GROUP BY 1"`. It reads only the store's
    files and writes nothing: COPY, ATTACH, SET, INSTALL and the like are refused."""
    import json

    from autoloop.episodes import EpisodeStore, SchemaError
    from autoloop.episodes.query import QueryError

    paths = Paths(home.resolve()) if home else Paths.from_env()
    try:
        result = EpisodeStore(paths.episodes).query(sql)
    except (QueryError, SchemaError) as error:
        console.print(f"[red]error:[/] {error}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(result.to_pylist(), default=lambda value: value.hex() if isinstance(value, bytes)
                         else str(value)))
        return
    table = Table(title=f"{result.num_rows} rows", title_justify="left")
    for name in result.column_names:
        table.add_column(name)
    for row in result.to_pylist():
        table.add_row(*(Text("" if value is None else str(value)) for value in row.values()))
    console.print(table)


@episodes_app.command("migrate")
def episodes_migrate(home: HomeOption = None) -> None:
    """Convert the episode files of schema version 1 in the store to the current layout."""
    from autoloop.episodes import EpisodeStore

    paths = Paths(home.resolve()) if home else Paths.from_env()
    converted = EpisodeStore(paths.episodes).migrate_v1()
    console.print(f"converted {len(converted)} episode(s) in {paths.episodes}")


@config_app.command("show")
def config_show(config: ConfigOption = None, profile: ProfileOption = None) -> None:
    """Print the effective configuration as YAML."""
    console.print(dump_config(_load(config, profile)), markup=False, highlight=False, end="")


def print_summary(summary: CycleSummary) -> None:
    from autoloop.reports import cycle_rows

    table = Table(title="autoloop cycle", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in cycle_rows(summary):
        style = "" if label != "gate" else "green" if summary.passed else "red"
        table.add_row(label, Text(value), style=style)
    console.print(table)
