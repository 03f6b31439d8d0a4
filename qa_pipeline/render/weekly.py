"""The weekly report's data and view model.

Two steps, kept apart:

1. `load_weekly_data(data_dir, week, weeks)` reads the stored datasets into a `WeeklyData`: plain lists and dicts
   of row dicts (the columns of the datasets), filtered to the week. It is the only function here that touches
   storage; it can be replaced by a query layer that returns the same shape.
2. `build_weekly_view(data, week, ...)` turns a `WeeklyData` into a `WeeklyReport`, a tree of frozen dataclasses
   holding everything the templates print: sorted rows, derived counts, chart geometry. Nothing is formatted as
   HTML here; values stay values (the templates format and escape them).

Nothing is scored here: every number comes from the stored datasets."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa_pipeline.errors import Errors, QAPipelineError
from qa_pipeline.render.filters import FAIR, GOOD
from qa_pipeline.store.queries import Queries

CRITERIA = ("tasks_completed", "quality", "targets", "divisions_complaints", "customer_complaints")
CRITERION_LABEL = {
    "tasks_completed": "Tasks completed",
    "quality": "Quality",
    "targets": "Targets",
    "divisions_complaints": "Division complaints",
    "customer_complaints": "Customer complaints",
    "overall": "Overall",
}
CRITERION_SHORT = {
    "tasks_completed": "Tasks", "quality": "Quality", "targets": "Targets",
    "divisions_complaints": "Div. compl.", "customer_complaints": "Cust. compl.", "overall": "Overall",
}
LEGEND = {
    "tasks_completed": "share of calls that reached a task outcome (order, appointment, survey, information), "
                       "scaled by calls handled against the weekly target",
    "quality": "points earned on the applicable quality items (script compliance, courtesy, listening, clarity, "
               "calm with negative customers, objections, complaint handling, correct information) over the "
               "points possible",
    "targets": "handle time, conversion (outbound sales), resolution (inbound) and hold time against the "
               "campaign's targets",
    "divisions_complaints": "100 minus a penalty per complaint from another division judged justified",
    "customer_complaints": "100 minus a penalty per customer complaint judged justified by QA; complaints "
                           "not yet reviewed are pending and not counted",
}
# operator colours (colour-blind friendly, Okabe-Ito based), assigned in rank order within a team
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7F7F7F", "#B8A100")
NO_TEAM = "(no team)"
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


# --- weeks ----------------------------------------------------------------------------------------------------

def week_monday(week: str) -> dt.date:
    """The Monday of ISO `week` ("2026-W48").

    Raises:
        QAPipelineError (E640): malformed or nonexistent week."""
    m = _WEEK.match(week or "")
    if not m:
        raise QAPipelineError(Errors.E641, week=week, problem="not of the form YYYY-Www", stage="report")
    try:
        return dt.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError as e:
        raise QAPipelineError(Errors.E641, week=week, problem=e, stage="report") from e


def iso_week(d: dt.date | dt.datetime | None) -> str | None:
    if d is None:
        return None
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


def recent_weeks(week: str, n: int) -> list[str]:
    """The `n` ISO weeks ending with `week`, oldest first."""
    monday = week_monday(week)
    return [iso_week(monday - dt.timedelta(days=7 * k)) for k in range(max(1, n) - 1, -1, -1)]


# --- 1. data --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WeeklyData:
    """The stored rows the weekly report is made of. Rows are dicts keyed by the datasets' column names.

    cards: `scorecards_weekly` rows of the week (all rubric versions that scored it).
    trend: `scorecards_weekly` rows of the `weeks` of the trend, for those rubric versions.
    scores: `call_scores` rows of the week, for those rubric versions.
    calls: `calls` rows by call_id (call_id, agent_id, team, started_at, call_type, campaign, direction,
        duration_s, outcome); all calls, the report looks up the ones it shows.
    flags: `flags` rows of the calls started in the week and of the scored calls.
    utts: `utterances` rows (call_id, utterance_index, role, start_s, end_s, text) by (call_id, utterance_index),
        for the calls of `flags` and `scores`.
    latest: the latest `reviews` row per flag_id (target_type "flag"), by flag_id.
    divisions: `division_complaints` rows dated within the week.
    calibration: `calibration` rows for those rubric versions.
    versions: the rubric versions of the week's scorecards, sorted.
    orphans: `orphaned_reviews` rows (latest verdicts whose flag, scored item or call is gone) on the calls of the
        week, and on calls no longer stored whose verdict was given in the week.
    """
    cards: list[dict]
    trend: list[dict]
    scores: list[dict]
    calls: dict[str, dict]
    flags: list[dict]
    utts: dict[tuple[str, int], dict]
    latest: dict[str, dict]
    divisions: list[dict]
    calibration: list[dict]
    versions: list[str]
    orphans: list[dict] = field(default_factory=list)


def load_weekly_data(data_dir: str | Path, week: str, weeks: list[str]) -> WeeklyData:
    """Read what the report of ISO `week` needs from the datasets in `data_dir` (`weeks`: those of the trend),
    through the query layer: only that week's scores, flags and reviews, and only the utterances of its calls.

    Raises:
        QAPipelineError (E640): the week is malformed, or no scorecards exist (for that week)."""
    week_monday(week)  # E641 for a malformed week, before anything is read
    with Queries(data_dir) as q:
        have = q.weeks()
        if not have:
            raise QAPipelineError(Errors.E642, data_dir=data_dir, stage="report")
        if week not in have:
            raise QAPipelineError(Errors.E640, data_dir=data_dir, week=week, weeks=", ".join(have), stage="report")
        this = q.scorecards(week=week).to_pylist()
        versions = sorted({c["rubric_version"] for c in this})
        trend = q.scorecards(weeks=weeks, rubric_versions=versions).to_pylist()
        scores = q.call_scores(week=week, rubric_versions=versions).to_pylist()
        call_ids = {r["call_id"] for r in scores}
        week_calls = q.calls(week=week, columns=["call_id"]).column("call_id").to_pylist()
        wanted = sorted(call_ids | set(week_calls))
        calls = {r["call_id"]: r for r in q.calls(
            call_ids=wanted, columns=["call_id", "agent_id", "team", "started_at", "call_type", "campaign",
                                      "direction", "duration_s", "outcome"]).to_pylist()}
        # complaint flags of the week (by the call's start, as the scorecards count them) + the flags of scored calls
        flags = q.flags(call_ids=wanted).to_pylist()
        need_utts = sorted({f["call_id"] for f in flags} | call_ids)
        utts = {(u["call_id"], u["utterance_index"]): u for u in q.utterances(
            need_utts, ["call_id", "utterance_index", "role", "start_s", "end_s", "text"]).to_pylist()}
        latest = {r["target"]: r for r in q.latest_reviews(target_type="flag", call_ids=wanted).to_pylist()}
        divisions = q.division_complaints(week=week).to_pylist()
        calibration = q.calibration(rubric_versions=versions).to_pylist()
        in_week = set(week_calls)
        orphans = [r for r in q.orphaned_reviews().to_pylist()
                   if r["call_id"] in in_week or r["gone"] == "call" and iso_week(r["reviewed_at"]) == week]
    return WeeklyData(cards=this, trend=trend, scores=scores, calls=calls, flags=flags, utts=utts, latest=latest,
                      divisions=divisions, calibration=calibration, versions=versions, orphans=orphans)


# --- 2. view model --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Quote:
    """An utterance quoted with its time span (partials/quote.html); `stored` False: only its index is known."""
    call_id: str
    index: int
    stored: bool
    role: str | None = None
    text: str | None = None
    start_s: float | None = None
    end_s: float | None = None


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One evidence row of a score (partials/evidence.html): the dataset and row it points at, a note, the time
    span and the utterance (None when not quoted, or already quoted by an earlier item of the same score)."""
    dataset: str | None
    ref: str | None
    note: str | None
    start_s: float | None
    end_s: float | None
    quote: Quote | None


