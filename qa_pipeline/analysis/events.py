"""Events the job description cares about, each with its evidence: complaint (and whether the agent apologised on
behalf of the company and transferred it to quality control), objection (and whether it was handled), task outcome
(order taken, appointment set, survey completed, information given), transfer, required information not given,
forbidden content, hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import yaml

from qa_pipeline.analysis.compliance import Match, Rule, Script, ScriptMatcher
from qa_pipeline.config import DEFAULTS_DIR
from qa_pipeline.types import AGENT, CUSTOMER, Utterance

SALES_TYPES = ("order", "telesales_cold", "telesales_warm", "telesales_hot")


@dataclass(frozen=True, slots=True)
class Event:
    event_type: str
    utterance_index: int | None
    start_s: float | None
    end_s: float | None
    role: str | None
    evidence_text: str
    confidence: float
    detail: str = ""


def event_matcher(language: str, nlp) -> ScriptMatcher:
    """The matcher of the packaged event phrases of `language` (built by AnalysisResources, once per language)."""
    data = yaml.safe_load((DEFAULTS_DIR / "events.yaml").read_text(encoding="utf-8"))
    sets = data.get(language) or data["en"]
    rules = tuple(Rule(id=name, phase="event", description="", require="any", phrase_sets=(name,),
                       speaker=spec["speaker"]) for name, spec in sets.items())
    script = Script(id=f"events-{language}", version=str(data.get("version", 1)), language=language,
                    phrases={name: tuple(p.lower() for p in spec["phrases"]) for name, spec in sets.items()},
                    rules=rules)
    return ScriptMatcher(script, nlp)


def _ev(kind: str, m: Match, role: str, detail: str = "") -> Event:
    return Event(kind, m.utterance_index, m.start_s, m.end_s, role, m.text, m.confidence, detail)


def detect_events(
    utterances: Sequence[Utterance],
    docs: Sequence,
    matcher: ScriptMatcher,
    *,
    call_type: str | None,
    holds: Sequence[tuple[float, float]] = (),
    forbidden: Sequence[Match] = (),
) -> list[Event]:
    by_role: dict[str, dict[str, list[Match]]] = {}
    for role in (AGENT, CUSTOMER):
        idx = [i for i, u in enumerate(utterances) if u.role == role]
        found = matcher.find([docs[i] for i in idx], [utterances[i] for i in idx])
        speaker_of = {r.id: r.speaker for r in matcher.script.rules}
        by_role[role] = {k: v for k, v in found.items() if speaker_of.get(k) == role}
    agent, customer = by_role[AGENT], by_role[CUSTOMER]
    events: list[Event] = []

    complaints = customer.get("complaint_raised", [])
    if complaints or call_type == "complaint":
        first = complaints[0] if complaints else None
        at = first.start_s if first else 0.0
        if first:
            events.append(_ev("complaint_raised", first, CUSTOMER))
        else:
            events.append(Event("complaint_raised", None, None, None, None, "", 0.6, "call type is complaint"))
        apologies = [m for m in agent.get("apology", []) + agent.get("apology_on_behalf_of_company", [])
                     if m.start_s >= at - 5]
        company = [m for m in agent.get("apology_on_behalf_of_company", []) if m.start_s >= at - 5]
        if company:
            events.append(_ev("apology_on_behalf_of_company", company[0], AGENT))
        quality = [m for m in agent.get("transfer_to_quality", []) if m.start_s >= at - 5]
        if quality:
            events.append(_ev("transfer_to_quality", quality[0], AGENT))
    apologies = agent.get("apology", []) + agent.get("apology_on_behalf_of_company", [])
    if apologies:
        events.append(_ev("apology", min(apologies, key=lambda m: m.start_s), AGENT))
    for m in agent.get("transfer", [])[:1]:
        events.append(_ev("transfer", m, AGENT))

    for obj in customer.get("objection_raised", []):
        events.append(_ev("objection_raised", obj, CUSTOMER))
        # handled: the agent answers with a handling phrase within the next 30 s
        answer = [m for m in agent.get("objection_handled", []) if obj.start_s < m.start_s <= obj.end_s + 30]
        if answer:
            events.append(_ev("objection_handled", answer[0], AGENT, f"answers objection at {obj.start_s:.1f} s"))

    order = agent.get("order_taken", [])
    if order:
        events.append(_ev("order_taken", order[0], AGENT))
    elif customer.get("order_agreed") and call_type in SALES_TYPES:
        events.append(_ev("order_taken", customer["order_agreed"][0], CUSTOMER, "customer agreed to order"))
    if agent.get("appointment_set"):
        events.append(_ev("appointment_set", agent["appointment_set"][0], AGENT))
    if agent.get("survey_completed"):
        events.append(_ev("survey_completed", agent["survey_completed"][0], AGENT))
    if agent.get("information_given"):
        events.append(_ev("information_given", agent["information_given"][0], AGENT))

    kinds = {e.event_type for e in events}
    if "order_taken" in kinds or call_type in SALES_TYPES:
        if not agent.get("price_mentioned"):
            events.append(Event("price_not_given", None, None, None, AGENT, "", 0.8,
                                "sales call without a price stated by the agent"))
        if "order_taken" in kinds and not agent.get("conditions_mentioned"):
            events.append(Event("conditions_not_given", None, None, None, AGENT, "", 0.7,
                                "order taken without contract conditions stated"))
    for m in forbidden:
        u = utterances[[x.index for x in utterances].index(m.utterance_index)] if utterances else None
        events.append(Event("forbidden_content", m.utterance_index, m.start_s, m.end_s, u.role if u else None,
                            m.text, m.confidence, m.phrase_set))
    for s, e in holds:
        events.append(Event("hold", None, s, e, None, "", 1.0, f"{e - s:.0f} s of silence on both sides"))
    events.sort(key=lambda e: (e.start_s is None, e.start_s or 0.0))
    return events


def outcome_of(events: Sequence[Event]) -> str | None:
    kinds = {e.event_type for e in events}
    for kind in ("order_taken", "appointment_set", "survey_completed", "information_given"):
        if kind in kinds:
            return kind
    return None
