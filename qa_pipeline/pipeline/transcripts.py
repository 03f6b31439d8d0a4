"""Calls already transcribed elsewhere: `*.transcript.json` files go through the same analysis without audio.

Format (one file per call):
    {"call_id", "agent_id", "team", "campaign", "direction", "call_type", "started_at", "language",
     "utterances": [{"speaker": "agent"|"customer", "start": s, "end": s, "text": "..."}]}
Word times are spread evenly over each utterance (the import has none); their probability is left empty."""

from __future__ import annotations

import json
from pathlib import Path

from qa_pipeline.config import PipelineConfig
from qa_pipeline.errors import Errors, IngestError
from qa_pipeline.pipeline.ingest import _validated, file_sha256
from qa_pipeline.speech.metrics import conversation_metrics
from qa_pipeline.pipeline.process import analyse_call
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
from qa_pipeline.types import AGENT, CUSTOMER, CallMeta, Utterance, Word

FORMAT_HELP = (
    '{"call_id", "agent_id", "team", "campaign", "direction", "call_type", "started_at", "language", '
    '"utterances": [{"speaker": "agent"|"customer", "start": s, "end": s, "text"}]}'
)


def import_transcript(path: Path, config: PipelineConfig, resources: Resources, *,
                      source: str | None = None) -> CallResult:
    """Read one transcript JSON and produce the same rows as an audio call (mode `transcript`).

    Raises:
        IngestError: not JSON, or a field is missing or malformed (the message names it and shows the format).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IngestError(Errors.E110, path=path, error=e, format=FORMAT_HELP) from e
    if not isinstance(data, dict) or not isinstance(data.get("utterances"), list):
        raise IngestError(Errors.E111, path=path, format=FORMAT_HELP)
    if not data.get("call_id"):
        raise IngestError(Errors.E112, path=path, format=FORMAT_HELP)
    fields = _validated(data, str(path))
    utterances: list[Utterance] = []
    words: list[Word] = []
    for i, u in enumerate(data["utterances"]):
        try:
            speaker = str(u["speaker"]).lower()
            start, end, text = float(u["start"]), float(u["end"]), str(u["text"]).strip()
        except (KeyError, TypeError, ValueError) as e:
            raise IngestError(Errors.E113, path=path, index=i, error=e, format=FORMAT_HELP) from e
        if speaker not in (AGENT, CUSTOMER):
            raise IngestError(Errors.E114, path=path, index=i, speaker=speaker)
        if end < start:
            raise IngestError(Errors.E115, path=path, index=i, end=end, start=start)
        tokens = text.split()
        step = (end - start) / max(1, len(tokens))
        for k, tok in enumerate(tokens):
            words.append(Word(round(start + k * step, 3), round(start + (k + 1) * step, 3), tok, 1.0, speaker))
        utterances.append(Utterance(len(utterances), speaker, speaker, start, end, text, 1.0, len(tokens)))
    utterances.sort(key=lambda u: u.start)
    utterances = [Utterance(i, u.speaker, u.role, u.start, u.end, u.text, u.mean_probability, u.n_words)
                  for i, u in enumerate(utterances)]
    sha = file_sha256(Path(path))
    meta = CallMeta(path=str(path), call_id=str(data["call_id"]), audio_sha256=sha, metadata_source="transcript",
                    **{k: fields[k] for k in ("agent_id", "team", "campaign", "direction", "call_type",
                                              "started_at", "language")})
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
    return CallResult(
        call_date_of(meta),
        calls_row(record, analysis, analysis_hash=config.analysis_hash(), stage_seconds={}),
        utterance_rows(meta.call_id, utterances, None, analysis.utterance_sentiment),
        word_rows(meta.call_id, words, utterances, roles),
        m_row,
        analysis_rows(meta.call_id, analysis),
    )