@dataclass(frozen=True, slots=True)
class FlagRow:
    """A flag raised on a call (partials/flags.html)."""
    call_id: str
    flag_id: str | None
    severity: str | None
    flag_type: str | None
    reason: str | None
    start_s: float | None
    end_s: float | None
    quote: Quote | None


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the report says about a call (partials/call.html)."""
    call_id: str
    started_at: dt.datetime | None = None
    call_type: str | None = None
    direction: str | None = None
    campaign: str | None = None
    duration_s: float | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class DeductionRow:
    """A call score item below its maximum, with its evidence."""
    criterion: str
    criterion_short: str
    item: str
    points: float
    max_points: float
    evidence: tuple[EvidenceItem, ...]


@dataclass(frozen=True, slots=True)
class DeductedCall:
    """A call with deductions: its items, the points lost and the flags raised on it."""
    call_id: str
    info: CallInfo | None
    lost: float
    deductions: tuple[DeductionRow, ...]
    flags: tuple[FlagRow, ...]


@dataclass(frozen=True, slots=True)
class BuildupRow:
    """How one criterion of an operator's week adds up. kind "points": the call_scores points behind it;
    kind "complaints": the complaints counted (and, for customer complaints, pending)."""
    kind: str
    criterion: str
    label: str
    score: float | None
    points: float | None = None
    max_points: float | None = None
    calls: int | None = None
    rate: float | None = None  # percent of the points possible
    target_calls: float | None = None  # tasks_completed: the weekly target of calls
    card_calls: int | None = None
    justified: int | None = None
    pending: int | None = None


@dataclass(frozen=True, slots=True)
class OperatorCard:
    """One operator's week: the scorecard row, how it adds up and the deductions behind it."""
    agent_id: str
    anchor: str
    colour: str
    rank: int | None
    calls: int
    scores: Mapping[str, float | None]  # criterion (and "overall") -> score
    change: float | None
    justified_customer: int
    justified_division: int
    pending_customer: int
    calls_scored: tuple[str, ...]
    buildup: tuple[BuildupRow, ...]
    deducted_calls: tuple[DeductedCall, ...]
    n_deductions: int


