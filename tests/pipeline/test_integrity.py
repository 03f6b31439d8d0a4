"""Integrity of what goes in (issue 12).

Call identity: a call_id is bound to one recording (its SHA-256): a second recording or transcript with a stored
call_id is refused with E120 (both runs, the first call untouched) unless the run says `--replace`; call_ids map
to file names without collisions (`A/1` and `A_1` are two calls); manifest rows match files by their path from the
calls folder, a bare file name only when it is unique on both sides; call_ids are validated (E121).

Bounded input: transcript times are finite and within 0..audio.max_duration_s, utterances, text and file sizes are
capped, manifest encoding, oversize fields and bad dates are coded failures, all under a 2 GB address-space limit
with a good call in the same folder done; a file still being written waits; a file that crashed the worker
`ingest.max_attempts` times is quarantined (E127); an unreadable file is one failure row (E126), not the end of
the run."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa_pipeline.config import load_config
from qa_pipeline.pipeline.runner import run_folder
from qa_pipeline.store.folder import read_dataset
from tests.analysis.test_analysis import COMPLIANT_ORDER, RUDE_COMPLAINT
from tests.conftest import write_wav

ROOT = Path(__file__).resolve().parents[2]
DAY1 = "2026-11-24T10:00:00+01:00"
DAY2 = "2026-11-25T11:00:00+01:00"
PER_CALL = ("calls", "utterances", "words", "metrics", "compliance", "events", "flags", "sentiment")


def _said(stored: list[str], lines) -> bool:
    """The stored utterances are these lines, redacted (a `[PERSON]` label stands for whatever was said there)."""
    import re

    said = [t for *_, t in lines]
    patterns = ["".join(".+?" if re.fullmatch(r"\[[A-Z_]+\]", part) else re.escape(part)
                        for part in re.split(r"(\[[A-Z_]+\])", text)) for text in stored]
    return len(stored) == len(said) and all(re.fullmatch(p, t) for p, t in zip(patterns, said))


def _doc(call_id, lines=COMPLIANT_ORDER, started=DAY1, **extra) -> dict:
    return {"call_id": call_id, "agent_id": "A01", "team": "north", "campaign": "energy", "direction": "inbound",
            "call_type": "order", "started_at": started, "language": "en",
            "utterances": [{"speaker": r, "start": s, "end": e, "text": t} for r, s, e, t in lines], **extra}


def _transcript(folder: Path, name: str, call_id, lines=COMPLIANT_ORDER, started=DAY1, **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.transcript.json"
    path.write_text(json.dumps(_doc(call_id, lines, started, **extra)))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _calls(data) -> dict[str, dict]:
    return {r["call_id"]: r for r in read_dataset(data, "calls").to_pylist()}


def _failures(data) -> dict[str, list[dict]]:
    """file name -> its failure rows."""
    out: dict[str, list[dict]] = {}
    for r in read_dataset(data, "failures").to_pylist():
        out.setdefault(r["path"].rsplit("/", 1)[-1], []).append(r)
    return out


def _code(data, name: str) -> str:
    rows = _failures(data).get(name, [])
    assert len(rows) == 1, (name, rows)
    return rows[0]["error_code"]


def _by_name(summary) -> dict:
    return {o.path.rsplit("/", 1)[-1]: o for o in summary.outcomes}


@pytest.fixture(scope="module")
def pool():
    """One resource pool for the module's runs: spaCy and the scripts load once."""
    from qa_pipeline.pipeline.resources import ResourcePool

    return ResourcePool()


# ---- 1. call identity ---------------------------------------------------------------------------------------


