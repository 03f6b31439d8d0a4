"""Analysis of a transcribed call: script compliance, events, sentiment and the flags QA staff review.

Works on utterances alone, so it runs the same on audio calls, imported transcripts, and stored transcripts when
only the analysis changed (no re-transcription)."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Sequence

from qa_pipeline.analysis.compliance import ComplianceResult, Match, Rule, Script, ScriptMatcher, load_scripts, select_script
from qa_pipeline.config import AnalysisOptions
from qa_pipeline.errors import W_LOW_ROLE_CONFIDENCE
from qa_pipeline.analysis.events import Event, detect_events, event_matcher, outcome_of
from qa_pipeline.analysis.nlp import load_nlp
from qa_pipeline.analysis.sentiment import PartySentiment, escalations, party_sentiment, score_utterances
from qa_pipeline.types import AGENT, CUSTOMER, Utterance

SEVERITY_OF_FAILURE = {"critical": "high", "major": "medium", "minor": "low", "info": "low"}


@dataclass(frozen=True, slots=True)
class CallFacts:
    call_id: str
    language: str | None
    call_type: str | None
    direction: str | None
    campaign: str | None
    duration_s: float
    holds: tuple[tuple[float, float], ...] = ()
    silence_longest_s: float = 0.0
    silence_longest_at: float | None = None
    call_flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Flag:
    flag_type: str
    severity: str  # high / medium / low
    reason: str
    utterance_index: int | None
    start_s: float | None
    end_s: float | None
    rule_id: str | None = None


@dataclass(frozen=True, slots=True)
class Analysis:
    script: Script
    compliance: tuple[ComplianceResult, ...]
    events: tuple[Event, ...]
    utterance_sentiment: tuple  # UtteranceSentiment per utterance, same order
    parties: tuple[PartySentiment, ...]
    escalations: tuple
    flags: tuple[Flag, ...]
    outcome: str | None


@functools.lru_cache(maxsize=64)
def _scripts(folder: str | None, companies: tuple[str, ...] = ()) -> tuple[Script, ...]:
    """The scripts of `folder` and the defaults, each also accepting the configured company names."""
    extra = tuple(c.lower() for c in companies)
    return tuple(dataclasses.replace(s, companies=tuple(dict.fromkeys(s.companies + extra))) if extra else s
                 for s in load_scripts(folder))


_MATCHERS: dict[tuple, ScriptMatcher] = {}


def _matcher(script: Script, language: str) -> ScriptMatcher:
    key = (repr(script), language)  # the whole script: a configured forbidden list or company names change it
    if key not in _MATCHERS:
        _MATCHERS[key] = ScriptMatcher(script, load_nlp(language))
    return _MATCHERS[key]


def _forbidden_rule(options: AnalysisOptions) -> Script | None:
    if not options.forbidden_phrases:
        return None
    return Script("forbidden", "1", "xx", {"forbidden": tuple(p.lower() for p in options.forbidden_phrases)},
                  (Rule("conduct.forbidden_content", "conduct", "configured forbidden phrases", "none",
                        ("forbidden",), severity="critical"),))


def analyse(facts: CallFacts, utterances: Sequence[Utterance], options: AnalysisOptions = AnalysisOptions(),
            loudness_db: Sequence[float | None] | None = None) -> Analysis:
    language = facts.language if facts.language in ("en", "it") else "en"
    script = select_script(_scripts(options.scripts_dir, options.companies_for(facts.campaign)), language=language, campaign=facts.campaign,
                           call_type=facts.call_type)
    matcher = _matcher(script, language)
    docs = matcher.docs([u.text for u in utterances])
    ev_matcher = event_matcher(language, matcher.nlp)

    forbidden: list[Match] = []
    extra = _forbidden_rule(options)
    if extra is not None:
        fm = _matcher(extra, language)
        found = fm.find([d for d, u in zip(docs, utterances) if u.role == AGENT],
                        [u for u in utterances if u.role == AGENT])
        forbidden = found.get("forbidden", [])
    events = detect_events(utterances, docs, ev_matcher, call_type=facts.call_type, holds=facts.holds,
                           forbidden=forbidden)
    kinds = {e.event_type for e in events}
    compliance = check_all(script, matcher, utterances, docs, facts, kinds)

    sentiments = score_utterances(utterances, language)
    parties = tuple(p for p in (party_sentiment(utterances, sentiments, r, facts.duration_s) for r in (AGENT, CUSTOMER)) if p)
    esc = tuple(escalations(utterances, sentiments, loudness_db))
    flags = build_flags(facts, utterances, compliance, events, parties, esc, options)
    return Analysis(script, tuple(compliance), tuple(events), tuple(sentiments), parties, esc, tuple(flags),
                    outcome_of(events))


def check_all(script, matcher, utterances, docs, facts: CallFacts, kinds: set[str]) -> list[ComplianceResult]:
    from qa_pipeline.analysis.compliance import check_compliance

    return check_compliance(script, matcher, utterances, docs, call_type=facts.call_type,
                            direction=facts.direction, events=kinds)


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
        kind = "forbidden_phrase" if r.phase == "conduct" else "missing_disclosure" if "disclosure" in r.rule_id else "script_deviation"
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


def analysis_rows(call_id: str, a: Analysis) -> dict[str, list[dict]]:
    """Rows of the compliance, events, flags and sentiment datasets."""
    import hashlib

    compliance = []
    for r in a.compliance:
        ev = r.evidence[0] if r.evidence else None
        compliance.append(dict(
            call_id=call_id, script_id=a.script.id, script_version=a.script.version, rule_id=r.rule_id,
            phase=r.phase, result=r.result, severity=r.severity, reason=r.reason,
            utterance_index=ev.utterance_index if ev else None, start_s=ev.start_s if ev else None,
            end_s=ev.end_s if ev else None,
            matched_text=" | ".join(m.text for m in r.evidence) if r.evidence else None,
            match_method=ev.method if ev else None, confidence=r.confidence if r.result != "not_applicable" else None))
    events = [dict(call_id=call_id, event_type=e.event_type, role=e.role, utterance_index=e.utterance_index,
                   start_s=e.start_s, end_s=e.end_s, evidence_text=e.evidence_text, confidence=e.confidence,
                   detail=e.detail) for e in a.events]
    flags = []
    for f in a.flags:
        fid = hashlib.sha256(f"{call_id}|{f.flag_type}|{f.rule_id}|{f.start_s}|{f.reason}".encode()).hexdigest()[:16]
        flags.append(dict(call_id=call_id, flag_id=fid, flag_type=f.flag_type, severity=f.severity, reason=f.reason,
                          rule_id=f.rule_id, utterance_index=f.utterance_index, start_s=f.start_s, end_s=f.end_s))
    sentiment = []
    for p in a.parties:
        esc = [dict(utterance_index=x.utterance_index, start_s=x.start_s, reason=x.reason)
               for x in a.escalations] if p.role == CUSTOMER else []
        q = list(p.quarters) + [None] * (4 - len(p.quarters))
        sentiment.append(dict(call_id=call_id, role=p.role, mean=p.mean, start=p.start, end=p.end, q1=q[0], q2=q[1],
                              q3=q[2], q4=q[3], trajectory=p.trajectory, escalations=esc))
    return {"compliance": compliance, "events": events, "flags": flags, "sentiment": sentiment}
