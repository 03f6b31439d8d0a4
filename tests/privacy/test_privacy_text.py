"""Personal data in transcripts (issue 15, text): each recognizer, the redaction of everything written, the `pii`
dataset, and the original text kept only in the owner-only restricted folder when configured."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qa_pipeline.config import PII_ENTITIES, PipelineConfig, PrivacyOptions, load_config
from qa_pipeline.errors import ConfigError
from qa_pipeline.privacy.detect import Finding, PrivacyResources, resolve
from qa_pipeline.privacy.normalize import code_runs
from qa_pipeline.privacy.redact import Redactor, analysable, restore
from qa_pipeline.types import Utterance

pytest.importorskip("presidio_analyzer", reason="the pii extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
CARD = "4716208355194420"  # passes Luhn
CARD_SPOKEN = "four seven one six, two zero eight three, five five one nine, four four two zero"


@pytest.fixture(scope="module")
def privacy():
    return PrivacyResources(PrivacyOptions())


def _utts(*turns, speakers=None):
    out = []
    t = 0.0
    for i, text in enumerate(turns):
        spk = (speakers or ["agent", "customer"] * 50)[i]
        out.append(Utterance(i, spk, spk, t, t + 4.0, text, 1.0, len(text.split())))
        t += 5.0
    return out


def _found(privacy, turns, language="en", speakers=None, allow=()):
    utts = _utts(*turns, speakers=speakers)
    fs = privacy.detect(utts, language, allow=allow)
    return [(f.utterance_index, f.entity_type, utts[f.utterance_index].text[f.char_start:f.char_end]) for f in fs]


def _types(found, index=None):
    return {t for i, t, _ in found if index is None or i == index}


# --- numbers and codes as ASR writes them -----------------------------------------------------------------------

def test_spoken_digits_become_one_code_english_and_italian():
    (run,) = code_runs(f"sure, it's {CARD_SPOKEN}.", "en")
    assert run.chars == CARD
    (run,) = code_runs("forty-seven sixteen, twenty eighty-three", "en")
    assert run.chars == "47162083"
    (run,) = code_runs("it's oh seven nine one two, double four", "en")
    assert run.chars == "0791244"
    (run,) = code_runs("cinque tre uno due, sette sei zero quattro", "it")
    assert run.chars == "53127604"
    (run,) = code_runs("ventitré, quarantuno", "it")
    assert run.chars == "2341"


def test_spelling_alphabets():
    (run,) = code_runs("R come Roma, S come Savona, S come Savona", "it")
    assert run.chars == "RSS"
    (run,) = code_runs("come Roma, come Savona, come Milano", "it")  # the letter itself not heard
    assert run.chars == "RSM"
    (run,) = code_runs("A as in apple, B for Bravo, Romeo Sierra 4", "en")
    assert run.chars == "ABRS4"


def test_cards_need_a_valid_luhn_or_card_context(privacy):
    assert ("CREDIT_CARD") in _types(_found(privacy, ["hello", f"my number is {CARD_SPOKEN}"]), 1)
    assert ("CREDIT_CARD") in _types(_found(privacy, ["hello", "it's 4716 2083 5519 4420"]), 1)
    wrong = "4716 2083 5519 4421"  # Luhn fails
    assert "CREDIT_CARD" not in _types(_found(privacy, ["the reference you need", f"it's {wrong}"]))
    # ASR got one digit wrong: with the card named just before, it is still the card
    assert "CREDIT_CARD" in _types(_found(privacy, ["Can I take the long number on the card?", f"it's {wrong}"]), 1)


def test_iban_spoken_written_and_split(privacy):
    assert "IBAN" in _types(_found(privacy, ["Il suo IBAN?", "IT60 X054 2811 1010 0000 0123 456"], "it"), 1)
    spoken = ("I T sei zero, X zero cinque quattro, due otto uno uno, uno zero uno zero, zero zero zero zero, "
              "zero uno due tre, quattro cinque sei")
    assert "IBAN" in _types(_found(privacy, ["E il nuovo IBAN?", spoken], "it"), 1)
    assert "IBAN" in _types(_found(privacy, ["What's your IBAN?", "G B two nine N W B K six zero one six one three "
                                             "three one nine two six eight one nine"]), 1)


def test_codice_fiscale_spelled_and_written(privacy):
    spelled = ("B come Bologna, N come Napoli, C come Como, M come Milano, R come Roma, C come Como, otto cinque, "
               "T come Torino, uno zero, F come Firenze, due zero cinque, Z come Zara")
    found = _found(privacy, ["Mi serve il codice fiscale.", spelled], "it")
    assert (1, "IT_FISCAL_CODE", spelled) in found
    assert "IT_FISCAL_CODE" in _types(_found(privacy, ["ok", "il codice fiscale è BNCMRC85T10F205Z"], "it"), 1)


def test_partita_iva_with_its_context(privacy):
    found = _found(privacy, ["Mi dà la partita IVA?", "Zero sette quattro otto tre nove uno zero uno cinque nove."],
                   "it")
    assert "IT_VAT_CODE" in _types(found, 1)


def test_split_across_utterances_of_one_speaker(privacy):
    turns = ["Can I take the long number on the card?", "Yes, it's four seven one six, two zero eight three,",
             "Okay.", "five five one nine, four four two zero."]
    found = _found(privacy, turns)
    assert "CREDIT_CARD" in _types(found, 1) and "CREDIT_CARD" in _types(found, 3)
    # the other party's question in between: two numbers, not one
    turns[0], turns[2] = "Go ahead.", "And what is the amount you want to pay today, the whole balance?"
    assert "CREDIT_CARD" not in _types(_found(privacy, turns))


def test_digits_asr_garbled_right_after_the_question(privacy):
    """No validator accepts what ASR made of a read-out number; it was asked for, so it is that number."""
    found = _found(privacy, ["What's the new mobile number?", "It's 07 913, pre -45, 678,"])
    assert [t for i, t, _ in found if i == 1] == ["PHONE_NUMBER", "PHONE_NUMBER"]
    found = _found(privacy, ["And the expiry date?", "9 28 4"])
    assert _types(found, 1) == {"CARD_EXPIRY"}
    assert not _found(privacy, ["How much was it?", "It was 1249 pounds in total."])


def test_expiry_and_security_code_only_with_context(privacy):
    found = _found(privacy, ["And the expiry date?", "Oh nine, twenty-eight."])
    assert (1, "CARD_EXPIRY", "Oh nine, twenty-eight") in found
    found = _found(privacy, ["And the three digit security code on the back?", "Four five two."])
    assert (1, "CARD_SECURITY_CODE", "Four five two") in found
    found = _found(privacy, ["How many units did you use?", "Four five two."])
    assert not found
    found = _found(privacy, ["La data di scadenza?", "Zero sei, ventinove."], "it")
    assert "CARD_EXPIRY" in _types(found, 1)


def test_email_spoken_and_written(privacy):
    found = _found(privacy, ["And your email?", "james dot walker at outlook dot com."])
    assert (1, "EMAIL_ADDRESS", "james dot walker at outlook dot com") in found
    found = _found(privacy, ["E la mail?", "marco punto bianchi chiocciola libero punto it."], "it")
    assert (1, "EMAIL_ADDRESS", "marco punto bianchi chiocciola libero punto it") in found
    assert "EMAIL_ADDRESS" in _types(_found(privacy, ["ok", "write to mario.rossi@gmail.com please"]), 1)
    assert not _found(privacy, ["ok", "I looked at it twice, dot by dot"])


def test_phone_numbers(privacy):
    assert "PHONE_NUMBER" in _types(_found(privacy, ["Your number?", "It's oh seven nine one two, three four five, "
                                                     "six seven eight."]), 1)
    assert "PHONE_NUMBER" in _types(_found(privacy, ["Un cellulare?", "Tre tre nove, otto due uno, cinque quattro "
                                                     "zero sette."], "it"), 1)
    assert "PHONE_NUMBER" in _types(_found(privacy, ["ok", "chiamatemi al +39 339 821 5407"], "it"), 1)


def test_names_and_addresses(privacy):
    found = _found(privacy, ["Buongiorno, sono Giulia di Brightwave Energia.", "Mi chiamo Marco Bianchi.",
                             "Grazie, signor Bianchi. L'indirizzo è via Garibaldi numero dodici?"], "it",
                   allow=["Brightwave Energia"])
    assert (0, "PERSON", "Giulia") in found and (1, "PERSON", "Marco Bianchi") in found
    assert (2, "PERSON", "Bianchi") in found
    assert (2, "ADDRESS", "via Garibaldi numero dodici") in found
    assert not any("Brightwave" in text for _, _, text in found)
    found = _found(privacy, ["Hello, my name is Sarah Collins.", "The address is forty two Elm Grove, postcode L S "
                             "six, one A B."])
    assert (0, "PERSON", "Sarah Collins") in found
    assert (1, "ADDRESS", "forty two Elm Grove") in found and "ADDRESS" in _types(found, 1)


def test_spacy_runs_once_over_all_of_a_calls_utterances(privacy, monkeypatch):
    """Presidio's spaCy pass is one batch per call (nlp.pipe), not one pipeline run per utterance; each utterance
    keeps its own findings (an empty one is skipped)."""
    engine = privacy.analyzer.nlp_engine
    batches, singles = [], []
    real_batch = engine.process_batch
    monkeypatch.setattr(engine, "process_batch", lambda texts, *a, **k: batches.append(list(texts)) or
                        real_batch(texts, *a, **k))
    monkeypatch.setattr(engine, "process_text", lambda *a, **k: singles.append(a) or pytest.fail("one by one"))
    found = _found(privacy, ["Hello, my name is Sarah Collins.", " ", "My e-mail is sarah.collins@gmail.com.",
                             "And the card is 4716 2083 5519 4420."])
    assert len(batches) == 1 and len(batches[0]) == 3 and not singles
    assert (0, "PERSON", "Sarah Collins") in found
    assert (2, "EMAIL_ADDRESS", "sarah.collins@gmail.com") in found and (3, "CREDIT_CARD", "4716 2083 5519 4420") in found


def test_overlapping_findings_become_one_span():
    a = Finding(0, "PHONE_NUMBER", 5, 15, 0.7, "x")
    b = Finding(0, "CREDIT_CARD", 0, 19, 0.95, "y")
    c = Finding(0, "ACCOUNT_NUMBER", 17, 25, 0.55, "z")
    (only,) = resolve([a, b, c])
    assert (only.entity_type, only.char_start, only.char_end) == ("CREDIT_CARD", 0, 25)


def test_no_download_while_detecting(privacy, monkeypatch):
    """tldextract's public-suffix list and spaCy's model come from installed packages: no connection is tried."""
    def refuse(*a, **k):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = PrivacyResources(PrivacyOptions())
    found = _found(fresh, ["ok", "my email is mario.rossi@gmail.com and james dot walker at outlook dot co dot uk"])
    assert [t for _, t, _ in found].count("EMAIL_ADDRESS") == 2


# --- redaction ------------------------------------------------------------------------------------------------

def test_redactor_texts_fragments_and_sweep(privacy):
    utts = _utts("Good morning, my name is Laura.", f"Hi Laura, my card is {CARD_SPOKEN}.")
    red = Redactor(utts, privacy.detect(utts, "en"))
    assert red.text(0) == "Good morning, my name is [PERSON]."
    assert red.text(1) == "Hi [PERSON], my card is [CREDIT_CARD]."
    assert red.fragment("my name is Laura", 0) == "my name is [PERSON]"
    assert red.fragment("card is four seven one six, two zero", 1) == "card is [CREDIT_CARD]"
    assert "Laura" not in red.fragment("customer: 'Hi Laura, my card' (2 questions)")
    assert red.sweep("she read four seven one six twice") == "she read [CREDIT_CARD] twice"


def test_placeholders_for_analysing_redacted_text():
    text = analysable("sono [PERSON], il mio numero è [PHONE_NUMBER]")
    assert "[" not in text and text.split()[1][0].isupper()
    assert restore(text) == "sono [PERSON], il mio numero è [PHONE_NUMBER]"


# --- the pipeline: what is written ----------------------------------------------------------------------------------

TRANSCRIPT = {
    "call_id": "pii-1", "agent_id": "A01", "team": "north", "campaign": "energy-inbound", "direction": "inbound",
    "call_type": "support", "started_at": "2026-11-25T10:00:00+01:00", "language": "en",
    "utterances": [
        {"speaker": "agent", "start": 0.5, "end": 5.0,
         "text": "Good morning, thank you for calling Brightwave Energy, my name is Laura, how can I help you?"},
        {"speaker": "customer", "start": 5.5, "end": 9.0,
         "text": "Hi Laura, I'm Sarah Collins, I'd like to pay my bill by card."},
        {"speaker": "agent", "start": 9.5, "end": 12.0, "text": "Can I take the long number on the card, please?"},
        {"speaker": "customer", "start": 12.5, "end": 18.0,
         "text": "Sure, it's four seven one six, two zero eight three,"},
        {"speaker": "agent", "start": 18.1, "end": 18.5, "text": "Okay."},
        {"speaker": "customer", "start": 18.8, "end": 24.0, "text": "five five one nine, four four two zero."},
        {"speaker": "agent", "start": 24.5, "end": 26.0, "text": "And the expiry date?"},
        {"speaker": "customer", "start": 26.5, "end": 28.0, "text": "Oh nine, twenty-eight."},
        {"speaker": "agent", "start": 28.5, "end": 30.0, "text": "And the three digits on the back?"},
        {"speaker": "customer", "start": 30.5, "end": 32.0, "text": "Four five two."},
        {"speaker": "customer", "start": 33.0, "end": 38.0,
         "text": "My email is sarah dot collins at gmail dot com, and my IBAN is GB29 NWBK 6016 1331 9268 19."},
        {"speaker": "agent", "start": 38.5, "end": 45.0,
         "text": "Thank you Ms Collins, that's all done. So, to recap, the bill is paid. Thank you for calling "
                 "Brightwave Energy, goodbye."},
    ],
}
VALUES = ["Sarah Collins", "Collins", "Laura", CARD, "4716 2083", "four seven one six, two zero eight three",
          "five five one nine, four four two zero", "Oh nine, twenty-eight", "Four five two",
          "sarah dot collins at gmail dot com", "GB29 NWBK 6016 1331 9268 19", "GB29NWBK60161331926819"]


@pytest.fixture(scope="module")
def pool():
    from qa_pipeline.pipeline.resources import ResourcePool

    return ResourcePool()


def _run(tmp_path: Path, pool, overrides=None, name="data"):
    from qa_pipeline.pipeline.runner import run_folder

    calls = tmp_path / "calls"
    calls.mkdir(exist_ok=True)
    (calls / "c1.transcript.json").write_text(json.dumps(TRANSCRIPT), encoding="utf-8")
    data = tmp_path / name
    config = load_config(ROOT / "demo" / "config.yaml", overrides)
    summary = run_folder(calls, data, config, pool=pool)
    assert summary.count("done") == 1, [o.message for o in summary.outcomes]
    return data, config


def _every_text(data: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file of the data folder as text: Parquet files decoded (every column), the others' bytes."""
    out = {}
    for p in sorted(data.rglob("*")):
        if not p.is_file() or any(part in skip for part in p.relative_to(data).parts):
            continue
        if p.suffix == ".parquet":
            out[str(p)] = json.dumps(pq.read_table(p).to_pylist(), default=str, ensure_ascii=False)
        else:
            out[str(p)] = p.read_bytes().decode("utf-8", "replace")
    return out


