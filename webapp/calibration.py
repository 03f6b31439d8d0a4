"""Calibration sessions: a QA lead picks calls and raters; each rater judges every call blind (their own
calibration evaluation, `evaluations.kind = 'calibration'`: they see neither the other raters' answers nor, on
items, the automatic answer, until the lead closes the session); then the session page shows, per rubric item and
per flag type:

- agreement between the humans: Cohen's kappa with two raters, Fleiss' kappa with more (over the calls every rater
  answered), and the plain share of calls where all raters agree;
- agreement with the automatic answers: the share of rater answers equal to the automatic one;
- how far the evidence spans they pinned overlap: the mean intersection over union of every two raters' spans on the
  same target (where both pinned one).

Calibration evaluations never reach the `reviews` dataset, the queue's review states or the scorecards (the
exporter and the queue only read standard evaluations)."""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp import audit
from webapp.models import CalibrationCall, CalibrationMember, CalibrationSession, CallIndex, Evaluation, User, utcnow
from webapp.scope import can, can_see, require

MAX_CALLS = 200


class CalibrationError(ValueError):
    pass


# ---- statistics ------------------------------------------------------------------------------------------------

def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa of two raters' answers on the same units (None: no units, or chance agreement is total)."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    po = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if math.isclose(pe, 1.0):
        return None
    return (po - pe) / (1 - pe)


def fleiss_kappa(units: list[list[str]]) -> float | None:
    """Fleiss' kappa: `units` holds each unit's answers, every unit rated by the same number (>= 2) of raters."""
    if not units:
        return None
    m = len(units[0])
    if m < 2 or any(len(u) != m for u in units):
        return None
    n = len(units)
    cats = sorted({a for u in units for a in u})
    counts = [Counter(u) for u in units]
    p_i = [(sum(c[k] ** 2 for k in cats) - m) / (m * (m - 1)) for c in counts]
    p_bar = sum(p_i) / n
    p_j = [sum(c[k] for c in counts) / (n * m) for k in cats]
    pe = sum(p * p for p in p_j)
    if math.isclose(pe, 1.0):
        return None
    return (p_bar - pe) / (1 - pe)


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Intersection over union of two time spans."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 1.0


# ---- sessions --------------------------------------------------------------------------------------------------

def create_session(s: Session, user: User, *, name: str, call_ids: list[str], rater_ids: list[int],
                   ip: str | None = None) -> CalibrationSession:
    """A new open session; every rater must be a reviewer who may see every call."""
    require(user, "calibrate")
    name = (name or "").strip()[:200]
    if not name:
        raise CalibrationError("Give the session a name.")
    call_ids = list(dict.fromkeys(c.strip() for c in call_ids if c and c.strip()))
    if not call_ids:
        raise CalibrationError("Choose at least one call.")
    if len(call_ids) > MAX_CALLS:
        raise CalibrationError(f"At most {MAX_CALLS} calls per session.")
    rater_ids = list(dict.fromkeys(rater_ids))
    if len(rater_ids) < 2:
        raise CalibrationError("Choose at least two raters.")
    calls = {c.call_id: c for c in s.scalars(select(CallIndex).where(CallIndex.call_id.in_(call_ids)))}
    unknown = [c for c in call_ids if c not in calls or not can_see(user, calls[c].team, calls[c].agent_id)]
    if unknown:
        raise CalibrationError(f"{len(unknown)} call(s) not found: {', '.join(c[:16] for c in unknown[:5])}")
    raters = list(s.scalars(select(User).where(User.id.in_(rater_ids))))
    if len(raters) != len(rater_ids):
        raise CalibrationError("An unknown rater was chosen.")
    for r in raters:
        if r.disabled or not can(r, "review"):
            raise CalibrationError(f"{r.display_name} may not review calls.")
        blind = [c for c in calls.values() if not can_see(r, c.team, c.agent_id)]
        if blind:
            raise CalibrationError(f"{r.display_name} may not see {len(blind)} of the calls (other teams).")
    cs = CalibrationSession(name=name, state="open", blind=True, created_by=user.id, created_at=utcnow())
    cs.members = [CalibrationMember(user_id=r.id, role="rater") for r in raters]
    cs.calls = [CalibrationCall(call_id=c) for c in call_ids]
    s.add(cs)
    s.flush()
    audit.record(s, "calibration_created", user=user, target_type="calibration", target_id=cs.id, ip=ip,
                 detail={"name": name, "calls": call_ids, "raters": [r.username for r in raters]})
    return cs


def close_session(s: Session, user: User, cs: CalibrationSession, *, ip: str | None = None) -> None:
    require(user, "calibrate")
    if cs.state != "open":
        raise CalibrationError("The session is already closed.")
    cs.state, cs.closed_at = "closed", utcnow()
    audit.record(s, "calibration_closed", user=user, target_type="calibration", target_id=cs.id, ip=ip,
                 detail={"before": {"state": "open"}, "after": {"state": "closed"}})


