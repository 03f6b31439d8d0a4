"""The evaluation lifecycle, without HTTP: judge -> submit -> acknowledge or dispute -> resolve.

    draft ──submit──> submitted ──acknowledge──> acknowledged
                          └──────dispute──────> disputed ──resolve──> resolved

- **Targets** are a call's flags and its applicable scored items (`targets_of`). Each has an automatic answer,
  written as the verdict value the scoring understands (`qa_pipeline.scoring`: flags confirmed / dismissed, customer
  complaints justified / unjustified, items met / not_met): the pipeline raised a flag, so its automatic answer is
  "confirmed" ("justified" for a complaint); an item is "met" when it earned its maximum points (as
  `qa_pipeline.scoring.calibration` counts it). The reviewer **confirms** (the human answer is the automatic one) or
  **overrides** (the other value), with an optional comment and an optional evidence span they pinned.
- **Who**: reviewers judge and submit (`scope.may_review`); the call's agent, or a manager of its team, acknowledges
  or disputes within `dispute_window_days` of the submission (`scope.may_answer`; after the window the request is
  refused); a QA lead resolves a dispute with a root cause (`ROOT_CAUSES`) and a note, upholding or changing the
  verdicts (`scope.may_resolve`). Calibration evaluations (`Mode("calibration", session)`) are judged and submitted
  by the session's raters only, are never disputed, exported or scored.
- **Concurrency**: every change checks the version the form was drawn from against the evaluation's `version`
  (0: "there was no evaluation yet") and then updates the evaluation row, which increments the version
  (SQLAlchemy's version_id_col: a concurrent writer that passed the same check fails its UPDATE). A stale form is
  refused (`Stale`, 409) and nothing is written.
- **Audit**: every change writes one entry (judged, changed, commented, submitted, acknowledged, disputed,
  resolved) with the state or the verdict before and after, in the same transaction.
- **Queue**: the review state of the call's queue items follows (`queue.refresh_review_state`), in the same
  transaction.

Exporting submitted and resolved verdicts to the `reviews` dataset and rescoring are `webapp.rescoring`'s: the
functions here mark an evaluation for export (`exported_at` NULL) and the caller asks the rescorer to run."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from webapp import audit
from webapp.callpage import CallPage
from webapp.models import (
    ROOT_CAUSES,
    CalibrationCall,
    CalibrationMember,
    CalibrationSession,
    CallIndex,
    Comment,
    Dispute,
    Evaluation,
    Sample,
    SampleCall,
    User,
    Verdict,
    utcnow,
)
from webapp.queue import refresh_review_state
from webapp.scope import can, may_answer, may_resolve, may_review, may_see_evaluation

FLAG_ANSWERS = {"customer_complaint": ("justified", "unjustified")}  # (confirmed, overridden)
DEFAULT_FLAG_ANSWERS = ("confirmed", "dismissed")
ITEM_ANSWERS = ("met", "not_met")
ANSWER_LABEL = {"confirmed": "confirmed", "dismissed": "dismissed", "justified": "justified",
                "unjustified": "not justified", "met": "met", "not_met": "not met"}
ACTIONS = ("confirm", "override")
MAX_TEXT = 4000
STANDARD, CALIBRATION = "standard", "calibration"


# ---- errors ----------------------------------------------------------------------------------------------------

class LifecycleError(Exception):
    """A refused change; `status` is the HTTP answer, `message` says what to do."""
    status = 409

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Stale(LifecycleError):
    """The form was drawn from an older version of the evaluation (someone else changed it meanwhile)."""
    status = 409


class Refused(LifecycleError):
    """Not this user's to do, or not any more (the dispute window closed)."""
    status = 403


class Invalid(LifecycleError):
    """The request itself is wrong (unknown target, missing reason, bad span)."""
    status = 422


