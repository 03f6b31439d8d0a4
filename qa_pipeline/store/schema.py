"""Every Parquet dataset's schema, declared once. Files carry `schema_version` in their metadata.

Datasets are hive-partitioned by `call_date` (the folder name, not a column inside the files)."""

from __future__ import annotations

from typing import Iterable, Mapping

import pyarrow as pa

SCHEMA_VERSION = "1"
PARTITION = "call_date"


def _schema(*fields: pa.Field) -> pa.Schema:
    return pa.schema(list(fields), metadata={"schema_version": SCHEMA_VERSION})


def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


CALLS = _schema(
    _f("call_id", pa.string(), False),
    _f("audio_sha256", pa.string(), False),
    _f("path", pa.string(), False),
    _f("agent_id", pa.string()),
    _f("team", pa.string()),
    _f("campaign", pa.string()),
    _f("direction", pa.string()),
    _f("call_type", pa.string()),
    _f("started_at", pa.timestamp("us", tz="UTC")),
    _f("metadata_source", pa.string()),
    _f("mode", pa.string(), False),  # stereo / mono / transcript
    _f("duration_s", pa.float64(), False),
    _f("channels", pa.int8(), False),
    _f("source_channels", pa.int8()),
    _f("source_sample_rate", pa.int32()),
    _f("codec", pa.string()),
    _f("language", pa.string()),
    _f("language_probability", pa.float32()),
    _f("agent_channel", pa.string()),  # left / right / null
    _f("role_method", pa.string()),
    _f("role_confidence", pa.float32()),
    _f("role_evidence", pa.string()),
    _f("speakers", pa.int8()),
    _f("speech_s", pa.float64()),
    _f("asr_model", pa.string()),
    _f("asr_model_version", pa.string()),
    _f("diarization_model", pa.string()),
    _f("config_hash", pa.string(), False),
    _f("analysis_hash", pa.string()),
    _f("script_id", pa.string()),
    _f("script_version", pa.string()),
    _f("outcome", pa.string()),
    _f("pipeline_version", pa.string(), False),
    _f("stage_seconds", pa.map_(pa.string(), pa.float64())),
    _f("flags", pa.list_(pa.string())),
    _f("status", pa.string(), False),  # ok / silent
    _f("processed_at", pa.timestamp("us", tz="UTC"), False),
)

UTTERANCES = _schema(
    _f("call_id", pa.string(), False),
    _f("utterance_index", pa.int32(), False),
    _f("speaker", pa.string(), False),
    _f("role", pa.string(), False),
    _f("start_s", pa.float64(), False),
    _f("end_s", pa.float64(), False),
    _f("text", pa.string(), False),
    _f("mean_probability", pa.float32()),
    _f("n_words", pa.int32()),
    _f("sentiment", pa.float32()),
    _f("sentiment_label", pa.string()),
    _f("loudness_db", pa.float32()),
)

WORDS = _schema(
    _f("call_id", pa.string(), False),
    _f("word_index", pa.int32(), False),
    _f("utterance_index", pa.int32()),
    _f("speaker", pa.string(), False),
    _f("role", pa.string(), False),
    _f("start_s", pa.float64(), False),
    _f("end_s", pa.float64(), False),
    _f("text", pa.string(), False),
    _f("probability", pa.float32()),
)

METRICS = _schema(
    _f("call_id", pa.string(), False),
    _f("duration_s", pa.float64(), False),
    _f("agent_talk_s", pa.float64()),
    _f("customer_talk_s", pa.float64()),
    _f("unknown_talk_s", pa.float64()),
    _f("agent_talk_ratio", pa.float32()),
    _f("customer_talk_ratio", pa.float32()),
    _f("silence_total_s", pa.float64()),
    _f("silence_longest_s", pa.float64()),
    _f("silence_longest_at_s", pa.float64()),
    _f("hold_count", pa.int32()),
    _f("hold_total_s", pa.float64()),
    _f("holds", pa.list_(pa.struct([("start_s", pa.float64()), ("end_s", pa.float64())]))),
    _f("overtalk_s", pa.float64()),
    _f("agent_interruptions", pa.int32()),
    _f("customer_interruptions", pa.int32()),
    _f("agent_wpm", pa.float32()),
    _f("customer_wpm", pa.float32()),
    _f("agent_first_word_s", pa.float64()),
    _f("longest_monologue_s", pa.float64()),
    _f("longest_monologue_role", pa.string()),
    _f("longest_monologue_at_s", pa.float64()),
)

