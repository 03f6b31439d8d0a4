"""What ASR makes of numbers and codes, turned back into characters with their place in the text.

A customer reads a card number as "four one one one, one one one one ...", "forty-one eleven ...", "4111 1111 ...";
an Italian customer "quattro uno uno uno"; a fiscal code letter by letter, often with the spelling alphabet ("R come
Roma, S come Savona"; "A as in apple", NATO "Romeo"). `code_runs` turns each stretch of such tokens into a `Run`:
units (one number group, one letter, one alphanumeric token) with their character spans, whose concatenation
("4111111111111111", "RSSMRA80A01H501U") the validators check. Nothing here is language-model based: number words
come from text2num, letters from the lists below."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

TOKEN = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower()


def tokens(text: str) -> list[Token]:
    return [Token(m.group(0), m.start(), m.end()) for m in TOKEN.finditer(text)]


def fold(word: str) -> str:
    """Lower case without accents ("ventitré" -> "ventitre")."""
    return "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")


# --- letters ------------------------------------------------------------------------------------------------

NATO = {
    "alfa": "A", "alpha": "A", "bravo": "B", "charlie": "C", "delta": "D", "echo": "E", "foxtrot": "F", "golf": "G",
    "hotel": "H", "india": "I", "juliet": "J", "juliett": "J", "kilo": "K", "lima": "L", "mike": "M",
    "november": "N", "oscar": "O", "papa": "P", "quebec": "Q", "romeo": "R", "sierra": "S", "tango": "T",
    "uniform": "U", "victor": "V", "whiskey": "W", "whisky": "W", "xray": "X", "yankee": "Y", "zulu": "Z",
}
# The Italian spelling alphabet (alfabeto telefonico), with the usual alternatives.
ITALIAN_ALPHABET = {
    "ancona": "A", "bologna": "B", "bari": "B", "como": "C", "catania": "C", "domodossola": "D", "empoli": "E",
    "firenze": "F", "genova": "G", "hotel": "H", "imola": "I", "jolly": "J", "kursaal": "K", "kappa": "K",
    "livorno": "L", "milano": "M", "napoli": "N", "otranto": "O", "palermo": "P", "padova": "P", "quarto": "Q",
    "quadro": "Q", "roma": "R", "savona": "S", "torino": "T", "udine": "U", "venezia": "V", "washington": "W",
    "xeres": "X", "yacht": "Y", "york": "Y", "yogurt": "Y", "zara": "Z", "zurigo": "Z",
}
# Letter names that cannot be ordinary words of the language (Italian "di", "ci", "e" are left out on purpose).
LETTER_NAMES = {
    "en": {"aitch": "H", "zed": "Z", "zee": "Z"},
    "it": {"acca": "H", "erre": "R", "esse": "S", "emme": "M", "enne": "N", "elle": "L", "effe": "F", "zeta": "Z",
           "ics": "X", "ipsilon": "Y", "kappa": "K", "cu": "Q", "vu": "V"},
}
# "<letter> come Roma", "<letter> as in apple", "<letter> for apple"
SPELL_LINKS = {"en": (("as", "in"), ("for",), ("like",)), "it": (("come",), ("di",))}

# --- numbers ------------------------------------------------------------------------------------------------

# Words ASR writes for a digit inside a number ("four to one" for 4 2 1): only between two other number units.
HOMOPHONES = {"en": {"for": "4", "fore": "4", "to": "2", "too": "2", "won": "1", "ate": "8"}, "it": {}}
ZERO_LETTERS = {"en": {"oh": "0", "o": "0", "nil": "0"}, "it": {}}
REPEATS = {"en": {"double": 2, "triple": 3}, "it": {"doppio": 2, "triplo": 3}}
# The digit words, for what ASR makes of them when it garbles a read-out number: a word one letter away from one of
# the longer ones ("nero", "zeri" for zero; "sete" for sette; "cintue" for cinque; "tree" for three) is that digit,
# but only inside a run of other digits (`_settle`), so that a read-out number keeps its length and a sentence
# ("è vero", "a tree") stays words. Three-letter digit words are too close to ordinary words to be matched so.
DIGIT_WORDS = {
    "en": {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
           "eight": "8", "nine": "9"},
    "it": {"zero": "0", "uno": "1", "due": "2", "tre": "3", "quattro": "4", "cinque": "5", "sei": "6", "sette": "7",
           "otto": "8", "nove": "9"},
}
# Known ASR spellings of digit words that are further than one letter away (or too short to match so).
ASR_DIGITS = {"en": {"fife": "5", "sicks": "6", "nein": "9"}, "it": {"zeri": "0", "quatro": "4", "cinqu": "5"}}
# Long enough to be matched with an edit: English "three", "seven", "eight" only (the shorter ones are words).
FUZZY_MIN_LEN = {"en": 5, "it": 4}
# Fillers and spoken separators that do not break a number or a code.
FILLERS = {
    "en": {"uh", "um", "er", "erm", "ehm", "hmm", "mm", "dash", "hyphen", "space"},
    "it": {"ehm", "eh", "uhm", "mm", "trattino", "spazio", "barra"},
}
SEPARATORS = set(",.-/:;–—()")
PLUS_WORDS = {"plus", "più", "piu"}


def number_value(word: str, language: str) -> int | None:
    """The number a single word says ("quattro" -> 4, "ventitré" -> 23, "twenty-four" -> 24), or None."""
    from text_to_num import text2num

    w = word.lower().replace("’", "'")
    if not w or not any(c.isalpha() for c in w) or len(w) > 40:
        return None
    try:
        return int(text2num(w, language))
    except (ValueError, TypeError, IndexError, KeyError):
        return None


def misheard_digit(word: str, language: str) -> str | None:
    """The digit a garbled digit word stands for ("nero" -> "0", "cintue" -> "5", "tree" -> "3"), or None: an
    ASR spelling of the language's (ASR_DIGITS), or one edit away from exactly one digit word of FUZZY_MIN_LEN
    letters or more. Only a candidate: `code_runs` keeps it among other digits only."""
    from rapidfuzz.distance import Levenshtein

    w = fold(word)
    if not w.isalpha() or not w.isascii():
        return None
    known = ASR_DIGITS.get(language, {})
    if w in known:
        return known[w]
    words = DIGIT_WORDS.get(language, {})
    if w in words or len(w) < 4:
        return None
    found = {d for dw, d in words.items() if len(dw) >= FUZZY_MIN_LEN.get(language, 5)
             and Levenshtein.distance(w, dw, score_cutoff=1) <= 1}
    return found.pop() if len(found) == 1 else None


def compose(words: list[str], language: str) -> str | None:
    """The digits of a phrase of number words read as one number ("twenty four" -> "24", "four hundred and
    twelve" -> "412"), or None when it is not one number ("four one" is two)."""
    from text_to_num import alpha2digit

    try:
        out = alpha2digit(" ".join(words), language).strip()
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    return out if out.isdigit() else None


@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of a number or code: its characters (digits or upper-case letters) and where it was said."""

    chars: str
    start: int
    end: int
    kind: str  # digits / letter / alnum / plus
    strong: bool  # digits or an alphanumeric token: a run needs one (or several letters) to be a code
    misheard: bool = False  # a digit word as ASR garbled it ("nero" for zero): kept only among other digits


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive units of one utterance: a number or a code as said."""

    utterance_index: int
    units: tuple[Unit, ...]

    @property
    def chars(self) -> str:
        return "".join(u.chars for u in self.units)

    @property
    def start(self) -> int:
        return self.units[0].start

    @property
    def end(self) -> int:
        return self.units[-1].end


def _unit_of(toks: list[Token], i: int, language: str) -> tuple[Unit | None, int]:
    """The unit starting at token i and the number of tokens it takes (0: not a unit)."""
    t = toks[i]
    w = t.text
    low = fold(w)
    nxt = [fold(x.text) for x in toks[i + 1:i + 4]]
    if w.isdigit():
        return Unit(w, t.start, t.end, "digits", True), 1
    if "-" in w and w.replace("-", "").isdigit():  # 4111-1111
        return Unit(w.replace("-", ""), t.start, t.end, "digits", True), 1
    if w.isalnum() and any(c.isdigit() for c in w) and any(c.isalpha() for c in w) and w.isascii():
        return Unit(w.upper(), t.start, t.end, "alnum", True), 1
    if len(w) == 1 and w.isalpha() and w.isascii():
        # "R come Roma" / "A as in apple": the letter, its link and the word, as one strong unit
        for link in SPELL_LINKS.get(language, ()):
            n = len(link)
            if tuple(nxt[:n]) == link and len(toks) > i + n + 1:
                word = toks[i + n + 1]
                if word.text[:1].lower() == w.lower() and word.text.isalpha():
                    return Unit(w.upper(), t.start, word.end, "letter", True), n + 2
        return Unit(w.upper(), t.start, t.end, "letter", False), 1
    if low in PLUS_WORDS:
        return Unit("+", t.start, t.end, "plus", False), 1
    if low in LETTER_NAMES.get(language, {}):
        return Unit(LETTER_NAMES[language][low], t.start, t.end, "letter", False), 1
    if low in NATO or low in ITALIAN_ALPHABET:
        letter = NATO.get(low) or ITALIAN_ALPHABET[low]
        return Unit(letter, t.start, t.end, "letter", False), 1
    if w.isalpha() and w.isupper() and 2 <= len(w) <= 8 and w.isascii():
        return Unit(w, t.start, t.end, "alnum", False), 1  # "RSS", "BW": letters as ASR writes them spelled
    return None, 0


def _spell_link(toks: list[Token], i: int, language: str) -> tuple[Unit | None, int]:
    """"come Roma" with the letter itself not heard: the word's initial, when the word is a spelling-alphabet one."""
    for link in SPELL_LINKS.get(language, ()):
        n = len(link)
        if tuple(fold(x.text) for x in toks[i:i + n]) == link and len(toks) > i + n:
            word = toks[i + n]
            letter = ITALIAN_ALPHABET.get(fold(word.text)) if language == "it" else NATO.get(fold(word.text))
            if letter:
                return Unit(letter, toks[i].start, word.end, "letter", True), n + 1
    return None, 0


def _numbers(toks: list[Token], i: int, language: str) -> tuple[list[Unit], int]:
    """The number groups spoken from token i ("forty one eleven" -> 41, 11; "double four" -> 4, 4), and the tokens
    they take."""
    words: list[tuple[int, str]] = []  # (token index, word) of consecutive number words (hyphens joined)
    j = i
    while j < len(toks):
        low = fold(toks[j].text)
        if number_value(toks[j].text, language) is not None or low in REPEATS.get(language, {}):
            words.append((j, toks[j].text))
            j += 1
            continue
        if low in ("and", "e") and words and j + 1 < len(toks) \
                and number_value(toks[j + 1].text, language) is not None \
                and any(fold(w) in ("hundred", "thousand", "cento", "mille") for _, w in words[-2:]):
            words.append((j, toks[j].text))  # "four hundred and twelve"
            j += 1
            continue
        break
    if not words:
        return [], 0
    units: list[Unit] = []
    k = 0
    repeat = 1
    while k < len(words):
        idx, w = words[k]
        if fold(w) in REPEATS.get(language, {}):
            repeat = REPEATS[language][fold(w)]
            k += 1
            continue
        best, take = None, 0
        for n in range(min(6, len(words) - k), 0, -1):  # the longest phrase that reads as one number
            phrase = [x for _, x in words[k:k + n]]
            if any(fold(x) in REPEATS.get(language, {}) for x in phrase):
                continue
            if n == 1:
                v = number_value(phrase[0], language)
                digits = None if v is None else str(v)
            else:
                digits = compose(phrase, language)
            if digits is not None:
                best, take = digits, n
                break
        if best is None:
            k += 1
            continue
        first, last = toks[words[k][0]], toks[words[k + take - 1][0]]
        for _ in range(repeat):
            units.append(Unit(best, first.start, last.end, "digits", True))
        repeat = 1
        k += take
    return units, j - i


def _settle(units: list[Unit], *, leading: bool, lead_limit: int) -> list[list[Unit]]:
    """A stretch of units with misheard digit words, cut where such a word is not a digit after all.

    A misheard word counts when a unit next to it is a digit heard right and either both its neighbours are
    digits, or the stretch holds three digits heard right or more ("uno, nero uno, nero." ends a number;
    "tre, vero?" is a question); and never when the stretch holds more misheard words than right ones.
    leading: the speaker's previous utterance ended in a number (they are still reading it): misheard words at the
    utterance's start (`lead_limit`: its first characters) count in a row of two or more ("nero nero nero nero")."""
    if not any(u.misheard for u in units):
        return [units]
    right = sum(u.kind == "digits" and not u.misheard for u in units)
    wrong = sum(u.misheard for u in units)
    keep = [True] * len(units)
    head = 0
    while leading and head < len(units) and units[head].misheard and units[head].start < lead_limit:
        head += 1
    for k, u in enumerate(units):
        if not u.misheard:
            continue
        if leading and head >= 2 and k < head:
            continue
        before = units[k - 1] if k > 0 else None
        after = units[k + 1] if k + 1 < len(units) else None
        prev_ok = before is not None and before.kind == "digits" and not before.misheard
        next_ok = after is not None and after.kind == "digits" and not after.misheard
        both = before is not None and after is not None and before.kind == after.kind == "digits"
        keep[k] = (prev_ok or next_ok) and (both or right >= 3) and wrong <= right
    parts: list[list[Unit]] = [[]]
    for u, ok in zip(units, keep):
        if ok:
            parts[-1].append(u)
        elif parts[-1]:
            parts.append([])
    return [p for p in parts if p]


def code_runs(text: str, language: str, utterance_index: int = 0, *, continues: bool = False) -> list[Run]:
    """Every stretch of number groups, digits, letters and alphanumeric tokens in `text`, separators and fillers
    skipped. A run holds at least one strong unit (digits, an alphanumeric token, a spelling-alphabet letter) or
    three letters. Digit words ASR misheard count among other digits only (`_settle`).

    continues: the speaker's previous utterance ended in a number, which this one may go on reading."""
    toks = tokens(text)
    runs: list[Run] = []
    current: list[Unit] = []
    fillers = FILLERS.get(language, set())
    homophones = HOMOPHONES.get(language, {})
    zeros = ZERO_LETTERS.get(language, {})
    lead_limit = toks[min(3, len(toks) - 1)].end if toks else 0

    def close():
        for part in _settle(current, leading=continues, lead_limit=lead_limit):
            if any(u.strong for u in part) or sum(u.kind == "letter" for u in part) >= 3:
                runs.append(Run(utterance_index, tuple(part)))
        current.clear()

    i = 0
    while i < len(toks):
        t = toks[i]
        low = fold(t.text)
        nums, n = _numbers(toks, i, language)
        if nums:
            current.extend(nums)
            i += n
            continue
        if low in zeros and i + 1 < len(toks) and (_numbers(toks, i + 1, language)[0] or toks[i + 1].text.isdigit()):
            current.append(Unit(zeros[low], t.start, t.end, "digits", True))  # "oh seven seven"
            i += 1
            continue
        unit, n = _spell_link(toks, i, language)
        if unit is None:
            unit, n = _unit_of(toks, i, language)
        if unit is not None:
            current.append(unit)
            i += n
            continue
        if current and (low in homophones or low in zeros):
            after, _ = _numbers(toks, i + 1, language)
            if after or (i + 1 < len(toks) and toks[i + 1].text.isdigit()):
                current.append(Unit(homophones.get(low) or zeros[low], t.start, t.end, "digits", True))
                i += 1
                continue
        if t.text in SEPARATORS or low in fillers:
            i += 1
            continue
        digit = misheard_digit(t.text, language)
        if digit is not None:
            current.append(Unit(digit, t.start, t.end, "digits", True, misheard=True))
            i += 1
            continue
        close()
        i += 1
    close()
    return runs


def spans_of(run: Run, i: int, j: int) -> tuple[int, int]:
    """Character span of units i..j-1 of a run."""
    return run.units[i].start, run.units[j - 1].end
