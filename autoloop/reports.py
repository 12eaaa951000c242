"""Short human summaries of a cycle: the rows both the CLI's table and the Prefect artifact show."""

from __future__ import annotations

from autoloop.stages import CycleSummary, EvaluateOutcome, PromotionResult


def cycle_rows(summary: CycleSummary) -> list[tuple[str, str]]:
    """``(label, value)`` rows summarizing one cycle."""
    champion = (f"{summary.champion_driving_score:.1f} ({summary.champion_before}), paired difference "
                f"{summary.paired_difference:+.1f}"
                if summary.champion_driving_score is not None and summary.paired_difference is not None
                else "none yet")
    if summary.promoted:
        registered = f"{summary.champion_uri} = version {summary.registered_version}"
    elif summary.registered_version:
        registered = f"{summary.champion_uri} unchanged; version {summary.registered_version} is challenger"
    else:
        registered = f"{summary.champion_uri} unchanged (candidate not registered)"
    return [
        ("episodes collected", f"{summary.episodes} ({summary.steps} steps, expert DS "
                               f"{summary.expert_driving_score:.1f})"),
        ("dataset", summary.dataset_digest[:12]),
        ("training", f"{summary.samples} samples, train loss {summary.train_loss:.4f}, "
                     f"val loss {summary.val_loss:.4f}"),
        ("driving score", f"{summary.driving_score:.1f} (route completion {summary.route_completion:.1f})"),
        ("champion before", champion),
        ("gate", "passed" if summary.passed else "failed: " + "; ".join(summary.reasons)),
        ("model", registered),
        ("candidate", summary.candidate_uri),
        ("report", summary.report_uri or "none"),
        ("MLflow run", f"{summary.cycle_run_id}"),
        ("MLflow UI", summary.mlflow_ui),
    ]


def cycle_markdown(summary: CycleSummary) -> str:
    """A Markdown table summarizing one cycle (the Prefect flow-run artifact)."""
    lines = ["# autoloop cycle", "", "| | |", "|---|---|"]
    lines += [f"| {label} | `{value}` |" if label in ("candidate", "report", "MLflow run", "MLflow UI") else
              f"| {label} | {value} |" for label, value in cycle_rows(summary)]
    return "\n".join(lines) + "\n"


def evaluation_markdown(model_uri: str, outcome: EvaluateOutcome) -> str:
    """The evaluate flow's artifact: headline numbers with intervals, and links to the report and the run."""
    result = outcome.result
    lines = [f"# evaluate `{model_uri}`", "",
             f"Suite `{result.suite}` ({result.suite_hash}), scorer `{result.scorer}`, {len(result.routes)} routes "
             f"({result.failed_runs} failed to run).", "",
             "| metric | value | 95 % CI |", "|---|---|---|"]
    for name in ("driving_score", "route_completion", "success_rate"):
        interval = result.intervals[name]
        lines.append(f"| {name.replace('_', ' ')} | {interval.mean:.1f} | [{interval.low:.1f}, {interval.high:.1f}] |")
    lines += [f"| collisions / km | {result.collisions_per_km:.2f} | |", "",
              f"Report: [{outcome.report_uri}]({outcome.report_uri}) · MLflow run `{outcome.run_id}`"]
    return "\n".join(lines) + "\n"


def promotion_markdown(model_uri: str, result: PromotionResult) -> str:
    """The promote flow's artifact: the verdict with every check, the registry outcome, the report link."""
    registered = result.registered.uri if result.registered else "not registered"
    lines = [f"# promote `{model_uri}`", "",
             f"**{'passed' if result.verdict.passed else 'failed'}**; {registered}"
             f"{' is now champion' if result.promoted else ''} (MLflow run `{result.run_id}`)", "",
             "| check | passed | detail |", "|---|---|---|"]
    lines += [f"| {check.name} | {'yes' if check.passed else 'no'} | {check.detail} |"
              for check in result.verdict.checks]
    if result.comparison is not None:
        lines += ["", "Regressed routes (replay side by side):", ""]
        lines += [f"- route {r.index} ({r.scenario_type}): {r.difference:+.1f} {r.link}"
                  for r in result.comparison.regressed()[:10]] or ["- none"]
    lines += ["", f"Report: [{result.report_uri}]({result.report_uri})"]
    return "\n".join(lines) + "\n"