FAILURES = _schema(
    _f("failure_id", pa.string(), False),
    _f("path", pa.string(), False),
    _f("call_id", pa.string()),
    _f("audio_sha256", pa.string()),
    _f("stage", pa.string(), False),
    _f("error_code", pa.string(), False),
    _f("message", pa.string(), False),
    _f("failed_at", pa.timestamp("us", tz="UTC"), False),
    _f("config_hash", pa.string()),
)

_EVIDENCE = (
    _f("utterance_index", pa.int32()),
    _f("start_s", pa.float64()),
    _f("end_s", pa.float64()),
)

COMPLIANCE = _schema(
    _f("call_id", pa.string(), False),
    _f("script_id", pa.string(), False),
    _f("script_version", pa.string(), False),
    _f("rule_id", pa.string(), False),
    _f("phase", pa.string(), False),
    _f("result", pa.string(), False),  # passed / failed / not_applicable
    _f("severity", pa.string(), False),
    _f("reason", pa.string()),
    *_EVIDENCE,
    _f("matched_text", pa.string()),
    _f("match_method", pa.string()),
    _f("confidence", pa.float32()),
)

EVENTS = _schema(
    _f("call_id", pa.string(), False),
    _f("event_type", pa.string(), False),
    _f("role", pa.string()),
    *_EVIDENCE,
    _f("evidence_text", pa.string()),
    _f("confidence", pa.float32()),
    _f("detail", pa.string()),
)

FLAGS = _schema(
    _f("call_id", pa.string(), False),
    _f("flag_id", pa.string(), False),
    _f("flag_type", pa.string(), False),
    _f("severity", pa.string(), False),
    _f("reason", pa.string(), False),
    _f("rule_id", pa.string()),
    *_EVIDENCE,
)

SENTIMENT = _schema(
    _f("call_id", pa.string(), False),
    _f("role", pa.string(), False),
    _f("mean", pa.float32()),
    _f("start", pa.float32()),
    _f("end", pa.float32()),
    _f("q1", pa.float32()),
    _f("q2", pa.float32()),
    _f("q3", pa.float32()),
    _f("q4", pa.float32()),
    _f("trajectory", pa.string()),
    _f("escalations", pa.list_(pa.struct([("utterance_index", pa.int32()), ("start_s", pa.float64()),
                                          ("reason", pa.string())]))),
)

_EVIDENCE_REF = pa.struct([
    ("dataset", pa.string()), ("ref", pa.string()), ("utterance_index", pa.int32()),
    ("start_s", pa.float64()), ("end_s", pa.float64()), ("note", pa.string()),
])

CALL_SCORES = _schema(
    _f("call_id", pa.string(), False),
    _f("agent_id", pa.string()),
    _f("team", pa.string()),
    _f("iso_week", pa.string()),
    _f("criterion", pa.string(), False),
    _f("item", pa.string(), False),
    _f("points", pa.float64()),  # null: not applicable to this call
    _f("max_points", pa.float64(), False),
    _f("evidence", pa.list_(_EVIDENCE_REF)),
    _f("rubric_version", pa.string(), False),
)

SCORECARDS_WEEKLY = _schema(
    _f("agent_id", pa.string(), False),
    _f("team", pa.string()),
    _f("iso_week", pa.string(), False),
    _f("calls", pa.int32(), False),
    _f("tasks_completed", pa.float64()),
    _f("quality", pa.float64()),
    _f("targets", pa.float64()),
    _f("divisions_complaints", pa.float64()),
    _f("customer_complaints", pa.float64()),
    _f("overall", pa.float64()),
    _f("rank_in_team", pa.int32()),
    _f("change_from_previous_week", pa.float64()),
    _f("justified_customer_complaints", pa.int32()),
    _f("pending_customer_complaints", pa.int32()),
    _f("justified_division_complaints", pa.int32()),
    _f("rubric_version", pa.string(), False),
)

REVIEWS = _schema(
    _f("review_id", pa.string(), False),
    _f("call_id", pa.string(), False),
    _f("target_type", pa.string(), False),  # flag / item
    _f("target", pa.string(), False),  # flag_id, or criterion.item
    _f("verdict", pa.string(), False),
    _f("reviewer", pa.string(), False),
    _f("reviewed_at", pa.timestamp("us", tz="UTC"), False),
    _f("comment", pa.string()),
    _f("source", pa.string()),
)

DIVISION_COMPLAINTS = _schema(
    _f("complaint_id", pa.string(), False),
    _f("date", pa.date32(), False),
    _f("agent_id", pa.string(), False),
    _f("division", pa.string(), False),
    _f("text", pa.string()),
    _f("justified", pa.bool_()),
    _f("source", pa.string()),
)

