"""The weekly manager report: one self-contained HTML file (inline CSS and SVG, no script, no network).

One section per team: each operator's scorecard for the week (from `scorecards_weekly`), a trend of the overall
score over the recent weeks, the criteria side by side, and behind every deduction the call it came from
(`call_scores` rows with points < max_points), its evidence (rule or event, the utterance said, mm:ss-mm:ss) and
the flags raised on that call. Customer complaints not yet judged by QA are listed apart: they are not counted.

Every number is read from the stored datasets; nothing is scored here. The page is rendered from Jinja2 templates
(`templates/weekly_report.html` and its partials) with autoescape: transcripts, ids, reasons and comments are user
data and always come out as text. Data (`qa_pipeline.render.weekly.load_weekly_data`), view model
(`build_weekly_view`) and templates are separate steps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterable

import jinja2

from qa_pipeline.render import make_environment
from qa_pipeline.render.weekly import WeeklyReport, build_weekly_view, load_weekly_data, recent_weeks
from qa_pipeline.store.folder import DataFolder

TEMPLATE = "weekly_report.html"


def _rubric_for(version: str, rubric_path: str | Path | None):
    """The rubric file of that version, for the legend's weights; None when it is not at hand."""
    try:
        from qa_pipeline.scoring.score import load_rubric

        rubric = load_rubric(rubric_path)
    except Exception:  # the legend then stays generic
        return None
    return rubric if rubric.version == version else None


def render_weekly_view(view: WeeklyReport, env: jinja2.Environment | None = None) -> str:
    """A `WeeklyReport` view model as the report's HTML (`env`: from `make_environment()`, built when None)."""
    return (env or make_environment()).get_template(TEMPLATE).render(report=view)


def render_weekly_report(data_dir: str | Path, week: str, *, weeks_back: int = 4,
                         rubric_path: str | Path | None = None, now: dt.datetime | None = None) -> str:
    """The weekly report as an HTML string (see `write_weekly_report`)."""
    data_dir = Path(data_dir)
    weeks = recent_weeks(week, weeks_back)
    data = load_weekly_data(data_dir, week, weeks)
    rubric = _rubric_for(data.versions[0], rubric_path) if len(data.versions) == 1 else None
    view = build_weekly_view(data, week, weeks=weeks, rubric=rubric, data_name=data_dir.name, now=now)
    return render_weekly_view(view)


def write_weekly_report(data_dir: str | Path, week: str, out_path: str | Path, *, weeks_back: int = 4,
                        rubric_path: str | Path | None = None) -> Path:
    """Write the weekly manager report for ISO `week` (e.g. "2026-W48") to `out_path`; returns the path.

    The trend covers `weeks_back` weeks ending with `week`. The file is written atomically.

    Raises:
        QAPipelineError (E640): the week is malformed or has no scorecards (run `qa-pipeline rescore`).
    """
    text = render_weekly_report(data_dir, week, weeks_back=weeks_back, rubric_path=rubric_path)
    out = Path(out_path)
    DataFolder(out.parent).write_text(out.name, text)  # the project's one atomic write (fsync, rename, fsync)
    return out


__all__: Iterable[str] = ("render_weekly_report", "render_weekly_view", "write_weekly_report")