@dataclass(frozen=True, slots=True)
class ComplaintRow:
    """A customer complaint flag of the week; status "pending" (no QA verdict), "counted" or "dismissed".
    `orphaned`: the verdict's flag is gone (a re-analysis no longer raises it); the verdict still counts."""
    status: str
    verdict: str | None
    agent_id: str | None
    call_id: str
    reason: str | None
    start_s: float | None
    end_s: float | None
    quote: Quote | None
    orphaned: bool = False


@dataclass(frozen=True, slots=True)
class OrphanRow:
    """A verdict whose finding is gone (view `orphaned_reviews`): `gone` is "flag", "item" or "call"; `counts`:
    a justified customer complaint, still counted for the operator and week of its call."""
    call_id: str
    agent_id: str | None
    target_type: str
    target: str
    kind: str | None  # the flag's type when its id tells it, the rubric item
    gone: str
    verdict: str
    reviewer: str
    reviewed_at: dt.datetime | None
    comment: str | None
    counts: bool


@dataclass(frozen=True, slots=True)
class DivisionComplaintRow:
    agent_id: str | None
    division: str | None
    text: str | None
    date: dt.date | None
    justified: bool


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    target_type: str
    item: str
    n: int
    agreement_pct: float | None
    kappa: float | None
    kappa_band: str
    reading: str


@dataclass(frozen=True, slots=True)
class LegendItem:
    criterion: str
    label: str
    weight: float | None
    text: str


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    title: str


# charts: geometry computed here, drawn by partials/charts.html

@dataclass(frozen=True, slots=True)
class ChartRect:
    cls: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class ChartGridLine:
    x1: float
    x2: float
    y: float
    label: float
    label_x: float


@dataclass(frozen=True, slots=True)
class ChartText:
    x: float
    y: float
    text: str
    current: bool = False
    colour: str | None = None


@dataclass(frozen=True, slots=True)
class ChartLine:
    colour: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class ChartDot:
    x: float
    y: float
    colour: str
    agent: str
    week: str
    value: float


@dataclass(frozen=True, slots=True)
class TrendSeries:
    """One operator's line: its segments (a week without a score breaks it) and its dots."""
    agent: str
    colour: str
    lines: tuple[ChartLine, ...]
    dots: tuple[ChartDot, ...]