def test_file_keys_are_injective_and_keep_safe_ids():
    from qa_pipeline.store.keys import MAX_KEY_CHARS, call_id_of_key, file_key

    for safe in ("demo-001", "A_1", "sha-0123456789abcdef", "a.b", "..", "x" * MAX_KEY_CHARS, "scores-2026-11-24",
                 "Niccolò-7"):
        assert file_key(safe) == safe  # stored data keeps its file names (letters and digits were kept before)
    tricky = ["A/1", "A_1", "A 1", "A%2F1", "A%1", "a/../../etc/passwd", "ü", "u\u0308", "x" * (MAX_KEY_CHARS + 1),
              "~", "%7E", "Ä/" * 60, "Ä/" * 60 + "x", "*", "?", "[a]", "\\", "..\\x", "CON", "con", "é" * 65,
              "é" * 64]
    keys = [file_key(k) for k in tricky]
    assert len(set(keys)) == len(tricky), list(zip(tricky, keys))
    for k in keys:
        assert 0 < len(k.encode()) <= MAX_KEY_CHARS and all(c.isalnum() or c in "-_.%~" for c in k), k
    for original in tricky[:8] + ["Niccolò-7", "é" * 64]:
        assert call_id_of_key(file_key(original)) == original
    assert call_id_of_key(file_key("Ä/" * 60)) is None  # shortened: the key holds a hash, not the id


def test_call_ids_that_folded_to_one_file_name_are_two_calls(tmp_path, pool):
    calls, data = tmp_path / "calls", tmp_path / "data"
    ids = {"slash": "A/1", "underscore": "A_1", "space": "A 1", "dots": "a/../../b"}
    for name, call_id in ids.items():
        _transcript(calls, name, call_id, COMPLIANT_ORDER[: 3 + len(name) % 4])
    summary = run_folder(calls, data, load_config(None), pool=pool)
    assert summary.count("done") == 4, [(o.path, o.message) for o in summary.outcomes]
    stored = _calls(data)
    assert set(stored) == set(ids.values())
    utterances = read_dataset(data, "utterances", ["call_id"]).column("call_id").to_pylist()
    for name, call_id in ids.items():
        assert utterances.count(call_id) == 3 + len(name) % 4, call_id
    assert not list(tmp_path.rglob("b.parquet")), "a call_id must never become a path"
    again = run_folder(calls, data, load_config(None), pool=pool)
    assert again.count("skipped") == 4


def _one_call_id_twice(tmp_path):
    calls, data = tmp_path / "calls", tmp_path / "data"
    first = _transcript(calls, "a-first", "X-1", COMPLIANT_ORDER, DAY1)
    second = _transcript(calls, "b-second", "X-1", RUDE_COMPLAINT, DAY2)
    return calls, data, first, second


def test_a_second_transcript_with_a_stored_call_id_is_refused(tmp_path, pool):
    calls, data, first, second = _one_call_id_twice(tmp_path)
    for run in (1, 2):
        summary = run_folder(calls, data, load_config(None), pool=pool)
        outcomes = _by_name(summary)
        assert outcomes["a-first.transcript.json"].status == ("done" if run == 1 else "skipped")
        refused = outcomes["b-second.transcript.json"]
        assert refused.status == "failed", (run, refused)
        stored = _calls(data)["X-1"]
        assert stored["audio_sha256"] == _sha(first) and stored["path"] == str(first), run
        texts = [u["text"] for u in read_dataset(data, "utterances").to_pylist() if u["call_id"] == "X-1"]
        assert _said(texts, COMPLIANT_ORDER), run
        for dataset in PER_CALL:  # nothing of the second in its own date partition either
            assert not list((data / dataset).glob("call_date=2026-11-25/*")), (run, dataset)
        (row,) = _failures(data)["b-second.transcript.json"]
        assert row["error_code"] == "E120" and row["stage"] == "ingest"
        assert "X-1" in row["message"] and str(first) in row["message"] and "--replace" in row["message"]
        assert row["audio_sha256"] == _sha(second)


