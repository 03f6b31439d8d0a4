"""process_call: one recording in, every dataset's rows out. Composes the stages in plain Python (no Prefect)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable

import numpy as np

from qa_pipeline.analysis.analyse import Analysis, CallFacts, analyse
from qa_pipeline.audio.decode import channel_correlation, downmix, load_audio
from qa_pipeline.audio.vad import detect_activity, padded_regions
from qa_pipeline.config import PipelineConfig
from qa_pipeline.errors import (
    W_DECLARED_MONO_IS_STEREO,
    W_DECLARED_STEREO_IS_MONO,
    W_DUAL_MONO,
    W_LOW_ROLE_CONFIDENCE,
    W_SILENT,
)
from qa_pipeline.pipeline.protect import findings_of, protect, protect_reanalysis, reanalysis_fix
from qa_pipeline.pipeline.resources import Resources
from qa_pipeline.pipeline.rows import (
    CallRecord,
    CallResult,
    analysis_rows,
    call_date_of,
    calls_row,
    metrics_row,
    reanalysed_calls_row,
    utterance_rows,
    utterances_from_rows,
    word_rows,
)
from qa_pipeline.privacy.redact import Redactor, analysable
from qa_pipeline.speech.metrics import conversation_metrics, talk_intervals
from qa_pipeline.speech.roles import decide_roles, roles_from_channel, roles_uncertain
from qa_pipeline.speech.utterances import group_utterances
from qa_pipeline.types import AGENT, UNKNOWN, CallMeta, RoleDecision, Utterance, Word

log = logging.getLogger("qa_pipeline")

Hook = Callable[[str, dict], None]


def diarization_options(config: PipelineConfig):
    """The config's diarization section as the diarizer's options (validated when the config was loaded)."""
    from qa_pipeline.speech.diarization import DiarizationOptions

    section = config.diarization
    return section if isinstance(section, DiarizationOptions) else DiarizationOptions(**section)


def script_role_phrases(script) -> tuple[str, ...]:
    """What an agent of this script says: the phrases of its opening and closing rules and its company names
    (with the configured ones: AnalysisResources.scripts adds them), for the role model's `script` feature
    (speech/ never reads scripts itself)."""
    phrases: list[str] = []
    for rule in script.rules:
        if rule.phase in ("opening", "closing") and rule.speaker == AGENT and rule.require != "none":
            for name in rule.phrase_sets:
                phrases.extend(script.phrases.get(name, (name,)))
    return tuple(dict.fromkeys(phrases + [c.lower() for c in script.companies]))


_PROMPT_MAX_WORDS = 50  # phrases of a script prompt, company names not counted: Whisper keeps 223 prompt tokens


def script_prompt(script, companies=()) -> str:
    """A short text in the script's language for Whisper to hear before each window (asr.script_prompt): the
    phrases of the agent's opening and closing rules, then the company names as written in the config (Whisper
    copies their spelling), e.g. "Buongiorno, buonasera, ... servizio clienti, Brightwave Energia."."""
    phrases: list[str] = []
    for rule in script.rules:
        if rule.phase in ("opening", "closing") and rule.speaker == AGENT and rule.require != "none":
            for name in rule.phrase_sets:
                phrases.extend(script.phrases.get(name, (name,)))
    kept, words = [], 0
    for p in dict.fromkeys(phrases):
        words += len(p.split())
        if words > _PROMPT_MAX_WORDS:
            break
        kept.append(p)
    given = {c.lower() for c in companies}
    names = list(dict.fromkeys([*companies, *(c for c in script.companies if c.lower() not in given)]))
    text = ", ".join(kept + names)
    return (text[:1].upper() + text[1:] + ".") if text else ""


def _script_prompt(meta: CallMeta, config: PipelineConfig, resources: Resources, language: str) -> str | None:
    """This call's script prompt when asr.script_prompt names its language."""
    if language not in config.asr.script_prompt:
        return None
    script = _call_script(meta, resources, language)
    if script.language != language:
        return None
    return script_prompt(script, config.analysis.companies_for(meta.campaign)) or None


def _role_phrases(meta: CallMeta, config: PipelineConfig, resources: Resources, language: str | None
                  ) -> tuple[str, ...]:
    """The script phrases of this call (its campaign's script in its language) for decide_roles."""
    return script_role_phrases(_call_script(meta, resources, language if language in ("en", "it") else "en"))