@dataclass(frozen=True, slots=True)
class TrendChart:
    """Overall score per operator over the weeks: score bands, grid, week labels, series, end labels."""
    width: int
    height: int
    n_weeks: int
    bands: tuple[ChartRect, ...]
    grid: tuple[ChartGridLine, ...]
    week_labels: tuple[ChartText, ...]
    series: tuple[TrendSeries, ...]
    end_labels: tuple[ChartText, ...]


@dataclass(frozen=True, slots=True)
class Bar:
    agent: str
    colour: str
    x: float
    y: float
    width: float | None  # None: no score (n/a)
    height: float
    value: float | None
    value_x: float | None
    value_y: float


@dataclass(frozen=True, slots=True)
class BarGroup:
    criterion: str
    label: str
    label_y: float
    track: ChartRect
    bars: tuple[Bar, ...]


@dataclass(frozen=True, slots=True)
class BarsChart:
    """Each criterion's score per operator, as grouped horizontal bars."""
    width: int
    height: int
    scale: float
    groups: tuple[BarGroup, ...]


@dataclass(frozen=True, slots=True)
class Swatch:
    agent: str
    colour: str


@dataclass(frozen=True, slots=True)
class TeamSection:
    name: str
    anchor: str
    average: float | None
    n_calls: int
    operators: tuple[OperatorCard, ...]
    swatches: tuple[Swatch, ...]
    trend: TrendChart
    bars: BarsChart
    complaints: tuple[ComplaintRow, ...]
    pending_complaints: int
    division_complaints: tuple[DivisionComplaintRow, ...]


@dataclass(frozen=True, slots=True)
class WeeklyReport:
    """Everything weekly_report.html prints."""
    week: str
    monday: dt.date
    sunday: dt.date
    rubric_version: str
    generated_at: dt.datetime  # UTC
    data_name: str
    scale: float
    good: float
    fair: float
    kpis: tuple[tuple[str, str], ...]  # (label, value)
    legend: tuple[LegendItem, ...]
    columns: tuple[Column, ...]
    teams: tuple[TeamSection, ...]
    calibration: tuple[CalibrationRow, ...]
    weeks: tuple[str, ...] = field(default=())
    orphans: tuple[OrphanRow, ...] = field(default=())


# --- building the view ----------------------------------------------------------------------------------------

def _quote(utts: Mapping, call_id: str, index: int | None) -> Quote | None:
    if index is None:
        return None
    u = utts.get((call_id, index))
    if not u:
        return Quote(call_id=call_id, index=index, stored=False)
    return Quote(call_id=call_id, index=index, stored=True, role=u["role"], text=u["text"], start_s=u["start_s"],
                 end_s=u["end_s"])


def _evidence(evidence: list[dict], utts: Mapping, call_id: str) -> tuple[EvidenceItem, ...]:
    out = []
    quoted: set = set()  # quote an utterance once per item, however many evidence rows point at it
    for ev in evidence:
        start, end = ev.get("start_s"), ev.get("end_s")
        index = ev.get("utterance_index")
        u = utts.get((call_id, index)) if index is not None else None
        if start is None and u:
            start, end = u["start_s"], u["end_s"]
        if index in quoted:
            index = None
        else:
            quoted.add(index)
        out.append(EvidenceItem(dataset=ev.get("dataset"), ref=ev.get("ref"), note=ev.get("note") or None,
                                start_s=start, end_s=end, quote=_quote(utts, call_id, index)))
    return tuple(out)


def _flag_rows(flags: list[dict], utts: Mapping) -> tuple[FlagRow, ...]:
    ordered = sorted(flags, key=lambda f: (SEVERITY_ORDER.get(f["severity"], 3),
                                           f["start_s"] if f["start_s"] is not None else 1e9))
    return tuple(FlagRow(call_id=f["call_id"], flag_id=f.get("flag_id"), severity=f["severity"],
                         flag_type=f["flag_type"], reason=f["reason"], start_s=f["start_s"], end_s=f["end_s"],
                         quote=_quote(utts, f["call_id"], f["utterance_index"])) for f in ordered)