def stale_message(yours: int, now: int) -> str:
    return (f"Someone else changed this evaluation since you opened it (your copy is version {yours}, it is now "
            f"version {now}). Your change was NOT saved: reload the page to see the current evaluation, then "
            f"make your change again.")


# ---- targets ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Target:
    """A flag or an applicable scored item of a call, with its automatic answer."""
    target_type: str  # flag / item
    target_id: str  # flag_id, or "criterion.item"
    label: str
    group: str  # what agreement is counted per: "criterion.item", or "flag:<flag type>"
    criterion: str | None
    auto_answer: str
    override_answer: str
    start_s: float | None
    end_s: float | None
    play_from_s: float | None
    summary: str | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.target_type, self.target_id)

    @property
    def answers(self) -> tuple[str, str]:
        return (self.auto_answer, self.override_answer)

    @property
    def choices(self) -> tuple[str, ...]:
        """The answers in a fixed order that does not tell which one is automatic (blind calibration)."""
        return ITEM_ANSWERS if self.target_type == "item" else self.answers

    def answer_for(self, action: str) -> str:
        return self.auto_answer if action == "confirm" else self.override_answer


def flag_answers(flag_type: str | None) -> tuple[str, str]:
    return FLAG_ANSWERS.get(flag_type or "", DEFAULT_FLAG_ANSWERS)


def targets_of(page: CallPage) -> dict[tuple[str, str], Target]:
    """The call's judgeable targets, flags first (in the page's order), then the applicable items."""
    out: dict[tuple[str, str], Target] = {}
    for t in page.flags:
        confirm, override = flag_answers(t.flag.flag_type if t.flag else t.label)
        out[("flag", t.target_id)] = Target(
            target_type="flag", target_id=t.target_id, label=t.label, group=f"flag:{t.label}", criterion=None,
            auto_answer=confirm, override_answer=override, start_s=t.start_s, end_s=t.end_s,
            play_from_s=None if t.play_from_s is None else round(t.play_from_s, 2),
            summary=t.flag.reason if t.flag else None)
    for t in page.items:
        if t.points is None:  # not applicable to this call: nothing to judge
            continue
        met = t.points >= t.max_points
        out[("item", t.target_id)] = Target(
            target_type="item", target_id=t.target_id, label=t.label, group=t.target_id,
            criterion=t.target_id.split(".")[0], auto_answer="met" if met else "not_met",
            override_answer="not_met" if met else "met", start_s=t.start_s, end_s=t.end_s,
            play_from_s=None if t.play_from_s is None else round(t.play_from_s, 2),
            summary=f"{t.points:g} of {t.max_points:g} points")
    return out


def allowed_answers(target_type: str, target: Target | None) -> tuple[str, ...]:
    if target is not None:
        return target.answers
    if target_type == "item":
        return ITEM_ANSWERS
    return tuple(dict.fromkeys(DEFAULT_FLAG_ANSWERS + tuple(a for v in FLAG_ANSWERS.values() for a in v)))


# ---- which evaluation ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Mode:
    """A standard evaluation of the call, or this user's evaluation of it in a calibration session."""
    kind: str = STANDARD
    session_id: int | None = None

    @property
    def calibration(self) -> bool:
        return self.kind == CALIBRATION


def find_evaluation(s: Session, call_id: str, mode: Mode, user: User) -> Evaluation | None:
    stmt = select(Evaluation).where(Evaluation.call_id == call_id, Evaluation.kind == mode.kind)
    if mode.calibration:
        stmt = stmt.where(Evaluation.calibration_session_id == mode.session_id, Evaluation.reviewer_id == user.id)
    return s.scalar(stmt)