def _call_script(meta: CallMeta, resources: Resources, language: str):
    """The script this call is checked against: its campaign's, in `language`, for its call type."""
    from qa_pipeline.analysis.compliance import select_script

    return select_script(resources.analysis.scripts(meta.campaign), language=language, campaign=meta.campaign,
                         call_type=meta.call_type)


def _assign_stereo_roles(meta: CallMeta, config: PipelineConfig, words, direction,
                         script_phrases: tuple[str, ...] = ()) -> RoleDecision:
    """audio.agent_channel first (manifest or sidecar, then config); else the role model on the words."""
    side = meta.agent_channel if meta.agent_channel in ("left", "right") else None
    if side:
        return roles_from_channel(side, {0: "ch0", 1: "ch1"}, "metadata")
    if config.audio.agent_channel in ("left", "right"):
        return roles_from_channel(config.audio.agent_channel, {0: "ch0", 1: "ch1"}, "config")
    return decide_roles(words, ["ch0", "ch1"], direction=direction, script_phrases=script_phrases)


def process_call(meta: CallMeta, config: PipelineConfig, resources: Resources, *, source: str | None = None,
                 hook: Hook | None = None) -> CallResult:
    """Decode, find speech, transcribe, attribute speakers and roles, measure, analyse. Raises QAPipelineError.

    Args:
        resources: the loaded models and analysis resources (built once by the caller, see ResourcePool).
        source: where the call really lives when `meta.path` is a local copy (an object-store URI).
    """
    timings: dict[str, float] = {}
    flags = list(meta.issues)

    def stage(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 3)
        if hook:
            hook(name, {"call_id": meta.call_id, "seconds": timings[name]})

    # the call's Whisper model loads in the background while the call is decoded and its speech found
    resources.speech.transcriber(config.asr).prefetch(meta.language)
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
    transcript = resources.speech.transcriber(config.asr).transcribe(
        samples, audio.sample_rate, regions, language=meta.language, speaker_of_channel=speaker_of_channel,
        hotwords=config.analysis.companies_for(meta.campaign) if config.asr.company_hotwords else (),
        prompt_for=(lambda lang: _script_prompt(meta, config, resources, lang)) if config.asr.script_prompt else None,
    )
    stage("asr", t0)
    words: tuple[Word, ...] = transcript.words

    diarization_model = None
    t0 = time.perf_counter()
    if stereo:
        speakers = ["ch0", "ch1"]
        decision = _assign_stereo_roles(meta, config, words, meta.direction, _role_phrases(
            meta, config, resources, meta.language or transcript.info.language))
    else:
        speakers = [UNKNOWN]
        decision = RoleDecision({UNKNOWN: UNKNOWN}, "none", 0.0, "mono call, no diarization")
        diarizer = resources.speech.diarizer(diarization_options(config)) if words else None
        if diarizer is not None:
            from qa_pipeline.audio.decode import to_float
            from qa_pipeline.speech.diarization import assign_speakers

            result = diarizer.diarize(to_float(samples[0]), audio.sample_rate)
            stage("diarization", t0)
            t0 = time.perf_counter()
            diarization_model = getattr(diarizer, "model_name", "pyannote")
            if result.turns:
                words = assign_speakers(words, result.turns)
                speakers = [s for s in result.speakers if any(w.speaker == s for w in words)] or list(result.speakers)
                decision = decide_roles(words, speakers, direction=meta.direction, script_phrases=_role_phrases(
                    meta, config, resources, meta.language or transcript.info.language))
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
    record = CallRecord(
        meta=meta, source=source or meta.path, mode="stereo" if stereo else "mono", duration_s=duration,
        channels=samples.shape[0], language=transcript.info.language or None, config_hash=config.hash(),
        status=status, source_channels=audio.source_channels, source_sample_rate=audio.source_sample_rate,
        codec=audio.codec, language_probability=transcript.info.language_probability, agent_channel=agent_channel,
        role_method=decision.method, role_confidence=decision.confidence, role_evidence=decision.evidence,
        speakers=len(speakers), speech_s=float(transcript.info.speech_s), asr_model=transcript.info.model_name,
        asr_model_version=transcript.info.model_version, diarization_model=diarization_model, flags=tuple(flags),
    )
    m_row = metrics_row(meta.call_id, metrics)
    t0 = time.perf_counter()
    analysis = analyse_call(record, m_row, utterances, loudness, resources)
    stage("analysis", t0)
    result = CallResult(
        call_date=call_date_of(meta),
        calls=calls_row(record, analysis, analysis_hash=config.analysis_hash(), stage_seconds=timings),
        utterances=utterance_rows(meta.call_id, utterances, loudness, analysis.utterance_sentiment),
        words=word_rows(meta.call_id, words, utterances, roles),
        metrics=m_row,
        analysis=analysis_rows(meta.call_id, analysis),
        audio=audio,
    )
    # what is written is redacted (the analysis above ran on the words as transcribed): pipeline/protect.py
    t0 = time.perf_counter()
    result = protect(result, utterances, analysis, config, resources, language=record.language, campaign=meta.campaign)
    stage("privacy", t0)
    return replace(result, calls={**result.calls, "stage_seconds": dict(timings)})


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


