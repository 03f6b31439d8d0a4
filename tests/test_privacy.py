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


def test_what_the_pipeline_writes_is_readable_by_its_owner_only(tmp_path, monkeypatch):
    """Data folders and files are created 0700 / 0600 by default (issue 12, item 7)."""
    from qa_pipeline.store.folder import DataFolder

    monkeypatch.delenv("QA_DATA_GROUP", raising=False)
    monkeypatch.setattr(os, "umask", os.umask)  # the umask is the machine's; the modes must not depend on it
    old = os.umask(0o022)
    try:
        data = DataFolder(tmp_path / "data")
        path = Path(data.write_text("calls/call_date=2026-11-24/x.json", "{}"))
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    for folder in (tmp_path / "data", tmp_path / "data" / "calls", path.parent):
        assert oct(folder.stat().st_mode & 0o7777) == "0o700", folder


def test_a_group_can_be_given_read_access(tmp_path, monkeypatch):
    import grp

    from qa_pipeline.errors import QAPipelineError
    from qa_pipeline.store.folder import DataFolder

    gid = os.getgid()
    monkeypatch.setenv("QA_DATA_GROUP", str(gid))
    path = Path(DataFolder(tmp_path / "shared").write_text("reports/weekly.html", "<p>"))
    assert oct(path.stat().st_mode & 0o777) == "0o640" and path.stat().st_gid == gid
    assert oct(path.parent.stat().st_mode & 0o7777) == "0o2750"
    monkeypatch.setenv("QA_DATA_GROUP", "no-such-group-here")
    try:
        grp.getgrnam("no-such-group-here")
    except KeyError:
        import pytest

        with pytest.raises(QAPipelineError) as e:
            DataFolder(tmp_path / "other").write_text("a.txt", "x")
        assert e.value.code == "E704"


def test_the_run_writes_private_files(tmp_path, monkeypatch):
    """A whole run (transcript import): every file and folder it creates in the data folder is private."""
    import json as _json

    from qa_pipeline.config import load_config
    from qa_pipeline.pipeline.runner import run_folder

    monkeypatch.delenv("QA_DATA_GROUP", raising=False)
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "c1.transcript.json").write_text(_json.dumps({
        "call_id": "c1", "agent_id": "007", "team": "north", "started_at": "2026-11-24T10:00:00Z", "language": "en",
        "utterances": [{"speaker": "agent", "start": 0.5, "end": 3.0, "text": "Thank you for calling, my name is Ann."},
                       {"speaker": "customer", "start": 3.5, "end": 5.0, "text": "Hi, I have a problem."}]}))
    data = tmp_path / "data"
    assert run_folder(calls, data, load_config(None)).count("done") == 1
    for p in [data, *data.rglob("*")]:
        mode = p.stat().st_mode & 0o777
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))


def test_failure_rows_carry_no_transcript_text(tmp_path):
    """A malformed transcript's failure names the field, never the words in it."""
    import json as _json

    from qa_pipeline.config import load_config
    from qa_pipeline.pipeline.runner import run_folder
    from qa_pipeline.store.folder import read_dataset

    calls = tmp_path / "calls"
    calls.mkdir()
    secret = "my card number is 4111 1111 1111 1111"
    (calls / "bad.transcript.json").write_text(_json.dumps({
        "call_id": "b1", "utterances": [{"speaker": "agent", "start": secret, "end": 2.0, "text": secret}]}))
    (calls / "bad2.transcript.json").write_text(_json.dumps({
        "call_id": "b2", "utterances": [{"speaker": secret, "start": 0.0, "end": 2.0, "text": "hello"}]}))
    run_folder(calls, tmp_path / "data", load_config(None))
    messages = read_dataset(tmp_path / "data", "failures", ["message"]).column("message").to_pylist()
    assert len(messages) == 2
    assert not any("4111" in m or "card" in m for m in messages), messages