def rater_session(s: Session, session_id: int | None, call_id: str, user: User, *,
                  open_only: bool) -> CalibrationSession:
    """The calibration session, if `user` is one of its raters and the call is one of its calls.

    Raises:
        Refused: otherwise, or (open_only) the session is closed."""
    cs = s.get(CalibrationSession, session_id) if session_id else None
    member = cs is not None and s.get(CalibrationMember, (cs.id, user.id)) is not None
    if cs is None or not member or s.get(CalibrationCall, (cs.id, call_id)) is None:
        raise Refused("You are not a rater of this call in that calibration session.")
    if open_only and cs.state != "open":
        raise Refused("This calibration session is closed: its evaluations can no longer change.")
    return cs


def check_version(ev: Evaluation | None, version: int | None) -> None:
    current = ev.version if ev is not None else 0
    if version is None or version != current:
        raise Stale(stale_message(-1 if version is None else version, current))


def _touch(s: Session, ev: Evaluation, now: dt.datetime) -> None:
    """Update the evaluation row (its version goes up by one) and flush; a concurrent change is `Stale`."""
    ev.updated_at = now
    try:
        s.flush()
    except StaleDataError as e:
        raise Stale(stale_message(ev.version, ev.version + 1)) from e


def _snapshot(v: Verdict | None) -> dict | None:
    if v is None:
        return None
    return {"answer": v.human_answer, "auto": v.auto_answer, "comment": v.comment,
            "span": None if v.evidence_start_s is None else [v.evidence_start_s, v.evidence_end_s]}


def _text(value: str | None, *, what: str, required: bool = False) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise Invalid(f"Give {what}.")
        return None
    if len(value) > MAX_TEXT:
        raise Invalid(f"{what.capitalize()} is too long ({len(value)} characters; at most {MAX_TEXT}).")
    return value


def _span(start: float | None, end: float | None, duration_s: float | None) -> tuple[float | None, float | None]:
    if start is None and end is None:
        return None, None
    if start is None or end is None or not (math.isfinite(start) and math.isfinite(end)):
        raise Invalid("A pinned span needs both its start and its end, in seconds.")
    limit = (duration_s or 0) + 1.0
    if not (0 <= start < end) or (duration_s and end > limit):
        raise Invalid(f"The pinned span {start:g}-{end:g} s is not inside the call (0-{duration_s or 0:g} s) or "
                      "ends before it starts.")
    return round(start, 2), round(end, 2)


def _attach_sample(s: Session, ev: Evaluation, sample_id: int | None, call_id: str) -> None:
    if not sample_id or ev.sample_id is not None:
        return
    sample = s.get(Sample, sample_id)
    if sample is None or s.get(SampleCall, (sample_id, call_id)) is None:
        raise Invalid(f"The call is not in sample {sample_id}.")
    ev.sample_id = sample.id
    ev.sample_filters = {"sample_id": sample.id, "name": sample.name, "method": sample.method,
                         "seed": sample.seed, **(sample.filters or {})}


def _editable(s: Session, user: User, call: CallIndex, mode: Mode, version: int | None,
              sample_id: int | None, now: dt.datetime) -> Evaluation:
    """The draft evaluation this user may change (created on the first verdict), its version checked."""
    if mode.calibration:
        rater_session(s, mode.session_id, call.call_id, user, open_only=True)
    elif not may_review(user, call):
        raise Refused("Your account may not judge this call.")
    ev = find_evaluation(s, call.call_id, mode, user)
    check_version(ev, version)
    if ev is None:
        ev = Evaluation(call_id=call.call_id, kind=mode.kind, calibration_session_id=mode.session_id,
                        reviewer_id=user.id, state="draft", created_at=now, updated_at=now)
        s.add(ev)
        if not mode.calibration:
            _attach_sample(s, ev, sample_id, call.call_id)
        try:
            s.flush()
        except IntegrityError as e:
            raise Stale("Someone else started an evaluation of this call at the same moment: reload the page and "
                        "make your change again.") from e
        audit.record(s, "changed", user=user, target_type="evaluation", target_id=ev.id,
                     detail={"call_id": call.call_id, "kind": mode.kind, "session": mode.session_id,
                             "before": None, "after": {"state": "draft", "sample_id": ev.sample_id}})
    elif ev.state != "draft":
        raise Stale(f"This evaluation is already {ev.state}: its verdicts can no longer be changed here.")
    elif not mode.calibration:
        _attach_sample(s, ev, sample_id, call.call_id)
    return ev


