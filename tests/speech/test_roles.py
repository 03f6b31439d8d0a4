"""Roles from what the speakers say (speech/roles.py: features and the fitted linear model), the company-name
fallback with no names configured (analysis/compliance.py), and the run summary's advice (cli.run_hints).

The real SpokenWOZ stereo call (../shared/eval) must get its agent channel right above the review threshold, with
no manifest and with one saying inbound; that test runs the pipeline and is skipped without ../shared."""

from __future__ import annotations

import csv
import json

import pytest

from qa_pipeline.analysis.analyse import CallFacts, analyse
from qa_pipeline.analysis.compliance import ORGANISATION_CONFIDENCE, organisation_mentions
from qa_pipeline.analysis.resources import AnalysisResources
from qa_pipeline.config import AnalysisOptions, RolesOptions
from qa_pipeline.speech.roles import (
    FEATURES,
    Turn,
    decide_roles,
    decide_roles_from_turns,
    load_role_model,
    normalise,
    roles_uncertain,
    speaker_features,
    turns_from_words,
)
from qa_pipeline.types import AGENT, CUSTOMER, UNKNOWN, Utterance, Word

THRESHOLD = RolesOptions().low_confidence


def _turns(*lines: tuple[str, str], gap: float = 0.6) -> list[Turn]:
    out, t = [], 0.0
    for speaker, text in lines:
        dur = 0.35 * len(text.split())
        out.append(Turn(speaker, t, t + dur, text))
        t += dur + gap
    return out


def _words(turns: list[Turn]) -> list[Word]:
    out = []
    for t in turns:
        tokens = t.text.split()
        step = (t.end - t.start) / len(tokens)
        out += [Word(t.start + i * step, t.start + (i + 1) * step, w, 0.9, t.speaker) for i, w in enumerate(tokens)]
    return out


# ------------------------------------------------------------------------------------------------ features


def test_features_of_each_party():
    turns = _turns(("A", "Thank you for calling, my name is Sam, how can I help you today?"),
                   ("B", "Hi, I'd like to change my bill address, I have a problem with my account."),
                   ("A", "Of course. Can I have your account number please?"),
                   ("B", "Yes, it's 12345."),
                   ("A", "Let me check that for you. Is there anything else I can help with?"))
    f = speaker_features(turns, ["A", "B"], direction="inbound",
                         script_phrases=("thank you for calling", "is there anything else", "hello"))
    a, b = f["A"].values, f["B"].values
    assert set(a) == set(FEATURES)
    assert a["first_inbound"] == 1.0 and b["first_inbound"] == 0.0 and a["first_outbound"] == 0.0
    assert a["help_offer"] > 0 and a["identification"] > 0 and a["service"] > 0 and a["script"] > 0
    assert b["need"] > 0 and a["need"] == 0
    assert b["answers"] > 0 and a["questions"] > b["questions"]
    assert a["you_vs_i"] > b["you_vs_i"] and b["you_vs_i"] < 0
    assert "can i have your" in f["A"].evidence["identification"][0]
    # one-word script phrases ("hello") are said by both parties: they are not counted
    assert speaker_features(_turns(("A", "hello"), ("B", "hello")), ["A", "B"],
                           script_phrases=("hello",))["A"].values["script"] == 0


def test_questions_without_punctuation_and_turns_from_words():
    turns = _turns(("A", "which card would you like to replace"), ("B", "my debit card"))
    f = speaker_features(turns, ["A", "B"])
    assert f["A"].values["questions"] > 0 and f["B"].values["questions"] == 0
    words = [Word(0.0, 0.4, "Hello,", 0.9, "ch0"), Word(0.5, 0.9, "hi.", 0.9, "ch0"),
             Word(1.0, 1.4, "Yes?", 0.9, "ch1"), Word(5.0, 5.4, "Again", 0.9, "ch1")]
    assert [(t.speaker, t.text) for t in turns_from_words(words)] == [
        ("ch0", "Hello, hi."), ("ch1", "Yes?"), ("ch1", "Again")]
    assert normalise("I ' m sure you do n't [noise] know") == "i'm sure you don't know"


def test_model_file_has_every_feature():
    model = load_role_model()
    assert set(model.weights) == set(FEATURES)
    # what the fit learned from real dialogues, in direction
    assert model.weights["help_offer"] > 0 and model.weights["need"] < 0 and model.weights["service"] > 0
    assert model.weights["first_outbound"] < 0


# ------------------------------------------------------------------------------------------------ the model


def test_spokenwoz_opening_exchange_inbound():
    """The caller says hello first on an inbound call; the one who offers help is the agent."""
    turns = _turns(("ch0", "Hello, is that customer service?"), ("ch1", "Yes, well, can I help you?"),
                   ("ch0", "I'm looking for a train to Cambridge."))
    for direction in (None, "inbound"):
        d = decide_roles_from_turns(turns, ["ch0", "ch1"], direction=direction)
        assert d.roles == {"ch0": CUSTOMER, "ch1": AGENT}, (direction, d)
        assert d.confidence >= THRESHOLD and not roles_uncertain(d, 2)
        assert "help offer" in d.evidence