def _call_info(call_id: str, c: dict | None) -> CallInfo | None:
    if not c:
        return None
    return CallInfo(call_id=call_id, started_at=c.get("started_at"), call_type=c.get("call_type"),
                    direction=c.get("direction"), campaign=c.get("campaign"), duration_s=c.get("duration_s"),
                    outcome=c.get("outcome"))


def _buildup(agent_rows: list[dict], card: dict, target_calls: float | None) -> tuple[BuildupRow, ...]:
    rows = []
    for k in ("tasks_completed", "quality", "targets"):
        its = [r for r in agent_rows if r["criterion"] == k and r["points"] is not None]
        if not its:
            continue
        pts, mx = sum(r["points"] for r in its), sum(r["max_points"] for r in its)
        with_target = k == "tasks_completed" and bool(target_calls)
        rows.append(BuildupRow(kind="points", criterion=k, label=CRITERION_LABEL[k], score=card.get(k),
                               points=round(pts, 3), max_points=mx, calls=len({r["call_id"] for r in its}),
                               rate=100 * pts / mx if mx else 0.0,
                               target_calls=target_calls if with_target else None,
                               card_calls=card["calls"] if with_target else None))
    rows.append(BuildupRow(kind="complaints", criterion="divisions_complaints",
                           label=CRITERION_LABEL["divisions_complaints"], score=card.get("divisions_complaints"),
                           justified=card.get("justified_division_complaints") or 0))
    rows.append(BuildupRow(kind="complaints", criterion="customer_complaints",
                           label=CRITERION_LABEL["customer_complaints"], score=card.get("customer_complaints"),
                           justified=card.get("justified_customer_complaints") or 0,
                           pending=card.get("pending_customer_complaints") or 0))
    return tuple(rows)


def _operator(card: dict, colour: str, rows: list[dict], data: WeeklyData,
              target_calls: float | None) -> OperatorCard:
    agent = card["agent_id"]
    deductions = [r for r in rows if r["points"] is not None and r["points"] < r["max_points"]]
    by_call: dict[str, list[dict]] = {}
    for r in deductions:
        by_call.setdefault(r["call_id"], []).append(r)
    order = {c: i for i, c in enumerate(CRITERIA)}
    never = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    deducted = []
    for cid in sorted(by_call, key=lambda c: ((data.calls.get(c) or {}).get("started_at") or never, c)):
        items = sorted(by_call[cid], key=lambda r: (order.get(r["criterion"], 9), r["item"]))
        deducted.append(DeductedCall(
            call_id=cid, info=_call_info(cid, data.calls.get(cid)),
            lost=round(sum(r["max_points"] - r["points"] for r in items), 3),
            deductions=tuple(DeductionRow(criterion=r["criterion"],
                                          criterion_short=CRITERION_SHORT.get(r["criterion"], r["criterion"]),
                                          item=r["item"], points=r["points"], max_points=r["max_points"],
                                          evidence=_evidence(r["evidence"] or [], data.utts, cid))
                             for r in items),
            flags=_flag_rows([f for f in data.flags if f["call_id"] == cid], data.utts)))
    return OperatorCard(
        agent_id=agent, anchor=re.sub(r"[^A-Za-z0-9_-]", "_", str(agent)), colour=colour,
        rank=card.get("rank_in_team"), calls=card["calls"],
        scores={k: card.get(k) for k in CRITERIA + ("overall",)}, change=card.get("change_from_previous_week"),
        justified_customer=card.get("justified_customer_complaints") or 0,
        justified_division=card.get("justified_division_complaints") or 0,
        pending_customer=card.get("pending_customer_complaints") or 0,
        calls_scored=tuple(sorted({r["call_id"] for r in rows})), buildup=_buildup(rows, card, target_calls),
        deducted_calls=tuple(deducted), n_deductions=len(deductions))


