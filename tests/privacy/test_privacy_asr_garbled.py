"""Personal data as ASR garbles it (issue 15, text after ASR): misheard digit words inside a read-out number, context
words matched on their letters, an Italian IBAN read out and accepted on its structure, a code spelled with the
spelling alphabet, an e-mail address whose at-word or suffix ASR broke; and the sentences none of them may touch."""

from __future__ import annotations

import pytest

from qa_pipeline.config import PrivacyOptions
from qa_pipeline.privacy.detect import PrivacyResources
from qa_pipeline.privacy.normalize import code_runs, misheard_digit
from qa_pipeline.privacy.recognizers import context_flags, spelled_code_hits, spoken_email_hits
from qa_pipeline.types import Utterance

pytest.importorskip("presidio_analyzer", reason="the pii extra is not installed")


@pytest.fixture(scope="module")
def privacy():
    return PrivacyResources(PrivacyOptions())


def _found(privacy, turns, language="it", speakers=None):
    speakers = speakers or ["agent", "customer"] * 50
    utts = [Utterance(i, speakers[i], speakers[i], i * 5.0, i * 5.0 + 4.0, t, 1.0, len(t.split()))
            for i, t in enumerate(turns)]
    return [(f.utterance_index, f.entity_type, utts[f.utterance_index].text[f.char_start:f.char_end], f.confidence)
            for f in privacy.detect(utts, language)]


def _chars(text, language="it", **kw):
    return [r.chars for r in code_runs(text, language, **kw)]


# --- misheard digit words ---------------------------------------------------------------------------------------

def test_misheard_digit_words_are_candidates_only_by_their_letters():
    assert misheard_digit("nero", "it") == "0"
    assert misheard_digit("sete", "it") == "7"
    assert misheard_digit("cintue", "it") == "5"
    assert misheard_digit("tree", "en") == "3"
    assert misheard_digit("uno", "it") is None  # a digit word itself: text2num reads it
    assert misheard_digit("tra", "it") is None  # three letters: too close to ordinary words
    assert misheard_digit("for", "en") is None  # English short digit words are not matched by edits


def test_misheard_digits_keep_a_run_its_length():
    assert _chars("tre nove due, nero cinque sette, sete otto quattro") == ["392057784"]
    assert _chars("quattro uno, tree nine two", "en") == ["92"]  # "tree" opens the run: not between two digits
    assert _chars("four one tree nine two", "en") == ["41392"]
    assert _chars("uno due tre, nero.") == ["1230"]  # a number may end with a misheard word after three right ones


def test_misheard_digits_never_turn_sentences_into_numbers():
    assert _chars("è vero, il nome è giusto") == []
    assert _chars("sono le tre, vero?") == ["3"]
    assert _chars("alle tre, nome e cognome per favore") == ["3"]
    assert _chars("seven eight weight", "en") == ["78"]
    assert _chars("I saw a tree and a seen film", "en") == []
    assert _chars("nero nero, va bene") == []


def test_a_speaker_going_on_with_a_number_may_open_with_misheard_words():
    assert _chars("nero nero, va bene", continues=True) == ["00"]
    assert _chars("va bene, nero nero", continues=True) == []  # only at the start of the utterance


# --- context words ASR garbled ------------------------------------------------------------------------------------

def test_context_words_matched_on_their_letters():
    assert "fiscal" in context_flags(["mi serve il suo codice fischale"])
    assert "fiscal" in context_flags(["mi serve il suo codicefiscalle"])
    assert "iban" in context_flags(["e il nuovo ibam per l'addebito?"])
    assert "expiry" in context_flags(["la data di scadensa"])
    assert "phone" in context_flags(["mi lascia il cellulere?"])
    assert "expiry" in context_flags(["what's the expiratin date"])


def test_context_words_not_matched_by_other_words():
    assert "fiscal" not in context_flags(["il codice postale è venti"])  # another group's own words
    assert "iban" not in context_flags(["Ivan ha chiamato ieri"])  # a name
    assert "iban" not in context_flags(["ho avuto uno sconto"])
    assert not context_flags(["buongiorno, come posso aiutarla oggi?"])


# --- an Italian IBAN read out ------------------------------------------------------------------------------------

def test_italian_iban_read_out_accepted_on_its_structure_across_turns(privacy):
    found = _found(privacy, ["Prego, mi dica pure.",
                             "I T quattro due A, nero tre zero sette nove, uno uno uno nove otto",
                             "due due tre, quattro cinque sei sette otto nove"],
                   speakers=["agent", "customer", "customer"])
    assert {(i, t) for i, t, *_ in found} == {(1, "IBAN"), (2, "IBAN")}
    assert all(c < 1.0 for *_, c in found)  # the checksum could not be verified


def test_digits_inside_an_iban_are_not_phone_numbers_and_numbers_stay_numbers(privacy):
    found = _found(privacy, ["Mi detta l'IBAN?", "I T sei zero X zero cinque quattro due otto uno uno uno zero uno "
                             "zero zero zero zero zero zero uno due tre quattro cinque sei"])
    assert {t for _, t, *_ in found} == {"IBAN"}
    found = _found(privacy, ["Mi dice quanti giorni?", "Tre, forse quattro. È vero, nove in tutto."])
    assert found == []