def test_agent_greets_first_and_words_path():
    turns = _turns(("ch1", "Hello?"),
                   ("ch0", "Good morning, thank you for calling Brightwave, my name is Laura, how can I help you?"),
                   ("ch1", "I have a problem with my bill"))
    d = decide_roles(_words(turns), ["ch0", "ch1"], direction="inbound")
    assert d.roles == {"ch0": AGENT, "ch1": CUSTOMER} and d.confidence > 0.9


def test_outbound_cold_call_without_introduction():
    turns = _turns(("A", "Hi, is that Mr Patel? I'm calling about your broadband."),
                   ("B", "Who is this? Which company are you calling from?"),
                   ("A", "We're putting fibre in your area. Do you want it?"),
                   ("B", "I'm not interested, thanks. Please take me off your list."))
    d = decide_roles_from_turns(turns, ["A", "B"], direction="outbound")
    assert d.roles == {"A": AGENT, "B": CUSTOMER} and d.confidence >= THRESHOLD


def test_italian_phrases():
    turns = _turns(("B", "Pronto?"),
                   ("A", "Buongiorno, grazie per aver chiamato Brightwave Energia, sono Marco, come posso aiutarla?"),
                   ("B", "Buongiorno, vorrei informazioni sulla mia bolletta, ho un problema con il mio contratto."),
                   ("A", "Certo. Mi può dare il suo codice cliente? Un attimo che verifico."))
    f = speaker_features(turns, ["A", "B"], direction="inbound")
    a, b = f["A"].values, f["B"].values
    assert a["help_offer"] > 0 and a["service"] > 0 and a["identification"] > 0
    assert b["need"] > 0 and a["need"] == 0
    d = decide_roles_from_turns(turns, ["A", "B"], direction="inbound")
    assert d.roles == {"A": AGENT, "B": CUSTOMER} and d.confidence > 0.9


def test_no_evidence_no_decision():
    d = decide_roles(_words(_turns(("ch0", "okay"), ("ch1", "fine"))), ["ch0", "ch1"])
    assert d.method == "none" and d.confidence == 0.0 and set(d.roles.values()) == {UNKNOWN}
    assert roles_uncertain(d, 2)
    one = decide_roles(_words(_turns(("ch0", "how can I help you"))), ["ch0"])
    assert one.roles == {"ch0": UNKNOWN}


def test_three_speakers_softmax():
    turns = _turns(("s0", "How can I help you today?"), ("s1", "I'd like to pay my bill."),
                   ("s2", "I want to pay my bill too."))
    d = decide_roles_from_turns(turns, ["s0", "s1", "s2"])
    assert d.roles == {"s0": AGENT, "s1": CUSTOMER, "s2": CUSTOMER} and 0.5 < d.confidence <= 1.0


# ------------------------------------------------------------------------------------------------ company name


@pytest.fixture(scope="module")
def resources():
    return AnalysisResources(AnalysisOptions())


def _company_result(resources, agent_text: str, language: str = "en"):
    utts = (Utterance(0, "ch0", AGENT, 1.0, 6.0, agent_text, 1.0, len(agent_text.split())),
            Utterance(1, "ch1", CUSTOMER, 6.5, 8.0, "hi I lost my card", 1.0, 5))
    a = analyse(CallFacts("c1", language, None, "inbound", None, 10.0), utts, resources)
    return next(r for r in a.compliance if r.rule_id == "opening.company_name")


def test_company_fallback_without_config(resources):
    r = _company_result(resources, "hello this is harper valley national bank my name is robert how can i help you")
    assert r.result == "passed" and 0 < r.confidence < 1.0
    assert r.evidence[0].method == "organisation" and "harper valley national bank" in r.evidence[0].text
    assert "analysis.companies" in r.reason
    for text in ("Thank you for calling Acme, this is Jo.", "Welcome to Northwind, how can I help?",
                 "Brightwave Energy, my name is Laura.", "You've reached Contoso."):
        r = _company_result(resources, text)
        assert r.result == "passed" and r.confidence < 1.0, text


def test_company_fallback_needs_a_name(resources):
    for text in ("thank you for calling how can I help you", "Thank you for calling.", "Hello, my name is Sarah.",
                 "This is Laura, how can I help?"):
        assert _company_result(resources, text).result == "failed", text