def _complaints(agents: list[str], data: WeeklyData, week: str) -> tuple[tuple[ComplaintRow, ...], int]:
    rows = []
    for f in data.flags:
        c = data.calls.get(f["call_id"]) or {}
        if f["flag_type"] != "customer_complaint" or c.get("agent_id") not in agents:
            continue
        if iso_week(c.get("started_at")) != week:
            continue
        verdict = (data.latest.get(f["flag_id"]) or {}).get("verdict")
        status = ("pending" if verdict is None else "counted" if verdict in ("justified", "confirmed")
                  else "dismissed")
        rows.append(ComplaintRow(status=status, verdict=verdict, agent_id=c.get("agent_id"), call_id=f["call_id"],
                                 reason=f["reason"], start_s=f["start_s"], end_s=f["end_s"],
                                 quote=_quote(data.utts, f["call_id"], f["utterance_index"])))
    for o in data.orphans:  # verdicts on complaint flags that are gone: they count as their verdict says
        c = data.calls.get(o["call_id"]) or {}
        if o["gone"] != "flag" or o.get("flag_type") != "customer_complaint" or c.get("agent_id") not in agents:
            continue
        if iso_week(c.get("started_at")) != week:
            continue
        rows.append(ComplaintRow(status="counted" if o["verdict"] in ("justified", "confirmed") else "dismissed",
                                 verdict=o["verdict"], agent_id=c.get("agent_id"), call_id=o["call_id"], reason=None,
                                 start_s=None, end_s=None, quote=None, orphaned=True))
    rows.sort(key=lambda r: (r.verdict is not None, r.agent_id, r.call_id))
    return tuple(rows), sum(1 for r in rows if r.verdict is None)


def _trend_chart(agents: list[str], colours: dict, weeks: list[str], series: dict, scale: float) -> TrendChart:
    w, h, left, right, top, bottom = 560, 230, 40, 56, 14, 30
    pw, ph = w - left - right, h - top - bottom
    top_v = max([scale] + [v for s in series.values() for v in s.values() if v is not None])

    def x(i):
        return left + (pw * i / (len(weeks) - 1) if len(weeks) > 1 else pw / 2)

    def y(v):
        return top + ph * (1 - v / top_v)

    bands = tuple(ChartRect(cls=cls, x=left, y=y(hi * top_v / 100), width=pw,
                            height=y(lo * top_v / 100) - y(hi * top_v / 100))
                  for lo, hi, cls in ((GOOD, 100.0, "bg-good"), (FAIR, GOOD, "bg-fair"), (0.0, FAIR, "bg-bad")))
    grid = tuple(ChartGridLine(x1=left, x2=left + pw, y=y(g * top_v / 100), label=g * top_v / 100,
                               label_x=left - 6) for g in range(0, 101, 25))
    week_labels = tuple(ChartText(x=x(i), y=h - 8, text=wk, current=i == len(weeks) - 1)
                        for i, wk in enumerate(weeks))
    out, labels = [], []
    for a in agents:
        pts = [(i, series.get(a, {}).get(wk)) for i, wk in enumerate(weeks)]
        lines, segment = [], []
        for i, v in pts + [(None, None)]:  # a missing week breaks the line
            if v is None:
                if len(segment) > 1:
                    lines.append(ChartLine(colour=colours[a], points=tuple(segment)))
                segment = []
            else:
                segment.append((x(i), y(v)))
        out.append(TrendSeries(agent=a, colour=colours[a], lines=tuple(lines), dots=tuple(
            ChartDot(x=x(i), y=y(v), colour=colours[a], agent=a, week=weeks[i], value=v)
            for i, v in pts if v is not None)))
        last = [(i, v) for i, v in pts if v is not None]
        if last and last[-1][0] == len(weeks) - 1:
            labels.append([y(last[-1][1]), a, last[-1][1]])
    labels.sort()
    for k in range(1, len(labels)):  # keep end labels from overlapping
        labels[k][0] = max(labels[k][0], labels[k - 1][0] + 12)
    end_labels = tuple(ChartText(x=x(len(weeks) - 1) + 8, y=ly + 4, text=f"{a} {v:.1f}", colour=colours[a])
                       for ly, a, v in labels)
    return TrendChart(width=w, height=h, n_weeks=len(weeks), bands=bands, grid=grid, week_labels=week_labels,
                      series=tuple(out), end_labels=end_labels)


