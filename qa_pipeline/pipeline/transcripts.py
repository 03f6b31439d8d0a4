"""Calls already transcribed elsewhere: `*.transcript.json` files go through the same analysis without audio.

Format (one file per call):
    {"call_id", "agent_id", "team", "campaign", "direction", "call_type", "started_at", "language",
     "utterances": [{"speaker": "agent"|"customer", "start": s, "end": s, "text": "..."}]}
Word times are spread evenly over each utterance (the import has none); their probability is left empty."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Callable

from qa_pipeline.config import PipelineConfig
from qa_pipeline.errors import Errors, IngestError
from qa_pipeline.pipeline.ingest import _validated, read_text_file
from qa_pipeline.pipeline.process import analyse_call
from qa_pipeline.pipeline.protect import protect
from qa_pipeline.pipeline.resources import Resources
from qa_pipeline.pipeline.rows import (
    CallRecord,
    CallResult,
    analysis_rows,
    call_date_of,
    calls_row,
    metrics_row,
    utterance_rows,
    word_rows,
)
from qa_pipeline.speech.metrics import conversation_metrics
from qa_pipeline.types import AGENT, CUSTOMER, CallMeta, Utterance, Word

FORMAT_HELP = (
    '{"call_id", "agent_id", "team", "campaign", "direction", "call_type", "started_at", "language", '
    '"utterances": [{"speaker": "agent"|"customer", "start": s, "end": s, "text"}]}'
)


def _field_problem(utterance) -> str:
    """Which field of an utterance is missing or not a number, without quoting any value."""
    if not isinstance(utterance, dict):
        return f"the utterance is a {type(utterance).__name__}, not an object"
    missing = [k for k in ("speaker", "start", "end", "text") if k not in utterance]
    if missing:
        return "missing " + ", ".join(missing)
    bad = []
    for k in ("start", "end"):
        try:
            float(utterance[k])
        except (TypeError, ValueError, OverflowError):
            bad.append(k)
    return ("not a number: " + ", ".join(bad)) if bad else "a field has the wrong type"


def import_transcript(path: Path, config: PipelineConfig, resources: Resources, *,
                      source: str | None = None, sha: str | None = None,
                      check: Callable[[CallMeta], None] | None = None) -> CallResult:
    """Read one transcript JSON and produce the same rows as an audio call (mode `transcript`).

    Everything is bounded before any work sized by it: the file (ingest.max_text_file_bytes), the number of
    utterances (ingest.max_utterances), each text (ingest.max_utterance_chars) and each time (a finite number of
    seconds in 0 .. audio.max_duration_s), so a bad file is a coded failure, never an allocation that kills the run.

    Args:
        sha: the file's SHA-256 if the caller has it already.
        check: called with the call's metadata before the analysis (the runner refuses a call_id bound to other
            content there).

    Raises:
        IngestError: not JSON, or a field is missing, malformed or out of bounds (the message names it and shows
            the format).
    """
    options = config.ingest
    maximum = config.audio.max_duration_s
    raw = read_text_file(Path(path), options)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise IngestError(Errors.E110, path=path, error=e, format=FORMAT_HELP) from e
    if not isinstance(data, dict) or not isinstance(data.get("utterances"), list):
        raise IngestError(Errors.E111, path=path, format=FORMAT_HELP)
    if not data.get("call_id"):
        raise IngestError(Errors.E112, path=path, format=FORMAT_HELP)
    if len(data["utterances"]) > options.max_utterances:
        raise IngestError(Errors.E118, path=path, count=len(data["utterances"]), maximum=options.max_utterances)
    fields = _validated(data, str(path), options)
    utterances: list[Utterance] = []
    words: list[Word] = []
    for i, u in enumerate(data["utterances"]):
        try:
            speaker = str(u["speaker"]).lower()
            start, end, text = float(u["start"]), float(u["end"]), str(u["text"]).strip()
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            # the message names the field, never its value: a failure row must not carry transcript text
            raise IngestError(Errors.E113, path=path, index=i, error=_field_problem(u), format=FORMAT_HELP) from e
        if speaker not in (AGENT, CUSTOMER):
            # a role-like word is shown; anything else (it may be transcript text put in the wrong field) is not
            shown = speaker if len(speaker) <= 16 and speaker.replace("_", "").isalpha() else f"<{len(speaker)} chars>"
            raise IngestError(Errors.E114, path=path, index=i, speaker=shown)
        for name, value in (("start", start), ("end", end)):
            if not math.isfinite(value):
                raise IngestError(Errors.E116, path=path, index=i, field=name, value=value)
            if not 0.0 <= value <= maximum:
                raise IngestError(Errors.E117, path=path, index=i, field=name, value=value, maximum=maximum)
        if end < start:
            raise IngestError(Errors.E115, path=path, index=i, end=end, start=start)
        if len(text) > options.max_utterance_chars:
            raise IngestError(Errors.E119, path=path, index=i, length=len(text), maximum=options.max_utterance_chars)
        tokens = text.split()
        step = (end - start) / max(1, len(tokens))
        for k, tok in enumerate(tokens):
            words.append(Word(round(start + k * step, 3), round(start + (k + 1) * step, 3), tok, 1.0, speaker))
        utterances.append(Utterance(len(utterances), speaker, speaker, start, end, text, 1.0, len(tokens)))
    utterances.sort(key=lambda u: u.start)
    utterances = [Utterance(i, u.speaker, u.role, u.start, u.end, u.text, u.mean_probability, u.n_words)
                  for i, u in enumerate(utterances)]
    sha = sha or hashlib.sha256(raw).hexdigest()
    meta = CallMeta(path=str(path), call_id=fields["call_id"], audio_sha256=sha, metadata_source="transcript",
                    **{k: fields[k] for k in ("agent_id", "team", "campaign", "direction", "call_type",
                                              "started_at", "language")})
    if check is not None:
        check(meta)
    duration = max((u.end for u in utterances), default=0.0)
    talk: dict[str, list[tuple[float, float]]] = {}
    for u in utterances:
        talk.setdefault(u.role, []).append((u.start, u.end))
    counts = {r: sum(u.n_words for u in utterances if u.role == r) for r in talk}
    metrics = conversation_metrics(duration, talk, utterances, counts, config.metrics)
    roles = {AGENT: AGENT, CUSTOMER: CUSTOMER}
    record = CallRecord(
        meta=meta, source=source or str(path), mode="transcript", duration_s=duration, channels=0,
        language=meta.language, config_hash=config.hash(), status="ok" if utterances else "silent",
        metadata_source="transcript", role_method="import", role_confidence=1.0, speakers=len(talk),
    )
    utterances = tuple(utterances)
    m_row = metrics_row(meta.call_id, metrics)
    analysis = analyse_call(record, m_row, utterances, None, resources)
    result = CallResult(
        call_date_of(meta),
        calls_row(record, analysis, analysis_hash=config.analysis_hash(), stage_seconds={}),
        utterance_rows(meta.call_id, utterances, None, analysis.utterance_sentiment),
        word_rows(meta.call_id, words, utterances, roles),
        m_row,
        analysis_rows(meta.call_id, analysis),
    )
    # what is written is redacted (the analysis above ran on the text as imported): pipeline/protect.py
    return protect(result, utterances, analysis, config, resources, language=meta.language, campaign=meta.campaign)
