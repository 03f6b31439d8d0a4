"""Crash safety (issue 5): kill -9 mid-batch then rerun loses nothing and duplicates nothing; two runs at once on
one data folder leave it whole; readers never see a temp file; datasets carry a schema version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import make_stereo_calls

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "flows.cli"]


def _env(api_url: str) -> dict:
    # the subprocesses report to the session's Prefect server instead of each starting a temporary one
    return {**os.environ, "PREFECT_API_URL": api_url, "PYTHONPATH": str(ROOT), "PREFECT_LOGGING_LEVEL": "WARNING"}


def _assert_whole(data: Path, n_calls: int) -> None:
    """Every call exactly once in calls, its utterances once each, every file readable, no temp file left."""
    from qa_pipeline.store.folder import read_dataset

    for f in data.rglob("*.parquet"):
        pq.read_table(f)  # raises on a torn file
    assert not list(data.rglob("*.tmp")), "temp files left behind"
    calls = read_dataset(data, "calls", ["call_id"]).column("call_id").to_pylist()
    assert len(calls) == n_calls and len(set(calls)) == n_calls, calls
    utt = read_dataset(data, "utterances", ["call_id", "utterance_index"]).to_pylist()
    keys = [(u["call_id"], u["utterance_index"]) for u in utt]
    assert len(keys) == len(set(keys)), "duplicated utterance rows"
    assert {u["call_id"] for u in utt} == set(calls)


@pytest.mark.slow
def test_kill_9_mid_batch_then_rerun(tmp_path, jfk_clip, prefect_api):
    calls = tmp_path / "calls"
    make_stereo_calls(calls, jfk_clip, 3)
    data = tmp_path / "data"
    proc = subprocess.Popen([*CLI, "run", str(calls), "--data", str(data)], env=_env(prefect_api),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list((data / "calls").glob("*/*.parquet")):
        assert proc.poll() is None, f"run ended before the first call was written: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no call written in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list((data / "calls").glob("*/*.parquet"))) < 3, "the batch finished before the kill"
    # a temp file of a dead writer, as a kill inside a write leaves it (hidden; readers glob *.parquet)
    part = next((data / "utterances").glob("call_date=*"))
    (part / ".x.parquet.somehost-1.abc.tmp").write_bytes(b"PAR1 torn")  # other host: only age removes it
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    from qa_pipeline.store.folder import _host

    (part / f".y.parquet.{_host()}-{dead.stdout.strip()}.abc.tmp").write_bytes(b"PAR1 torn")
    from qa_pipeline.store.folder import read_dataset

    read_dataset(data, "utterances")  # a reader during the crash sees whole files only

    rerun = subprocess.run([*CLI, "run", str(calls), "--data", str(data)], env=_env(prefect_api),
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "failed 0" in rerun.stdout
    os.remove(part / ".x.parquet.somehost-1.abc.tmp")  # another machine's writer may still be alive: kept
    _assert_whole(data, 3)


@pytest.mark.slow
def test_two_runs_at_once_on_one_data_folder(tmp_path, jfk_clip, prefect_api):
    from tests.flows.test_flows import _transcripts

    calls = tmp_path / "calls"
    make_stereo_calls(calls, jfk_clip, 2)
    _transcripts(calls)
    (calls / "broken.transcript.json").unlink()
    data = tmp_path / "data"
    procs = [subprocess.Popen([*CLI, "run", str(calls), "--data", str(data)], env=_env(prefect_api),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    _assert_whole(data, 4)


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    from qa_pipeline.store.folder import _writer, clean_stale_temp_files

    part = tmp_path / "calls" / "call_date=2026-11-24"
    part.mkdir(parents=True)
    mine = part / f".a.parquet.{_writer()}.1.tmp"  # this (live) process: kept
    mine.write_bytes(b"x")
    gone = part / ".b.parquet.nohost-1.2.tmp"
    gone.write_bytes(b"x")
    os.utime(gone, (time.time() - 7200, time.time() - 7200))  # another machine's, two hours old: removed
    assert clean_stale_temp_files(tmp_path) == [gone]
    assert mine.exists()


def test_other_schema_version_is_refused_with_a_clear_message(tmp_path, capsys):
    from qa_pipeline.cli import main
    from qa_pipeline.errors import SchemaMismatchError
    from qa_pipeline.store.folder import read_dataset
    from qa_pipeline.store.schema import DATASETS

    part = tmp_path / "calls" / "call_date=2026-11-24"
    part.mkdir(parents=True)
    old = DATASETS["calls"].with_metadata({"schema_version": "0"})
    pq.write_table(pa.Table.from_pylist([], schema=old), part / "c.parquet")
    with pytest.raises(SchemaMismatchError, match="schema version 0"):
        read_dataset(tmp_path, "calls")
    assert main(["migrate", "--data", str(tmp_path)]) == 2
    assert "no migration from schema version 0" in capsys.readouterr().err


def test_migrate_is_a_no_op_on_current_data(tmp_path, capsys):
    from qa_pipeline.cli import main
    from qa_pipeline.store.folder import write_rows
    from qa_pipeline.store.schema import SCHEMA_VERSION

    write_rows(tmp_path, "failures", "unknown", "f1", [dict(
        failure_id="f1", path="x.wav", stage="decode", error_code="E200", message="bad",
        failed_at=__import__("datetime").datetime.now(__import__("datetime").timezone.utc))])
    assert main(["migrate", "--data", str(tmp_path)]) == 0
    assert f"schema version {SCHEMA_VERSION}" in capsys.readouterr().out
