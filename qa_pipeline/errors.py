"""Coded errors. Every failure that ends in the `failures` dataset has a code, a message saying what was wrong
and what to do, and the stage where it happened."""

from __future__ import annotations


class QAPipelineError(Exception):
    """Base class: `code` goes into the failures dataset, `str(err)` is the human message."""

    code = "E000"
    stage = "pipeline"

    def __init__(self, message: str, *, code: str | None = None, stage: str | None = None):
        super().__init__(message)
        if code:
            self.code = code
        if stage:
            self.stage = stage


class IngestError(QAPipelineError):
    code = "E100"
    stage = "ingest"


class AudioDecodeError(QAPipelineError):
    code = "E200"
    stage = "decode"


class AudioTooShortError(AudioDecodeError):
    code = "E201"


class AudioTooLongError(AudioDecodeError):
    code = "E202"


class ModelLoadError(QAPipelineError):
    code = "E300"
    stage = "models"


class TranscriptionError(QAPipelineError):
    code = "E400"
    stage = "asr"


class DiarizationError(QAPipelineError):
    code = "E500"
    stage = "diarization"


class ConfigError(QAPipelineError):
    code = "E600"
    stage = "config"


class SchemaMismatchError(QAPipelineError):
    code = "E700"
    stage = "storage"


# Codes of problems that do not stop a call but flag it (stored in calls.flags).
W_SILENT = "W001 silent: no speech found"
W_DECLARED_STEREO_IS_MONO = "W002 declared stereo, file is mono"
W_DUAL_MONO = "W003 both channels carry the same signal: handled as mono"
W_UNKNOWN_AGENT = "W004 unknown agent"
W_MISSING_METADATA = "W005 missing metadata"
W_LOW_ROLE_CONFIDENCE = "W006 low-confidence role decision"
W_DECLARED_MONO_IS_STEREO = "W007 declared mono, file is stereo"
