"""Calls and datasets on S3-compatible object storage (issue 5), over HTTP against moto's S3 server on loopback
(what s3fs's own tests use; MinIO would do the same job)."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 endpoint on 127.0.0.1 and a fresh bucket; yields the bucket URI."""
    import s3fs
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    if not fs.exists("qa-test"):  # moto keeps buckets in-process: another module's server may have made it
        fs.mkdir("qa-test")
    yield "s3://qa-test"
    s3fs.S3FileSystem.clear_instance_cache()
    mp.undo()
    server.stop()


def test_datasets_round_trip_on_s3(s3):
    import datetime as dt

    from qa_pipeline.pipeline.runner import done_index
    from qa_pipeline.store.folder import read_dataset, remove_key, replace_partitions, write_rows

    data = f"{s3}/unit"
    row = dict(failure_id="f1", path="s3://x/a.wav", stage="decode", error_code="E200", message="bad",
               failed_at=dt.datetime.now(dt.timezone.utc))
    write_rows(data, "failures", "2026-11-24", "f1", [row])
    write_rows(data, "failures", "2026-11-25", "f1", [row])  # same key, new date: the old file goes
    t = read_dataset(data, "failures")
    assert t.num_rows == 1 and t.column("call_date").to_pylist() == ["2026-11-25"]
    remove_key(data, "failures", "f1")
    assert read_dataset(data, "failures").num_rows == 0
    assert done_index(data) == {}
    replace_partitions(data, "failures", {"2026-11-26": [dict(row, failure_id="f2")]}, key="k")
    assert read_dataset(data, "failures", ["failure_id"]).column("failure_id").to_pylist() == ["f2"]


def test_flow_reads_calls_from_and_writes_datasets_to_s3(s3, tmp_path, prefect_api):
    import s3fs

    from flows import run_process_calls
    from qa_pipeline.store.folder import read_dataset
    from tests.flows.test_flows import _transcripts

    local = tmp_path / "calls"
    _transcripts(local)
    fs = s3fs.S3FileSystem()
    for f in local.iterdir():
        fs.put_file(str(f), f"qa-test/calls/day1/{f.name}")
    calls, data = f"{s3}/calls", f"{s3}/data"
    summary = run_process_calls(calls, data)
    assert summary["counts"] == {"done": 2, "skipped": 0, "reanalysed": 0, "failed": 1}
    rows = read_dataset(data, "calls", ["call_id", "path"]).to_pylist()
    assert sorted(r["path"] for r in rows) == [f"{calls}/day1/t-bad.transcript.json",
                                               f"{calls}/day1/t-good.transcript.json"]  # the URI, not a temp copy
    assert read_dataset(data, "utterances").num_rows > 0
    assert read_dataset(data, "failures", ["path"]).column("path").to_pylist() == [
        f"{calls}/day1/broken.transcript.json"]
    assert read_dataset(data, "call_scores").num_rows > 0
    assert fs.glob("qa-test/data/_runs/*.json")
    again = run_process_calls(calls, data)
    assert again["counts"]["done"] == 0 and again["counts"]["skipped"] == 2
    assert read_dataset(data, "calls").num_rows == 2
