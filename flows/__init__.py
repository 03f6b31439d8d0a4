"""Prefect flows over the `qa_pipeline` library (which never imports Prefect).

- `process_calls`: discover new calls, process each as a mapped task, score, summarise (flows/process_calls.py)
- `nightly_ingest`: the deployment entry point, `process_calls` on a chosen task runner
- `weekly_scorecards`, `rescore`: scoring flows (flows/scorecards.py)
"""

import os as _os

# Privacy: the temporary Prefect server must not phone home (its telemetry service is on by default).
_os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

_EXPORTS = {"nightly_ingest": "flows.process_calls", "run_process_calls": "flows.process_calls",
            "make_task_runner": "flows.process_calls", "weekly_scorecards": "flows.scorecards",
            "rescore": "flows.scorecards"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    """Prefect is imported on first use, not with the package: `qa-pipeline` (flows.cli) must be able to set
    Prefect's settings (its log level) first, and commands that need no flow start faster."""
    import importlib

    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'flows' has no attribute {name!r}")
