"""Short human summaries of stages and cycles (Markdown for Prefect artifacts)."""

from __future__ import annotations

from autoloop.stages import CycleSummary


def cycle_markdown(summary: CycleSummary) -> str:
    """A Markdown summary of one cycle."""
    champion = (f"{summary.champion_driving_score:.1f} ({summary.champion_before})"
                if summary.champion_driving_score is not None else "none yet")
    verdict = "**passed**" if summary.passed else "**failed**: " + "; ".join(summary.reasons)
    registered = (f"version {summary.registered_version} is now `{summary.champion_uri}`"
                  if summary.registered_version else "nothing registered")
    rows = [
        ("episodes collected", f"{summary.episodes} ({summary.steps} steps, expert DS "
                               f"{summary.expert_driving_score:.1f})"),
        ("dataset", f"`{summary.dataset_digest[:12]}`"),
        ("training", f"{summary.samples} samples, train loss {summary.train_loss:.4f}, "
                     f"val loss {summary.val_loss:.4f}"),
        ("candidate", f"`{summary.candidate_uri}`"),
        ("driving score", f"{summary.driving_score:.1f} (route completion {summary.route_completion:.1f})"),
        ("champion", champion),
        ("gate", verdict),
        ("registry", registered),
        ("MLflow run", f"`{summary.cycle_run_id}` — open with `{summary.mlflow_ui}`"),
    ]
    lines = ["# autoloop cycle", "", "| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows]
    return "\n".join(lines) + "\n"