def _bars_chart(agents: list[str], colours: dict, cards: dict, scale: float) -> BarsChart:
    keys = CRITERIA + ("overall",)
    bar_h, gap, group_gap, label_w, w = 13, 3, 14, 132, 560
    pw = w - label_w - 46
    group_h = len(agents) * (bar_h + gap) - gap
    h = len(keys) * (group_h + group_gap) + 6
    top_v = max([scale] + [cards[a].get(k) or 0 for a in agents for k in keys])
    groups = []
    y0 = 4
    for k in keys:
        bars = []
        for i, a in enumerate(agents):
            v = cards[a].get(k)
            yy = y0 + i * (bar_h + gap)
            bw = None if v is None else max(1.5, pw * v / top_v)
            bars.append(Bar(agent=a, colour=colours[a], x=label_w, y=yy, width=bw, height=bar_h, value=v,
                            value_x=None if bw is None else label_w + bw + 5,
                            value_y=yy + bar_h - (3 if v is None else 2.5)))
        groups.append(BarGroup(criterion=k, label=CRITERION_LABEL[k], label_y=y0 + group_h / 2 + 4,
                               track=ChartRect(cls="track", x=label_w, y=y0 - 2, width=pw, height=group_h + 4),
                               bars=tuple(bars)))
        y0 += group_h + group_gap
    return BarsChart(width=w, height=h, scale=scale, groups=tuple(groups))


def _team(team: str | None, cards: list[dict], data: WeeklyData, weeks: list[str], week: str, scale: float,
          target_calls: float | None) -> TeamSection:
    cards = sorted(cards, key=lambda c: (c.get("rank_in_team") or 999, c["agent_id"]))
    agents = [c["agent_id"] for c in cards]
    colours = {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(agents)}
    by_agent = {c["agent_id"]: c for c in cards}
    name = team if team is not None else NO_TEAM
    overall = [c["overall"] for c in cards if c.get("overall") is not None]
    series: dict[str, dict] = {}
    for t in data.trend:
        if t["agent_id"] in by_agent:
            series.setdefault(t["agent_id"], {})[t["iso_week"]] = t["overall"]
    rows_by_agent: dict[str, list[dict]] = {}
    for r in data.scores:
        if r["agent_id"] in by_agent:
            rows_by_agent.setdefault(r["agent_id"], []).append(r)
    complaints, pending = _complaints(agents, data, week)
    divisions = sorted((x for x in data.divisions if x["agent_id"] in agents),
                       key=lambda x: (x["agent_id"], x["date"]))
    return TeamSection(
        name=str(name), anchor=re.sub(r"[^A-Za-z0-9_-]", "_", str(name)),
        average=sum(overall) / len(overall) if overall else None, n_calls=sum(c["calls"] for c in cards),
        operators=tuple(_operator(by_agent[a], colours[a], rows_by_agent.get(a, []), data, target_calls)
                        for a in agents),
        swatches=tuple(Swatch(agent=a, colour=colours[a]) for a in agents),
        trend=_trend_chart(agents, colours, weeks, series, scale),
        bars=_bars_chart(agents, colours, by_agent, scale),
        complaints=complaints, pending_complaints=pending,
        division_complaints=tuple(DivisionComplaintRow(agent_id=x["agent_id"], division=x.get("division"),
                                                       text=x.get("text"), date=x.get("date"),
                                                       justified=bool(x.get("justified"))) for x in divisions))


def _calibration(rows: list[dict]) -> tuple[CalibrationRow, ...]:
    out = []
    for r in sorted(rows, key=lambda r: (r["target_type"], r["item"])):
        k = r.get("kappa")
        if k is None:
            reading = ("precision of the flag (share QA confirmed)" if r["target_type"] == "flag"
                       else "κ undefined (every answer the same)")
            kcls = "na"
        else:
            reading = ("almost perfect" if k > 0.8 else "substantial" if k > 0.6 else "moderate" if k > 0.4
                       else "fair" if k > 0.2 else "poor")
            kcls = "good" if k > 0.6 else "fair" if k > 0.4 else "bad"
        agr = r.get("agreement")
        out.append(CalibrationRow(target_type=r["target_type"], item=r["item"], n=r["n"],
                                  agreement_pct=None if agr is None else 100 * agr, kappa=k, kappa_band=kcls,
                                  reading=reading))
    return tuple(out)


