"""Audio redaction (qa_pipeline/privacy/audio.py, qa_pipeline/pipeline/audio_redaction.py): muted spans at or below
-60 dBFS in the written copy, duration and channels kept, the verify loop muting a residual's whole turn and
flagging the call, the pipeline writing copy and report for a demo call with planted personal data, and the review
app playing the redacted copy to everyone but the unredacted permission."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa_pipeline.audio.decode import decode_spans, load_audio
from qa_pipeline.config import AudioOptions
from qa_pipeline.privacy.audio import encode, muted_level_dbfs, padded_spans, redact

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "tests" / "data" / "call_stereo.opus"
DEMO = ROOT / "demo"


def _decode(tmp_path: Path, data: bytes, suffix: str):
    p = tmp_path / f"x{suffix}"
    p.write_bytes(data)
    return load_audio(p, AudioOptions(min_duration_s=0.0))


@pytest.mark.parametrize("fmt", ["opus", "wav"])
def test_muted_spans_are_silent_and_shape_is_kept(tmp_path, fmt):
    audio = load_audio(CLIP)
    findings = [dict(start_s=2.0, end_s=3.1, entity_type="PERSON"), dict(start_s=3.2, end_s=4.0, entity_type="PERSON"),
                dict(start_s=9.0, end_s=10.5, entity_type="CREDIT_CARD")]
    red = redact(audio.samples, audio.sample_rate, findings, [], margin_s=0.25)
    assert red.spans == ((1.75, 4.25), (8.75, 10.75))  # padded, merged
    assert red.entities == {"PERSON": 2, "CREDIT_CARD": 1} and red.seconds_muted == 4.5
    assert red.samples.shape == audio.samples.shape
    before = muted_level_dbfs(audio.samples, audio.sample_rate, [(f["start_s"], f["end_s"]) for f in findings])
    assert before > -40  # there is speech (or its bleed) there
    decoded = _decode(tmp_path, encode(red.samples, audio.sample_rate, fmt), "." + fmt)
    assert decoded.samples.shape[0] == 2  # channels kept
    assert abs(decoded.samples.shape[1] - audio.samples.shape[1]) <= audio.sample_rate * 0.03  # duration kept
    level = muted_level_dbfs(decoded.samples, decoded.sample_rate, [(f["start_s"], f["end_s"]) for f in findings])
    assert level <= -60.0, level
    outside = muted_level_dbfs(decoded.samples, decoded.sample_rate, [(5.0, 8.0)])
    assert outside > -40  # the rest of the call is untouched


def test_decoding_only_the_muted_spans_agrees_with_the_whole_file(tmp_path):
    """The written copy's check decodes only the findings' stretches (seeking): the same samples as a decode of the
    whole file, within a few ms of the same time, and the same verdict on the muted spans."""
    audio = load_audio(CLIP)
    spans = [(2.0, 3.1), (9.0, 10.5)]
    red = redact(audio.samples, audio.sample_rate, [dict(start_s=a, end_s=b, entity_type="PERSON") for a, b in spans],
                 [], margin_s=0.25)
    path = tmp_path / "x.opus"
    path.write_bytes(encode(red.samples, audio.sample_rate, "opus"))
    whole = load_audio(path, AudioOptions(min_duration_s=0.0)).samples.astype(np.float64)
    parts = decode_spans(path, [*spans, (5.0, 8.0), (99.0, 100.0)], audio.sample_rate)
    assert len(parts) == 4 and parts[3][1].shape[1] == 0 or parts[3][0] < 99.0  # past the end: nothing there
    for (a, b), (t0, x) in zip([*spans, (5.0, 8.0)], parts):
        assert t0 <= a and x.shape[0] == 2 and t0 + x.shape[1] / audio.sample_rate >= b
        i = int(round(t0 * audio.sample_rate))
        lags = range(-1000, 1001)  # +-62 ms; compared after the decoder's first 0.4 s (its state after a seek)
        err = [np.abs(whole[0, i + k + 6400: i + k + 14400] - x[0, 6400:14400]).mean() for k in lags]
        scale = np.abs(x[0, 6400:14400]).mean() + 1.0
        assert min(err) < 0.05 * scale and abs(lags[int(np.argmin(err))]) <= 0.05 * audio.sample_rate
    level = max(muted_level_dbfs(x, audio.sample_rate, [(a - t0, b - t0)]) for (a, b), (t0, x) in zip(spans, parts))
    assert level <= -60.0
    assert muted_level_dbfs(parts[2][1], audio.sample_rate, [(5.0 - parts[2][0], 8.0 - parts[2][0])]) > -40


def test_tone_fill_beeps_at_1khz():
    audio = load_audio(CLIP)
    red = redact(audio.samples, audio.sample_rate, [dict(start_s=2.0, end_s=3.0, entity_type="IBAN")], [],
                 margin_s=0.0, fill="tone")
    seg = red.samples[0, 2 * 16000:3 * 16000].astype(float)
    spectrum = np.abs(np.fft.rfft(seg))
    assert abs(np.argmax(spectrum) * 16000 / len(seg) - 1000) < 5
    assert -24 < muted_level_dbfs(red.samples, 16000, [(2.0, 3.0)]) < -22  # RMS of a -20 dBFS peak sine


def test_padded_spans_clip_to_the_call():
    assert padded_spans([(0.1, 0.2), (9.9, 10.0)], 0.25, 10.0) == [(0.0, 0.45), (9.65, 10.0)]


def test_a_residual_mutes_its_whole_turn_and_is_verified_again():
    rate = 16000
    samples = (np.random.default_rng(0).uniform(-0.3, 0.3, (2, rate * 12)) * 32767).astype(np.int16)
    turns = [dict(start_s=1.0, end_s=5.0), dict(start_s=6.0, end_s=11.0)]
    leak = (7.6, 8.2)  # the detector missed this part of the number; the re-transcription hears it
    windows = []

    def verifier(x, sr, round_windows):
        windows.extend(round_windows)
        heard = any(a <= leak[0] and leak[1] <= b for a, b in round_windows)
        if heard and np.any(x[:, int(leak[0] * sr):int(leak[1] * sr)]):
            return [leak]
        return []

    red = redact(samples, rate, [dict(start_s=7.0, end_s=7.5, entity_type="CREDIT_CARD")], turns, margin_s=0.25,
                 verifier=verifier)
    assert windows[0] == (4.75, 9.75)  # the muted span +- 2 s
    assert red.residual_hits == 1 and red.turns_muted == 1 and red.verified
    assert red.spans == ((5.75, 11.25),)  # the whole turn 6-11, padded
    assert not np.any(red.samples[:, int(6.0 * rate):int(11.0 * rate)])
    assert np.any(red.samples[:, int(1.0 * rate):int(5.0 * rate)])


@pytest.fixture(scope="module")
def demo_pii_run(tmp_path_factory):
    """demo-027 and demo-028 (planted card number, names, phone...) through the real pipeline."""
    if not (DEMO / "calls" / "demo-027.opus").is_file():
        pytest.skip("demo corpus not found")
    from qa_pipeline.config import load_config
    from qa_pipeline.pipeline.runner import run_folder

    root = tmp_path_factory.mktemp("demo_pii")
    calls = root / "calls"
    calls.mkdir()
    lines = (DEMO / "calls" / "calls.csv").read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.startswith(("demo-027.", "demo-028."))]
    (calls / "calls.csv").write_text("\n".join(keep) + "\n")
    for name in ("demo-027.opus", "demo-028.opus"):
        shutil.copy(DEMO / "calls" / name, calls / name)
    config = load_config(str(DEMO / "config.yaml"))
    summary = run_folder(calls, root / "data", config)
    assert summary.count("done") == 2, summary.outcomes
    return root, config


def test_the_pipeline_writes_a_redacted_copy_and_its_report(demo_pii_run):
    from qa_pipeline.store.folder import read_dataset

    root, config = demo_pii_run
    data = root / "data"
    reports = {r["call_id"]: r for r in read_dataset(data, "redactions").to_pylist()}
    pii = read_dataset(data, "pii").to_pylist()
    assert set(reports) == {"demo-027", "demo-028"}
    for cid, rep in reports.items():
        rows = [r for r in pii if r["call_id"] == cid]
        assert rows and sum(dict(rep["entities"]).values()) == len(rows)
        copy = data / rep["audio_path"]
        assert copy.is_file() and copy.suffix == ".opus" and rep["audio_path"].startswith("redacted_audio/")
        assert oct(copy.stat().st_mode & 0o777) == "0o600"
        original = load_audio(root / "calls" / f"{cid}.opus")
        red = load_audio(copy, AudioOptions(min_duration_s=0.0))
        assert red.samples.shape[0] == original.samples.shape[0]
        assert abs(red.samples.shape[1] - original.samples.shape[1]) <= 0.03 * 16000
        level = muted_level_dbfs(red.samples, 16000, [(r["start_s"], r["end_s"]) for r in rows])
        assert level <= -60.0 and rep["max_muted_dbfs"] <= -60.0
        assert rep["seconds_muted"] > 0 and rep["fill"] == "silence" and rep["margin_ms"] == 250.0
        # the verify loop ran: verified, or the residual's turn muted and the call flagged
        flags = read_dataset(data, "flags").to_pylist()
        residual = [f for f in flags if f["call_id"] == cid and f["flag_type"] == "redaction_residual"]
        assert rep["verified"] or rep["residual_hits"] > 0
        assert bool(residual) == (rep["residual_hits"] > 0)
        call = [c for c in read_dataset(data, "calls").to_pylist() if c["call_id"] == cid][0]
        assert any(f.startswith("W008") for f in call["flags"]) == (rep["residual_hits"] > 0)
        assert dict(call["stage_seconds"])["audio_redaction"] > 0  # its cost is reported with the other stages


def test_residual_flag_and_report_without_a_verifier_hit(tmp_path):
    """The step itself, on the committed clip, with a verifier that always hears something: the call is
    flagged W008 and its report counts the residual."""
    from qa_pipeline.config import PipelineConfig
    from qa_pipeline.pipeline import audio_redaction as step
    from qa_pipeline.pipeline.rows import CallResult
    from qa_pipeline.store.folder import read_dataset, write_rows

    result = CallResult(call_date="2026-11-24", calls=dict(call_id="c1", mode="stereo", language="en", flags=[]),
                        utterances=[dict(utterance_index=0, start_s=1.0, end_s=6.0)], words=[], metrics={},
                        analysis={"flags": []},
                        pii=[dict(call_id="c1", utterance_index=0, entity_type="PERSON", start_s=2.0, end_s=2.5)])
    calls = iter([[(3.0, 3.4)], [], [], []])
    orig = step.make_verifier
    step.make_verifier = lambda *a, **k: (lambda x, sr, w: next(calls))
    try:
        out = step.redact_call_audio(tmp_path, result, str(CLIP), PipelineConfig(), resources=object())
    finally:
        step.make_verifier = orig
    (rep,) = out.redactions
    assert rep["residual_hits"] == 1 and rep["turns_muted"] == 1 and rep["verified"]
    assert rep["seconds_muted"] == pytest.approx(5.5)
    assert out.calls["flags"] == ["W008 redaction residual: personal data still heard in the redacted audio"]
    assert [f["flag_type"] for f in out.analysis["flags"]] == ["redaction_residual"]
    assert (tmp_path / rep["audio_path"]).is_file()
    write_rows(tmp_path, "redactions", "2026-11-24", "c1", out.redactions)
    assert read_dataset(tmp_path, "redactions").num_rows == 1
    # no findings any more (reprocessed): the copy and the report go
    step.redact_call_audio(tmp_path, replace(result, pii=[]), str(CLIP), PipelineConfig(), resources=None)
    assert not (tmp_path / rep["audio_path"]).exists() and read_dataset(tmp_path, "redactions").num_rows == 0


# ---- the review app ------------------------------------------------------------------------------------------

def test_the_app_plays_the_redacted_copy_unless_unredacted(tmp_path):
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from qa_pipeline.store.folder import DataFolder, write_rows
    from qa_pipeline.store.keys import file_key
    from tests.webapp.conftest import CALL_DATE, add_users, build_tiny_data, make_settings, signed_in
    from webapp.app import create_app
    from webapp.models import AuditEntry

    tiny = build_tiny_data(tmp_path)
    call_id = tiny.ids["alpha-1"]
    audio = load_audio(tiny.calls / "alpha-1.wav")
    red = redact(audio.samples, 16000, [dict(start_s=1.0, end_s=1.4, entity_type="PERSON")], [])
    DataFolder(tiny.data).write_bytes(f"redacted_audio/{CALL_DATE}/{file_key(call_id)}.wav",
                                      encode(red.samples, 16000, "wav"))
    write_rows(tiny.data, "pii", CALL_DATE, call_id, [dict(
        call_id=call_id, utterance_index=0, entity_type="PERSON", start_s=1.0, end_s=1.4, char_start=40,
        char_end=43, confidence=0.9, detector="t")])
    redacted_bytes = (tiny.data / "redacted_audio" / CALL_DATE / f"{file_key(call_id)}.wav").read_bytes()
    original_bytes = (tiny.calls / "alpha-1.wav").read_bytes()
    app = create_app(make_settings(tiny))
    got = {}
    with TestClient(app) as c:
        add_users(app)
        for user in ("rev-alpha", "admin"):  # admin holds can_view_unredacted
            c.cookies.clear()
            signed_in(c, user)
            page = c.get(f"/calls/{call_id}")
            assert page.status_code == 200
            url = page.text.split(f"/audio/{call_id}?view=")[1].split('"')[0]
            r = c.get(f"/audio/{call_id}?view={url}")
            assert r.status_code == 200
            got[user] = r.content
        with app.state.qa.db.read() as s:
            played = {(e.username, e.detail["variant"]) for e in s.scalars(
                select(AuditEntry).where(AuditEntry.action == "played", AuditEntry.target_id == call_id))}
    assert got["rev-alpha"] == redacted_bytes and got["admin"] == original_bytes
    assert played == {("rev-alpha", "redacted"), ("admin", "original")}
