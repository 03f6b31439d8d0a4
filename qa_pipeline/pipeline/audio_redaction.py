"""The audio-redaction step of a processed call (privacy.audio): its redacted copy, redaction report and flag.

After `process_call`, before the call's rows are written: the recording is decoded again (channels kept), every
`pii` finding's span is muted (qa_pipeline.privacy.audio.redact) and the verify loop runs with the same ASR (the
call's Transcriber from the ResourcePool's speech models) and the same detector. The copy goes to
`<data>/redacted_audio/<call_date>/<file key>.<opus|wav>` (DataFolder: atomic, owner-only), the report to the
`redactions` dataset (one row per call), and a residual adds a `redaction_residual` flag (W008) to the call."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace

import numpy as np

from qa_pipeline.audio.decode import decode_spans, load_audio
from qa_pipeline.audio.vad import detect_activity, padded_regions
from qa_pipeline.config import PipelineConfig
from qa_pipeline.errors import W_REDACTION_RESIDUAL, Warnings
from qa_pipeline.pipeline.resources import Resources
from qa_pipeline.pipeline.rows import CallResult
from qa_pipeline.privacy.audio import (
    encode,
    extension,
    muted_level_dbfs,
    padded_spans,
    redact,
)
from qa_pipeline.store.folder import DataFolder, as_folder
from qa_pipeline.store.keys import file_key, flag_id
from qa_pipeline.store.schema import REDACTED_AUDIO_DIR
from qa_pipeline.types import SpeechRegion, Utterance

log = logging.getLogger("qa_pipeline")

RESIDUAL_FLAG = "redaction_residual"
FORMATS = ("opus", "wav")
VERIFY_ENCODER_MIN_S = 15.0
VERIFY_TEMPERATURES = (0.0, 0.4, 0.8)
VERIFY_BEST_OF = 2


def redacted_audio_relpath(call_date: str, call_id: str, fmt: str) -> str:
    return f"{REDACTED_AUDIO_DIR}/{call_date}/{file_key(call_id)}{extension(fmt)}"


def redacted_copies(folder: DataFolder, call_id: str) -> list[str]:
    """Every redacted copy of the call, in any date folder and format."""
    key = file_key(call_id)
    return [rel for fmt in FORMATS for rel in folder.glob(f"{REDACTED_AUDIO_DIR}/*/{key}{extension(fmt)}")]


def make_verifier(resources: Resources, config: PipelineConfig, *, language: str | None, channels: int,
                  allow=()):
    """The verify loop's ear: re-transcribe windows of the redacted audio with the call's ASR (all of a round in
    one call: packed and decoded as one batch), search them with the call's detector, return the findings' time
    spans."""
    # The verify windows hold seconds of speech around each muted span: the encoder hears them plus 5 s of padding
    # (at least VERIFY_ENCODER_MIN_S), not Whisper's 30 s, as its attention costs the square of the length. Their
    # speech pieces often read as improbable to Whisper, which then sampled 5 candidates at each of 5 further
    # temperatures (a 20-minute call's verify took 19 s, its whole ASR 32 s): a shorter fallback. Greedy text alone
    # is cheaper still, but its improbable readings invent names ("customer service" heard as "my name is Sir
    # Rose"): false residuals, whole turns muted.
    asr = replace(config.asr, encoder_min_s=config.asr.encoder_min_s or VERIFY_ENCODER_MIN_S,
                  temperatures=VERIFY_TEMPERATURES, best_of=min(config.asr.best_of, VERIFY_BEST_OF))
    transcriber = resources.speech.transcriber(asr)
    speaker_of_channel = {0: "ch0", 1: "ch1"} if channels == 2 else {0: "unknown"}

    def verify(samples: np.ndarray, sample_rate: int, windows) -> list[tuple[float, float]]:
        # what is heard is the speech of each window, found per channel as the call's ASR regions are (Silero),
        # without the crosstalk test (a window is too short to estimate the leak; hearing bleed costs time, not
        # safety): muted spans are digital silence, and Whisper given seconds of it invents text and falls back
        # through every temperature
        regions = []
        for a, b in windows:
            i, j = int(a * sample_rate), int(np.ceil(b * sample_rate))
            for ch in range(samples.shape[0]):
                piece = samples[ch:ch + 1, i:j]
                if not piece.size or not np.any(piece):
                    continue
                activity = detect_activity(piece, sample_rate, config.vad)
                regions += [SpeechRegion(ch, float(a) + r.start, float(a) + r.end)
                            for r in padded_regions(activity, 0, config.vad, piece.shape[1] / sample_rate)]
        if not regions:
            return []
        words = transcriber.transcribe(samples, sample_rate, regions, language=language,
                                       speaker_of_channel=speaker_of_channel).words
        utterances, rows = _utterances(words)
        if not utterances:
            return []
        found = resources.privacy.detect(utterances, language, words=rows, allow=allow)
        return [(f.start_s, f.end_s) for f in found]

    return verify


def _utterances(words) -> tuple[list[Utterance], list[dict]]:
    """Words re-transcribed from a window, as utterances (one per speaker stretch, split at 1 s gaps) and word
    rows, for the detector."""
    utts: list[Utterance] = []
    rows: list[dict] = []
    groups: list[list] = []
    for w in sorted(words, key=lambda w: (w.speaker, w.start)):
        if groups and groups[-1][-1].speaker == w.speaker and w.start - groups[-1][-1].end <= 1.0:
            groups[-1].append(w)
        else:
            groups.append([w])
    for k, g in enumerate(sorted(groups, key=lambda g: g[0].start)):
        text = " ".join(w.text.strip() for w in g).strip()
        utts.append(Utterance(k, g[0].speaker, "unknown", g[0].start, g[-1].end, text,
                              float(np.mean([w.probability for w in g])), len(g)))
        rows += [dict(utterance_index=k, start_s=w.start, end_s=w.end, text=w.text.strip()) for w in g]
    return utts, rows


def redact_call_audio(data_dir, result: CallResult, audio_path: str, config: PipelineConfig,
                      resources: Resources | None, *, campaign: str | None = None) -> CallResult:
    """The call's result with its redaction report (and residual flag) added, its redacted copy written. A call
    without findings gets no copy (its recording holds nothing to mute) and no report; a stale copy is removed.
    The seconds it took are the call's `audio_redaction` stage (decode, mute, verify loop, encode, check)."""
    t0 = time.perf_counter()
    out = _redact_call_audio(data_dir, result, audio_path, config, resources, campaign=campaign)
    if out.redactions:
        stages = {**dict(out.calls.get("stage_seconds") or {}), "audio_redaction": round(time.perf_counter() - t0, 3)}
        out = replace(out, calls={**out.calls, "stage_seconds": stages})
    return out


