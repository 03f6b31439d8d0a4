"""Measures used by the benchmarks and the tests: WER with a stated normaliser, channel attribution."""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

_NUMBERS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
            "8": "eight", "9": "nine", "10": "ten"}
_NUMBERS_IT = {"0": "zero", "1": "uno", "2": "due", "3": "tre", "4": "quattro", "5": "cinque", "6": "sei",
               "7": "sette", "8": "otto", "9": "nove", "10": "dieci"}

NORMALISER = ("lowercase; NFKC; hyphens and slashes to spaces; punctuation removed except in-word apostrophes; "
              "single digits 0-10 spelled out; whitespace collapsed")
NORMALISER_IT = ("as NORMALISER, with digits 0-10 spelled in Italian and apostrophes to spaces (elisions split: "
                 "\"l'ultimo\" and \"l' ultimo\" are both \"l ultimo\")")


def normalise(text: str, language: str = "en") -> str:
    """`language` "it": NORMALISER_IT; anything else: NORMALISER."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[-/]", " ", text)
    text = re.sub(r"[^\w\s']", " ", text)
    if language == "it":
        text, numbers = text.replace("'", " "), _NUMBERS_IT
    else:
        text, numbers = re.sub(r"(^|\s)'|'(\s|$)", " ", text), _NUMBERS
    words = [numbers.get(w, w) for w in text.split()]
    return " ".join(words)


def wer(references: Sequence[str], hypotheses: Sequence[str], language: str = "en") -> float:
    """Corpus WER (total edits / total reference words) after `normalise` (for `language`)."""
    import jiwer

    refs = [normalise(r, language) for r in references]
    hyps = [normalise(h, language) for h in hypotheses]
    pairs = [(r, h) for r, h in zip(refs, hyps) if r]
    return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]))


def read_rttm(path: str) -> list[tuple[str, float, float]]:
    """(speaker, start, end) per RTTM SPEAKER line."""
    out = []
    for line in open(path, encoding="utf-8"):
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            start, dur = float(parts[3]), float(parts[4])
            out.append((parts[7], start, start + dur))
    return out