def analyse_call(record: CallRecord, m_row: dict, utterances: tuple[Utterance, ...],
                 loudness: list[float | None] | None, resources: Resources) -> Analysis:
    """The analysis stage of one call (audio or imported transcript), from its record and metrics row."""
    return analyse(call_facts(record.meta, record.language, record.duration_s, record.flags, m_row), utterances,
                   resources.analysis, loudness if loudness is not None else [None] * len(utterances))


def call_facts(meta: CallMeta, language: str | None, duration_s: float, flags, m_row: dict) -> CallFacts:
    return CallFacts(
        call_id=meta.call_id, language=language, call_type=meta.call_type, direction=meta.direction,
        campaign=meta.campaign, duration_s=round(duration_s, 3),
        holds=tuple((h["start_s"], h["end_s"]) for h in (m_row.get("holds") or [])),
        silence_longest_s=m_row.get("silence_longest_s") or 0.0, silence_longest_at=m_row.get("silence_longest_at_s"),
        call_flags=tuple(flags or ()),
    )


def reanalyse_stored(call_row: dict, utt_rows: list[dict], m_row: dict, config: PipelineConfig,
                     resources: Resources, *, pii_rows: list[dict] | None = None,
                     raw_texts: dict[int, str] | None = None) -> CallResult:
    """The analysis of a stored call again (scripts, lexicons or analysis options changed): new calls, utterances
    and analysis rows from the stored ones; words, metrics and pii rows are unchanged and not rewritten.

    The stored text is redacted: the analysis reads it with each label as a placeholder word, and its evidence
    gets the labels back. With the original texts (`raw_texts`, kept under privacy.keep_raw_text) and the stored
    findings (`pii_rows`), the original is analysed and its evidence redacted again."""
    meta = CallMeta(path=call_row["path"], call_id=call_row["call_id"], audio_sha256=call_row["audio_sha256"],
                    agent_id=call_row.get("agent_id"), team=call_row.get("team"), campaign=call_row.get("campaign"),
                    direction=call_row.get("direction"), call_type=call_row.get("call_type"))
    stored = utterances_from_rows(utt_rows)
    redactor = None
    if raw_texts and all(u.index in raw_texts for u in stored):
        utterances = tuple(replace(u, text=raw_texts[u.index]) for u in stored)
        redactor = Redactor(utterances, findings_of(pii_rows or []))
    else:
        utterances = tuple(replace(u, text=analysable(u.text)) for u in stored)
    facts = call_facts(meta, call_row.get("language"), call_row["duration_s"], call_row.get("flags"), m_row)
    loudness = [r.get("loudness_db") for r in sorted(utt_rows, key=lambda r: r["utterance_index"])]
    analysis = analyse(facts, utterances, resources.analysis, loudness)
    result = CallResult(
        call_date=call_row["call_date"],
        calls=reanalysed_calls_row(call_row, analysis, analysis_hash=config.analysis_hash()),
        utterances=utterance_rows(meta.call_id, stored, loudness, analysis.utterance_sentiment),
        words=[],
        metrics={},
        analysis=analysis_rows(meta.call_id, analysis),
    )
    return protect_reanalysis(result, analysis, reanalysis_fix(redactor))
