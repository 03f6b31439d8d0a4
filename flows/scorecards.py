"""The `weekly_scorecards` and `rescore` flows: thin over `qa_pipeline.scoring.score` (imported inside the tasks)."""

from __future__ import annotations

import datetime as dt

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.tasks import IO_RETRIES, score_task


def last_full_week(today: dt.date | None = None) -> str:
    """ISO week before the one containing `today`, e.g. "2026-W47" (the Monday run reports the week just ended)."""
    year, week, _ = ((today or dt.date.today()) - dt.timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


@task(name="week-scorecards", cache_policy=NO_CACHE, **IO_RETRIES)
def week_scorecards(data_dir: str, week: str) -> list[dict]:
    """The stored `scorecards_weekly` rows of one ISO week (small: one row per agent)."""
    import pyarrow.compute as pc

    from qa_pipeline.store.folder import read_dataset

    table = read_dataset(data_dir, "scorecards_weekly")
    return table.filter(pc.equal(table.column("iso_week"), week)).to_pylist()


@task(name="weekly-report", cache_policy=NO_CACHE, **IO_RETRIES)
def weekly_report(data_dir: str, week: str, out: str) -> str | None:
    """The self-contained HTML report of the week, when the library has one (qa_pipeline.render.report)."""
    try:
        from qa_pipeline.render.report import write_weekly_report
    except ImportError:
        return None
    return str(write_weekly_report(data_dir, week, out))


def scorecards_markdown(week: str, rows: list[dict]) -> str:
    lines = [f"# Weekly scorecards {week}", ""]
    if not rows:
        return "\n".join(lines + ["No scored calls this week."]) + "\n"
    lines += ["| team | agent | calls | overall | rank in team | change |", "|---|---|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r.get("team") or "", r.get("rank_in_team") or 0)):
        lines.append(f"| {r.get('team') or '-'} | {r['agent_id']} | {r.get('calls')} | {r.get('overall')} "
                     f"| {r.get('rank_in_team')} | {r.get('change_from_previous_week')} |")
    return "\n".join(lines) + "\n"


@flow(name="weekly-scorecards")
def weekly_scorecards(data_dir: str, week: str | None = None, rubric: str | None = None,
                      report_dir: str | None = None) -> dict:
    """Rescore from the stored datasets, then publish the scorecards of `week` (default: the week just ended)."""
    week = week or last_full_week()
    summary = score_task(data_dir, rubric)
    rows = week_scorecards(data_dir, week)
    report = weekly_report(data_dir, week, f"{report_dir}/weekly-{week}.html") if report_dir else None
    create_markdown_artifact(key="weekly-scorecards", markdown=scorecards_markdown(week, rows),
                             description=f"scorecards {week}")
    return {"week": week, "agents": len(rows), "report": report, "rescore": summary}


@flow(name="rescore")
def rescore(data_dir: str, rubric: str | None = None) -> dict:
    """Recompute call scores, weekly scorecards and calibration from stored data (after a rubric change)."""
    return score_task(data_dir, rubric)