CALIBRATION = _schema(
    _f("rubric_version", pa.string(), False),
    _f("target_type", pa.string(), False),
    _f("item", pa.string(), False),
    _f("n", pa.int32(), False),
    _f("agreement", pa.float64()),
    _f("kappa", pa.float64()),
    _f("computed_at", pa.timestamp("us", tz="UTC"), False),
)

PII = _schema(  # one row per finding of the PII detector (qa_pipeline/privacy): never the value itself
    _f("call_id", pa.string(), False),
    _f("utterance_index", pa.int32(), False),
    _f("entity_type", pa.string(), False),  # CREDIT_CARD, IBAN, IT_FISCAL_CODE, PHONE_NUMBER, ... (config.PII_ENTITIES)
    _f("start_s", pa.float64(), False),  # time span: the words' own times, or proportional within the utterance
    _f("end_s", pa.float64(), False),
    _f("char_start", pa.int32(), False),  # character span in the original (unredacted) utterance text
    _f("char_end", pa.int32(), False),
    _f("confidence", pa.float32(), False),
    _f("detector", pa.string(), False),  # which recognizer found it (presidio:<name> or one of qa_pipeline.privacy's)
)

REDACTIONS = _schema(  # one row per call with audio redaction (qa_pipeline/privacy/audio.py): its redaction report
    _f("call_id", pa.string(), False),
    _f("entities", pa.map_(pa.string(), pa.int32())),  # entity type -> findings muted
    _f("spans", pa.int32(), False),  # muted stretches after padding and merging
    _f("seconds_muted", pa.float64(), False),
    _f("residual_hits", pa.int32(), False),  # findings the verify loop still heard (their turns were then muted)
    _f("turns_muted", pa.int32(), False),
    _f("verified", pa.bool_(), False),  # the verify loop ran and heard nothing after the last muting
    _f("max_muted_dbfs", pa.float64()),  # the loudest 20 ms inside a muted span of the written copy (silence fill)
    _f("fill", pa.string(), False),  # silence / tone
    _f("margin_ms", pa.float64(), False),
    _f("audio_path", pa.string(), False),  # relative to the data folder: redacted_audio/<call_date>/<key>.<ext>
    _f("redacted_at", pa.timestamp("us", tz="UTC"), False),
)

# The original utterance text, kept only with privacy.keep_raw_text, in the restricted folder `<data>/_restricted/`
# (qa_pipeline.privacy.restricted): owner-only, read only by the review app's unredacted permission.
UTTERANCES_RAW = _schema(
    _f("call_id", pa.string(), False),
    _f("utterance_index", pa.int32(), False),
    _f("speaker", pa.string(), False),
    _f("role", pa.string(), False),
    _f("start_s", pa.float64(), False),
    _f("end_s", pa.float64(), False),
    _f("text", pa.string(), False),
)

DATASETS: dict[str, pa.Schema] = {
    "calls": CALLS,
    "utterances": UTTERANCES,
    "words": WORDS,
    "metrics": METRICS,
    "failures": FAILURES,
    "compliance": COMPLIANCE,
    "events": EVENTS,
    "flags": FLAGS,
    "sentiment": SENTIMENT,
    "call_scores": CALL_SCORES,
    "scorecards_weekly": SCORECARDS_WEEKLY,
    "reviews": REVIEWS,
    "division_complaints": DIVISION_COMPLAINTS,
    "calibration": CALIBRATION,
    "pii": PII,
    "redactions": REDACTIONS,
    "utterances_raw": UTTERANCES_RAW,  # under <data>/_restricted/ only
}
# every dataset is hive-partitioned by call_date except these
PARTITIONS = {"scorecards_weekly": "week", "calibration": "rubric", "division_complaints": "month"}
ANALYSIS_DATASETS = ("compliance", "events", "flags", "sentiment")
REDACTED_AUDIO_DIR = "redacted_audio"  # the redacted copies of the recordings: <dir>/<call_date>/<file key>.<ext>
RESTRICTED_DIR = "_restricted"  # the folder of the restricted datasets inside a data folder
RESTRICTED_DATASETS = ("utterances_raw",)  # written and read under RESTRICTED_DIR, never at the data folder's top


def to_table(rows: Iterable[Mapping], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) -> Table of exactly `schema`; a missing nullable field is null, an extra key is an error."""
    rows = list(rows)
    names = set(schema.names)
    for r in rows:
        extra = set(r) - names
        if extra:
            raise ValueError(f"fields {sorted(extra)} are not in the schema ({schema.names})")
    return pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema)