def test_no_value_anywhere_in_the_data_folder(tmp_path, pool):
    data, _ = _run(tmp_path, pool)
    texts = _every_text(data)
    assert any("/utterances/" in k for k in texts)
    for value in VALUES:
        leaks = [k for k, v in texts.items() if value.lower() in v.lower()]
        assert not leaks, f"{value!r} found in {leaks}"
    assert not (data / "_restricted").exists()
    from qa_pipeline.store.folder import read_dataset

    utts = sorted(read_dataset(data, "utterances").to_pylist(), key=lambda r: r["utterance_index"])
    assert utts[0]["text"] == ("Good morning, thank you for calling Brightwave Energy, my name is [PERSON], how can "
                               "I help you?")
    assert utts[3]["text"] == "Sure, it's [CREDIT_CARD],"
    assert utts[10]["text"] == "My email is [EMAIL_ADDRESS], and my IBAN is [IBAN]."
    compliance = {r["rule_id"]: r for r in read_dataset(data, "compliance").to_pylist()}
    name = compliance["opening.agent_name"]
    assert name["result"] == "passed"  # decided on the words as said, before redaction
    words = [r["text"] for r in sorted(read_dataset(data, "words").to_pylist(), key=lambda r: r["word_index"])]
    assert "[CREDIT_CARD]" in words and "[PERSON]" in words


