"""Weekly scorecards per operator (`scorecards_weekly`), from the stored call scores, the QA verdicts on customer
complaints and the complaints from other divisions.

The sums run in DuckDB over the query layer's views (`fsum`, compensated, so that a rate does not depend on the
order rows are added in: rounded to 0.1, a last-bit difference could flip a score); the few rows that result
(operators x weeks) are then scored in Python, once each, into typed records: a row is never changed after it is
made."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from qa_pipeline.scoring.rubric import CRITERIA, Rubric
from qa_pipeline.store.queries import Queries

RATES_SQL = """
    SELECT agent_id, min(team) AS team, iso_week, count(DISTINCT call_id) AS calls,
      fsum(points) FILTER (WHERE criterion = 'tasks_completed')
        / nullif(fsum(max_points) FILTER (WHERE criterion = 'tasks_completed' AND points IS NOT NULL), 0) AS tasks_rate,
      fsum(points) FILTER (WHERE criterion = 'quality')
        / nullif(fsum(max_points) FILTER (WHERE criterion = 'quality' AND points IS NOT NULL), 0) AS quality_rate,
      fsum(points) FILTER (WHERE criterion = 'targets')
        / nullif(fsum(max_points) FILTER (WHERE criterion = 'targets' AND points IS NOT NULL), 0) AS targets_rate
    FROM call_scores WHERE agent_id IS NOT NULL AND iso_week IS NOT NULL AND rubric_version = $rubric_version
    GROUP BY agent_id, iso_week
"""
COMPLAINTS_SQL = """
    SELECT agent_id, iso_week, count(*) FILTER (WHERE status = 'justified') AS justified,
           count(*) FILTER (WHERE status = 'pending') AS pending
    FROM customer_complaints GROUP BY agent_id, iso_week
"""
DIVISIONS_SQL = """
    SELECT agent_id, iso_week, count(*) AS justified FROM justified_complaints WHERE source = 'division'
    GROUP BY agent_id, iso_week
"""


@dataclass(frozen=True, slots=True)
class Scorecard:
    """One `scorecards_weekly` row."""

    agent_id: str
    team: str | None
    iso_week: str
    calls: int
    tasks_completed: float | None
    quality: float | None
    targets: float | None
    divisions_complaints: float | None
    customer_complaints: float | None
    overall: float | None
    rank_in_team: int
    change_from_previous_week: float | None
    justified_customer_complaints: int
    pending_customer_complaints: int
    justified_division_complaints: int
    rubric_version: str


@dataclass(frozen=True, slots=True)
class _Week:
    """An operator's week scored, before ranking."""

    agent_id: str
    team: str | None
    iso_week: str
    calls: int
    parts: dict  # criterion -> 0..scale or None, unrounded
    overall: float | None  # rounded to 0.1
    justified_c: int
    pending_c: int
    justified_d: int


def _score_week(b: dict, rubric: Rubric, justified_c: int, pending_c: int, justified_d: int) -> _Week:
    scale = rubric.scale
    tasks = None if b["tasks_rate"] is None else \
        scale * b["tasks_rate"] * min(1.0, b["calls"] / rubric.target_calls_per_week)
    quality = None if b["quality_rate"] is None else scale * b["quality_rate"]
    targets = None if b["targets_rate"] is None else scale * b["targets_rate"]
    div = max(0.0, scale - rubric.penalties.get("divisions_complaints", 50) * justified_d)
    cust = max(0.0, scale - rubric.penalties.get("customer_complaints", 50) * justified_c)
    parts = {"tasks_completed": tasks, "quality": quality, "targets": targets, "divisions_complaints": div,
             "customer_complaints": cust}
    wsum = sum(rubric.weights[k] for k, v in parts.items() if v is not None)
    overall = sum(rubric.weights[k] * v for k, v in parts.items() if v is not None) / wsum if wsum else None
    return _Week(agent_id=b["agent_id"], team=b["team"], iso_week=b["iso_week"], calls=b["calls"], parts=parts,
                 overall=None if overall is None else round(overall, 1), justified_c=justified_c,
                 pending_c=pending_c, justified_d=justified_d)


def weekly_scorecards(q: Queries, rubric: Rubric) -> dict[str, list[dict]]:
    """scorecards_weekly rows per ISO week, from the stored call_scores of this rubric version, the latest
    verdicts on customer complaints and the justified division complaints."""
    base = q.fetch(RATES_SQL, {"rubric_version": rubric.version}).to_pylist()
    complaints = {(r["agent_id"], r["iso_week"]): r for r in q.fetch(COMPLAINTS_SQL).to_pylist()}
    divisions = {(r["agent_id"], r["iso_week"]): r["justified"] for r in q.fetch(DIVISIONS_SQL).to_pylist()}
    weeks = []
    for b in base:
        key = (b["agent_id"], b["iso_week"])
        c = complaints.get(key) or {"justified": 0, "pending": 0}
        weeks.append(_score_week(b, rubric, c["justified"], c["pending"], divisions.get(key, 0)))
    # rank in team per week (ties: by agent id), change from the agent's previous scored week
    rank: dict[tuple, int] = {}
    by_team: dict[tuple, list[_Week]] = {}
    for w in weeks:
        by_team.setdefault((w.team, w.iso_week), []).append(w)
    for group in by_team.values():
        for n, w in enumerate(sorted(group, key=lambda w: (-(w.overall or 0), w.agent_id)), 1):
            rank[(w.agent_id, w.iso_week)] = n
    change: dict[tuple, float | None] = {}
    last: dict[str, float] = {}
    for w in sorted(weeks, key=lambda w: (w.agent_id, w.iso_week)):
        prev = last.get(w.agent_id)
        change[(w.agent_id, w.iso_week)] = None if prev is None or w.overall is None else round(w.overall - prev, 1)
        if w.overall is not None:
            last[w.agent_id] = w.overall
    out: dict[str, list[dict]] = {}
    for w in sorted(weeks, key=lambda w: (w.iso_week, str(w.team), rank[(w.agent_id, w.iso_week)])):
        card = Scorecard(
            agent_id=w.agent_id, team=w.team, iso_week=w.iso_week, calls=w.calls,
            **{k: None if w.parts[k] is None else round(w.parts[k], 1) for k in CRITERIA},
            overall=w.overall, rank_in_team=rank[(w.agent_id, w.iso_week)],
            change_from_previous_week=change[(w.agent_id, w.iso_week)],
            justified_customer_complaints=w.justified_c, pending_customer_complaints=w.pending_c,
            justified_division_complaints=w.justified_d, rubric_version=rubric.version)
        out.setdefault(w.iso_week, []).append(asdict(card))
    return out