def _after_change(s: Session, ev: Evaluation) -> None:
    if ev.kind == STANDARD:
        refresh_review_state(s, [ev.call_id])


# ---- the steps -------------------------------------------------------------------------------------------------

def judge(s: Session, user: User, call: CallIndex, targets: dict[tuple[str, str], Target], mode: Mode, *,
          target_type: str, target_id: str, action: str | None = None, answer: str | None = None,
          comment: str | None = None, span: tuple[float | None, float | None] = (None, None),
          version: int | None, sample_id: int | None = None, now: dt.datetime | None = None) -> Evaluation:
    """Confirm or override the automatic answer on one target (creating the evaluation on its first verdict).
    Give `action` ("confirm" / "override") or the `answer` itself (one of the target's two answers: the form of a
    blind calibration, which must not say which one is the automatic answer)."""
    now = now or utcnow()
    target = targets.get((target_type, target_id))
    if target is None:
        raise Invalid("This flag or item is not on the call (any more): reload the page.")
    if answer is not None:
        if answer not in target.answers:
            raise Invalid(f"{answer!r} is not an answer for this {target.target_type}.")
        action = "confirm" if answer == target.auto_answer else "override"
    if action not in ACTIONS:
        raise Invalid(f"The action must be one of {', '.join(ACTIONS)}.")
    comment = _text(comment, what="a comment")
    start, end = _span(*span, call.duration_s)
    ev = _editable(s, user, call, mode, version, sample_id, now)
    v = next((x for x in ev.verdicts if (x.target_type, x.target_id) == target.key), None)
    before = _snapshot(v)
    answer = target.answer_for(action)
    if v is None:
        v = Verdict(target_type=target.target_type, target_id=target.target_id, auto_answer=target.auto_answer,
                    by_user_id=user.id, at=now)
        ev.verdicts.append(v)
    v.human_answer, v.comment, v.evidence_start_s, v.evidence_end_s = answer, comment, start, end
    v.auto_answer, v.by_user_id, v.at = target.auto_answer, user.id, now
    _touch(s, ev, now)
    audit.record(s, "judged" if before is None else "changed", user=user, target_type="evaluation",
                 target_id=ev.id, detail={"call_id": call.call_id, "kind": ev.kind,
                                          "target": f"{target.target_type}:{target.target_id}",
                                          "action": action, "before": before, "after": _snapshot(v)})
    _after_change(s, ev)
    return ev


def parse_anchor(anchor: str | None, targets: dict[tuple[str, str], Target],
                 utterances: set[int]) -> tuple[int | None, str | None, str | None]:
    """"u:<index>" (an utterance), "flag:<id>" / "item:<criterion.item>" (a target) or "" (the whole call)."""
    anchor = (anchor or "").strip()
    if not anchor:
        return None, None, None
    kind, _, value = anchor.partition(":")
    if kind == "u":
        try:
            index = int(value)
        except ValueError:
            index = None
        if index is None or index not in utterances:
            raise Invalid("That transcript line is not on the call.")
        return index, None, None
    if (kind, value) not in targets:
        raise Invalid("That flag or item is not on the call.")
    return None, kind, value


