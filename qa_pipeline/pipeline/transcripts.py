"""Calls already transcribed elsewhere: `*.transcript.json` files go through the same analysis without audio.

Format (one file per call):
    {"call_id", "agent_id", "team", "campaign", "direction", "call_type", "started_at", "language",
     "utterances": [{"speaker": "agent"|"customer", "start": s, "end": s, "text": "..."}]}
Word times are spread evenly over each utterance (the import has none); their probability is left empty."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from qa_pipeline import __version__
from qa_pipeline.config import PipelineConfig
from qa_pipeline.errors import Errors, IngestError
from qa_pipeline.pipeline.ingest import _validated, file_sha256
from qa_pipeline.speech.metrics import conversation_metrics
from qa_pipeline.pipeline.process import CallResult, _timestamp, analyse_rows, call_date_of, metrics_row, utterance_rows, word_rows
from qa_pipeline.types import AGENT, CUSTOMER, CallMeta, Utterance, Word

FORMAT_HELP = (
    '{"call_id", "agent_id", "team", "campaign", "direction", "call_type", "started_at", "language", '
    '"utterances": [{"speaker": "agent"|"customer", "start": s, "end": s, "text"}]}'
)


def import_transcript(path: Path, config: PipelineConfig) -> CallResult:
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
    call_row = dict(
        call_id=meta.call_id, audio_sha256=sha, path=str(path), agent_id=meta.agent_id, team=meta.team,
        campaign=meta.campaign, direction=meta.direction, call_type=meta.call_type,
        started_at=_timestamp(meta.started_at), metadata_source="transcript", mode="transcript",
        duration_s=round(duration, 3), channels=0, language=meta.language, role_method="import",
        role_confidence=1.0, speakers=len(talk), config_hash=config.hash(), pipeline_version=__version__,
        stage_seconds={}, flags=[], status="ok" if utterances else "silent",
        processed_at=dt.datetime.now(dt.timezone.utc),
    )
    utt_rows = utterance_rows(meta.call_id, tuple(utterances))
    m_row = metrics_row(meta.call_id, metrics)
    analysis = analyse_rows(call_row, tuple(utterances), utt_rows, m_row, config)
    return CallResult(call_date_of(meta), call_row, utt_rows, word_rows(meta.call_id, words, tuple(utterances), roles),
                      m_row, analysis)
