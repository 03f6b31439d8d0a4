"""Bad input: each case gets a failures row (or a flag), and the rest of the batch goes on."""

import shutil
import struct

import numpy as np
import pytest

from qa_pipeline.config import load_config
from qa_pipeline.pipeline.runner import run_folder
from qa_pipeline.store.folder import read_dataset
from tests.conftest import write_wav


def _truncated_wav(path, rate=16000):
    body = (np.random.default_rng(0).standard_normal(rate) * 3000).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + 10 * len(body)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", 10 * len(body))
    path.write_bytes(header + body[: len(body) // 3])  # claims 10 s, holds a fraction of one


def _unknown_codec_wav(path, rate=8000):
    body = bytes(range(256)) * 200
    header = b"RIFF" + struct.pack("<I", 36 + len(body)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 0x1234, 1, rate, rate, 1, 8) + b"data" + struct.pack("<I", len(body))
    path.write_bytes(header + body)


@pytest.fixture(scope="module")
def bad_batch(tmp_path_factory, english_wav):
    calls = tmp_path_factory.mktemp("calls")
    data = tmp_path_factory.mktemp("data")
    shutil.copy(english_wav, calls / "good.wav")  # a real English voice (tests/data, committed)
    (calls / "empty.wav").write_bytes(b"")
    _truncated_wav(calls / "truncated.wav")
    (calls / "notes.wav").write_text("this is a text file, not audio\n" * 20)
    _unknown_codec_wav(calls / "codec.wav")
    write_wav(calls / "short.wav", np.zeros(int(0.3 * 16000)))
    write_wav(calls / "silence.wav", np.random.default_rng(1).standard_normal(16000 * 600) * 1e-4)
    shutil.copy(english_wav, calls / "declared_stereo.wav")
    shutil.copy(english_wav, calls / "vanishing.wav")
    # the manifest describes some files, wrongly for one of them; good.wav's agent is unknown
    (calls / "calls.csv").write_text(
        "file,call_id,agent_id,team,campaign,direction,call_type,started_at,language,channels,agent_channel\n"
        "good.wav,good,Z99,north,c,inbound,support,2026-11-20T10:00:00+01:00,en,1,\n"
        "declared_stereo.wav,declared-stereo,A01,north,c,inbound,order,2026-11-20T11:00:00+01:00,en,2,left\n"
        "silence.wav,silence,A01,north,c,inbound,order,2026-11-20T12:00:00+01:00,en,2,left\n"
    )
    config = load_config(None, {"ingest.known_agents": ["A01", "A02"]})

    def vanish(outcome):  # a file disappears while the batch runs
        if outcome.path.endswith("truncated.wav"):
            (calls / "vanishing.wav").unlink()

    summary = run_folder(calls, data, config, progress=vanish)
    return calls, data, config, summary


def _failure(data, name):
    rows = [r for r in read_dataset(data, "failures").to_pylist() if r["path"].endswith(name)]
    assert len(rows) == 1, rows
    return rows[0]


def test_batch_goes_on_and_records_each_failure(bad_batch):
    calls, data, config, summary = bad_batch
    by_name = {o.path.rsplit("/", 1)[-1]: o for o in summary.outcomes}
    assert by_name["good.wav"].status == "done"
    assert by_name["declared_stereo.wav"].status == "done"
    assert by_name["silence.wav"].status == "done"
    assert _failure(data, "empty.wav")["error_code"] == "E205"
    assert "empty" in _failure(data, "empty.wav")["message"]
    assert _failure(data, "notes.wav")["error_code"] in ("E206", "E207")
    assert "accepted" in _failure(data, "notes.wav")["message"]
    assert _failure(data, "codec.wav")["stage"] == "decode"
    assert _failure(data, "short.wav")["error_code"] == "E201"
    assert "0.30 s" in _failure(data, "short.wav")["message"]
    assert _failure(data, "vanishing.wav")["error_code"] in ("E104", "E204")
    # a truncated WAV keeps what decoded (flagged) or fails clearly: never crashes the batch
    t = by_name["truncated.wav"]
    assert t.status in ("done", "failed")


def test_flags_on_usable_calls(bad_batch):
    calls, data, config, summary = bad_batch
    rows = {r["call_id"]: r for r in read_dataset(data, "calls").to_pylist()}
    assert any(f.startswith("W004") for f in rows["good"]["flags"])  # unknown agent
    assert any(f.startswith("W002") for f in rows["declared-stereo"]["flags"])
    assert rows["declared-stereo"]["mode"] == "mono"
    silent = rows["silence"]
    assert silent["status"] == "silent" and any(f.startswith("W001") for f in silent["flags"])
    assert silent["duration_s"] == pytest.approx(600.0, abs=0.1)
    assert not [u for u in read_dataset(data, "utterances").to_pylist() if u["call_id"] == "silence"]


def test_too_long_call_is_refused(tmp_path, english_wav):
    calls = tmp_path / "calls"
    calls.mkdir()
    shutil.copy(english_wav, calls / "long.wav")  # 5.4 s
    config = load_config(None, {"audio.max_duration_s": 3.0})
    summary = run_folder(calls, tmp_path / "data", config)
    assert summary.count("failed") == 1
    assert _failure(tmp_path / "data", "long.wav")["error_code"] == "E202"


def test_rerun_adds_nothing_and_failures_are_not_duplicated(bad_batch):
    calls, data, config, _ = bad_batch
    before = {n: read_dataset(data, n).num_rows for n in ("calls", "utterances", "words", "metrics", "failures")}
    summary = run_folder(calls, data, config)
    after = {n: read_dataset(data, n).num_rows for n in before}
    assert after == before
    assert summary.count("done") == 0