def add_comment(s: Session, user: User, call: CallIndex, targets: dict[tuple[str, str], Target], mode: Mode, *,
                body: str | None, anchor: str | None, utterances: set[int], version: int | None,
                sample_id: int | None = None, now: dt.datetime | None = None) -> Evaluation:
    """A comment in the evaluation, anchored to a transcript line, a flag or an item, or to the whole call."""
    now = now or utcnow()
    body = _text(body, what="the comment's text", required=True)
    index, ttype, tid = parse_anchor(anchor, targets, utterances)
    ev = _editable(s, user, call, mode, version, sample_id, now)
    c = Comment(call_id=call.call_id, utterance_index=index, target_type=ttype, target_id=tid,
                evaluation_id=ev.id, author_id=user.id, body=body, created_at=now)
    s.add(c)
    _touch(s, ev, now)
    audit.record(s, "commented", user=user, target_type="evaluation", target_id=ev.id,
                 detail={"call_id": call.call_id, "comment": c.id, "anchor": anchor or "", "before": None,
                         "after": {"body": body}})
    return ev


def submit(s: Session, user: User, call: CallIndex, mode: Mode, *, version: int | None, window_days: float,
           now: dt.datetime | None = None) -> Evaluation:
    """The reviewer's evaluation is done: the agent may now see it and acknowledge or dispute it (standard)."""
    now = now or utcnow()
    if mode.calibration:
        rater_session(s, mode.session_id, call.call_id, user, open_only=True)
    elif not may_review(user, call):
        raise Refused("Your account may not submit evaluations of this call.")
    ev = find_evaluation(s, call.call_id, mode, user)
    if ev is None:
        raise Invalid("Judge at least one flag or item before submitting.")
    check_version(ev, version)
    if ev.state != "draft":
        raise Stale(f"This evaluation is already {ev.state}.")
    if not ev.verdicts:
        raise Invalid("Judge at least one flag or item before submitting.")
    ev.state, ev.submitted_at = "submitted", now
    if not mode.calibration:
        ev.dispute_window_ends_at = now + dt.timedelta(days=window_days)
        ev.exported_at = None  # to the reviews dataset (webapp.rescoring)
    _touch(s, ev, now)
    audit.record(s, "submitted", user=user, target_type="evaluation", target_id=ev.id,
                 detail={"call_id": call.call_id, "kind": ev.kind, "before": {"state": "draft"},
                         "after": {"state": "submitted", "dispute_window_ends_at":
                                   None if ev.dispute_window_ends_at is None
                                   else ev.dispute_window_ends_at.isoformat()},
                         "verdicts": {f"{v.target_type}:{v.target_id}": v.human_answer for v in ev.verdicts}})
    _after_change(s, ev)
    return ev