def _redact_call_audio(data_dir, result: CallResult, audio_path: str, config: PipelineConfig,
                       resources: Resources | None, *, campaign: str | None = None) -> CallResult:
    options = config.privacy
    folder = as_folder(data_dir)
    call_id = result.calls["call_id"]
    if not options.enabled or not options.audio or result.pii is None or result.calls.get("mode") == "transcript":
        return result
    stale = redacted_copies(folder, call_id)
    if not result.pii:
        for rel in stale:
            folder.remove(rel)
        folder.remove_key("redactions", call_id)
        return result
    audio = result.audio if result.audio is not None else load_audio(audio_path, config.audio)
    samples, rate = audio.samples, audio.sample_rate
    language = result.calls.get("language")
    verifier = None
    if options.audio_verify and resources is not None:
        verifier = make_verifier(resources, config, language=language, channels=samples.shape[0],
                                 allow=config.analysis.companies_for(campaign))
    red = redact(samples, rate, result.pii, result.utterances, margin_s=options.audio_margin_ms / 1000.0,
                 fill=options.audio_fill, verifier=verifier)
    data = encode(red.samples, rate, options.audio_format)
    rel = redacted_audio_relpath(result.call_date, call_id, options.audio_format)
    folder.write_bytes(rel, data)
    for other in stale:
        if other != rel:
            folder.remove(other)
    level = None
    if options.audio_fill == "silence":
        level = _written_level(folder, rel, result.pii, config)
    report = dict(call_id=call_id, entities=dict(sorted(red.entities.items())), spans=len(red.spans),
                  seconds_muted=red.seconds_muted, residual_hits=red.residual_hits, turns_muted=red.turns_muted,
                  verified=red.verified, max_muted_dbfs=level, fill=options.audio_fill,
                  margin_ms=float(options.audio_margin_ms), audio_path=rel,
                  redacted_at=dt.datetime.now(dt.timezone.utc))
    out = replace(result, redactions=[report])
    if red.residual_hits:
        flags = list(out.analysis.get("flags", []))
        rank = sum(1 for f in flags if f["flag_type"] == RESIDUAL_FLAG)
        flags.append(dict(call_id=call_id, flag_id=flag_id(call_id, RESIDUAL_FLAG, None, rank),
                          flag_type=RESIDUAL_FLAG, severity="high",
                          reason=f"{red.residual_hits} finding(s) heard again in the redacted audio: "
                                 f"{red.turns_muted} turn(s) muted whole; "
                                 f"{Warnings.W008.action}",
                          rule_id=None, utterance_index=None, start_s=None, end_s=None))
        call_flags = list(out.calls.get("flags") or [])
        if W_REDACTION_RESIDUAL not in call_flags:
            call_flags.append(W_REDACTION_RESIDUAL)
        out = replace(out, analysis={**out.analysis, "flags": flags}, calls={**out.calls, "flags": call_flags})
    return out


def _written_level(folder: DataFolder, rel: str, pii_rows, config: PipelineConfig) -> float | None:
    """The loudest 20 ms inside the findings' own spans of the copy as written (those stretches decoded again)."""
    if folder.is_uri:
        return None
    spans = padded_spans([(r["start_s"], r["end_s"]) for r in pii_rows], 0.0, float("inf"))
    levels = [muted_level_dbfs(samples, config.audio.sample_rate, [(a - t0, b - t0)])
              for (a, b), (t0, samples) in zip(spans, decode_spans(folder.path(rel), spans, config.audio.sample_rate))]
    levels = [x for x in levels if x is not None]
    return max(levels) if levels else None