def test_replace_lets_a_new_recording_take_over_a_call_id(tmp_path, pool):
    from qa_pipeline.cli import main

    calls, data, first, second = _one_call_id_twice(tmp_path)
    run_folder(calls, data, load_config(None), pool=pool)
    assert _code(data, "b-second.transcript.json") == "E120"
    assert main(["run", str(calls), "--data", str(data), "--task-runner", "none", "--replace"]) == 0
    stored = _calls(data)["X-1"]
    assert stored["audio_sha256"] == _sha(second) and stored["call_date"] == "2026-11-25"
    texts = [u["text"] for u in read_dataset(data, "utterances").to_pylist() if u["call_id"] == "X-1"]
    assert _said(texts, RUDE_COMPLAINT)
    for dataset in PER_CALL:  # the old call's rows are gone from every dataset and date partition
        assert not list((data / dataset).glob("call_date=2026-11-24/*")), dataset
    assert "b-second.transcript.json" not in _failures(data)  # its refusal is resolved
    # without --replace the binding holds again, now for the second recording
    summary = run_folder(calls, data, load_config(None), pool=pool)
    assert _by_name(summary)["b-second.transcript.json"].status == "skipped"
    assert _code(data, "a-first.transcript.json") == "E120"
    assert _calls(data)["X-1"]["audio_sha256"] == _sha(second)


def test_replace_goes_through_the_flow(tmp_path, pool):
    import inspect

    from flows.process_calls import process_calls, run_process_calls
    from flows.tasks import process_one

    assert "replace" in inspect.signature(process_calls.fn).parameters
    assert "replace" in inspect.signature(run_process_calls).parameters
    calls, data, first, second = _one_call_id_twice(tmp_path)
    run_folder(calls, data, load_config(None), pool=pool)
    item = {"path": str(second), "source": None, "previous": None, "sha": _sha(second)}
    assert process_one.fn(item, str(calls), str(data))["status"] == "failed"
    assert process_one.fn(item, str(calls), str(data), replace=True)["status"] == "done"
    assert _calls(data)["X-1"]["audio_sha256"] == _sha(second)