def test_pii_rows_say_where_never_what(tmp_path, pool):
    data, _ = _run(tmp_path, pool)
    from qa_pipeline.store.folder import read_dataset

    rows = read_dataset(data, "pii").to_pylist()
    got = {(r["utterance_index"], r["entity_type"]) for r in rows}
    assert {(0, "PERSON"), (1, "PERSON"), (3, "CREDIT_CARD"), (5, "CREDIT_CARD"), (7, "CARD_EXPIRY"),
            (9, "CARD_SECURITY_CODE"), (10, "EMAIL_ADDRESS"), (10, "IBAN"), (11, "PERSON")} <= got
    utt = {i: u for i, u in enumerate(TRANSCRIPT["utterances"])}
    for r in rows:
        u = utt[r["utterance_index"]]
        assert 0 <= r["char_start"] < r["char_end"] <= len(u["text"])
        assert u["start"] - 0.01 <= r["start_s"] <= r["end_s"] <= u["end"] + 0.01
        assert 0.5 <= r["confidence"] <= 1.0 and r["detector"]
        assert set(r) == {"call_id", "utterance_index", "entity_type", "start_s", "end_s", "char_start", "char_end",
                          "confidence", "detector", "call_date"}
    card = next(r for r in rows if r["utterance_index"] == 3)
    assert TRANSCRIPT["utterances"][3]["text"][card["char_start"]:card["char_end"]] == \
        "four seven one six, two zero eight three"


