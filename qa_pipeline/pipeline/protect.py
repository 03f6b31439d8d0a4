"""Redaction of a call's rows before they are written (privacy options: qa_pipeline.config.PrivacyOptions).

The analysis ran on the words as transcribed (rules need them: "my name is Laura" passes opening.agent_name); what
is written holds `[PERSON]`, `[CREDIT_CARD]`... in place of each finding: the utterances' and words' text, and
every piece of text the analysis took from them (compliance matched text and reasons, event evidence and details,
flag reasons, escalation reasons, the role decision's evidence). The findings themselves go to the `pii` dataset
(never the value); the original text goes to `<data>/_restricted/` only with privacy.keep_raw_text.

A re-analysis of a stored call (analysis options changed) reads the stored, redacted text: each label is turned
into a placeholder word for the analysis and back into the label in its results (`reanalysis_fix`); with
privacy.keep_raw_text the original text is analysed and redacted again with the stored findings."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from qa_pipeline.analysis.analyse import Analysis
from qa_pipeline.config import PipelineConfig
from qa_pipeline.pipeline.rows import CallResult
from qa_pipeline.privacy.detect import Finding
from qa_pipeline.privacy.redact import Redactor, restore

Fix = Callable[[str | None, int | None], str | None]

# Every free-text field of the per-call datasets (what redaction rewrites); tests/test_privacy_text.py checks that
# each string column of those datasets is here or in NOT_TEXT, so a new text column cannot be missed.
FREE_TEXT = {
    "calls": ("role_evidence",),
    "utterances": ("text",),
    "words": ("text",),
    "compliance": ("reason", "matched_text"),
    "events": ("evidence_text", "detail"),
    "flags": ("reason",),
    "sentiment": ("escalations",),
}
NOT_TEXT = {  # identifiers, codes and enumerations: never transcript text
    "calls": ("call_id", "audio_sha256", "path", "agent_id", "team", "campaign", "direction", "call_type",
              "metadata_source", "mode", "codec", "language", "agent_channel", "role_method", "asr_model",
              "asr_model_version", "diarization_model", "config_hash", "analysis_hash", "script_id",
              "script_version", "outcome", "pipeline_version", "flags", "status", "stage_seconds"),
    "utterances": ("call_id", "speaker", "role", "sentiment_label"),
    "words": ("call_id", "speaker", "role"),
    "compliance": ("call_id", "script_id", "script_version", "rule_id", "phase", "result", "severity",
                   "match_method"),
    "events": ("call_id", "event_type", "role"),
    "flags": ("call_id", "flag_id", "flag_type", "severity", "rule_id"),
    "sentiment": ("call_id", "role", "trajectory"),
    "pii": ("call_id", "entity_type", "detector"),
    "redactions": ("call_id", "entities", "fill", "audio_path"),  # counts per entity type, enumerations, a path
}


def pii_rows(call_id: str, findings: Sequence[Finding]) -> list[dict]:
    return [dict(call_id=call_id, utterance_index=f.utterance_index, entity_type=f.entity_type, start_s=f.start_s,
                 end_s=f.end_s, char_start=f.char_start, char_end=f.char_end, confidence=f.confidence,
                 detector=f.detector) for f in findings]


def findings_of(rows: Sequence[dict]) -> list[Finding]:
    """Stored pii rows as findings (to redact the original text again)."""
    return [Finding(r["utterance_index"], r["entity_type"], r["char_start"], r["char_end"], r["confidence"],
                    r["detector"], r["start_s"], r["end_s"]) for r in rows]


def raw_rows(call_id: str, utterances) -> list[dict]:
    return [dict(call_id=call_id, utterance_index=u.index, speaker=u.speaker, role=u.role, start_s=u.start,
                 end_s=u.end, text=u.text) for u in utterances]


def protect(result: CallResult, utterances, analysis: Analysis, config: PipelineConfig, resources, *,
            language: str | None, campaign: str | None) -> CallResult:
    """The rows of a processed call (audio or imported transcript) with every text redacted, its pii rows and,
    with privacy.keep_raw_text, its original text for the restricted folder.

    Raises:
        ModelLoadError: E320, the PII detector cannot be loaded (the call fails: nothing unredacted is written).
    """
    options = config.privacy
    if not options.enabled:
        return replace(result, pii=[], raw_utterances=None)
    call_id = result.calls["call_id"]
    findings = resources.privacy.detect(utterances, language, words=result.words,
                                        allow=config.analysis.companies_for(campaign))
    red = Redactor(utterances, findings)
    utt = [{**r, "text": red.text(r["utterance_index"])} for r in result.utterances]
    words = _redacted_words(result.words, red)
    out = _redacted_analysis(result, analysis, red.fragment, red)
    return replace(out, utterances=utt, words=words, pii=pii_rows(call_id, findings),
                   raw_utterances=raw_rows(call_id, utterances) if options.keep_raw_text else None)


def reanalysis_fix(redactor: Redactor | None) -> Fix:
    """How a re-analysis's texts are made safe: redacted again from the original text (kept raw text and the stored
    findings), or the placeholders of already-redacted text turned back into labels."""
    if redactor is not None:
        return lambda text, index: restore(redactor.fragment(text, index))
    return lambda text, index: restore(text)


def protect_reanalysis(result: CallResult, analysis: Analysis, fix: Fix) -> CallResult:
    """The analysis rows of a re-analysed stored call made safe with `fix` (its utterance text is the stored one)."""
    return _redacted_analysis(result, analysis, fix, None)


def _redacted_words(rows: list[dict], red: Redactor) -> list[dict]:
    if not red.active:
        return rows
    by_utt: dict[int | None, list[int]] = {}
    for k, r in enumerate(rows):
        by_utt.setdefault(r["utterance_index"], []).append(k)
    texts: dict[int, str] = {}
    for idx, ks in by_utt.items():
        ordered = sorted(ks, key=lambda k: (rows[k]["start_s"], rows[k]["end_s"], k))
        if idx is None:
            for k in ordered:
                texts[k] = red.sweep(rows[k]["text"])
            continue
        for k, text in zip(ordered, red.words(idx, [rows[k] for k in ordered])):
            texts[k] = text
    return [{**r, "text": texts.get(k, r["text"])} for k, r in enumerate(rows)]


def _redacted_analysis(result: CallResult, analysis: Analysis, fix: Fix, red: Redactor | None) -> CallResult:
    rows = dict(result.analysis)
    compliance = []
    for k, row in enumerate(rows.get("compliance", [])):
        r = analysis.compliance[k] if k < len(analysis.compliance) else None
        ev = r.evidence if r is not None and r.rule_id == row["rule_id"] else ()
        first = ev[0].utterance_index if ev else row.get("utterance_index")
        matched = " | ".join(fix(m.text, m.utterance_index) or "" for m in ev) if ev else fix(row.get("matched_text"),
                                                                                            first)
        compliance.append({**row, "matched_text": matched, "reason": fix(row.get("reason"), first)})
    events = [{**row, "evidence_text": fix(row.get("evidence_text"), row.get("utterance_index")),
               "detail": fix(row.get("detail"), row.get("utterance_index"))} for row in rows.get("events", [])]
    flags = [{**row, "reason": fix(row.get("reason"), row.get("utterance_index"))} for row in rows.get("flags", [])]
    sentiment = [{**row, "escalations": [{**x, "reason": fix(x.get("reason"), x.get("utterance_index"))}
                                         for x in (row.get("escalations") or [])]}
                 for row in rows.get("sentiment", [])]
    rows.update(compliance=compliance, events=events, flags=flags, sentiment=sentiment)
    calls = {**result.calls, "role_evidence": fix(result.calls.get("role_evidence"), None)}
    return replace(result, calls=calls, analysis=rows)
