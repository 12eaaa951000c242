"""Short human summaries of a cycle: the rows both the CLI's table and the Prefect artifact show."""

from __future__ import annotations

from autoloop.stages import CycleSummary


def cycle_rows(summary: CycleSummary) -> list[tuple[str, str]]:
    """``(label, value)`` rows summarizing one cycle."""
    champion = (f"{summary.champion_driving_score:.1f} ({summary.champion_before}), paired difference "
                f"{summary.paired_difference:+.1f}"
                if summary.champion_driving_score is not None and summary.paired_difference is not None
                else "none yet")
    registered = (f"{summary.champion_uri} = version {summary.registered_version}" if summary.registered_version
                  else f"{summary.champion_uri} unchanged")
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
        ("MLflow run", f"{summary.cycle_run_id}"),
        ("MLflow UI", summary.mlflow_ui),
    ]


def cycle_markdown(summary: CycleSummary) -> str:
    """A Markdown table summarizing one cycle (the Prefect flow-run artifact)."""
    lines = ["# autoloop cycle", "", "| | |", "|---|---|"]
    lines += [f"| {label} | `{value}` |" if label in ("candidate", "MLflow run", "MLflow UI") else
              f"| {label} | {value} |" for label, value in cycle_rows(summary)]
    return "\n".join(lines) + "\n"
