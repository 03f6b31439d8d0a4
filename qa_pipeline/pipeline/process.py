"""process_call: one recording in, every dataset's rows out. Composes the stages in plain Python (no Prefect)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from qa_pipeline import __version__
from qa_pipeline.speech.asr import Transcriber
from qa_pipeline.audio.decode import channel_correlation, downmix, load_audio
from qa_pipeline.config import PipelineConfig
from qa_pipeline.errors import (
    W_DECLARED_MONO_IS_STEREO,
    W_DECLARED_STEREO_IS_MONO,
    W_DUAL_MONO,
    W_LOW_ROLE_CONFIDENCE,
    W_SILENT,
    QAPipelineError,
)
from qa_pipeline.speech.metrics import conversation_metrics, talk_intervals
from qa_pipeline.speech.roles import decide_roles, roles_from_channel, roles_uncertain
from qa_pipeline.types import AGENT, CUSTOMER, UNKNOWN, CallMeta, ConversationMetrics, RoleDecision, Utterance, Word
from qa_pipeline.speech.utterances import group_utterances
from qa_pipeline.audio.vad import detect_activity, padded_regions

log = logging.getLogger("qa_pipeline")

Hook = Callable[[str, dict], None]


@dataclass(frozen=True, slots=True)
class CallResult:
    """Everything one call produces: the rows of each dataset and the call's date partition."""

    call_date: str
    calls: dict
    utterances: list[dict]
    words: list[dict]
    metrics: dict
    analysis: dict = field(default_factory=dict)  # dataset name -> rows (compliance, events, flags, sentiment)


@dataclass
class Models:
    """Loaded once per worker process, passed to every call."""

    config: PipelineConfig
    transcriber: Transcriber
    _diarizer: object = None
    diarizer_error: str | None = None

    @property
    def diarizer(self):
        if self._diarizer is None and self.diarizer_error is None:
            try:
                from qa_pipeline.speech.diarization import DiarizationOptions, Diarizer

                self._diarizer = Diarizer(self.config.diarization)
            except ImportError as e:
                self.diarizer_error = f"diarization unavailable ({e}); install qa-pipeline[diarization]"
                log.warning(self.diarizer_error)
        return self._diarizer


def load_models(config: PipelineConfig) -> Models:
    return Models(config=config, transcriber=Transcriber(config.asr))


def call_date_of(meta: CallMeta) -> str:
    if meta.started_at:
        try:
            return _parse_ts(meta.started_at).date().isoformat()
        except ValueError:
            pass
    return "unknown"


def _parse_ts(value: str) -> dt.datetime:
    ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.timezone.utc)
    return ts.astimezone(dt.timezone.utc)


