"""Analysis of a transcribed call: script compliance, events, sentiment and the flags QA staff review.

Works on utterances alone, so it runs the same on audio calls, imported transcripts, and stored transcripts when
only the analysis changed (no re-transcription)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from qa_pipeline.analysis.compliance import ComplianceResult, Match, Script, select_script
from qa_pipeline.analysis.events import Event, detect_events, outcome_of
from qa_pipeline.analysis.flags import Flag, build_flags
from qa_pipeline.analysis.resources import AnalysisResources
from qa_pipeline.analysis.sentiment import PartySentiment, escalations, party_sentiment, score_utterances
from qa_pipeline.types import AGENT, CUSTOMER, Utterance


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
class Analysis:
    script: Script
    compliance: tuple[ComplianceResult, ...]
    events: tuple[Event, ...]
    utterance_sentiment: tuple  # UtteranceSentiment per utterance, same order
    parties: tuple[PartySentiment, ...]
    escalations: tuple
    flags: tuple[Flag, ...]
    outcome: str | None


def analyse(facts: CallFacts, utterances: Sequence[Utterance], resources: AnalysisResources,
            loudness_db: Sequence[float | None] | None = None) -> Analysis:
    """Compliance, events, sentiment and flags of one call, with the loaded `resources` (and their options)."""
    options = resources.options
    language = facts.language if facts.language in ("en", "it") else "en"
    script = select_script(resources.scripts(facts.campaign), language=language, campaign=facts.campaign,
                           call_type=facts.call_type)
    matcher = resources.matcher(script, language)
    docs = matcher.docs([u.text for u in utterances])
    ev_matcher = resources.event_matcher(language)

    forbidden: list[Match] = []
    fm = resources.forbidden_matcher(language)
    if fm is not None:
        found = fm.find([d for d, u in zip(docs, utterances) if u.role == AGENT],
                        [u for u in utterances if u.role == AGENT])
        forbidden = found.get("forbidden", [])
    events = detect_events(utterances, docs, ev_matcher, call_type=facts.call_type, holds=facts.holds,
                           forbidden=forbidden)
    kinds = {e.event_type for e in events}
    compliance = check_all(script, matcher, utterances, docs, facts, kinds)

    sentiments = score_utterances(utterances, language, resources.sentiment, options)
    parties = tuple(p for p in (party_sentiment(utterances, sentiments, r, facts.duration_s, options)
                                for r in (AGENT, CUSTOMER)) if p)
    esc = tuple(escalations(utterances, sentiments, loudness_db, options))
    flags = build_flags(facts, utterances, compliance, events, parties, esc, options)
    return Analysis(script, tuple(compliance), tuple(events), tuple(sentiments), parties, esc, tuple(flags),
                    outcome_of(events))


def check_all(script, matcher, utterances, docs, facts: CallFacts, kinds: set[str]) -> list[ComplianceResult]:
    from qa_pipeline.analysis.compliance import check_compliance

    return check_compliance(script, matcher, utterances, docs, call_type=facts.call_type,
                            direction=facts.direction, events=kinds)