def _stereo(path: Path, clip: np.ndarray, variant: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    left = np.concatenate([clip, np.zeros(1600 * (variant + 1), dtype=np.float32)])
    right = np.random.default_rng(variant).normal(0, 1e-4, left.shape).astype(np.float32)
    return write_wav(path, np.stack([left, right]))


MANIFEST_HEAD = "file,call_id,agent_id,team,campaign,direction,call_type,started_at,language,channels,agent_channel\n"


def test_two_recordings_one_manifest_call_id_and_same_file_names(tmp_path, jfk_clip, pool):
    calls, data = tmp_path / "calls", tmp_path / "data"
    day1 = _stereo(calls / "day1" / "001.wav", jfk_clip, 0)
    day2 = _stereo(calls / "day2" / "001.wav", jfk_clip, 1)
    dup_a = _stereo(calls / "dup-a.wav", jfk_clip, 2)
    dup_b = _stereo(calls / "dup-b.wav", jfk_clip, 3)
    (calls / "calls.csv").write_text(
        MANIFEST_HEAD
        + f"day1/001.wav,d1-001,A01,north,c,inbound,order,{DAY1},en,2,left\n"
        + f"dup-a.wav,same,A01,north,c,inbound,order,{DAY1},en,2,left\n"
        + f"dup-b.wav,same,A02,north,c,inbound,order,{DAY2},en,2,left\n")
    config = load_config(None, {"asr.cpu_threads": 1, "audio.agent_channel": "left"})  # roles: not under test
    for run in (1, 2):
        summary = run_folder(calls, data, config, pool=pool)
        outcomes = {Path(o.path).relative_to(calls).as_posix(): o for o in summary.outcomes}
        assert outcomes["dup-b.wav"].status == "failed", run
        assert {k: o.status for k, o in outcomes.items() if k != "dup-b.wav"} == {
            k: "done" if run == 1 else "skipped" for k in ("day1/001.wav", "day2/001.wav", "dup-a.wav")}, run
        stored = _calls(data)
        assert stored["d1-001"]["audio_sha256"] == _sha(day1) and stored["d1-001"]["path"] == str(day1)
        assert stored["same"]["audio_sha256"] == _sha(dup_a) and stored["same"]["agent_id"] == "A01"
        (other,) = [c for c in stored.values() if c["audio_sha256"] == _sha(day2)]
        assert other["call_id"].startswith("sha-") and other["agent_id"] is None  # no metadata of day1's row
        assert any(f.startswith("W005") for f in other["flags"])
        assert _code(data, "dup-b.wav") == "E120"
        assert _failures(data)["dup-b.wav"][0]["audio_sha256"] == _sha(dup_b)
        assert len(stored) == 3


def test_manifest_rows_match_by_relative_path(tmp_path):
    from qa_pipeline.config import IngestOptions
    from qa_pipeline.pipeline.ingest import describe, load_manifest

    calls = tmp_path / "calls"
    for i, rel in enumerate(("day1/001.wav", "day2/001.wav", "sub/solo.wav", "x/twice.wav", "top.wav")):
        (calls / rel).parent.mkdir(parents=True, exist_ok=True)
        (calls / rel).write_bytes(bytes([i]) * 100)
    (calls / "calls.csv").write_text(
        MANIFEST_HEAD
        + f"day1/001.wav,d1,A01,north,c,inbound,order,{DAY1},en,2,left\n"
        + f"solo.wav,solo,A02,north,c,inbound,order,{DAY1},en,2,left\n"  # a bare name, unique on both sides
        + f"twice.wav,t1,A03,north,c,inbound,order,{DAY1},en,2,left\n"  # a bare name listed twice
        + f"other/twice.wav,t2,A03,north,c,inbound,order,{DAY1},en,2,left\n"
        + f"./top.wav,top,A04,north,c,inbound,order,{DAY1},en,2,left\n")
    options = IngestOptions()
    manifest = load_manifest(calls, options)

    def meta(rel):
        return describe(calls / rel, calls, manifest, options)

    assert meta("day1/001.wav").call_id == "d1"
    assert meta("sub/solo.wav").call_id == "solo"
    assert meta("top.wav").call_id == "top"
    for rel in ("day2/001.wav", "x/twice.wav"):
        m = meta(rel)
        assert m.metadata_source != "manifest" and m.call_id.startswith("sha-") and m.agent_id is None, rel
        assert any(i.startswith("W005") for i in m.issues), rel


def test_invalid_call_ids_are_refused(tmp_path, pool):
    calls, data = tmp_path / "calls", tmp_path / "data"
    _transcript(calls, "long", "x" * 129)
    _transcript(calls, "bell", "bad\x07id")
    _transcript(calls, "newline", "two\nlines")
    _transcript(calls, "bidi", "abc\u202edcba")
    _transcript(calls, "fine", "team/A 1 é")  # any printable text: the file key is encoded
    summary = run_folder(calls, data, load_config(None), pool=pool)
    outcomes = _by_name(summary)
    assert outcomes["fine.transcript.json"].status == "done"
    for name in ("long", "bell", "newline", "bidi"):
        assert _code(data, f"{name}.transcript.json") == "E121", name
    assert set(_calls(data)) == {"team/A 1 é"}


# ---- 2. bounded input -----------------------------------------------------------------------------------------


def _limit_address_space():
    two_gb = 2 * 1024 ** 3
    resource.setrlimit(resource.RLIMIT_AS, (two_gb, two_gb))


def test_bad_transcripts_fail_coded_under_a_2_gb_address_space_limit(tmp_path):
    calls, data = tmp_path / "calls", tmp_path / "data"
    good = _transcript(calls, "good", "good")
    lines = [(r, s, e, t) for r, s, e, t in COMPLIANT_ORDER]
    _transcript(calls, "end-1e8", "e1", lines + [("agent", 40.0, 1e8, "still there?")])
    _transcript(calls, "end-nan", "e2", lines + [("agent", 40.0, float("nan"), "hello")])
    _transcript(calls, "end-inf", "e3", lines + [("agent", float("-inf"), float("inf"), "hello")])
    _transcript(calls, "start-neg", "e4", [("agent", -5.0, 2.0, "hello")] + lines)
    big = _doc("big", [("agent", 0.0, 5.0, "word " * (11 * 1024 * 1024))])  # 55 MB of text
    (calls / "big.transcript.json").write_text(json.dumps(big))
    assert "NaN" in (calls / "end-nan.transcript.json").read_text()  # what json.dumps writes, and json.loads reads
    # glibc gives every thread its own 64 MB malloc arena: 2 arenas keep the address space for the data
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "qa_pipeline.cli", "run", str(calls), "--data", str(data),
                           "--task-runner", "none"], env=env, preexec_fn=_limit_address_space,
                          capture_output=True, text=True, timeout=600)
    # 1 = some calls failed (0 when all are done); a killed run would be -9 / 137, an error 2
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "done 1, skipped 0, failed 5" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert set(_calls(data)) == {"good"} and _calls(data)["good"]["path"] == str(good)
    assert _code(data, "end-1e8.transcript.json") == "E117"
    assert _code(data, "end-nan.transcript.json") == "E116"
    assert _code(data, "end-inf.transcript.json") == "E116"
    assert _code(data, "start-neg.transcript.json") == "E117"
    assert _code(data, "big.transcript.json") == "E122"
    assert "ingest.max_text_file_bytes" in _failures(data)["big.transcript.json"][0]["message"]
    assert not list((data / "_inprogress").glob("*.json")), "markers are removed once a call is done or failed"