def _timestamp(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return _parse_ts(value)
    except ValueError:
        return None


def _assign_stereo_roles(meta: CallMeta, config: PipelineConfig, words, direction) -> RoleDecision:
    side = meta.agent_channel if meta.agent_channel in ("left", "right") else None
    if side:
        return roles_from_channel(side, {0: "ch0", 1: "ch1"}, "metadata")
    if config.audio.agent_channel in ("left", "right"):
        return roles_from_channel(config.audio.agent_channel, {0: "ch0", 1: "ch1"}, "config")
    return decide_roles(words, ["ch0", "ch1"], direction=direction)


def process_call(meta: CallMeta, models: Models, *, hook: Hook | None = None,
                 config: PipelineConfig | None = None) -> CallResult:
    """Decode, find speech, transcribe, attribute speakers and roles, measure, analyse. Raises QAPipelineError.

    `config`: this run's configuration when `models` were loaded for another one with the same transcription
    settings (models are shared by transcription hash; analysis options must come from the run)."""
    config = config or models.config
    timings: dict[str, float] = {}
    flags = list(meta.issues)

    def stage(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 3)
        if hook:
            hook(name, {"call_id": meta.call_id, "seconds": timings[name]})

    t0 = time.perf_counter()
    audio = load_audio(meta.path, config.audio)
    samples = audio.samples
    if meta.declared_channels == 2 and audio.source_channels == 1:
        flags.append(W_DECLARED_STEREO_IS_MONO)
    if meta.declared_channels == 1 and audio.source_channels >= 2:
        flags.append(W_DECLARED_MONO_IS_STEREO)
    if samples.shape[0] == 2 and channel_correlation(samples) >= config.audio.dual_mono_correlation:
        flags.append(W_DUAL_MONO)
        samples = downmix(samples)
    stage("decode", t0)
    duration = samples.shape[1] / audio.sample_rate
    stereo = samples.shape[0] == 2

    t0 = time.perf_counter()
    activity = detect_activity(samples, audio.sample_rate, config.vad)
    regions = [r for c in range(samples.shape[0]) for r in padded_regions(activity, c, config.vad, duration)]
    stage("vad", t0)

    speaker_of_channel = {0: "ch0", 1: "ch1"} if stereo else {0: UNKNOWN}
    t0 = time.perf_counter()
    transcript = models.transcriber.transcribe(
        samples, audio.sample_rate, regions, language=meta.language, speaker_of_channel=speaker_of_channel,
        hotwords=config.analysis.companies_for(meta.campaign) if config.asr.company_hotwords else (),
    )
    stage("asr", t0)
    words: tuple[Word, ...] = transcript.words

    diarization_model = None
    t0 = time.perf_counter()
    if stereo:
        speakers = ["ch0", "ch1"]
        decision = _assign_stereo_roles(meta, config, words, meta.direction)
    else:
        speakers = [UNKNOWN]
        decision = RoleDecision({UNKNOWN: UNKNOWN}, "none", 0.0, "mono call, no diarization")
        diarizer = models.diarizer if words else None
        if diarizer is not None:
            from qa_pipeline.speech.diarization import assign_speakers

            from qa_pipeline.audio.decode import to_float

            result = diarizer.diarize(to_float(samples[0]), audio.sample_rate)
            stage("diarization", t0)
            t0 = time.perf_counter()
            diarization_model = getattr(diarizer, "model_name", "pyannote")
            if result.turns:
                words = assign_speakers(words, result.turns)
                speakers = [s for s in result.speakers if any(w.speaker == s for w in words)] or list(result.speakers)
                decision = decide_roles(words, speakers, direction=meta.direction)
    if roles_uncertain(decision, len(speakers), config.roles):
        flags.append(W_LOW_ROLE_CONFIDENCE)
    roles = decision.roles
    utterances = group_utterances(words, roles, max_gap_s=config.metrics.utterance_gap_s)
    stage("roles", t0)

    t0 = time.perf_counter()
    talk = talk_intervals(words, roles, config.metrics.talk_bridge_s)
    counts: dict[str, int] = {}
    for w in words:
        r = roles.get(w.speaker, UNKNOWN)
        counts[r] = counts.get(r, 0) + 1
    metrics = conversation_metrics(duration, talk, utterances, counts, config.metrics)
    stage("metrics", t0)

    loudness = utterance_loudness(utterances, activity.energy_db, activity.frame_s, stereo)

    status = "ok"
    if not words:
        status = "silent"
        flags.append(W_SILENT)
    agent_channel = None
    if stereo and decision.roles.get("ch0") == AGENT:
        agent_channel = "left"
    elif stereo and decision.roles.get("ch1") == AGENT:
        agent_channel = "right"
    call_row = dict(
        call_id=meta.call_id,
        audio_sha256=meta.audio_sha256,
        path=meta.path,
        agent_id=meta.agent_id,
        team=meta.team,
        campaign=meta.campaign,
        direction=meta.direction,
        call_type=meta.call_type,
        started_at=_timestamp(meta.started_at),
        metadata_source=meta.metadata_source,
        mode="stereo" if stereo else "mono",
        duration_s=round(duration, 3),
        channels=samples.shape[0],
        source_channels=audio.source_channels,
        source_sample_rate=audio.source_sample_rate,
        codec=audio.codec,
        language=transcript.info.language or None,
        language_probability=transcript.info.language_probability,
        agent_channel=agent_channel,
        role_method=decision.method,
        role_confidence=decision.confidence,
        role_evidence=decision.evidence,
        speakers=len(speakers),
        speech_s=float(transcript.info.speech_s),
        asr_model=transcript.info.model_name,
        asr_model_version=transcript.info.model_version,
        diarization_model=diarization_model,
        config_hash=config.hash(),
        pipeline_version=__version__,
        stage_seconds=timings,
        flags=flags,
        status=status,
        processed_at=dt.datetime.now(dt.timezone.utc),
    )
    utt_rows = utterance_rows(meta.call_id, utterances, loudness)
    m_row = metrics_row(meta.call_id, metrics)
    t0 = time.perf_counter()
    analysis = analyse_rows(call_row, utterances, utt_rows, m_row, config)
    stage("analysis", t0)
    return CallResult(
        call_date=call_date_of(meta),
        calls=call_row,
        utterances=utt_rows,
        words=word_rows(meta.call_id, words, utterances, roles),
        metrics=m_row,
        analysis=analysis,
    )


def utterance_loudness(utterances, energy_db: np.ndarray, frame_s: float, stereo: bool) -> list[float | None]:
    """Mean level (dBFS) of each utterance on its own channel."""
    out: list[float | None] = []
    for u in utterances:
        ch = 1 if (stereo and u.speaker == "ch1") else 0
        a, b = int(u.start / frame_s), max(int(u.start / frame_s) + 1, int(u.end / frame_s))
        seg = energy_db[ch, a:b]
        seg = seg[seg > -60.0]
        out.append(round(float(np.mean(seg)), 2) if seg.size else None)
    return out


def analyse_rows(call_row: dict, utterances, utt_rows: list[dict], m_row: dict, config: PipelineConfig) -> dict:
    """Run the analysis stage; fills sentiment into `utt_rows` and analysis fields into `call_row` (in place:
    both are this call's fresh rows) and returns the analysis datasets' rows."""
    from qa_pipeline.analysis.analyse import CallFacts, analyse, analysis_rows

    facts = CallFacts(
        call_id=call_row["call_id"], language=call_row.get("language"), call_type=call_row.get("call_type"),
        direction=call_row.get("direction"), campaign=call_row.get("campaign"), duration_s=call_row["duration_s"],
        holds=tuple((h["start_s"], h["end_s"]) for h in (m_row.get("holds") or [])),
        silence_longest_s=m_row.get("silence_longest_s") or 0.0, silence_longest_at=m_row.get("silence_longest_at_s"),
        call_flags=tuple(call_row.get("flags") or ()),
    )
    a = analyse(facts, utterances, config.analysis, [r.get("loudness_db") for r in utt_rows])
    for row, sent in zip(utt_rows, a.utterance_sentiment):
        row["sentiment"], row["sentiment_label"] = sent.score, sent.label
    call_row.update(analysis_hash=config.analysis_hash(), script_id=a.script.id, script_version=a.script.version,
                    outcome=a.outcome)
    return analysis_rows(call_row["call_id"], a)


def utterance_rows(call_id: str, utterances: tuple[Utterance, ...], loudness=None) -> list[dict]:
    loudness = loudness or [None] * len(utterances)
    return [
        dict(call_id=call_id, utterance_index=u.index, speaker=u.speaker, role=u.role, start_s=u.start, end_s=u.end,
             text=u.text, mean_probability=u.mean_probability, n_words=u.n_words, loudness_db=lvl)
        for u, lvl in zip(utterances, loudness)
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
