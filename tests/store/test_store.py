"""The data-folder layer (one atomic write primitive, quarantine of bad files) and the query layer (DuckDB views
defined once), locally and on S3 (moto's server on loopback, as in test_storage_s3)."""

from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qa_pipeline.errors import SchemaMismatchError
from qa_pipeline.store.folder import E_QUARANTINED, QUARANTINE_DIR, DataFolder, read_dataset, write_rows
from qa_pipeline.store.queries import Queries
from qa_pipeline.store.schema import DATASETS

UTC = dt.timezone.utc


def _call(cid, agent="A1", team="north", started="2026-11-24T10:00:00", status="ok"):
    return dict(call_id=cid, audio_sha256=cid, path=f"/calls/{cid}.wav", agent_id=agent, team=team,
                campaign="energy", direction="inbound", call_type="complaint",
                started_at=dt.datetime.fromisoformat(started).replace(tzinfo=UTC), mode="stereo", duration_s=60.0,
                channels=2, config_hash="x", pipeline_version="t", status=status,
                processed_at=dt.datetime(2026, 11, 30, tzinfo=UTC))


def _utt(cid, i, text="hello"):
    return dict(call_id=cid, utterance_index=i, speaker="ch0", role="agent", start_s=float(i), end_s=i + 0.5,
                text=text)


def _failures(folder) -> list[dict]:
    return [r for r in read_dataset(folder, "failures").to_pylist() if r["error_code"] == E_QUARANTINED]


def _folder_with_calls(root) -> DataFolder:
    folder = DataFolder(root)
    folder.write_parquet("calls", "2026-11-24", "c1", [_call("c1")])
    folder.write_parquet("calls", "2026-11-25", "c2", [_call("c2", started="2026-11-25T09:00:00")])
    folder.write_parquet("utterances", "2026-11-24", "c1", [_utt("c1", 0), _utt("c1", 1)])
    folder.write_parquet("utterances", "2026-11-25", "c2", [_utt("c2", 0)])
    return folder


# ---- the write primitive ----------------------------------------------------------------------------------------

def test_write_bytes_is_atomic_fsynced_and_leaves_no_temp_file(tmp_path, monkeypatch):
    folder = DataFolder(tmp_path)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    path = folder.write_bytes("a/b/file.json", b"one")
    assert open(path, "rb").read() == b"one"
    assert len(synced) == 2  # the file, then its folder (the rename itself)
    folder.write_text("a/b/file.json", "two")
    assert (tmp_path / "a/b/file.json").read_text() == "two"
    assert sorted(p.name for p in (tmp_path / "a/b").iterdir()) == ["file.json"]  # no temp file left
    assert len(synced) == 4