def test_utterance_count_and_text_length_are_capped(tmp_path, pool):
    calls, data = tmp_path / "calls", tmp_path / "data"
    _transcript(calls, "many", "many", COMPLIANT_ORDER)  # 9 utterances
    _transcript(calls, "wordy", "wordy", RUDE_COMPLAINT[:1] + [("customer", 3.0, 9.0, "so " * 30)])
    _transcript(calls, "fine", "fine", RUDE_COMPLAINT)
    config = load_config(None, {"ingest.max_utterances": 5, "ingest.max_utterance_chars": 85})
    summary = run_folder(calls, data, config, pool=pool)
    assert _by_name(summary)["fine.transcript.json"].status == "done"
    assert _code(data, "many.transcript.json") == "E118"
    assert _code(data, "wordy.transcript.json") == "E119"
    defaults = load_config(None).ingest
    assert (defaults.max_utterances, defaults.max_utterance_chars, defaults.max_text_file_bytes,
            defaults.max_attempts) == (20_000, 10_000, 50 * 1024 * 1024, 3)
    assert load_config(None).audio.max_duration_s == 4 * 3600  # the longest transcript too


def _junk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF not really audio")
    return path


def test_manifest_encoding_oversize_fields_and_bad_dates_are_coded(tmp_path, pool):
    data = tmp_path / "data"
    latin = tmp_path / "latin"
    _junk(latin / "a.wav")
    (latin / "calls.csv").write_bytes((MANIFEST_HEAD + f"a.wav,a,Agnès,north,c,inbound,order,{DAY1},fr,1,\n")
                                      .encode("latin-1"))
    nul = tmp_path / "nul"
    _junk(nul / "b.wav")
    (nul / "calls.csv").write_text(MANIFEST_HEAD + f"b.wav,b,A01\x00,north,c,inbound,order,{DAY1},en,1,\n")
    huge = tmp_path / "huge"
    _junk(huge / "c.wav")
    (huge / "calls.csv").write_text(MANIFEST_HEAD + f"c.wav,c,{'A' * 200_000},north,c,inbound,order,{DAY1},en,1,\n")
    rows = tmp_path / "rows"
    _junk(rows / "d.wav")
    _junk(rows / "e.wav")
    (rows / "calls.csv").write_text(MANIFEST_HEAD + "d.wav,d,A01,north,c,inbound,order,last tuesday,en,1,\n"
                                    + f"e.wav,e,{'B' * 300},north,c,inbound,order,{DAY1},en,1,\n")
    for folder in (latin, nul, huge, rows):
        run_folder(folder, data, load_config(None), pool=pool)
    assert _code(data, "a.wav") == "E123" and "UTF-8" in _failures(data)["a.wav"][0]["message"]
    assert _code(data, "b.wav") == "E123" and "NUL" in _failures(data)["b.wav"][0]["message"]
    assert _code(data, "c.wav") in ("E123", "E124")
    assert _code(data, "d.wav") == "E125" and "last tuesday" in _failures(data)["d.wav"][0]["message"]
    assert _code(data, "e.wav") == "E124" and "agent_id" in _failures(data)["e.wav"][0]["message"]
    # the same checks on an imported transcript's header
    calls = tmp_path / "calls"
    _transcript(calls, "when", "when", started="tomorrow morning")
    _transcript(calls, "who", "who", agent_id="C" * 300)
    run_folder(calls, data, load_config(None), pool=pool)
    assert _code(data, "when.transcript.json") == "E125"
    assert _code(data, "who.transcript.json") == "E124"


