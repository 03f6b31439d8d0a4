"""The moments QA staff should review, each with a severity and its evidence span: built from the compliance
results, events, sentiment and the call's own facts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from qa_pipeline.analysis.compliance import ComplianceResult
from qa_pipeline.analysis.events import Event
from qa_pipeline.analysis.sentiment import PartySentiment
from qa_pipeline.config import AnalysisOptions
from qa_pipeline.errors import W_LOW_ROLE_CONFIDENCE
from qa_pipeline.types import CUSTOMER, Utterance

if TYPE_CHECKING:
    from qa_pipeline.analysis.analyse import CallFacts

SEVERITY_OF_FAILURE = {"critical": "high", "major": "medium", "minor": "low", "info": "low"}


@dataclass(frozen=True, slots=True)
class Flag:
    flag_type: str
    severity: str  # high / medium / low
    reason: str
    utterance_index: int | None
    start_s: float | None
    end_s: float | None
    rule_id: str | None = None



def build_flags(facts: CallFacts, utterances: Sequence[Utterance], compliance: Sequence[ComplianceResult],
                events: Sequence[Event], parties: Sequence[PartySentiment], esc, options: AnalysisOptions) -> list[Flag]:
    flags: list[Flag] = []
    first = min((u.start for u in utterances), default=0.0)
    last = max((u.end for u in utterances), default=facts.duration_s)
    for r in compliance:
        if r.result != "failed":
            continue
        ev = r.evidence[0] if r.evidence else None
        if ev is not None:
            span = (ev.utterance_index, ev.start_s, ev.end_s)
        elif r.phase == "opening":
            span = (None, first, min(last, first + 20.0))
        elif r.phase == "closing":
            span = (None, max(first, last - 45.0), last)
        else:
            span = (None, None, None)
        kind = ("forbidden_phrase" if r.phase == "conduct"
                else "missing_disclosure" if "disclosure" in r.rule_id else "script_deviation")
        flags.append(Flag(kind, SEVERITY_OF_FAILURE[r.severity], f"{r.rule_id}: {r.reason}", *span, rule_id=r.rule_id))
    by_kind: dict[str, list[Event]] = {}
    for e in events:
        by_kind.setdefault(e.event_type, []).append(e)
    for e in by_kind.get("forbidden_content", []):
        flags.append(Flag("forbidden_phrase", "high", f"said {e.evidence_text!r} ({e.detail})", e.utterance_index,
                          e.start_s, e.end_s, "conduct.forbidden_content"))
    if "complaint_raised" in by_kind:
        c = by_kind["complaint_raised"][0]
        flags.append(Flag("customer_complaint", "medium", f"customer complaint: {c.evidence_text or c.detail}",
                          c.utterance_index, c.start_s, c.end_s))
        missing = [k for k in ("apology_on_behalf_of_company", "transfer_to_quality") if k not in by_kind]
        if missing:
            flags.append(Flag("complaint_not_handled", "high", "complaint without " + " and ".join(
                m.replace("_", " ") for m in missing), c.utterance_index, c.start_s, c.end_s))
    for e in by_kind.get("price_not_given", []) + by_kind.get("conditions_not_given", []):
        flags.append(Flag("required_information_missing", "medium", e.detail, None, None, None))
    customer = next((p for p in parties if p.role == CUSTOMER), None)
    if customer is not None and customer.end <= options.negative_ending:
        tail = [u for u in utterances if u.role == CUSTOMER][-1]
        flags.append(Flag("negative_ending", "medium", f"customer sentiment at the end {customer.end:+.2f} "
                          f"(trajectory {customer.trajectory})", tail.index, tail.start, tail.end))
    for x in esc:
        flags.append(Flag("escalation", "low", x.reason, x.utterance_index, x.start_s, x.end_s))
    if facts.silence_longest_s >= options.dead_air_flag_s and not facts.holds:
        flags.append(Flag("long_dead_air", "low", f"{facts.silence_longest_s:.0f} s of silence", None,
                          facts.silence_longest_at, (facts.silence_longest_at or 0) + facts.silence_longest_s))
    if any(f.startswith(W_LOW_ROLE_CONFIDENCE[:4]) for f in facts.call_flags):
        flags.append(Flag("low_confidence_roles", "medium", "agent/customer roles uncertain: check who is who",
                          None, None, None))
    words = sum(u.n_words for u in utterances)
    if words:
        mean_p = sum(u.mean_probability * u.n_words for u in utterances) / words
        if mean_p < options.low_transcript_probability:
            flags.append(Flag("low_confidence_transcript", "low", f"mean word probability {mean_p:.2f}", None, None, None))
    return flags