def test_a_card_number_asr_lengthened_is_still_the_card(privacy):
    found = _found(privacy, ["Mi dice il numero della carta di credito?",
                             "cinque tre uno due, sette sei zero quattro, nove nove otto uno nove, due zero tre uno, "
                             "nove nove"])
    assert {t for _, t, *_ in found} == {"CREDIT_CARD"}


# --- codes spelled with the spelling alphabet -------------------------------------------------------------------------

CF_SPELLED = ("ese come Savona, esse come sabona, emme come Milano, emme come milano, erre come roma, a come ancona, "
              "otto zero, a come ancona, zero uno, acca come otel, cinque zero uno, u come udine")


def test_spelled_codice_fiscale_typed_by_its_garbled_context(privacy):
    found = _found(privacy, ["Mi serve il suo codice fischale.", CF_SPELLED])
    assert [(i, t) for i, t, *_ in found] == [(1, "IT_FISCAL_CODE")]
    assert found[0][2].startswith("ese come") and found[0][2].endswith("udine")


def test_spelled_code_typed_by_its_shape_or_as_a_code():
    (hit,) = spelled_code_hits(0, CF_SPELLED, "it", code_runs(CF_SPELLED, "it"), frozenset())
    assert (hit.entity_type, hit.confidence) == ("IT_FISCAL_CODE", 0.6)
    text = "bi come bologna, di come domodossola, effe come firenze, tre quattro"
    (hit,) = spelled_code_hits(0, text, "it", code_runs(text, "it"), frozenset())
    assert hit.entity_type == "ACCOUNT_NUMBER"
    (hit,) = spelled_code_hits(0, text, "it", code_runs(text, "it"), frozenset({"iban"}))
    assert hit.entity_type == "IBAN"
    text = "it's S as in Sam, M as in Mary, T as in Tom, four two"
    (hit,) = spelled_code_hits(0, text, "en", code_runs(text, "en"), frozenset({"account"}))
    assert hit.entity_type == "ACCOUNT_NUMBER" and text[hit.char_start:hit.char_end].startswith("S as in Sam")


def test_come_in_sentences_is_not_spelling():
    for text in ("Buongiorno, come sta? Bene, come le dicevo, e come sempre pago a fine mese.",
                 "Io come lei, e come tutti, vorrei capire come funziona.",
                 "a come dire, e come pensavo, o come vuole lei"):
        assert spelled_code_hits(0, text, "it", code_runs(text, "it"), frozenset({"fiscal"})) == []
    text = "I paid for it, as in the past, for my son"
    assert spelled_code_hits(0, text, "en", code_runs(text, "en"), frozenset()) == []


# --- e-mail addresses as ASR garbles them ---------------------------------------------------------------------------

def test_email_with_garbled_at_word_or_suffix(privacy):
    (hit,) = spoken_email_hits(0, "è giulia punto verdi chi occhiola tiscali punto heat", privacy.suffix_ok)
    assert (hit.entity_type, hit.detector) == ("EMAIL_ADDRESS", "email:spoken_garbled") and hit.confidence < 0.9
    text = "sì: luca punto fer rari chiocciola gmail punto com"  # a word of the local part split in two
    (hit,) = spoken_email_hits(0, text, privacy.suffix_ok)
    assert text[hit.char_start:hit.char_end].startswith("luca punto fer rari")
    text = "it's john dot smith at outlook dot calm"
    (hit,) = spoken_email_hits(0, text, privacy.suffix_ok)
    assert text[hit.char_start:hit.char_end] == "john dot smith at outlook dot calm"
    clean = spoken_email_hits(0, "mario punto rossi chiocciola libero punto it", privacy.suffix_ok)
    assert [(h.confidence, h.detector) for h in clean] == [(0.9, "email:spoken")]


def test_sentences_are_not_garbled_emails(privacy):
    for text in ("look at this dot, then that one", "we met at noon, dot on time", "la chiocciola è lenta, punto e basta",
                 "lo trova sul sito, punto e virgola", "ci vediamo alle tre chiocciola? punto"):
        assert spoken_email_hits(0, text, privacy.suffix_ok) == [], text


def test_a_name_inside_a_garbled_email_is_the_email(privacy):
    found = _found(privacy, ["Mi chiamo Giulia Verdi.", "Mi lascia la mail?",
                             "Giulia punto verdi chi occhiola tiscali punto heat"],
                   speakers=["customer", "agent", "customer"])
    assert (2, "EMAIL_ADDRESS") in {(i, t) for i, t, *_ in found}


def test_a_clipped_italian_title_still_introduces_a_name():
    """Whisper clips "signor" to "signo" ("Certo, signo Bianchi"): one edit from an Italian title of six letters or
    more is the title; a lower-case word after it, or a word two edits away ("segno Rosso"), is not a name."""
    from qa_pipeline.privacy import recognizers as R

    def names(text):
        return [text[h.char_start:h.char_end] for h in R.name_hits(0, text, "it", set(), set())]

    assert names("Certo, signo Bianchi, per il contratto mi serve il codice.") == ["Bianchi"]
    assert names("Buongiorno dottore Verdi.") == ["Verdi"]
    assert names("Ha lasciato il segno Rosso sul foglio.") == []
    assert names("Signori, buongiorno a tutti.") == []