def _deny(monkeypatch, names: set[str], *modules) -> None:
    """Hashing these files raises PermissionError (the tests run as root: chmod would not stop them)."""
    import qa_pipeline.pipeline.ingest as ingest

    real = ingest.file_sha256

    def hashing(path, *a, **k):
        if Path(path).name in names:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *a, **k)

    for module in (ingest, *modules):
        monkeypatch.setattr(module, "file_sha256", hashing)


def test_an_unreadable_file_is_one_failure_row_and_the_run_goes_on(tmp_path, pool, monkeypatch):
    calls, data = tmp_path / "calls", tmp_path / "data"
    _transcript(calls, "good", "good")
    _transcript(calls, "locked", "locked")
    _junk(calls / "locked.wav")
    _deny(monkeypatch, {"locked.transcript.json", "locked.wav"})
    summary = run_folder(calls, data, load_config(None), pool=pool)
    outcomes = _by_name(summary)
    assert outcomes["good.transcript.json"].status == "done"
    for name in ("locked.transcript.json", "locked.wav"):
        assert outcomes[name].status == "failed", name
        assert _code(data, name) == "E126", name
        assert "Permission denied" in _failures(data)[name][0]["message"]


def test_an_unreadable_file_in_the_flows_discovery_is_a_failure_not_the_end(tmp_path, monkeypatch):
    import flows.tasks as tasks

    calls, data = tmp_path / "calls", tmp_path / "data"
    _transcript(calls, "good", "good")
    _transcript(calls, "locked", "locked")
    _deny(monkeypatch, {"locked.transcript.json"}, tasks)
    found = tasks.discover_calls.fn(str(calls), str(data))  # before: PermissionError ended the flow here
    todo = {Path(i["path"]).name: i for i in found["todo"]}
    assert set(todo) == {"good.transcript.json", "locked.transcript.json"}
    outcomes = {name: tasks.process_one.fn(item, str(calls), str(data)) for name, item in todo.items()}
    assert outcomes["good.transcript.json"]["status"] == "done"
    assert outcomes["locked.transcript.json"]["status"] == "failed"
    assert _code(data, "locked.transcript.json") == "E126"