def test_keep_raw_text_writes_only_the_restricted_folder_owner_only(tmp_path, pool, monkeypatch):
    monkeypatch.setenv("QA_DATA_GROUP", str(os.getgid()))  # the rest of the folder is shared with a group
    data, _ = _run(tmp_path, pool, {"privacy.keep_raw_text": True})
    restricted = data / "_restricted"
    files = [p for p in restricted.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    folders = [restricted] + [p for p in restricted.rglob("*") if p.is_dir()]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in folders)
    shared = next((data / "utterances").rglob("*.parquet"))
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640  # the group's share is unchanged
    outside = _every_text(data, skip=("_restricted",))
    for value in VALUES:
        assert not [k for k, v in outside.items() if value.lower() in v.lower()], value
    from qa_pipeline.privacy.restricted import read_raw_utterances

    raw = read_raw_utterances(data, "pii-1")
    assert [r["text"] for r in raw] == [u["text"] for u in TRANSCRIPT["utterances"]]
    # turned off again: the call is reprocessed (the hash moved) and its original text goes
    monkeypatch.delenv("QA_DATA_GROUP")
    _run(tmp_path, pool)
    assert read_raw_utterances(data, "pii-1") == []


def test_a_role_swap_swaps_the_restricted_original_text_too(tmp_path, pool, monkeypatch):
    """QA swaps agent and customer (`pipeline.swap.swap_roles`): the original text kept in `_restricted` gets the
    same roles as the stored utterances, its text untouched and its files still owner-only; the analysis run again
    on the original text (privacy.keep_raw_text) writes no value outside `_restricted`. Swapped back with
    keep_raw_text off, the restricted roles still follow."""
    from qa_pipeline.pipeline.swap import swap_roles, swapped
    from qa_pipeline.privacy.restricted import read_raw_utterances
    from qa_pipeline.store.folder import read_dataset

    monkeypatch.setenv("QA_DATA_GROUP", str(os.getgid()))
    data, config = _run(tmp_path, pool, {"privacy.keep_raw_text": True})
    before = read_raw_utterances(data, "pii-1")
    (call,) = read_dataset(data, "calls").to_pylist()

    def roles(dataset):
        return [u["role"] for u in sorted(read_dataset(data, dataset).to_pylist(), key=lambda u: u["utterance_index"])]

    assert [r["role"] for r in before] == roles("utterances") == [u["speaker"] for u in TRANSCRIPT["utterances"]]
    swap_roles(data, "pii-1", call["call_date"], config, pool.for_config(config), by="qa-lead")
    after = read_raw_utterances(data, "pii-1")
    assert [r["role"] for r in after] == [swapped(r["role"]) for r in before] == roles("utterances")
    assert [r["text"] for r in after] == [u["text"] for u in TRANSCRIPT["utterances"]]
    assert [(r["utterance_index"], r["speaker"], r["start_s"]) for r in after] == \
        [(r["utterance_index"], r["speaker"], r["start_s"]) for r in before]
    restricted = data / "_restricted"
    assert all(stat.S_IMODE(p.stat().st_mode) == (0o600 if p.is_file() else 0o700)
               for p in [restricted, *restricted.rglob("*")])
    outside = _every_text(data, skip=("_restricted",))
    for value in VALUES:
        assert not [k for k, v in outside.items() if value.lower() in v.lower()], value
    assert read_dataset(data, "calls").to_pylist()[0]["role_method"] == "qa_swap"
    # swapped back by an app configured without keep_raw_text: the restricted roles follow all the same
    plain = load_config(ROOT / "demo" / "config.yaml")
    swap_roles(data, "pii-1", call["call_date"], plain, pool.for_config(plain), by="qa-lead")
    again = read_raw_utterances(data, "pii-1")
    assert [r["role"] for r in again] == [r["role"] for r in before] == roles("utterances")
    assert [r["text"] for r in again] == [r["text"] for r in before]


