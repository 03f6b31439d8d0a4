"""qa-pipeline: offline speech analytics and quality assurance for call centers."""

import os as _os

# Privacy: no telemetry, no hub look-ups, before any model library is imported.
_os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
_os.environ.setdefault("DO_NOT_TRACK", "1")
# OpenMP threads that spin while waiting steal the other core on small machines (measured: docs/diarization.md).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from qa_pipeline.config import PipelineConfig, load_config  # noqa: E402
from qa_pipeline.errors import QAPipelineError  # noqa: E402

__all__ = ["__version__", "PipelineConfig", "load_config", "QAPipelineError"]
