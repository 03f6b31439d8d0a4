"""Each dataset's rows, built in one place from typed records. A row is built once and never changed after.

The `calls` row of an audio call and of an imported transcript come from the same builder (`calls_row`), and the
re-analysis of a stored call replaces exactly the analysis fields of its stored row (`reanalysed_calls_row`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from qa_pipeline import __version__
from qa_pipeline.analysis.analyse import Analysis
from qa_pipeline.analysis.sentiment import UtteranceSentiment
from qa_pipeline.store.keys import flag_id
from qa_pipeline.types import AGENT, CUSTOMER, UNKNOWN, Audio, CallMeta, ConversationMetrics, Utterance


@dataclass(frozen=True, slots=True)
class CallResult:
    """Everything one call produces: the rows of each dataset and the call's date partition."""

    call_date: str
    calls: dict
    utterances: list[dict]
    words: list[dict]
    metrics: dict
    analysis: dict = field(default_factory=dict)  # dataset name -> rows (compliance, events, flags, sentiment)
    pii: list[dict] | None = None  # the pii dataset's rows (pipeline/protect.py); None: a re-analysis, stored ones stay
    raw_utterances: list[dict] | None = None  # original texts for <data>/_restricted (privacy.keep_raw_text only)
    redactions: list[dict] | None = None  # the audio redaction report (pipeline/audio_redaction.py); None: none made
    # the recording as decoded (channels kept), for the audio-redaction step: decoded once per call; never written
    audio: Audio | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What the pipeline learnt about a call before analysis: the `calls` row less its analysis fields."""

    meta: CallMeta
    source: str  # where the call lives: its path, or the object-store URI it was fetched from
    mode: str  # stereo / mono / transcript
    duration_s: float
    channels: int
    language: str | None
    config_hash: str
    status: str  # ok / silent
    metadata_source: str | None = None
    source_channels: int | None = None
    source_sample_rate: int | None = None
    codec: str | None = None
    language_probability: float | None = None
    agent_channel: str | None = None
    role_method: str | None = None
    role_confidence: float | None = None
    role_evidence: str | None = None
    speakers: int | None = None
    speech_s: float | None = None
    asr_model: str | None = None
    asr_model_version: str | None = None
    diarization_model: str | None = None
    flags: tuple[str, ...] = ()


def call_date_of(meta: CallMeta) -> str:
    if meta.started_at:
        try:
            return parse_timestamp(meta.started_at).date().isoformat()
        except ValueError:
            pass
    return "unknown"


def parse_timestamp(value: str) -> dt.datetime:
    """An ISO 8601 time as UTC (naive times are taken as UTC). Raises ValueError."""
    ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.timezone.utc)
    return ts.astimezone(dt.timezone.utc)


def timestamp_or_none(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _analysis_fields(analysis: Analysis, analysis_hash: str) -> dict:
    return dict(analysis_hash=analysis_hash, script_id=analysis.script.id, script_version=analysis.script.version,
                outcome=analysis.outcome)


def calls_row(record: CallRecord, analysis: Analysis, *, analysis_hash: str, stage_seconds: dict[str, float]) -> dict:
    """The `calls` row of a processed call (audio or imported transcript)."""
    m = record.meta
    return dict(
        call_id=m.call_id, audio_sha256=m.audio_sha256, path=record.source, agent_id=m.agent_id, team=m.team,
        campaign=m.campaign, direction=m.direction, call_type=m.call_type, started_at=timestamp_or_none(m.started_at),
        metadata_source=record.metadata_source or m.metadata_source, mode=record.mode,
        duration_s=round(record.duration_s, 3), channels=record.channels, source_channels=record.source_channels,
        source_sample_rate=record.source_sample_rate, codec=record.codec, language=record.language,
        language_probability=record.language_probability, agent_channel=record.agent_channel,
        role_method=record.role_method, role_confidence=record.role_confidence, role_evidence=record.role_evidence,
        speakers=record.speakers, speech_s=record.speech_s, asr_model=record.asr_model,
        asr_model_version=record.asr_model_version, diarization_model=record.diarization_model,
        config_hash=record.config_hash, pipeline_version=__version__, stage_seconds=dict(stage_seconds),
        flags=list(record.flags), status=record.status, processed_at=dt.datetime.now(dt.timezone.utc),
        **_analysis_fields(analysis, analysis_hash),
    )


def reanalysed_calls_row(stored: dict, analysis: Analysis, *, analysis_hash: str) -> dict:
    """A stored `calls` row with its analysis fields replaced (a new dict; `stored` is not changed)."""
    return {**{k: v for k, v in stored.items() if k != "call_date"}, **_analysis_fields(analysis, analysis_hash)}


def utterance_rows(call_id: str, utterances: tuple[Utterance, ...], loudness: list[float | None] | None,
                   sentiments: tuple[UtteranceSentiment, ...]) -> list[dict]:
    loudness = loudness or [None] * len(utterances)
    return [
        dict(call_id=call_id, utterance_index=u.index, speaker=u.speaker, role=u.role, start_s=u.start, end_s=u.end,
             text=u.text, mean_probability=u.mean_probability, n_words=u.n_words, loudness_db=lvl,
             sentiment=s.score, sentiment_label=s.label)
        for u, lvl, s in zip(utterances, loudness, sentiments)
    ]


def utterances_from_rows(rows: list[dict]) -> tuple[Utterance, ...]:
    return tuple(Utterance(r["utterance_index"], r["speaker"], r["role"], r["start_s"], r["end_s"], r["text"],
                           r["mean_probability"] if r["mean_probability"] is not None else 1.0, r["n_words"] or 0)
                 for r in sorted(rows, key=lambda r: r["utterance_index"]))


def word_rows(call_id: str, words, utterances: tuple[Utterance, ...], roles: dict) -> list[dict]:
    # a word belongs to the utterance of its speaker that spans it
    spans: dict[str, list[Utterance]] = {}
    for u in utterances:
        spans.setdefault(u.speaker, []).append(u)
    rows = []
    for i, w in enumerate(sorted(words, key=lambda w: (w.start, w.end))):
        idx = next((u.index for u in spans.get(w.speaker, ()) if u.start <= w.start <= u.end), None)
        rows.append(dict(call_id=call_id, word_index=i, utterance_index=idx, speaker=w.speaker,
                         role=roles.get(w.speaker, UNKNOWN), start_s=w.start, end_s=w.end, text=w.text,
                         probability=w.probability))
    return rows


def metrics_row(call_id: str, m: ConversationMetrics) -> dict:
    return dict(
        call_id=call_id,
        duration_s=m.duration_s,
        agent_talk_s=m.talk_s.get(AGENT),
        customer_talk_s=m.talk_s.get(CUSTOMER),
        unknown_talk_s=m.talk_s.get(UNKNOWN),
        agent_talk_ratio=m.talk_ratio.get(AGENT),
        customer_talk_ratio=m.talk_ratio.get(CUSTOMER),
        silence_total_s=m.silence_total_s,
        silence_longest_s=m.silence_longest_s,
        silence_longest_at_s=m.silence_longest_at,
        hold_count=m.hold_count,
        hold_total_s=m.hold_total_s,
        holds=[{"start_s": s, "end_s": e} for s, e in m.holds],
        overtalk_s=m.overtalk_s,
        agent_interruptions=m.interruptions.get(AGENT),
        customer_interruptions=m.interruptions.get(CUSTOMER),
        agent_wpm=m.words_per_minute.get(AGENT),
        customer_wpm=m.words_per_minute.get(CUSTOMER),
        agent_first_word_s=m.agent_first_word_s,
        longest_monologue_s=m.longest_monologue_s,
        longest_monologue_role=m.longest_monologue_role,
        longest_monologue_at_s=m.longest_monologue_at,
    )


def flag_ids(call_id: str, flags) -> list[str]:
    """Stable ids of a call's flags, in the order given: what identifies the finding (call, flag type, rule) and
    its rank among the call's findings of that kind in time order. Not the reason text, the time or the
    utterance: a re-transcription moves those, a script edit rewords the reason, and a QA verdict on the flag must
    stay attached to it."""
    rank: dict[tuple, int] = {}
    order = sorted(range(len(flags)), key=lambda i: (flags[i].start_s is None, flags[i].start_s or 0.0, i))
    ids: dict[int, str] = {}
    for i in order:
        kind = (flags[i].flag_type, flags[i].rule_id or "")
        n = rank[kind] = rank.get(kind, -1) + 1
        ids[i] = flag_id(call_id, kind[0], kind[1], n)
    return [ids[i] for i in range(len(flags))]


def analysis_rows(call_id: str, a: Analysis) -> dict[str, list[dict]]:
    """Rows of the compliance, events, flags and sentiment datasets."""
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
    flags = [dict(call_id=call_id, flag_id=fid, flag_type=f.flag_type, severity=f.severity, reason=f.reason,
                  rule_id=f.rule_id, utterance_index=f.utterance_index, start_s=f.start_s, end_s=f.end_s)
             for fid, f in zip(flag_ids(call_id, a.flags), a.flags)]
    sentiment = []
    for p in a.parties:
        esc = [dict(utterance_index=x.utterance_index, start_s=x.start_s, reason=x.reason)
               for x in a.escalations] if p.role == CUSTOMER else []
        q = list(p.quarters) + [None] * (4 - len(p.quarters))
        sentiment.append(dict(call_id=call_id, role=p.role, mean=p.mean, start=p.start, end=p.end, q1=q[0], q2=q[1],
                              q3=q[2], q4=q[3], trajectory=p.trajectory, escalations=esc))
    return {"compliance": compliance, "events": events, "flags": flags, "sentiment": sentiment}
