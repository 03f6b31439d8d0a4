"""Fast tests of the pure parts: no models."""

import ast
from pathlib import Path

import pytest

from qa_pipeline.config import AsrOptions, load_config
from qa_pipeline.errors import ConfigError
from qa_pipeline.speech.asr import PackedSpan, Window, _map_word, pack_windows
from qa_pipeline.speech.evaluation import normalise, wer
from qa_pipeline.speech.metrics import conversation_metrics, talk_intervals
from qa_pipeline.speech.roles import decide_roles
from qa_pipeline.speech.utterances import group_utterances
from qa_pipeline.types import SpeechRegion, Word

ROOT = Path(__file__).resolve().parents[1]


def test_config_rejects_unknown_option(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("asr:\n  beam_sizee: 2\n")
    with pytest.raises(ConfigError, match="beam_sizee"):
        load_config(p)
    p.write_text("asr:\n  beam_size: 2\nworkers: 2\n")
    cfg = load_config(p)
    assert cfg.asr.beam_size == 2 and cfg.workers == 2
    assert cfg.hash() != load_config(None).hash()


def test_config_hash_ignores_device_and_workers():
    a = load_config(None)
    b = load_config(None, {"asr.device": "cuda", "workers": 4})
    assert a.hash() == b.hash()


def test_pack_windows_keeps_channels_apart_and_bounds_length():
    regions = [SpeechRegion(0, 0.0, 5.0), SpeechRegion(1, 5.5, 9.0), SpeechRegion(0, 10.0, 70.0)]
    windows = pack_windows(regions, AsrOptions(window_s=28.0, max_region_s=25.0, share_windows=False))
    for w in windows:
        assert len({sp.channel for sp in w.spans}) == 1
        assert w.duration_s <= 28.0 + 1e-6
    covered = sum(sp.packed_end - sp.packed_start for w in windows for sp in w.spans)
    assert covered == pytest.approx(5.0 + 3.5 + 60.0)


def test_word_drifting_into_gap_stays_with_its_span():
    w = Window((PackedSpan(0.0, 2.0, 0, 10.0), PackedSpan(2.8, 5.0, 0, 30.0)), 5.0)
    sp, s, e = _map_word(w, [0.0, 2.8], 2.1, 2.6)  # "need." placed late by Whisper
    assert sp.call_start == 10.0 and 11.9 <= s <= 12.0
    sp, s, e = _map_word(w, [0.0, 2.8], 3.0, 3.4)
    assert sp.call_start == 30.0 and s == pytest.approx(30.2)


def test_word_drifting_early_into_the_gap_goes_to_the_next_span():
    w = Window((PackedSpan(0.0, 2.0, 1, 18.0), PackedSpan(2.8, 5.0, 1, 22.98)), 5.0)
    sp, s, e = _map_word(w, [0.0, 2.8], 2.3, 3.1)  # "five" starting in the gap, reaching 0.3 s into the next span
    assert sp.call_start == 22.98 and s == pytest.approx(22.98) and e == pytest.approx(23.28)
    sp, s, e = _map_word(w, [0.0, 2.8], 2.3, 2.85)  # barely touching it: still the late end of the first span
    assert sp.call_start == 18.0


def _words(spec):
    return [Word(s, e, t, 0.9, spk) for spk, s, e, t in spec]


def test_utterances_per_speaker_survive_overtalk():
    words = _words([("ch0", 0.0, 0.4, "hello"), ("ch0", 0.5, 0.9, "there"), ("ch1", 0.7, 1.0, "hi"),
                    ("ch0", 1.0, 1.3, "friend"), ("ch1", 5.0, 5.4, "bye")])
    utts = group_utterances(words, {"ch0": "agent", "ch1": "customer"})
    assert [(u.role, u.text) for u in utts] == [("agent", "hello there friend"), ("customer", "hi"), ("customer", "bye")]


def test_metrics_holds_overtalk_interruptions():
    words = _words([("a", 0.0, 3.0, "x"), ("c", 2.0, 4.0, "y"), ("a", 40.0, 42.0, "z"), ("c", 43.0, 44.0, "w")])
    roles = {"a": "agent", "c": "customer"}
    talk = talk_intervals(words, roles)
    utts = group_utterances(words, roles)
    m = conversation_metrics(50.0, talk, utts, {"agent": 2, "customer": 2})
    assert m.hold_count == 1 and m.holds[0] == (4.0, 40.0)
    assert m.overtalk_s == pytest.approx(1.0, abs=0.02)
    assert m.interruptions == {"agent": 0, "customer": 1}
    assert m.agent_first_word_s == 0.0
    assert m.talk_s["agent"] == pytest.approx(5.0, abs=0.02)


def test_roles_from_greeting():
    words = _words([("ch1", 0.5, 1.0, "Hello?"),
                    ("ch0", 1.2, 4.0, "Good morning, thank you for calling Brightwave, my name is Laura, how can I help you?"),
                    ("ch1", 4.5, 6.0, "I have a problem with my bill")])
    d = decide_roles(words, ["ch0", "ch1"])
    assert d.roles == {"ch0": "agent", "ch1": "customer"} and d.confidence > 0.8
    d = decide_roles(_words([("ch0", 0, 1, "okay"), ("ch1", 1, 2, "fine")]), ["ch0", "ch1"])
    assert d.method == "none" and d.confidence == 0.0


def test_wer_normaliser():
    assert normalise("Hello, World! It's 5 o'clock.") == "hello world it's five o'clock"
    assert wer(["the cat sat"], ["The cat, sat."]) == 0.0
    assert wer(["a b c d"], ["a b x d"]) == pytest.approx(0.25)


def test_library_never_imports_prefect():
    for path in (ROOT / "qa_pipeline").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "prefect" for n in names), f"{path} imports prefect"


def test_library_cli_without_flows_refuses_a_task_runner(tmp_path, capsys):
    """qa_pipeline never imports Prefect: asking its bare CLI for a flow task runner is a clear error."""
    from qa_pipeline.cli import main

    assert main(["run", str(tmp_path), "--data", str(tmp_path / "data"), "--task-runner", "dask"]) == 2
    assert "needs the Prefect flows" in capsys.readouterr().err
    import sys

    assert "prefect" not in sys.modules or "flows.process_calls" in sys.modules  # nothing here loaded it


def test_company_names_per_campaign_and_their_validation():
    """analysis.companies: a list (every call) or a mapping per campaign; they steer ASR, so they are in the
    transcription hash; a malformed value is a clear error."""
    flat = load_config(None, {"analysis.companies": ["Acme"]})
    assert flat.analysis.companies_for("any") == ("Acme",)
    per = load_config(None, {"analysis.companies": {"*": ["Acme"], "energy": ["Brightwave Energy"]}})
    assert per.analysis.companies_for("energy") == ("Acme", "Brightwave Energy")
    assert per.analysis.companies_for("other") == ("Acme",)
    assert flat.hash() == load_config(None).hash()  # names only for matching: nothing to re-transcribe
    hot = load_config(None, {"analysis.companies": ["Acme"], "asr.company_hotwords": True})
    assert hot.hash() != flat.hash()  # as hotwords they change the transcripts
    with pytest.raises(ConfigError, match="companies"):
        load_config(None, {"analysis.companies": {"energy": [3]}})