def _orphans(data: WeeklyData) -> tuple[OrphanRow, ...]:
    out = []
    for o in data.orphans:
        c = data.calls.get(o["call_id"]) or {}
        counts = (o["gone"] == "flag" and o.get("flag_type") == "customer_complaint"
                  and o["verdict"] in ("justified", "confirmed"))
        out.append(OrphanRow(call_id=o["call_id"], agent_id=c.get("agent_id"), target_type=o["target_type"],
                             target=o["target"], kind=o.get("flag_type") if o["target_type"] == "flag" else o["target"],
                             gone=o["gone"], verdict=o["verdict"], reviewer=o["reviewer"],
                             reviewed_at=o.get("reviewed_at"), comment=o.get("comment"), counts=counts))
    return tuple(sorted(out, key=lambda r: (r.call_id, r.target_type, r.target)))


def _legend(rubric: Any | None) -> tuple[LegendItem, ...]:
    items = []
    for k in CRITERIA:
        text = LEGEND[k]
        if rubric and k in ("divisions_complaints", "customer_complaints"):
            text = text.replace("a penalty", f"{rubric.penalties.get(k, 50):g} points")
        if rubric and k == "tasks_completed":
            text += f" ({rubric.target_calls_per_week:g} calls)"
        items.append(LegendItem(criterion=k, label=CRITERION_LABEL[k],
                                weight=rubric.weights[k] if rubric else None, text=text))
    return tuple(items)


def build_weekly_view(data: WeeklyData, week: str, *, weeks: list[str], rubric: Any | None = None,
                      data_name: str = "", now: dt.datetime | None = None) -> WeeklyReport:
    """The view model of the report of ISO `week` from its `data` (see `load_weekly_data`).

    weeks: the weeks of the trend, oldest first (the chart starts at the first of them with scores, keeping two).
    rubric: the `qa_pipeline.scoring.score.Rubric` the week was scored with, for the legend's weights, the scale
        and the weekly target of calls; None when not at hand (a generic legend, scale 100).
    data_name: how the data folder is named on the page. now: the generation time (default: now)."""
    scored = {t["iso_week"] for t in data.trend}
    weeks = list(weeks)
    while len(weeks) > 2 and weeks[0] not in scored:  # the chart starts with the first week that has scores
        weeks = weeks[1:]
    scale = rubric.scale if rubric else 100.0
    target_calls = rubric.target_calls_per_week if rubric else None
    now = now or dt.datetime.now(dt.timezone.utc)
    monday = week_monday(week)
    by_team: dict[Any, list[dict]] = {}
    for c in data.cards:
        by_team.setdefault(c["team"], []).append(c)
    teams = sorted(by_team, key=lambda t: (t is None, str(t)))
    overall = [c["overall"] for c in data.cards if c.get("overall") is not None]
    with_ded = {r["call_id"] for r in data.scores if r["points"] is not None and r["points"] < r["max_points"]}
    pending = sum(c.get("pending_customer_complaints") or 0 for c in data.cards)
    justified = sum((c.get("justified_customer_complaints") or 0) + (c.get("justified_division_complaints") or 0)
                    for c in data.cards)
    kpis = (("Operators", str(len(data.cards))), ("Calls scored", str(sum(c["calls"] for c in data.cards))),
            ("Average overall", f"{sum(overall) / len(overall):.1f}" if overall else "–"),
            ("Calls with deductions", str(len(with_ded))),
            ("Justified complaints", str(justified)), ("Pending complaints (not counted)", str(pending)))
    orphans = _orphans(data)
    if orphans:
        kpis += (("Verdicts whose finding is gone", str(len(orphans))),)
    return WeeklyReport(
        week=week, monday=monday, sunday=monday + dt.timedelta(days=6), rubric_version=", ".join(data.versions),
        generated_at=now.astimezone(dt.timezone.utc), data_name=data_name, scale=scale, good=GOOD, fair=FAIR,
        kpis=kpis, legend=_legend(rubric),
        columns=tuple(Column(key=k, label=CRITERION_SHORT[k], title=LEGEND[k]) for k in CRITERIA),
        teams=tuple(_team(t, by_team[t], data, weeks, week, scale, target_calls) for t in teams),
        calibration=_calibration(data.calibration), weeks=tuple(weeks), orphans=orphans)
