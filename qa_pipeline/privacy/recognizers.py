"""The project's own recognizers, for what ASR writes and Presidio's patterns miss: numbers and codes said as words
or letter by letter (normalize.py), also across consecutive utterances of one speaker; card expiry and security
codes, only with their context words; e-mail addresses said aloud; names introduced by a phrase ("my name is",
"mi chiamo", "Mr", "signora"); street addresses and postcodes.

Validators come from python-stdnum (Luhn, IBAN, codice fiscale, partita IVA) and phonenumbers. Each recognizer
returns `Hit`s: utterance, character span, entity type, confidence, detector name; never more."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from qa_pipeline.privacy.normalize import Run, Token, Unit, code_runs, fold, tokens


@dataclass(frozen=True, slots=True)
class Hit:
    utterance_index: int
    char_start: int
    char_end: int
    entity_type: str
    confidence: float
    detector: str


# --- context words (folded: lower case, no accents), per entity, both languages ------------------------------

CONTEXT = {
    "card": ("card", "credit", "debit", "visa", "mastercard", "amex", "carta", "credito", "debito", "bancomat",
             "long number", "numero lungo"),
    "expiry": ("expiry", "expiration", "expires", "expire", "exp date", "valid until", "valid thru", "valid through",
               "end date", "scadenza", "scade", "valida fino", "data di fine"),
    "cvv": ("security code", "cvv", "cvc", "cv2", "csc", "three digits", "3 digits", "last three", "on the back",
            "codice di sicurezza", "codice di controllo", "tre cifre", "3 cifre", "sul retro", "dietro la carta"),
    "iban": ("iban", "bank account", "conto", "bonifico", "coordinate bancarie", "sort code"),
    "fiscal": ("codice fiscale", "fiscal code", "tax code", "cf"),
    "vat": ("partita iva", "p iva", "piva", "p.iva", "vat number", "vat"),
    "phone": ("phone", "your number", "my number", "contact number", "mobile", "cell", "call me", "reach me",
              "landline", "telefono", "cellulare", "il mio numero", "suo numero", "recapito", "chiamare",
              "chiamarmi", "fisso"),
    "account": ("account number", "customer number", "customer id", "account id", "reference", "order number",
                "order id", "username", "user name", "user id", "nome utente",
                "policy number", "membership number", "member number", "contract number", "meter number",
                "numero cliente", "codice cliente", "numero di contratto", "codice contratto", "numero ordine",
                "numero della pratica", "numero pratica", "codice utente", "numero utente", "matricola"),
    "postal": ("postcode", "post code", "postal code", "zip", "zip code", "cap", "codice postale", "address",
               "indirizzo"),
    "identity": ("carta d identita", "carta di identita", "documento", "identity card", "id card", "cie"),
    "passport": ("passport", "passaporto"),
    "licence": ("driving licence", "driver's license", "driving license", "licence number", "patente"),
}


# The context words ASR garbles and that are long or distinctive enough to be recognised on their letters with an
# edit or a few ("cavicetiscale" for codice fiscale, "iman" for IBAN, "scadensa"): `fuzzy_context`.
FUZZY_CONTEXT = {
    "card": ("carta di credito", "credit card", "debit card", "mastercard", "bancomat"),
    "expiry": ("scadenza", "expiry date", "expiration"),
    "cvv": ("codice di sicurezza", "security code", "codice di controllo"),
    "iban": ("iban", "coordinate bancarie", "bank account"),
    "fiscal": ("codice fiscale", "fiscal code"),
    "vat": ("partita iva", "vat number"),
    "phone": ("cellulare", "telefono", "phone number"),
    "postal": ("codice postale", "postcode"),
    "identity": ("carta d identita", "carta di identita"),
    "passport": ("passaporto", "passport"),
}


def _letters(text: str) -> str:
    return "".join(c for c in fold(text) if c.isalpha())


def _edits_allowed(n: int) -> int:
    """Edits allowed to a context phrase of n letters: 1 up to 7 letters (same length, same first letter), 2 up to
    11, 3 beyond; none under 4 letters ("cf", "cvv", "cap" are matched exactly only)."""
    return 0 if n < 4 else 1 if n <= 7 else 2 if n <= 11 else 3


def fuzzy_context(texts: Sequence[str]) -> frozenset[str]:
    """Context groups whose words ASR garbled: a window of 1-4 consecutive words whose letters are within
    `_edits_allowed` edits of a FUZZY_CONTEXT phrase's letters. A window that is itself another group's exact
    context phrase ("codice postale" is three edits from codice fiscale) does not count."""
    from rapidfuzz.distance import Levenshtein

    exact = {_letters(w) for ws in CONTEXT.values() for w in ws}
    found: set[str] = set()
    for text in texts:
        words = [t.text for t in tokens(text) if t.text.isalpha()]
        # (letters, capitalised one word): a short phrase is not matched by a name ("Ivan" is not "iban")
        windows = {(_letters("".join(words[a:b])), b == a + 1 and words[a][:1].isupper() and len(words[a]) > 1
                    and not words[a].isupper()) for a in range(len(words))
                   for b in range(a + 1, min(len(words), a + 4) + 1)}
        for group, phrases in FUZZY_CONTEXT.items():
            if group in found:
                continue
            for phrase in phrases:
                target = _letters(phrase)
                edits = _edits_allowed(len(target))
                if not edits:
                    continue
                for w, named in windows:
                    if abs(len(w) - len(target)) > (0 if len(target) <= 7 else edits):
                        continue
                    if len(target) <= 7 and (w[:1] != target[:1] or named):
                        continue
                    if w != target and w in exact:
                        continue
                    if Levenshtein.distance(w, target, score_cutoff=edits) <= edits:
                        found.add(group)
                        break
                if group in found:
                    break
    return frozenset(found)


def context_flags(texts: Sequence[str]) -> frozenset[str]:
    """Which context groups are named in `texts` (the utterance and the ones before it): their words as written,
    or as ASR garbled them (`fuzzy_context`)."""
    joined = " " + " ".join(_words_only(fold(t)) for t in texts) + " "
    exact = frozenset(k for k, words in CONTEXT.items() if any(f" {_words_only(w)} " in joined for w in words))
    return exact | fuzzy_context(texts)


def _words_only(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


# --- validators -------------------------------------------------------------------------------------------

CF_SHAPE = re.compile(r"^[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPR-T][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$")
IBAN_SHAPE = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
# An Italian IBAN as ASR leaves it when a customer reads it out: "I T", the two check digits, the CIN letter (ASR
# may add a letter: "I x" for "X") and at least ten more digits (ABI, CAB, account; digits may be lost, so the
# checksum cannot be verified). Nothing else said in a call has this shape.
IT_IBAN_READ = re.compile(r"^IT\d{2}[A-Z]{1,2}\d{10,}[A-Z0-9]*$")
UK_POSTCODE = re.compile(r"^(GIR0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?\d[ABD-HJLNP-UW-Z]{2})$")
IT_ID_CARD = re.compile(r"^(C[A-Z]\d{5}[A-Z]{2}|[A-Z]{2}\d{7}|\d{7}[A-Z]{2})$")
IT_PASSPORT = re.compile(r"^[A-Z]{2}\d{7}$")
IT_LICENCE = re.compile(r"^([A-Z]{2}\d{7}[A-Z]|U1[A-Z0-9]{7}[A-Z])$")


def luhn_ok(digits: str) -> bool:
    from stdnum import luhn

    return luhn.is_valid(digits)


def iban_ok(code: str) -> bool:
    from stdnum import iban

    return iban.is_valid(code)


def fiscal_code_ok(code: str) -> bool:
    from stdnum.it import codicefiscale

    return len(code) == 16 and codicefiscale.is_valid(code)


def vat_ok(digits: str) -> bool:
    from stdnum.it import iva

    return iva.is_valid(digits)


def phone_ok(number: str, regions: Sequence[str]) -> bool:
    """A valid phone number for one of `regions` (or anywhere, with its + prefix)."""
    import phonenumbers

    digits = number.lstrip("+")
    if not 6 <= len(digits) <= 15:
        return False
    candidates = [("+" + digits, None)] if number.startswith("+") else []
    if digits.startswith("00"):
        candidates.append(("+" + digits[2:], None))
    candidates += [(digits, r) for r in regions]
    for text, region in candidates:
        try:
            parsed = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return True
    return False


PHONE_REGIONS = {"en": ("GB", "US", "IT"), "it": ("IT", "GB", "US")}


def classify_code(chars: str, ctx: frozenset[str], language: str, *, whole: bool = True
                  ) -> list[tuple[str, float, str]]:
    """What a number or code (digits, '+', upper-case letters) can be: (entity, confidence, detector) each.

    whole: `chars` is everything said in a row (not a part of a longer number): only then may a type known by its
    context alone (expiry, security code, postal code, account number) be given, never to a piece of a number."""
    out: list[tuple[str, float, str]] = []
    plus = chars.startswith("+")
    body = chars[1:] if plus else chars
    if not body or "+" in body:
        return out
    n = len(body)
    if body.isdigit():
        if not plus:
            if 13 <= n <= 19 and body[0] in "23456" and luhn_ok(body):
                out.append(("CREDIT_CARD", 0.95 if "card" in ctx else 0.85, "code:luhn"))
            elif "card" in ctx and 12 <= n <= 24 and whole:  # ASR lost or doubled digits ("nove nove" -> "nome 981")
                out.append(("CREDIT_CARD", 0.6, "code:card_context"))
            if n == 11 and vat_ok(body):
                out.append(("IT_VAT_CODE", 0.9 if "vat" in ctx else 0.45, "code:partita_iva"))
            if whole and "expiry" in ctx and _expiry_ok(body):
                out.append(("CARD_EXPIRY", 0.8, "context:expiry"))
            if whole and "cvv" in ctx and n in (3, 4):
                out.append(("CARD_SECURITY_CODE", 0.8, "context:cvv"))
            if whole and "postal" in ctx and n == 5:
                out.append(("ADDRESS", 0.7, "code:postal_code"))
            if whole and "account" in ctx and n >= 5:
                out.append(("ACCOUNT_NUMBER", 0.7, "code:account_context"))
            elif whole and n >= 9:
                out.append(("ACCOUNT_NUMBER", 0.55, "code:long_number"))
        # a piece of a longer number read after a card, an IBAN or a tax code was asked for is a piece of that,
        # not a phone number (unless a phone is being talked about too)
        piece_of_other = not whole and "phone" not in ctx and bool(ctx & {"card", "iban", "fiscal", "vat"})
        if 6 <= n <= 15 and not (n >= 13 and luhn_ok(body) and not plus) and not piece_of_other:
            if phone_ok(chars, PHONE_REGIONS.get(language, ("GB", "US", "IT"))):
                conf = 0.85 if "phone" in ctx else 0.6 if "account" in ctx else 0.7  # "order id: 33489..."
                out.append(("PHONE_NUMBER", conf, "code:phone"))
            elif whole and "phone" in ctx and 9 <= n <= 13 and (plus or body[0] in "03" or n == 10):
                out.append(("PHONE_NUMBER", 0.6, "code:phone_context"))  # ASR got a digit wrong
        return out
    if plus:
        return out
    if IBAN_SHAPE.match(body):
        if iban_ok(body):
            out.append(("IBAN", 1.0, "code:iban"))
        elif IT_IBAN_READ.match(body):
            out.append(("IBAN", 0.75, "code:iban_structure"))
        elif "iban" in ctx:
            out.append(("IBAN", 0.6, "code:iban_context"))
    if n == 16 and CF_SHAPE.match(body):
        if fiscal_code_ok(body):
            out.append(("IT_FISCAL_CODE", 1.0, "code:codice_fiscale"))
        elif "fiscal" in ctx:
            out.append(("IT_FISCAL_CODE", 0.6, "code:fiscal_context"))
    if UK_POSTCODE.match(body) and n >= 5:
        out.append(("ADDRESS", 0.9 if "postal" in ctx else 0.75, "code:uk_postcode"))
    if "identity" in ctx and IT_ID_CARD.match(body):
        out.append(("IT_IDENTITY_CARD", 0.75, "context:identity_card"))
    if "passport" in ctx and IT_PASSPORT.match(body):
        out.append(("IT_PASSPORT", 0.75, "context:passport"))
    if "licence" in ctx and IT_LICENCE.match(body):
        out.append(("IT_DRIVER_LICENSE", 0.75, "context:driver_license"))
    digits = sum(c.isdigit() for c in body)
    if whole and "account" in ctx and n >= 5 and digits >= 3:
        out.append(("ACCOUNT_NUMBER", 0.7, "code:account_context"))
    return out


def _expiry_ok(d: str) -> bool:
    """MMYY, MMYYYY, MYY (08/27, 08/2027, 8 27)."""
    if len(d) == 4:
        return 1 <= int(d[:2]) <= 12
    if len(d) == 6:
        return 1 <= int(d[:2]) <= 12 and d[2:4] == "20"
    if len(d) == 3:
        return 1 <= int(d[0]) <= 9
    return False


# --- runs, in one utterance or across a speaker's consecutive utterances ----------------------------------------

Piece = tuple[int, Unit]  # (utterance index, unit)


def run_hits(pieces: Sequence[Piece], ctx: frozenset[str], language: str, *, min_span: int = 1,
             max_units: int = 48) -> list[Hit]:
    """Every unit range of `pieces` that reads as a number or code of some entity, one Hit per utterance it spans.

    min_span: only ranges spanning at least this many utterances (2 for chains across utterances)."""
    hits: list[Hit] = []
    ranges: list[tuple] = []
    units = list(pieces)[:max_units * 4]
    n = len(units)
    for i in range(n):
        chars = ""
        for j in range(i, min(n, i + max_units)):
            chars += units[j][1].chars
            if len(chars.lstrip("+")) > 34:
                break
            if len(chars) < 3:
                continue
            utts = sorted({u for u, _ in units[i:j + 1]})
            if len(utts) < min_span:
                continue
            whole = i == 0 and j == n - 1
            for entity, conf, detector in classify_code(chars, ctx, language, whole=whole):
                ranges.append((i, j, entity, conf, detector, utts))
    # a piece of an IBAN read out (its ABI and CAB read as a landline, its account as a long number) is the IBAN
    ibans = [(i, j) for i, j, entity, *_ in ranges if entity == "IBAN"]
    for i, j, entity, conf, detector, utts in ranges:
        if entity != "IBAN" and any(a <= i and j <= b and (a, b) != (i, j) for a, b in ibans):
            continue
        for u in utts:
            part = [unit for uu, unit in units[i:j + 1] if uu == u]
            hits.append(Hit(u, part[0].start, part[-1].end, entity, conf, detector))
    return hits


EDGE_WORDS = {"and", "then", "e", "poi", "yes", "yeah", "si", "okay", "ok", "so", "quindi", "allora", "the", "rest",
              "is", "it's", "it", "continuing", "ancora"}


def _edge_ok(text: str, start: int, end: int, *, leading: bool) -> bool:
    """Whether a run sits at the edge of its utterance: at most 3 connecting words before (leading) or only
    punctuation and connecting words after it."""
    rest = text[:start] if leading else text[end:]
    words = [t.text for t in tokens(rest) if t.text.isalnum()]
    if leading:
        return len(words) <= 3
    return len(words) <= 3 and all(fold(w) in EDGE_WORDS for w in words)


def chain_hits(utterances: Sequence, runs: dict[int, list[Run]], language: str,
               ctx_of: Callable[[int], frozenset[str]], *, max_gap_s: float = 30.0, max_chain: int = 6) -> list[Hit]:
    """Numbers and codes said across consecutive utterances of one speaker ("four one one one" / "mm-hmm" / "one one
    one one ..."): the run closing one utterance joined to the run opening the speaker's next one, up to
    `max_chain` utterances, validated as one."""
    hits: list[Hit] = []
    by_speaker: dict[str, list] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker, []).append(u)
    for seq in by_speaker.values():
        chain: list[Piece] = []
        chain_utts: list[int] = []
        prev = None
        for u in seq:
            rs = runs.get(u.index, [])
            first = rs[0] if rs and _edge_ok(u.text, rs[0].start, rs[0].end, leading=True) else None
            joined = False
            if chain and first is not None and prev is not None and u.start - prev.end <= max_gap_s \
                    and len(chain_utts) < max_chain and _only_backchannel(utterances, prev.index, u.index):
                chain.extend((u.index, x) for x in first.units)
                chain_utts.append(u.index)
                joined = True
            if not joined:
                if len(chain_utts) >= 2:
                    hits += _chain_validate(chain, chain_utts, language, ctx_of)
                chain, chain_utts = [], []
            last = rs[-1] if rs else None
            if last is not None and _edge_ok(u.text, last.start, last.end, leading=False):
                if not joined:
                    chain = [(u.index, x) for x in last.units]
                    chain_utts = [u.index]
                elif last is not first:  # the utterance holds a second run: the chain goes on from that one
                    if len(chain_utts) >= 2:
                        hits += _chain_validate(chain, chain_utts, language, ctx_of)
                    chain = [(u.index, x) for x in last.units]
                    chain_utts = [u.index]
            elif joined:
                if len(chain_utts) >= 2:
                    hits += _chain_validate(chain, chain_utts, language, ctx_of)
                chain, chain_utts = [], []
            prev = u
        if len(chain_utts) >= 2:
            hits += _chain_validate(chain, chain_utts, language, ctx_of)
    return hits


def _only_backchannel(utterances: Sequence, a: int, b: int) -> bool:
    """Between utterances a and b of one speaker, the others said at most two short things ("mm-hmm", "okay",
    "go on", "sì"): the speaker was still reading the same number."""
    between = [u for u in utterances if a < u.index < b]
    return len(between) <= 2 and all(len([t for t in tokens(u.text) if t.text.isalnum()]) <= 3 for u in between)


def _chain_validate(chain: list[Piece], utts: list[int], language: str,
                    ctx_of: Callable[[int], frozenset[str]]) -> list[Hit]:
    ctx = frozenset().union(*(ctx_of(u) for u in utts))
    return run_hits(chain, ctx, language, min_span=2)


# --- what ASR left of a number asked for ---------------------------------------------------------------------

RESIDUE_TYPES = (("cvv", "CARD_SECURITY_CODE"), ("expiry", "CARD_EXPIRY"), ("card", "CREDIT_CARD"), ("iban", "IBAN"),
                 ("fiscal", "IT_FISCAL_CODE"), ("vat", "IT_VAT_CODE"), ("phone", "PHONE_NUMBER"),
                 ("account", "ACCOUNT_NUMBER"), ("postal", "ADDRESS"))


def residue_hits(utterances: Sequence, runs: dict[int, list[Run]], hits: Sequence[Hit],
                 ctx_at: Callable[[int], frozenset[str]], threshold: Callable[[str], float]) -> list[Hit]:
    """Digits nobody recognised, said right after the number was asked for: ASR garbles read-out numbers ("07 913,
    pre -45, 678" for a mobile number; "9 28 4" for an expiry date) so that no validator accepts them, yet they are
    what was asked for. A run of 4 digits or more (2 or more for an expiry date or a security code, when the
    utterance is little else) in an utterance whose own or previous utterance names the number, not already
    covered, is redacted as that number (confidence 0.5, detector context:digits)."""
    out: list[Hit] = []
    for k, u in enumerate(utterances):
        ctx = ctx_at(k)
        kind = next((entity for group, entity in RESIDUE_TYPES if group in ctx), None)
        if kind is None:
            continue
        words = len([t for t in tokens(u.text) if t.text.isalnum()])
        for run in runs.get(u.index, []):
            digits = sum(c.isdigit() for c in run.chars)
            short = kind in ("CARD_SECURITY_CODE", "CARD_EXPIRY") and digits >= 2 and words - len(run.units) <= 3
            if digits < 4 and not short:
                continue
            covered = any(h.utterance_index == u.index and h.char_start <= run.start and run.end <= h.char_end
                          and h.confidence >= threshold(h.entity_type) for h in hits)
            if not covered:
                out.append(Hit(u.index, run.start, run.end, kind, 0.5, "context:digits"))
    return out


# --- codes spelled with a spelling alphabet, as ASR garbles them ------------------------------------------------

# How letters are said before "come" / "as in" (Italian letter names, English ones), for a spelled item's first word
SPOKEN_LETTERS = {
    "it": {"a": "A", "bi": "B", "ci": "C", "di": "D", "e": "E", "effe": "F", "gi": "G", "acca": "H", "i": "I",
           "elle": "L", "emme": "M", "enne": "N", "o": "O", "pi": "P", "cu": "Q", "erre": "R", "esse": "S", "ti": "T",
           "u": "U", "vu": "V", "vi": "V", "zeta": "Z", "kappa": "K", "ics": "X", "ipsilon": "Y"},
    "en": {"bee": "B", "see": "C", "dee": "D", "gee": "G", "jay": "J", "kay": "K", "el": "L", "em": "M", "en": "N",
           "pee": "P", "cue": "Q", "ar": "R", "ess": "S", "tee": "T", "vee": "V", "ex": "X", "zed": "Z", "zee": "Z",
           "aitch": "H"},
}
SPELL_LINK_WORDS = {"it": (("come",),), "en": (("as", "in"), ("for",))}
# a spelled code's type from what was asked for (context groups, most specific first)
SPELLED_TYPES = (("fiscal", "IT_FISCAL_CODE"), ("iban", "IBAN"), ("vat", "IT_VAT_CODE"),
                 ("identity", "IT_IDENTITY_CARD"), ("passport", "IT_PASSPORT"), ("licence", "IT_DRIVER_LICENSE"),
                 ("postal", "ADDRESS"), ("account", "ACCOUNT_NUMBER"))


def _spoken_letter(word: str, language: str) -> str | None:
    """The letter a word before "come" names: a single letter, a letter name, or one edit from a letter name of four
    letters or more ("ese" for esse, "seta" for zeta)."""
    from rapidfuzz.distance import Levenshtein

    w = fold(word)
    if len(w) == 1 and w.isalpha() and w.isascii():
        return w.upper()
    names = SPOKEN_LETTERS.get(language, {})
    if w in names:
        return names[w]
    near = {v for k, v in names.items() if len(k) >= 4 and Levenshtein.distance(w, k, score_cutoff=1) <= 1}
    return near.pop() if len(near) == 1 else None


def _alphabet_letter(word: str, language: str) -> str | None:
    """The letter a spelling-alphabet word stands for, also one or two edits away as ASR writes it ("rapoli" for
    Napoli, "lara" for Zara; two edits from words of seven letters or more)."""
    from rapidfuzz.distance import Levenshtein

    from qa_pipeline.privacy.normalize import ITALIAN_ALPHABET, NATO

    table = ITALIAN_ALPHABET if language == "it" else NATO
    w = fold(word)
    if w in table:
        return table[w]
    if len(w) < 4:
        return None
    near = {v for k, v in table.items() if len(k) >= 4 and Levenshtein.distance(
        w, k, score_cutoff=2 if len(k) >= 7 else 1) <= (2 if len(k) >= 7 else 1)}
    return near.pop() if len(near) == 1 else None


def spelled_code_hits(index: int, text: str, language: str, runs: Sequence[Run], ctx: frozenset[str]) -> list[Hit]:
    """A code spelled with a spelling alphabet and digits, as ASR leaves it: "ese come rapoli, cicro mechomo, emme
    come milano, erre come Roma, otto cintue, ..." for "S come Savona, C come Como, M come Milano, R come Roma,
    otto cinque". Items "<letter word> come <word>" (or "as in", "for") whose letter word names a letter or whose
    word is a spelling-alphabet word (both as ASR garbles them), and digits, with at most three other words
    between them (what ASR made of an item it merged, "cicro mechomo"), are one code when it holds three items or
    more, two of them clear (their word a spelling-alphabet word, or starting with the letter named). The type comes
    from what was asked for (codice fiscale, IBAN, partita IVA...), else 16 units of a codice fiscale's shape (six
    letters or more, four digits or more) -> IT_FISCAL_CODE, else ACCOUNT_NUMBER; confidence below a validated code's
    (0.7 with its context, 0.6 by shape, 0.55 generic), since the characters themselves cannot be read back."""
    toks = [t for t in tokens(text) if t.text.isalnum()]
    folded = [fold(t.text) for t in toks]
    items: list[tuple[int, int, int, int, bool]] = []  # (first token, last token, letters, digits, clear)
    for k in range(1, len(toks) - 1):
        for link in SPELL_LINK_WORDS.get(language, ()):
            n = len(link)
            if tuple(folded[k:k + n]) != link or k + n >= len(toks):
                continue
            letter = _spoken_letter(toks[k - 1].text, language)
            word = toks[k + n]
            if not word.text.isalpha():
                continue
            by_word = _alphabet_letter(word.text, language)
            if letter is None and by_word is None:
                continue
            if link == ("for",) and (letter is None or len(folded[k - 1]) != 1):
                continue  # "for" links only a single letter ("B for Bravo")
            clear = by_word is not None or (letter is not None and fold(word.text)[:1].upper() == letter)
            items.append((k - 1, k + n, 1, 0, clear))
    if len(items) < 3:
        return []
    start_of = {t.start: k for k, t in enumerate(toks)}
    taken = {k for a, b, *_ in items for k in range(a, b + 1)}
    for run in runs:
        for u in run.units:
            k = start_of.get(u.start)
            if k is None or k in taken or not u.chars.isdigit():
                continue
            last = k
            while last + 1 < len(toks) and toks[last + 1].end <= u.end:
                last += 1
            items.append((k, last, 0, len(u.chars), True))
    items.sort()
    hits: list[Hit] = []
    group: list[tuple[int, int, int, int, bool]] = []

    def close():
        spelled = [g for g in group if g[2]]
        if len(spelled) >= 3 and sum(g[4] for g in spelled) >= 2:
            letters = sum(g[2] for g in group)
            digits = sum(g[3] for g in group)
            gaps = sum(max(0, b[0] - a[1] - 1) for a, b in zip(group, group[1:]))
            first = group[0][0]
            if first <= 2:  # the answer opens with the code: the words before its first clear item are part of it
                first = 0
            kind = next((entity for g, entity in SPELLED_TYPES if g in ctx), None)
            conf = 0.7
            if kind is None:
                units = letters + digits + (gaps + 1) // 2  # a merged item ("cicro mechomo") is about one unit
                if language == "it" and 14 <= units <= 18 and letters >= 6 and digits >= 4:
                    kind, conf = "IT_FISCAL_CODE", 0.6
                else:
                    kind, conf = "ACCOUNT_NUMBER", 0.55
            hits.append(Hit(index, toks[first].start, toks[group[-1][1]].end, kind, conf, "code:spelled"))
        group.clear()

    for item in items:
        if group and item[0] - group[-1][1] - 1 > 3:
            close()
        group.append(item)
    if group:
        close()
    return hits


# --- e-mail said aloud ----------------------------------------------------------------------------------------

AT_WORDS = {"at", "chiocciola", "@"}
DOT_WORDS = {"dot", "punto"}
JOIN_WORDS = {"underscore": "_", "dash": "-", "hyphen": "-", "trattino": "-", "meno": "-"}


def _at_word(toks: list[Token], k: int) -> tuple[int, bool] | None:
    """The at-word starting at token k: (tokens it takes, whether it is the unambiguous "chiocciola"), also as ASR
    splits or garbles it ("chi occio la", "chiocciala": its letters joined, two edits at most); None."""
    from rapidfuzz.distance import Levenshtein

    low = fold(toks[k].text)
    if low in AT_WORDS:
        return 1, low != "at"
    letters = ""
    best: tuple[int, int] | None = None  # (edits, -tokens): the closest, then the longest
    for n in range(1, 4):
        if k + n > len(toks) or not toks[k + n - 1].text.isalpha():
            break
        letters += fold(toks[k + n - 1].text)
        if len(letters) > 12:
            break
        d = Levenshtein.distance(letters, "chiocciola", score_cutoff=2)
        if len(letters) >= 8 and d <= 2 and (best is None or (d, -n) < best):
            best = (d, -n)
    return None if best is None else (-best[1], True)


def spoken_email_hits(index: int, text: str, suffix_ok: Callable[[str], bool]) -> list[Hit]:
    """"mario dot rossi at gmail dot com", "mario punto rossi chiocciola gmail punto it", "mario.rossi at
    gmail.com": a local part, an at, and a domain of at least two labels whose last one is a public suffix
    (`suffix_ok`, from tldextract's bundled list): confidence 0.9.

    As ASR garbles them (0.8, email:spoken_garbled): the at-word split or misspelt ("chi occio la"), the suffix
    not a public one ("libero punto heat" for libero.it: a last label of 2-5 letters). A word of the local part
    split in two ("marco punto vi anche") is taken in either case. A garbled suffix is taken after "chiocciola" (no
    sentence says it with "punto" after it), or after "at" only when the local part has its own dot or underscore
    ("john dot smith at gmail dot calm"): "look at this dot, then that" is a sentence."""
    toks = tokens(text)
    hits: list[Hit] = []

    def connector(k: int) -> str | None:
        t = toks[k]
        low = fold(t.text)
        if low in DOT_WORDS:
            return "."
        if t.text in (".", "_", "-") and 0 < k < len(toks) - 1 and toks[k - 1].end == t.start \
                and t.end == toks[k + 1].start:
            return t.text
        if low in JOIN_WORDS:
            return JOIN_WORDS[low]
        if low == "trattino" and k + 1 < len(toks) and fold(toks[k + 1].text) == "basso":
            return "_"
        return None

    def word(k: int) -> bool:
        return 0 <= k < len(toks) and toks[k].text.isalnum()

    for k, t in enumerate(toks):
        at = _at_word(toks, k) if k > 0 else None
        if at is None or k + at[0] >= len(toks):
            continue
        taken, distinctive = at
        # domain: label (connector label)+
        j = k + taken
        if fold(toks[j].text) == "sign":  # "at sign"
            j += 1
        if not word(j):
            continue
        labels = [toks[j].text]
        end = j
        while end + 2 < len(toks) and connector(end + 1) == "." and word(end + 2):
            labels.append(toks[end + 2].text)
            end += 2
        if len(labels) < 2:
            continue
        domain = ".".join(x.lower() for x in labels)
        clean = suffix_ok(domain) and taken == 1
        if not clean and not (suffix_ok(domain) or labels[-1].isalpha() and 2 <= len(labels[-1]) <= 5):
            continue
        # local part: word (connector word)* going left; garbled: one word of it split in two
        i = k - 1
        if not word(i):
            continue
        start = i
        split = False
        joined = False
        while True:
            if start - 2 >= 0 and connector(start - 1) is not None and word(start - 2):
                start -= 2
                joined = True
            elif not split and start - 3 >= 0 and word(start - 1) and connector(start - 2) \
                    and word(start - 3):
                start -= 1
                split = True
            else:
                break
        if fold(toks[start].text) in ("is", "e", "è", "it's", "email", "mail"):
            continue
        if not clean and not distinctive and not joined:
            continue
        hits.append(Hit(index, toks[start].start, toks[end].end, "EMAIL_ADDRESS", 0.9 if clean else 0.8,
                        "email:spoken" if clean else "email:spoken_garbled"))
    return hits


# --- names by their introduction ------------------------------------------------------------------------------

TITLES = {"mr", "mrs", "ms", "miss", "mister", "missus", "dr", "doctor", "sir", "madam", "signor", "signore",
          "signora", "signorina", "sig", "sig.ra", "dottor", "dottore", "dottoressa", "dott", "dott.ssa",
          "avvocato", "ingegner", "ingegnere", "professor", "professoressa"}
INTRO = {
    "en": (("my", "name", "is"), ("my", "name's"), ("name", "is"), ("this", "is"), ("i'm",), ("i", "am"),
           ("speaking", "with"), ("calling", "for"), ("in", "the", "name", "of"), ("it's",)),
    "it": (("mi", "chiamo"), ("il", "mio", "nome", "è"), ("il", "mio", "nome", "e"), ("sono",), ("parlo", "con"),
           ("a", "nome", "di"), ("intestato", "a"), ("intestata", "a"), ("cognome",), ("nome", "e", "cognome")),
}
# after these the name may be written in lower case (ASR or a lower-cased transcript): the words must not be common
LOWER_OK = {("my", "name", "is"), ("my", "name's"), ("mi", "chiamo"), ("il", "mio", "nome", "è"), ("a", "nome", "di"),
            ("cognome",), ("nome", "e", "cognome")}
NOT_NAMES = {
    "en": {"here", "there", "sorry", "fine", "good", "great", "calling", "speaking", "afraid", "not", "just",
           "so", "very", "really", "happy", "glad", "sure", "okay", "ok", "looking", "trying", "going", "interested",
           "the", "a", "an", "your", "my", "from", "with", "at", "on", "in", "of", "and", "but", "about", "still",
           "also", "having", "thinking", "ringing", "phoning", "back", "new", "existing", "customer", "bank",
           "what", "who", "it", "that", "this", "calling", "hello", "hi", "yes", "no", "thanks", "thank"},
    "it": {"io", "qui", "qua", "stato", "stata", "contento", "contenta", "molto", "davvero", "sicuro", "sicura",
           "già", "gia", "ancora", "solo", "un", "una", "il", "la", "lo", "di", "da", "del", "della", "in", "a",
           "e", "che", "non", "sì", "si", "no", "cliente", "proprio", "qua", "arrabbiato", "arrabbiata",
           "interessato", "interessata", "disponibile", "pronto", "pronta", "d'accordo", "grazie", "buongiorno",
           "buonasera", "salve", "ciao", "lieto", "lieta", "felice", "tranquillo", "tranquilla"},
}


def _is_name_word(t: Token, language: str, lower_ok: bool, stop: set[str]) -> bool:
    w = t.text
    if not w.isalpha() or len(w) < 2 or fold(w) in NOT_NAMES.get(language, set()) or fold(w) in stop:
        return False
    if w[0].isupper() and not w.isupper():
        return True
    return lower_ok and w.islower() and len(w) >= 3


NAME_QUESTIONS = ("your name", "full name", "who am i speaking", "who i'm speaking", "il suo nome", "come si chiama",
                  "nome e cognome", "a chi intestato")


def answered_name_hits(index: int, text: str, question: str | None, language: str, stop: set[str],
                       allowed: set[str]) -> list[Hit]:
    """A short answer to "may I have your name?": its capitalised words ("Crystal Minh")."""
    if not question or not any(q in fold(question) for q in NAME_QUESTIONS):
        return []
    toks = [t for t in tokens(text) if t.text.isalnum()]
    if not 1 <= len(toks) <= 5:
        return []
    names = [t for t in toks if _is_name_word(t, language, False, stop) and fold(t.text) not in allowed]
    if not names or len(names) > 3:
        return []
    return [Hit(index, names[0].start, names[-1].end, "PERSON", 0.75, "name:answer")]


# Italian titles ASR clips or garbles ("signo Bianchi" for "signor Bianchi", "dottore" / "dottor"): a word one edit
# away from one of these (6 letters or more) is the title; a name after it still has to look like one (capitalised).
_FUZZY_TITLES = {"it": tuple(t for t in TITLES if len(t) >= 6 and t.isalpha() and t.startswith(("sign", "dott")))}


def _is_title(word: str, language: str) -> bool:
    if word in TITLES:
        return True
    fuzzy = _FUZZY_TITLES.get(language, ())
    if not fuzzy or len(word) < 5 or not word.isalpha():
        return False
    from rapidfuzz.distance import Levenshtein

    return any(Levenshtein.distance(word, t, score_cutoff=1) <= 1 for t in fuzzy)


def name_hits(index: int, text: str, language: str, stop: set[str], allowed: set[str]) -> list[Hit]:
    """Names after an introduction ("my name is Mario Rossi", "mi chiamo Anna", "sono Giulia") or a title ("Mr
    Harris", "signora Bianchi"): one or two name words (capitalised; lower case only after an unambiguous
    introduction)."""
    toks = tokens(text)
    folded = [fold(t.text) for t in toks]
    hits: list[Hit] = []
    k = 0
    while k < len(toks):
        matched = None
        for phrase in INTRO.get(language, ()):
            n = len(phrase)
            if tuple(folded[k:k + n]) == tuple(fold(p) for p in phrase):
                matched = (phrase, n)
                break
        title = _is_title(folded[k], language) and (k + 1 < len(toks))
        if title and k + 1 < len(toks) and toks[k + 1].text == ".":
            k += 1  # "Mr. Harris"
        if matched is None and not title:
            k += 1
            continue
        n = matched[1] if matched else 1
        lower_ok = bool(matched) and matched[0] in LOWER_OK
        j = k + n
        names = []
        while j < len(toks) and len(names) < 3 and _is_name_word(toks[j], language, lower_ok, stop) \
                and fold(toks[j].text) not in allowed:
            names.append(toks[j])
            j += 1
        if language == "en" and matched and matched[0] in (("this", "is"), ("i'm",), ("i", "am"), ("it's",)) \
                and names and not names[0].text[0].isupper():
            names = []
        if names:
            conf = 0.85 if (title or lower_ok) else 0.7
            hits.append(Hit(index, names[0].start, names[-1].end, "PERSON", conf,
                            "name:title" if title and not matched else "name:introduction"))
            k = j
        else:
            k += n
    return hits


# --- addresses ------------------------------------------------------------------------------------------------

STREET_EN = {"street", "st", "road", "rd", "avenue", "ave", "lane", "ln", "drive", "dr", "close", "way", "court",
             "ct", "place", "pl", "crescent", "terrace", "grove", "gardens", "boulevard", "blvd", "square", "row",
             "hill", "park", "mews", "walk"}
STREET_IT = {"via", "viale", "piazza", "corso", "vicolo", "largo", "piazzale", "strada", "contrada", "località",
             "localita", "borgo", "lungomare", "circonvallazione"}
CITY_INTRO_IT = (("abito", "a"), ("abito", "in"), ("vivo", "a"), ("vivo", "in"), ("residente", "a"),
                 ("residente", "in"), ("comune", "di"), ("città", "di"), ("citta", "di"))


def address_hits(index: int, text: str, language: str, runs: list[Run]) -> list[Hit]:
    """Street addresses: "12 Baker Street", "twenty two Acacia Avenue", "6821 1st ave" (a number, up to four words,
    a street word); "via Roma 12", "in via Garibaldi, numero 5", "piazza Duomo tre"; Italian towns after
    "abito a", "residente in" (LOCATION)."""
    toks = tokens(text)
    folded = [fold(t.text) for t in toks]
    hits: list[Hit] = []
    number_at = {}
    for r in runs:
        for u in r.units:
            if u.chars.isdigit() or (u.kind == "alnum" and u.chars[:1].isdigit()):
                number_at[u.start] = u
    # English: <number> <words> <street word>
    for k, t in enumerate(toks):
        unit = number_at.get(t.start)
        if unit is None:
            continue
        j = k
        while j < len(toks) and toks[j].end <= unit.end:
            j += 1
        words = 0
        while j < len(toks) and words < 4 and toks[j].text.isalnum() and folded[j] not in STREET_EN:
            j += 1
            words += 1
        if words and j < len(toks) and folded[j] in STREET_EN:
            hits.append(Hit(index, unit.start, toks[j].end, "ADDRESS", 0.85, "address:street"))
    # Italian: <street word> <name words> [,] [numero|n|n.] <number>
    for k, t in enumerate(toks):
        if folded[k] not in STREET_IT or k + 1 >= len(toks):
            continue
        j = k + 1
        names = 0
        while j < len(toks) and names < 4 and toks[j].text.isalpha() and (
                toks[j].text[0].isupper() or names and folded[j] in ("di", "del", "della", "dei", "degli", "delle")):
            j += 1
            names += 1
        if not names:
            continue
        end = toks[j - 1].end
        m = j
        while m < len(toks) and (toks[m].text in (",", ".") or folded[m] in ("numero", "n", "civico")):
            m += 1
        if m < len(toks) and toks[m].start in number_at:
            end = number_at[toks[m].start].end
        hits.append(Hit(index, t.start, end, "ADDRESS", 0.85 if end > toks[j - 1].end else 0.7, "address:street"))
        after = next((x for x, tk in enumerate(toks) if tk.start >= end), None)
        while after is not None and after < len(toks) and toks[after].text in (",", "."):
            after += 1
        if after is not None and after + 1 < len(toks) and folded[after] in ("a", "di", "in") \
                and toks[after + 1].text[:1].isupper() and toks[after + 1].text.isalpha():
            hits.append(Hit(index, toks[after + 1].start, toks[after + 1].end, "LOCATION", 0.7, "location:address"))
    if language == "it":
        for k in range(len(toks)):
            for phrase in CITY_INTRO_IT:
                n = len(phrase)
                if tuple(folded[k:k + n]) == phrase and k + n < len(toks) and toks[k + n].text[:1].isupper() \
                        and toks[k + n].text.isalpha():
                    e = k + n
                    while e + 1 < len(toks) and toks[e + 1].text[:1].isupper() and toks[e + 1].text.isalpha():
                        e += 1
                    hits.append(Hit(index, toks[k + n].start, toks[e].end, "LOCATION", 0.7, "location:introduction"))
    return hits


def utterance_runs(utterances: Sequence, language: str, *, max_gap_s: float = 30.0) -> dict[int, list[Run]]:
    """Each utterance's runs. An utterance that may go on reading the number its speaker's previous utterance ended
    with (as `chain_hits` joins them) is read again with `continues`: misheard digit words at its start count."""
    runs = {u.index: code_runs(u.text, language, u.index) for u in utterances}
    ordered = sorted(utterances, key=lambda u: u.index)
    last_of: dict[str, object] = {}
    for u in ordered:
        prev = last_of.get(u.speaker)
        last_of[u.speaker] = u
        if prev is None or u.start - prev.end > max_gap_s or not _only_backchannel(ordered, prev.index, u.index):
            continue
        rs = runs.get(prev.index, [])
        if rs and _edge_ok(prev.text, rs[-1].start, rs[-1].end, leading=False):
            runs[u.index] = code_runs(u.text, language, u.index, continues=True)
    return runs