def test_a_reanalysis_keeps_the_text_redacted_and_the_results(tmp_path, pool):
    """Analysis options changed: the stored, redacted text is analysed again (labels read as placeholder names)."""
    from qa_pipeline.pipeline.runner import reanalyse
    from qa_pipeline.store.folder import read_dataset

    for keep in (False, True):
        data, _ = _run(tmp_path, pool, {"privacy.keep_raw_text": keep}, name=f"data-{keep}")
        before = {r["rule_id"]: r["result"] for r in read_dataset(data, "compliance").to_pylist()}
        config = load_config(ROOT / "demo" / "config.yaml", {"analysis.negative_ending": -0.5,
                                                             "privacy.keep_raw_text": keep})
        reanalyse(data, "pii-1", config, pool.for_config(config))
        after = {r["rule_id"]: r for r in read_dataset(data, "compliance").to_pylist()}
        assert {k: r["result"] for k, r in after.items()} == before
        assert after["opening.agent_name"]["matched_text"] == "my name is"
        texts = _every_text(data, skip=("_restricted",))
        assert not any("Redacted" in v for v in texts.values())
        for value in VALUES:
            assert not [k for k, v in texts.items() if value.lower() in v.lower()], value


def test_privacy_off_writes_text_as_said(tmp_path, pool):
    data, _ = _run(tmp_path, pool, {"privacy.enabled": False})
    from qa_pipeline.store.folder import read_dataset

    utts = sorted(read_dataset(data, "utterances").to_pylist(), key=lambda r: r["utterance_index"])
    assert "Laura" in utts[0]["text"]
    assert read_dataset(data, "pii").num_rows == 0


