"""What leaves the machine: nothing. Telemetry of every library that has some is off in every documented process
(issue 12, item 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SHOW = ("import json; from prefect.settings import get_current_settings as g; "
        "print(json.dumps({'analytics': g().server.analytics_enabled}))")


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DO_NOT_TRACK"))}


def _effective(code: str, cwd: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_prefect_processes_started_in_the_repo_have_analytics_off():
    """`prefect server start`, `prefect worker start` and `prefect deploy` run from the repository (as the README
    says) read prefect.toml: the server's telemetry heartbeat is off with no environment variable set."""
    assert _effective(SHOW, ROOT) == {"analytics": False}


def test_prefect_started_elsewhere_through_the_project_has_analytics_off(tmp_path):
    """`qa-pipeline` from any folder: importing `flows` sets the setting before Prefect is imported."""
    assert _effective("import flows; " + SHOW, tmp_path) == {"analytics": False}


def test_prefect_cli_reports_the_setting_off():
    out = subprocess.run([str(Path(sys.executable).parent / "prefect"), "config", "view", "--show-sources"],
                         cwd=ROOT, env=_clean_env(), capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if "PREFECT_SERVER_ANALYTICS_ENABLED" in line)
    assert "False" in line or "false" in line, line


def test_model_libraries_are_offline_and_silent():
    code = ("import json, os, qa_pipeline; print(json.dumps({k: os.environ.get(k) for k in "
            "('HF_HUB_OFFLINE', 'HF_HUB_DISABLE_TELEMETRY', 'PYANNOTE_METRICS_ENABLED', 'DO_NOT_TRACK')}))")
    assert _effective(code, ROOT) == {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
                                       "PYANNOTE_METRICS_ENABLED": "0", "DO_NOT_TRACK": "1"}