def test_a_file_still_being_written_waits_for_the_next_run(tmp_path, pool, monkeypatch):
    calls, data = tmp_path / "calls", tmp_path / "data"
    fresh = _transcript(calls, "fresh", "fresh")
    summary = run_folder(calls, data, load_config(None, {"ingest.min_age_s": 3600}), pool=pool)
    (o,) = summary.outcomes
    assert o.status == "waiting" and "ingest.min_age_s" in o.message
    assert "waiting 1" in summary.text()
    assert not _calls(data) and not _failures(data)
    # its size changes between two looks (a copy still running): waits too, whatever its age
    import qa_pipeline.pipeline.ingest as ingest

    real = ingest.file_sha256

    def growing(path, *a, **k):
        digest = real(path, *a, **k)
        with open(path, "a") as f:
            f.write(" ")
        return digest

    monkeypatch.setattr(ingest, "file_sha256", growing)
    (o,) = run_folder(calls, data, load_config(None, {"ingest.min_age_s": 0}), pool=pool).outcomes
    assert o.status == "waiting" and "changed" in o.message
    assert not _calls(data) and not _failures(data)
    monkeypatch.setattr(ingest, "file_sha256", real)
    (o,) = run_folder(calls, data, load_config(None, {"ingest.min_age_s": 0}), pool=pool).outcomes
    assert o.status == "done" and _calls(data)["fresh"]["audio_sha256"] == _sha(fresh)


def test_a_file_that_crashed_the_worker_max_attempts_times_is_quarantined(tmp_path, pool):
    calls, data = tmp_path / "calls", tmp_path / "data"
    _transcript(calls, "good", "good")
    crash = _transcript(calls, "crash", "crash")
    marker = data / "_inprogress" / f"{_sha(crash)}.json"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"attempts": 3, "pid": 4_000_000, "host": "worker-7", "path": str(crash),
                                  "started_at": "2026-11-24T02:00:00+00:00"}))
    for run in (1, 2):
        summary = run_folder(calls, data, load_config(None), pool=pool)
        outcomes = _by_name(summary)
        assert outcomes["good.transcript.json"].status == ("done" if run == 1 else "skipped")
        assert outcomes["crash.transcript.json"].status == "failed"
        (row,) = _failures(data)["crash.transcript.json"]
        assert row["error_code"] == "E127" and "3 times" in row["message"] and str(marker) in row["message"]
        assert set(_calls(data)) == {"good"}
        assert [p.name for p in (data / "_inprogress").iterdir()] == [marker.name]  # good's marker is gone


CRASHING_RUN = """
import os, signal, sys
import qa_pipeline.pipeline.transcripts as transcripts
real = transcripts.import_transcript
def crashing(path, *a, **k):
    if "crash" in str(path):
        os.kill(os.getpid(), signal.SIGKILL)  # as a segfault or the OOM killer would end the worker
    return real(path, *a, **k)
transcripts.import_transcript = crashing
from qa_pipeline.config import load_config
from qa_pipeline.pipeline.runner import run_folder
print(run_folder(sys.argv[1], sys.argv[2], load_config(None, {"ingest.max_attempts": 2})).text())
"""


def test_a_worker_killed_by_a_file_gives_up_on_it_after_max_attempts(tmp_path):
    calls, data = tmp_path / "calls", tmp_path / "data"
    crash = _transcript(calls, "crash", "crash")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, "-c", CRASHING_RUN, str(calls), str(data)], env=env,
                           capture_output=True, text=True, timeout=300) for _ in range(3)]
    assert [r.returncode for r in runs] == [-signal.SIGKILL, -signal.SIGKILL, 0], runs[-1].stderr[-3000:]
    assert "failed 1" in runs[-1].stdout
    assert _code(data, "crash.transcript.json") == "E127"
    marker = json.loads((data / "_inprogress" / f"{_sha(crash)}.json").read_text())
    assert marker["attempts"] == 2 and marker["path"] == str(crash)


def test_the_flow_summary_counts_waiting_calls_only_when_there_are_some():
    import datetime as dt

    from flows.process_calls import _summary

    def summary(statuses):
        outcomes = [{"path": f"{i}.wav", "status": s, "call_id": None, "audio_s": 0.0, "message": ""}
                    for i, s in enumerate(statuses)]
        return _summary(outcomes, {}, None, wall_s=1.0, started_at=dt.datetime.now(dt.timezone.utc),
                        calls_dir="c", data_dir="d", stale=0)["counts"]

    assert summary(["done", "failed"]) == {"done": 1, "skipped": 0, "reanalysed": 0, "failed": 1}
    assert summary(["done", "waiting"])["waiting"] == 1