def test_every_text_column_is_redacted_or_declared_not_text():
    """A new string column in a per-call dataset must be classified: redacted free text, or an identifier."""
    from qa_pipeline.pipeline.protect import FREE_TEXT, NOT_TEXT
    from qa_pipeline.store.schema import DATASETS

    def texty(t: pa.DataType) -> bool:
        return pa.types.is_string(t) or (pa.types.is_list(t) and texty(t.value_type)) or (
            pa.types.is_struct(t) and any(texty(f.type) for f in t)) or (
            pa.types.is_map(t) and (texty(t.key_type) or texty(t.item_type)))

    for name in ("calls", "utterances", "words", "compliance", "events", "flags", "sentiment", "pii"):
        for field in DATASETS[name]:
            if texty(field.type):
                assert field.name in FREE_TEXT.get(name, ()) + NOT_TEXT.get(name, ()), (name, field.name)


# --- configuration ------------------------------------------------------------------------------------------------

def test_privacy_options_are_checked_and_hashed():
    with pytest.raises(ConfigError, match="privacy.entities"):
        load_config(None, {"privacy.entities": ["CREDIT_CARD", "SHOE_SIZE"]})
    with pytest.raises(ConfigError, match="privacy.min_scores"):
        load_config(None, {"privacy.min_scores": {"PHONE_NUMBER": 2}})
    with pytest.raises(ConfigError, match="privacy.languages"):
        load_config(None, {"privacy.languages": ["fr"]})
    cfg = load_config(None, {"privacy.min_scores": {"PHONE_NUMBER": 0.4}})
    assert cfg.privacy.threshold("PHONE_NUMBER") == 0.4 and cfg.privacy.threshold("PERSON") == 0.5
    base = PipelineConfig()
    assert set(base.privacy.entities) == set(PII_ENTITIES)
    for change in ({"privacy.keep_raw_text": True}, {"privacy.entities": ["CREDIT_CARD"]},
                   {"privacy.enabled": False}):
        other = load_config(None, change)
        # the stored text is redacted: a change is applied from the audio / the transcript file again
        assert other.hash() != base.hash() and other.analysis_hash() != base.analysis_hash()


def test_without_the_detector_nothing_unredacted_is_written(tmp_path, monkeypatch):
    """presidio-analyzer missing: each call fails with E320 (install the pii extra or turn privacy off), and no text
    reaches the data folder."""
    import builtins

    from qa_pipeline.pipeline.resources import ResourcePool
    from qa_pipeline.pipeline.runner import run_folder
    from qa_pipeline.store.folder import read_dataset

    real = builtins.__import__

    def no_presidio(name, *a, **k):
        if name.startswith("presidio_analyzer"):
            raise ImportError("No module named 'presidio_analyzer'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_presidio)
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "c1.transcript.json").write_text(json.dumps(TRANSCRIPT), encoding="utf-8")
    summary = run_folder(calls, tmp_path / "data", load_config(None), pool=ResourcePool())
    (outcome,) = summary.outcomes
    assert outcome.status == "failed" and "pii extra" in outcome.message
    assert read_dataset(tmp_path / "data", "utterances").num_rows == 0
    (row,) = read_dataset(tmp_path / "data", "failures").to_pylist()
    assert row["error_code"] == "E320"