def window_open(ev: Evaluation, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    return ev.state == "submitted" and ev.dispute_window_ends_at is not None and now < ev.dispute_window_ends_at


def _answerable(s: Session, user: User, call: CallIndex, version: int | None, now: dt.datetime) -> Evaluation:
    if not may_answer(user, call):
        raise Refused("Only the call's agent, or a manager of the agent's team, may acknowledge or dispute its "
                      "evaluation.")
    ev = find_evaluation(s, call.call_id, Mode(), user)
    if ev is None or ev.state == "draft":
        raise Invalid("This call has no submitted evaluation.")
    check_version(ev, version)
    if ev.state != "submitted":
        raise Stale(f"This evaluation is already {ev.state}: it can no longer be acknowledged or disputed.")
    if not window_open(ev, now):
        raise Refused(f"The window to acknowledge or dispute this evaluation closed on "
                      f"{ev.dispute_window_ends_at:%Y-%m-%d %H:%M} UTC.")
    return ev


def acknowledge(s: Session, user: User, call: CallIndex, *, version: int | None,
                now: dt.datetime | None = None) -> Evaluation:
    now = now or utcnow()
    ev = _answerable(s, user, call, version, now)
    ev.state, ev.acknowledged_at, ev.acknowledged_by = "acknowledged", now, user.id
    _touch(s, ev, now)
    audit.record(s, "acknowledged", user=user, target_type="evaluation", target_id=ev.id,
                 detail={"call_id": call.call_id, "before": {"state": "submitted"},
                         "after": {"state": "acknowledged"}})
    _after_change(s, ev)
    return ev


def dispute(s: Session, user: User, call: CallIndex, *, version: int | None, reason: str | None,
            verdict_id: int | None = None, now: dt.datetime | None = None) -> Evaluation:
    """Dispute the whole evaluation, or one verdict of it, with a reason."""
    now = now or utcnow()
    reason = _text(reason, what="the reason for the dispute", required=True)
    ev = _answerable(s, user, call, version, now)
    if verdict_id is not None and not any(v.id == verdict_id for v in ev.verdicts):
        raise Invalid("That verdict is not part of this evaluation.")
    d = Dispute(evaluation_id=ev.id, verdict_id=verdict_id, raised_by=user.id, raised_at=now, reason=reason,
                state="open")
    s.add(d)
    ev.state = "disputed"
    _touch(s, ev, now)
    audit.record(s, "disputed", user=user, target_type="evaluation", target_id=ev.id,
                 detail={"call_id": call.call_id, "dispute": d.id, "verdict": verdict_id, "reason": reason,
                         "before": {"state": "submitted"}, "after": {"state": "disputed"}})
    _after_change(s, ev)
    return ev


def resolve(s: Session, user: User, call: CallIndex, targets: dict[tuple[str, str], Target], *,
            version: int | None, root_cause: str | None, note: str | None, changes: dict[int, str],
            now: dt.datetime | None = None) -> Evaluation:
    """A QA lead resolves the open dispute: a root cause, a note, and each verdict kept or changed (`changes`:
    verdict id -> the answer it should have). The outcome follows: upheld (nothing changed), overturned (every
    disputed verdict changed) or partly overturned."""
    now = now or utcnow()
    if not may_resolve(user, call):
        raise Refused("Only a QA lead may resolve disputes.")
    if root_cause not in ROOT_CAUSES:
        raise Invalid(f"Choose the root cause: one of {', '.join(ROOT_CAUSES)}.")
    note = _text(note, what="a note on the resolution", required=True)
    ev = find_evaluation(s, call.call_id, Mode(), user)
    if ev is None:
        raise Invalid("This call has no evaluation.")
    check_version(ev, version)
    if ev.state != "disputed":
        raise Stale(f"This evaluation is {ev.state}, not disputed: there is nothing to resolve.")
    d = s.scalar(select(Dispute).where(Dispute.evaluation_id == ev.id, Dispute.state == "open")
                 .order_by(Dispute.raised_at.desc(), Dispute.id.desc()))
    if d is None:
        raise Stale("This evaluation has no open dispute.")
    by_id = {v.id: v for v in ev.verdicts}
    changed = []
    for vid, answer in changes.items():
        v = by_id.get(vid)
        if v is None:
            raise Invalid("A verdict of the resolution is not part of this evaluation.")
        if answer not in allowed_answers(v.target_type, targets.get((v.target_type, v.target_id))):
            raise Invalid(f"{answer!r} is not an answer for {v.target_type} {v.target_id}.")
        if answer != v.human_answer:
            before = _snapshot(v)
            v.human_answer, v.by_user_id, v.at = answer, user.id, now
            changed.append({"verdict": v.id, "target": f"{v.target_type}:{v.target_id}", "before": before,
                            "after": _snapshot(v)})
    disputed = {d.verdict_id} if d.verdict_id is not None else set(by_id)
    n_changed = sum(1 for c in changed if c["verdict"] in disputed)
    outcome = "upheld" if not changed else "overturned" if n_changed >= len(disputed) else "partly_overturned"
    d.state, d.resolved_by, d.resolved_at = "resolved", user.id, now
    d.outcome, d.root_cause, d.resolution_note = outcome, root_cause, note
    ev.state = "resolved"
    if changed:
        ev.exported_at = None  # the changed verdicts go to the reviews dataset (the latest verdict counts)
    _touch(s, ev, now)
    audit.record(s, "resolved", user=user, target_type="evaluation", target_id=ev.id,
                 detail={"call_id": call.call_id, "dispute": d.id, "root_cause": root_cause, "outcome": outcome,
                         "note": note, "changes": changed, "before": {"state": "disputed"},
                         "after": {"state": "resolved"}})
    _after_change(s, ev)
    return ev


# ---- what the call page shows ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CommentView:
    id: int
    author: str
    at: dt.datetime
    body: str
    utterance_index: int | None
    target_type: str | None
    target_id: str | None


@dataclass(frozen=True, slots=True)
class VerdictRow:
    target: Target
    verdict: Verdict | None
    agrees: bool | None  # the human answer is the automatic one
    by: str | None
    comments: tuple[CommentView, ...] = ()


@dataclass(frozen=True, slots=True)
class DisputeView:
    id: int
    state: str
    raised_by: str
    raised_at: dt.datetime
    reason: str
    target: str | None  # "flag:<id>" / "item:<key>", None: the whole evaluation
    resolved_by: str | None
    resolved_at: dt.datetime | None
    outcome: str | None
    root_cause: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class Panel:
    """The evaluation part of the call page (and of its htmx updates)."""
    call_id: str
    mode: Mode
    session_name: str | None
    session_state: str | None
    evaluation: Evaluation | None  # None: none yet, or not visible to this user
    version: int
    state: str | None
    rows: tuple[VerdictRow, ...]
    comments: tuple[CommentView, ...]  # anchored to lines or to the whole call
    line_comments: dict[int, int]  # utterance index -> number of comments
    disputes: tuple[DisputeView, ...]
    can_edit: bool
    can_submit: bool
    can_answer: bool
    can_resolve: bool
    show_auto: bool
    hidden_reason: str | None
    window_ends_at: dt.datetime | None
    window_is_open: bool
    sample_id: int | None
    reviewer: str | None
    agreement: tuple[int, int] = (0, 0)  # (agreeing, judged)
    anchors: tuple[tuple[str, str], ...] = field(default=())  # (value, label) for the comment form


def build_panel(s: Session, user: User, call: CallIndex, page: CallPage, targets: dict[tuple[str, str], Target],
                mode: Mode, *, sample_id: int | None = None, now: dt.datetime | None = None) -> Panel:
    now = now or utcnow()
    session = s.get(CalibrationSession, mode.session_id) if mode.calibration else None
    ev = find_evaluation(s, call.call_id, mode, user)
    hidden = None
    if mode.calibration:
        rater_session(s, mode.session_id, call.call_id, user, open_only=False)
    elif ev is not None and not may_see_evaluation(user, call, ev.state):
        hidden, ev = "This call's evaluation is still a draft.", None
    names = {k: v for k, v in s.execute(select(User.id, User.display_name))}
    comments = ()
    if ev is not None:
        comments = tuple(CommentView(id=c.id, author=names.get(c.author_id, "?"), at=c.created_at, body=c.body,
                                     utterance_index=c.utterance_index, target_type=c.target_type,
                                     target_id=c.target_id)
                         for c in s.scalars(select(Comment).where(Comment.evaluation_id == ev.id,
                                                                  Comment.deleted_at.is_(None))
                                            .order_by(Comment.created_at, Comment.id)))
    verdicts = {(v.target_type, v.target_id): v for v in (ev.verdicts if ev is not None else [])}
    rows = []
    for key, t in targets.items():
        v = verdicts.get(key)
        rows.append(VerdictRow(target=t, verdict=v, agrees=None if v is None else v.human_answer == t.auto_answer,
                               by=None if v is None else names.get(v.by_user_id),
                               comments=tuple(c for c in comments if (c.target_type, c.target_id) == key)))
    # verdicts on targets no longer on the call (re-analysed since): still shown
    for key, v in verdicts.items():
        if key not in targets:
            t = Target(target_type=v.target_type, target_id=v.target_id,
                       label=f"{v.target_id} (no longer on the call)",
                       group=v.target_id, criterion=None, auto_answer=v.auto_answer or "", override_answer="",
                       start_s=None, end_s=None, play_from_s=None, summary=None)
            rows.append(VerdictRow(target=t, verdict=v, agrees=v.human_answer == v.auto_answer,
                                   by=names.get(v.by_user_id)))
    disputes = ()
    if ev is not None and not mode.calibration:
        vt = {v.id: f"{v.target_type}:{v.target_id}" for v in ev.verdicts}
        disputes = tuple(DisputeView(id=d.id, state=d.state, raised_by=names.get(d.raised_by, "?"),
                                     raised_at=d.raised_at, reason=d.reason, target=vt.get(d.verdict_id),
                                     resolved_by=names.get(d.resolved_by) if d.resolved_by else None,
                                     resolved_at=d.resolved_at, outcome=d.outcome, root_cause=d.root_cause,
                                     note=d.resolution_note)
                         for d in s.scalars(select(Dispute).where(Dispute.evaluation_id == ev.id)
                                            .order_by(Dispute.raised_at, Dispute.id)))
    state = ev.state if ev is not None else None
    if mode.calibration:
        editable = session is not None and session.state == "open" and state in (None, "draft")
    else:
        editable = hidden is None and state in (None, "draft") and may_review(user, call)
    judged = [r for r in rows if r.verdict is not None]
    line_comments: dict[int, int] = {}
    for c in comments:
        if c.utterance_index is not None:
            line_comments[c.utterance_index] = line_comments.get(c.utterance_index, 0) + 1
    anchors = (("", "the whole call"),) + tuple(
        (f"u:{ln.index}", f"line {ln.index + 1} ({ln.role}, {int(ln.start_s // 60):02d}:{int(ln.start_s % 60):02d})")
        for ln in page.lines) + tuple((f"{t.target_type}:{t.target_id}", f"{t.target_type}: {t.label}")
                                      for t in targets.values())
    return Panel(
        call_id=call.call_id, mode=mode, session_name=session.name if session else None,
        session_state=session.state if session else None, evaluation=ev,
        version=ev.version if ev is not None else 0, state=state, rows=tuple(rows),
        comments=tuple(c for c in comments if c.target_type is None), line_comments=line_comments,
        disputes=disputes, can_edit=editable, can_submit=editable and bool(judged),
        can_answer=ev is not None and not mode.calibration and may_answer(user, call) and window_open(ev, now),
        can_resolve=ev is not None and not mode.calibration and state == "disputed" and may_resolve(user, call),
        show_auto=not mode.calibration, hidden_reason=hidden,
        window_ends_at=ev.dispute_window_ends_at if ev is not None else None,
        window_is_open=ev is not None and window_open(ev, now),
        sample_id=(ev.sample_id if ev is not None and ev.sample_id else sample_id),
        reviewer=names.get(ev.reviewer_id) if ev is not None else None,
        agreement=(sum(1 for r in judged if r.agrees), len(judged)), anchors=anchors)


def evaluations_visible(s: Session, user: User, *, state: str | None = None, limit: int = 200):
    """The standard evaluations `user` may see (agents: of their own calls, from submission on; managers and
    trainers: their teams', from submission on; reviewers: their teams' drafts too), newest first, with each
    call's index row."""
    from webapp.scope import scoped

    stmt = scoped(select(Evaluation, CallIndex).join(CallIndex, CallIndex.call_id == Evaluation.call_id), user,
                  CallIndex).where(Evaluation.kind == STANDARD)
    if not can(user, "review"):
        stmt = stmt.where(Evaluation.state != "draft")
    if state:
        stmt = stmt.where(Evaluation.state == state)
    return s.execute(stmt.order_by(Evaluation.updated_at.desc(), Evaluation.id.desc()).limit(limit)).all()