def test_company_fallback_italian(resources):
    for text in ("Buongiorno, sono Marco di Brightwave Energia, come posso aiutarla?",
                 "Grazie per aver chiamato Fastweb, sono Anna.", "Brightwave Energia buongiorno, sono Marco.",
                 "Benvenuto in Poste Italiane.", "Buongiorno, sono Marco di Fastweb, come posso aiutarla?"):
        r = _company_result(resources, text, "it")
        assert r.result == "passed" and r.confidence < 1.0, text
    assert _company_result(resources, "Buongiorno, sono Marco, come posso aiutarla?", "it").result == "failed"


def test_configured_company_still_certain():
    res = AnalysisResources(AnalysisOptions(companies=("Harper Valley National Bank",)))
    r = _company_result(res, "hello this is harper valley national bank my name is robert how can i help you")
    assert r.result == "passed" and r.confidence == 1.0 and r.evidence[0].method != "organisation"
    # with names configured the fallback is off: naming another organisation is not naming the company
    assert _company_result(res, "hello you've reached the help desk of acme bank").result == "failed"


def test_organisation_mentions_spans():
    text = "Good morning, Skyline Broadband, my name is Mark."
    (s, e, c), *_ = organisation_mentions(text)
    assert text[s:e] == "Skyline Broadband" and c == ORGANISATION_CONFIDENCE
    assert organisation_mentions("thank you for calling have a great day") == []


# ------------------------------------------------------------------------------------------------ run summary


def test_run_hints(tmp_path, monkeypatch):
    import pyarrow as pa

    from qa_pipeline import cli
    from qa_pipeline.store import folder

    tables = {
        "calls": [{"call_id": "a", "flags": ["W006 low-confidence role decision"]},
                  {"call_id": "b", "flags": ["W006 low-confidence role decision"]}, {"call_id": "c", "flags": []}],
        "compliance": [{"call_id": "a", "rule_id": "opening.company_name", "result": "passed",
                        "match_method": "organisation"}],
    }
    monkeypatch.setattr(folder, "read_dataset", lambda data, name, columns=None: pa.Table.from_pylist(tables[name]))
    hints = cli.run_hints(tmp_path, ["a", "b", "c"])
    assert hints[0] == ("roles were uncertain on 2 of 3 calls: if your recorder puts the agent on a fixed "
                        "channel, set audio.agent_channel: left|right")
    assert "analysis.companies" in hints[1] and len(hints) == 2
    assert len(cli.run_hints(tmp_path, ["c"])) == 0


def test_transcripts_without_config_say_how_to_name_the_company(tmp_path, capsys):
    from qa_pipeline import cli

    calls = tmp_path / "calls"
    calls.mkdir()
    doc = {"call_id": "hv1", "direction": "inbound", "language": "en", "started_at": "2026-12-01T10:00:00+00:00",
           "utterances": [
               {"speaker": "agent", "start": 1.0, "end": 5.0,
                "text": "hello this is harper valley national bank my name is robert how can i help you today"},
               {"speaker": "customer", "start": 6.0, "end": 8.0, "text": "hi i lost my credit card"}]}
    (calls / "hv1.transcript.json").write_text(json.dumps(doc), encoding="utf-8")
    assert cli.main(["run", str(calls), "--data", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert out.count("analysis.companies") == 1 and "roles were uncertain" not in out


# ------------------------------------------------------------------------------------------------ real call


@pytest.mark.slow
def test_spokenwoz_stereo_call_agent_channel(eval_dir, tmp_path):
    """The real stereo phone call: the agent is channel 1 (right; the RTTM and the dialogue-turn windows put the
    user, who opens the call, on channel 0). Right above the threshold with a manifest saying inbound (the whole
    pipeline) and with no metadata (the same words decided again without a direction)."""
    from qa_pipeline.config import load_config
    from qa_pipeline.pipeline.runner import run_folder
    from qa_pipeline.store.folder import read_dataset

    src = eval_dir / "spokenwoz_MUL1011_phone2spk" / "MUL1011.opus"
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "MUL1011.opus").symlink_to(src)
    with (calls / "calls.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "call_id", "direction", "language"])
        w.writerow(["MUL1011.opus", "MUL1011", "inbound", "en"])
    data = tmp_path / "data"
    summary = run_folder(calls, data, load_config(None))
    assert summary.count("done") == 1, summary.outcomes
    call = read_dataset(data, "calls").to_pylist()[0]
    assert call["direction"] == "inbound"
    assert call["agent_channel"] == "right" and call["role_confidence"] >= THRESHOLD, call["role_evidence"]
    assert not any(f.startswith("W006") for f in call["flags"])
    words = [Word(r["start_s"], r["end_s"], r["text"], r["probability"] or 1.0, r["speaker"])
             for r in read_dataset(data, "words").to_pylist()]
    d = decide_roles(words, ["ch0", "ch1"], direction=None)
    assert d.roles == {"ch0": CUSTOMER, "ch1": AGENT} and d.confidence >= THRESHOLD, d
