"""Prefect flows over the `qa_pipeline` library (which never imports Prefect).

- `process_calls`: discover new calls, process each as a mapped task, score, summarise (flows/process_calls.py)
- `nightly_ingest`: the deployment entry point, `process_calls` on a chosen task runner
- `weekly_scorecards`, `rescore`: scoring flows (flows/scorecards.py)
"""

import os as _os

# Privacy: the temporary Prefect server must not phone home (its telemetry service is on by default).
_os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# `flows.process_calls` stays the module (the flow is `flows.process_calls.process_calls`)
from flows.process_calls import make_task_runner, nightly_ingest, run_process_calls  # noqa: E402
from flows.scorecards import rescore, weekly_scorecards  # noqa: E402

__all__ = ["nightly_ingest", "weekly_scorecards", "rescore", "run_process_calls",
           "make_task_runner"]