def test_a_failed_write_keeps_the_old_file_whole(tmp_path, monkeypatch):
    folder = DataFolder(tmp_path)
    folder.write_bytes("x.bin", b"old")

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        folder.write_bytes("x.bin", b"new")
    assert (tmp_path / "x.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_write_parquet_replaces_a_key_and_moves_it_across_partitions(tmp_path):
    folder = DataFolder(tmp_path)
    folder.write_parquet("calls", "2026-11-24", "c1", [_call("c1")])
    folder.write_parquet("calls", "2026-11-25", "c1", [_call("c1", agent="A2")])
    t = folder.read_dataset("calls", ["call_id", "agent_id", "call_date"])
    assert t.to_pylist() == [{"call_id": "c1", "agent_id": "A2", "call_date": "2026-11-25"}]
    assert pq.read_schema(folder.path("calls/call_date=2026-11-25/c1.parquet")).metadata[b"schema_version"] == b"1"


# ---- bad files: quarantined, recorded, and every later read is fine ----------------------------------------------

def test_torn_and_foreign_files_are_quarantined_and_recorded(tmp_path):
    folder = _folder_with_calls(tmp_path)
    part = tmp_path / "utterances" / "call_date=2026-11-24"
    good = (part / "c1.parquet").read_bytes()
    (part / "torn.parquet").write_bytes(good[: len(good) // 2])  # a copy cut short
    (part / "notes.parquet").write_text("not parquet at all")
    pq.write_table(pa.table({"x": [1]}), part / "foreign.parquet")  # Parquet, but not an utterances file
    t = folder.read_dataset("utterances")
    assert sorted(zip(t.column("call_id").to_pylist(), t.column("utterance_index").to_pylist())) == [
        ("c1", 0), ("c1", 1), ("c2", 0)]
    assert sorted(p.name for p in part.iterdir()) == ["c1.parquet"]
    moved = sorted(p.name.split(".parquet")[0] for p in (tmp_path / QUARANTINE_DIR / "utterances").rglob("*")
                   if p.is_file())
    assert moved == ["foreign", "notes", "torn"]
    rows = _failures(tmp_path)
    assert sorted(r["call_id"] for r in rows) == ["foreign", "notes", "torn"]
    assert {r["stage"] for r in rows} == {"storage"}
    assert all("_quarantine/utterances/call_date=2026-11-24/" in r["message"] for r in rows)
    assert any("not a file of this dataset" in r["message"] for r in rows)
    # later reads: fine, nothing new recorded
    assert folder.read_dataset("utterances").num_rows == 3
    with Queries(folder) as q:
        assert q.fetch("SELECT count(*) AS n FROM utterances").column("n")[0].as_py() == 3
    assert len(_failures(tmp_path)) == 3


def test_a_file_damaged_inside_with_a_sound_footer_is_found_and_quarantined(tmp_path):
    folder = _folder_with_calls(tmp_path)

    def damaged(key):
        path = folder.write_parquet("utterances", "2026-11-24", key, [_utt(key, i, f"words {i} " * 20)
                                                                      for i in range(2000)])
        data = bytearray(open(path, "rb").read())
        data[100:4100] = bytes(4000)  # zeroed pages: the footer still reads
        open(path, "wb").write(bytes(data))
        assert pq.ParquetFile(path).metadata.num_rows == 2000

    damaged("big1")
    with Queries(folder) as q:  # DuckDB hits it mid-query: quarantined, the query runs again
        assert q.fetch("SELECT * FROM utterances").num_rows == 3
    damaged("big2")
    assert folder.read_dataset("utterances").num_rows == 3
    assert sorted(r["call_id"] for r in _failures(tmp_path)) == ["big1", "big2"]


def test_one_file_of_another_version_is_quarantined_a_whole_dataset_is_refused(tmp_path):
    folder = _folder_with_calls(tmp_path)
    old = DATASETS["calls"].with_metadata({"schema_version": "0"})
    stray = tmp_path / "calls" / "call_date=2026-11-24" / "old.parquet"
    pq.write_table(pa.Table.from_pylist([_call("old")], schema=old), stray)
    assert sorted(folder.read_dataset("calls", ["call_id"]).column("call_id").to_pylist()) == ["c1", "c2"]
    assert not stray.exists() and "schema version 0" in _failures(tmp_path)[0]["message"]

    other = DataFolder(tmp_path / "other")
    part = tmp_path / "other" / "calls" / "call_date=2026-11-24"
    part.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([_call("c9")], schema=old), part / "c9.parquet")
    with pytest.raises(SchemaMismatchError, match="qa-pipeline migrate"):
        other.read_dataset("calls")
    with pytest.raises(SchemaMismatchError, match="schema version 0"):
        Queries(other).fetch("SELECT * FROM calls")
    assert (part / "c9.parquet").exists()  # an upgrade is not quarantined


def test_a_file_torn_after_the_views_were_made_is_quarantined_during_the_query(tmp_path):
    folder = _folder_with_calls(tmp_path)
    with Queries(folder) as q:
        assert q.counts(["utterances"]) == {"utterances": 3}
        (tmp_path / "utterances" / "call_date=2026-11-25" / "bad.parquet").write_bytes(b"PAR1 torn")
        assert q.counts(["utterances"]) == {"utterances": 3}
    assert [r["call_id"] for r in _failures(tmp_path)] == ["bad"]


def test_migrations_write_through_the_atomic_primitive(tmp_path, monkeypatch):
    from qa_pipeline.store import migrate as m

    part = tmp_path / "calls" / "call_date=2026-11-24"
    part.mkdir(parents=True)
    old = DATASETS["calls"].with_metadata({"schema_version": "0"})
    pq.write_table(pa.Table.from_pylist([_call("c1")], schema=old), part / "c1.parquet")
    (part / "torn.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(m.MIGRATIONS, "0", ("1", lambda t: t.replace_schema_metadata(DATASETS["calls"].metadata)))
    writes = []
    real = DataFolder.write_bytes
    monkeypatch.setattr(DataFolder, "write_bytes", lambda self, rel, data: (writes.append(rel), real(self, rel, data))[1])
    assert m.migrate(tmp_path) == {"calls": {"0": 1, m.UNREADABLE: 1}}
    assert [w for w in writes if not w.startswith("_locks/")] == ["calls/call_date=2026-11-24/c1.parquet"]
    assert m.file_version(part / "c1.parquet") == "1"
    assert read_dataset(tmp_path, "calls", ["call_id"]).column("call_id").to_pylist() == ["c1"]


# ---- the query layer ---------------------------------------------------------------------------------------------

def test_views_are_typed_even_when_nothing_is_written(tmp_path):
    with Queries(tmp_path) as q:
        t = q.fetch("SELECT * FROM calls")
        assert t.num_rows == 0 and t.schema.field("started_at").type == pa.timestamp("us", tz="UTC")
        assert t.column_names == DATASETS["calls"].names + ["call_date"]
        assert q.latest_reviews().num_rows == 0 and q.weeks() == []
        write_rows(tmp_path, "calls", "2026-11-24", "c1", [_call("c1")])
        assert q.calls(columns=["call_id", "iso_week"]).to_pylist() == [{"call_id": "c1", "iso_week": "2026-W48"}]


def test_latest_verdict_wins_and_complaints_follow_it(tmp_path):
    folder = _folder_with_calls(tmp_path)
    folder.write_parquet("flags", "2026-11-24", "c1", [dict(call_id="c1", flag_id="f1", flag_type="customer_complaint",
                                                            severity="high", reason="complaint")])
    folder.write_parquet("flags", "2026-11-25", "c2", [dict(call_id="c2", flag_id="f2", flag_type="customer_complaint",
                                                            severity="high", reason="complaint")])

    def review(rid, verdict, hour, target="f1", call="c1", kind="flag"):
        return dict(review_id=rid, call_id=call, target_type=kind, target=target, verdict=verdict, reviewer="qa",
                    reviewed_at=dt.datetime(2026, 11, 26, hour, tzinfo=UTC))

    folder.write_parquet("reviews", "2026-11-24", "r1", [review("r1", "dismissed", 9)])
    folder.write_parquet("reviews", "2026-11-24", "r2", [review("r2", "justified", 11)])
    folder.write_parquet("reviews", "2026-11-24", "r3", [review("r3", "dismissed", 10)])
    folder.write_parquet("reviews", "2026-11-24", "r4", [review("r4", "met", 8, "quality.courtesy", kind="item")])
    folder.write_parquet("division_complaints", "2026-11", "complaints", [dict(
        complaint_id="d1", date=dt.date(2026, 11, 25), agent_id="A1", division="billing", justified=True)])
    with Queries(folder) as q:
        latest = {(r["target_type"], r["target"]): r["verdict"] for r in q.latest_reviews().to_pylist()}
        assert latest == {("flag", "f1"): "justified", ("item", "quality.courtesy"): "met"}
        status = {r["flag_id"]: r["status"] for r in q.customer_complaints(week="2026-W48").to_pylist()}
        assert status == {"f1": "justified", "f2": "pending"}
        just = sorted((r["source"], r["ref"]) for r in q.justified_complaints(week="2026-W48").to_pylist())
        assert just == [("customer", "f1"), ("division", "d1")]
        assert q.division_complaints(week="2026-W47").num_rows == 0


def test_utterances_of_some_calls_read_only_their_date_partitions(tmp_path):
    folder = _folder_with_calls(tmp_path)
    # a torn file in the other date's folder: reading it would quarantine it
    bad = tmp_path / "utterances" / "call_date=2026-11-25" / "zz.parquet"
    bad.write_bytes(b"PAR1 torn")
    with Queries(folder) as q:
        t = q.utterances(["c1"], ["call_id", "utterance_index", "text"])
        assert t.to_pylist() == [dict(call_id="c1", utterance_index=0, text="hello"),
                                 dict(call_id="c1", utterance_index=1, text="hello")]
        assert q.calls(week="2026-W48", team="north", columns=["call_id"]).num_rows == 2
        assert q.utterances([], ["call_id"]).num_rows == 0
    assert bad.exists() and not _failures(tmp_path)


# ---- object storage ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3():
    """An S3 endpoint on 127.0.0.1 (moto's server, as in test_storage_s3) and a bucket of this module's own
    (moto's backends are shared by every server in the process); yields the bucket URI."""
    s3fs = pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    from tests.store.test_storage_s3 import _free_port

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    mp = pytest.MonkeyPatch()
    for k, v in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
                 "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        mp.setenv(k, v)
    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("qa-store-test")
    yield "s3://qa-store-test"
    s3fs.S3FileSystem.clear_instance_cache()
    mp.undo()
    server.stop()


def test_data_folder_and_queries_on_s3(s3):
    import s3fs

    root = f"{s3}/store"
    folder = _folder_with_calls(root)
    assert folder.is_uri and folder.write_bytes("_runs/x.json", b"{}").endswith("_runs/x.json")
    assert folder.exists("_runs/x.json") and folder.read_bytes("_runs/x.json") == b"{}"
    fs = s3fs.S3FileSystem()
    fs.pipe_file(f"{root.removeprefix('s3://')}/utterances/call_date=2026-11-24/torn.parquet", b"PAR1 torn")
    assert folder.read_dataset("utterances").num_rows == 3
    assert [r["call_id"] for r in _failures(root)] == ["torn"]
    assert folder.glob(f"{QUARANTINE_DIR}/utterances/*/*")
    fs.pipe_file(f"{root.removeprefix('s3://')}/utterances/call_date=2026-11-25/torn2.parquet", b"PAR1 torn")
    with Queries(root) as q:  # DuckDB reads through s3fs (no httpfs): the views, filters and quarantine work alike
        assert q.counts(["utterances", "calls"]) == {"utterances": 3, "calls": 2}
        assert q.utterances(["c2"], ["call_id"]).column("call_id").to_pylist() == ["c2"]
        assert q.calls(week="2026-W48", columns=["call_id"]).num_rows == 2
    assert sorted(r["call_id"] for r in _failures(root)) == ["torn", "torn2"]


def test_rescore_on_s3(s3):
    from qa_pipeline.scoring.score import rescore

    root = f"{s3}/scoring"
    folder = _folder_with_calls(root)
    folder.write_parquet("metrics", "2026-11-24", "c1", [dict(call_id="c1", duration_s=60.0, agent_interruptions=0,
                                                              agent_talk_ratio=0.5, agent_wpm=150.0)])
    summary = rescore(root)
    assert summary["calls"] == 2 and summary["weeks"] == ["2026-W48"]
    with Queries(root) as q:
        clarity = q.call_scores(call_ids=["c1"], columns=["item", "points"]).to_pylist()
        assert {"item": "clarity", "points": 1.0} in clarity
        assert q.scorecards(week="2026-W48").column("agent_id").to_pylist() == ["A1"]