def may_view(s: Session, user: User, cs: CalibrationSession) -> bool:
    return can(user, "calibrate") or s.get(CalibrationMember, (cs.id, user.id)) is not None


# ---- results ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GroupResult:
    """One rubric item (or flag type) across the session's calls."""
    group: str
    kind: str  # item / flag
    units: int  # (call, target) pairs every rater answered
    raters: int
    all_agree: float | None  # share of those units where every rater gave the same answer
    kappa: float | None
    kappa_name: str  # "Cohen" / "Fleiss"
    auto_n: int  # rater answers with an automatic answer to compare with
    auto_agree: float | None  # share of those equal to the automatic answer
    iou_pairs: int
    mean_iou: float | None


@dataclass(frozen=True, slots=True)
class Progress:
    rater: str
    user_id: int
    judged: int  # verdicts
    calls_started: int
    calls_submitted: int


@dataclass(frozen=True, slots=True)
class SessionResults:
    progress: tuple[Progress, ...]
    groups: tuple[GroupResult, ...]
    overall: GroupResult | None
    answers: dict  # (call_id, target_type, target_id) -> {rater name: (answer, span)}, shown when closed


def _result(group: str, kind: str, units: dict, raters: list[int], autos: dict) -> GroupResult:
    complete = [u for u, by in units.items() if all(r in by for r in raters)]
    answers = [[units[u][r][0] for r in raters] for u in complete]
    if len(raters) == 2:
        kappa, name = cohen_kappa([a[0] for a in answers], [a[1] for a in answers]), "Cohen"
    else:
        kappa, name = fleiss_kappa(answers), "Fleiss"
    pairs = [(units[u][r][0], autos.get(u)) for u in units for r in units[u] if autos.get(u)]
    ious = []
    for u, by in units.items():
        spans = [by[r][1] for r in raters if r in by and by[r][1] is not None]
        ious += [iou(a, b) for a, b in itertools.combinations(spans, 2)]
    return GroupResult(
        group=group, kind=kind, units=len(complete), raters=len(raters),
        all_agree=sum(len(set(a)) == 1 for a in answers) / len(answers) if answers else None,
        kappa=None if kappa is None else round(kappa, 3), kappa_name=name, auto_n=len(pairs),
        auto_agree=sum(h == a for h, a in pairs) / len(pairs) if pairs else None, iou_pairs=len(ious),
        mean_iou=sum(ious) / len(ious) if ious else None)


def results(s: Session, cs: CalibrationSession, groups_of: dict) -> SessionResults:
    """Progress always; agreement figures from the submitted evaluations (shown once the session is closed).

    groups_of: (call_id, target_type, target_id) -> the target's group ("criterion.item" or "flag:<type>"), from
    the calls' datasets (a flag's type is not in the verdict)."""
    raters = [m.user_id for m in cs.members if m.role == "rater"]
    names = {k: v for k, v in s.execute(select(User.id, User.display_name).where(User.id.in_(raters)))} \
        if raters else {}
    evs = list(s.scalars(select(Evaluation).where(Evaluation.kind == "calibration",
                                                  Evaluation.calibration_session_id == cs.id)))
    progress = []
    for r in raters:
        mine = [e for e in evs if e.reviewer_id == r]
        progress.append(Progress(rater=names.get(r, "?"), user_id=r, judged=sum(len(e.verdicts) for e in mine),
                                 calls_started=len(mine),
                                 calls_submitted=sum(1 for e in mine if e.state != "draft")))
    submitted = [e for e in evs if e.state != "draft"]
    by_group: dict[tuple[str, str], dict] = defaultdict(lambda: defaultdict(dict))
    autos: dict = {}
    all_units: dict = defaultdict(dict)
    answers: dict = defaultdict(dict)
    for e in submitted:
        for v in e.verdicts:
            unit = (e.call_id, v.target_type, v.target_id)
            span = None if v.evidence_start_s is None else (v.evidence_start_s, v.evidence_end_s)
            group = groups_of.get(unit) or (v.target_id if v.target_type == "item" else f"flag:{v.target_id}")
            by_group[(v.target_type, group)][unit][e.reviewer_id] = (v.human_answer, span)
            all_units[unit][e.reviewer_id] = (v.human_answer, span)
            answers[unit][names.get(e.reviewer_id, "?")] = (v.human_answer, span)
            if v.auto_answer:
                autos[unit] = v.auto_answer
    groups = tuple(_result(g, kind, units, raters, autos) for (kind, g), units in
                   sorted(by_group.items(), key=lambda kv: (kv[0][0] != "item", kv[0][1])))
    overall = _result("all items and flags", "all", all_units, raters, autos) if all_units else None
    return SessionResults(progress=tuple(progress), groups=groups, overall=overall, answers=dict(answers))
