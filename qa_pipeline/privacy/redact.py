"""Redaction: the entity type in place of each finding's value, in every text a call's rows hold.

`Redactor` is built per call from the original utterances and the findings (in memory only) and gives:
- `text(i)`: utterance i with `[CREDIT_CARD]`, `[PERSON]`... in place of each finding;
- `word(i, k, text)`: a word row's text (the label when the word lies in a finding);
- `fragment(text, i)`: a piece of evidence (a compliance match, an event's text, a flag's reason, the role
  evidence), located in its utterance and redacted with that utterance's findings; what cannot be located goes
  through `sweep`;
- `sweep(text)`: the safety net over any free text: each finding's value, and runs of two or more of its words
  (or one distinctive word: a digit group, a name), replaced by its label.

For analysing text that is already redacted (a re-analysis of a stored call), `analysable` turns each label into
one capitalised placeholder word (so "sono [PERSON]" still reads as "sono <Name>" to the script patterns) and
`restore` turns placeholders in the results back into labels."""

from __future__ import annotations

import re
from typing import Sequence

from qa_pipeline.config import PII_ENTITIES
from qa_pipeline.privacy.detect import Finding, word_spans
from qa_pipeline.privacy.normalize import fold, tokens

LABEL_RE = re.compile(r"\[(" + "|".join(PII_ENTITIES) + r")\]")
# words that join a spoken value's parts and are too common to redact on their own
_COMMON = {"dot", "at", "punto", "chiocciola", "come", "as", "in", "for", "and", "e", "the", "di", "da", "via",
           "street", "road", "avenue", "numero", "mr", "mrs", "ms", "signor", "signora", "sign", "underscore",
           "dash", "trattino", "oh"}
_NAME_TYPES = {"PERSON", "LOCATION", "ADDRESS", "EMAIL_ADDRESS"}


def label(entity: str) -> str:
    return f"[{entity}]"


def _placeholder(entity: str) -> str:
    return "Redacted" + entity.lower().replace("_", "")


_PLACEHOLDERS = {_placeholder(e).lower(): e for e in PII_ENTITIES}
_PLACEHOLDER_RE = re.compile(r"\b(" + "|".join(sorted(_PLACEHOLDERS, key=len, reverse=True)) + r")\b", re.IGNORECASE)


def analysable(text: str) -> str:
    """Redacted text made readable to the analysis: each `[TYPE]` becomes one capitalised word."""
    return LABEL_RE.sub(lambda m: _placeholder(m.group(1)), text)


def restore(text: str | None) -> str | None:
    """Placeholders in an analysis result (evidence, reasons) back to their labels."""
    if not text:
        return text
    return _PLACEHOLDER_RE.sub(lambda m: label(_PLACEHOLDERS[m.group(1).lower()]), text)


def _number_word(w: str) -> bool:
    from qa_pipeline.privacy.normalize import number_value

    return number_value(w, "en") is not None or number_value(w, "it") is not None


class Redactor:
    """The redaction of one call (see the module docstring). Holds the original text in memory only."""

    def __init__(self, utterances: Sequence, findings: Sequence[Finding]):
        self.raw = {u.index: u.text for u in utterances}
        self.findings = sorted(findings, key=lambda f: (f.utterance_index, f.char_start))
        self.by_utt: dict[int, list[Finding]] = {}
        for f in self.findings:
            self.by_utt.setdefault(f.utterance_index, []).append(f)
        self._memo: dict[tuple[str, int | None], str] = {}  # (fragment, utterance) -> redacted
        # the values, and their words, for the sweep
        self._values: list[tuple[str, str]] = []
        self._words: list[tuple[list[str], str]] = []
        self._single: dict[str, str] = {}
        for f in self.findings:
            value = self.raw[f.utterance_index][f.char_start:f.char_end]
            lab = label(f.entity_type)
            if len(value.strip()) >= 3:
                self._values.append((value, lab))
            words = [fold(t.text) for t in tokens(value) if t.text.isalnum()]
            if len(words) >= 2:
                self._words.append((words, lab))
            for t in tokens(value):
                w = fold(t.text)
                if not t.text.isalnum() or w in _COMMON or len(w) < 3:
                    continue
                digits = sum(c.isdigit() for c in w)
                if digits >= 3 or (f.entity_type in _NAME_TYPES and t.text.isalpha() and not _number_word(w)) \
                        or (digits and len(w) >= 4):
                    self._single[w] = lab
        self._values.sort(key=lambda v: -len(v[0]))

    @property
    def active(self) -> bool:
        return bool(self.findings)

    # ---- utterances and words ------------------------------------------------------------------------------------

    def _apply(self, text: str, index: int, offset: int) -> str:
        """`text`, which lies at `offset` in utterance `index`, with that utterance's findings replaced."""
        out = []
        pos = 0
        for f in self.by_utt.get(index, ()):
            a, b = f.char_start - offset, f.char_end - offset
            if b <= 0 or a >= len(text):
                continue
            a, b = max(a, 0, pos), min(b, len(text))
            if b <= a:
                continue
            out.append(text[pos:a])
            out.append(label(f.entity_type))
            pos = b
        out.append(text[pos:])
        return "".join(out)

    def text(self, index: int) -> str:
        """Utterance `index` redacted."""
        raw = self.raw.get(index, "")
        return self._apply(raw, index, 0) if index in self.by_utt else raw

    def words(self, index: int, word_rows: Sequence[dict]) -> list[str]:
        """The texts of utterance `index`'s words (rows in time order), each the label when it lies in a finding."""
        raw = self.raw.get(index)
        if raw is None or index not in self.by_utt:
            return [self.sweep(w["text"]) if self.active else w["text"] for w in word_rows]
        out = []
        for w, (a, b) in zip(word_rows, word_spans(raw, word_rows)):
            if a < 0:
                out.append(self.sweep(w["text"]))
                continue
            hit = next((f for f in self.by_utt[index] if f.char_start < b and a < f.char_end), None)
            out.append(label(hit.entity_type) if hit else w["text"])
        return out

    # ---- evidence and any other free text -------------------------------------------------------------------------

    def fragment(self, text: str | None, index: int | None = None) -> str | None:
        """A piece of text taken from utterance `index` (or from anywhere in the call), redacted."""
        if not text or not self.active:
            return text
        if (text, index) in self._memo:
            return self._memo[(text, index)]
        result = None
        if index is not None and index in self.raw:
            result = self._locate(text, index)
        if result is None:
            result = text
            for (raw, _), red in sorted(self._memo.items(), key=lambda kv: -len(kv[0][0])):
                if raw != red and len(raw) >= 3 and raw in result:
                    result = result.replace(raw, red)
            result = self._quotes(result, index)
        result = self.sweep(result)
        self._memo[(text, index)] = result
        return result

    def _locate(self, text: str, index: int) -> str | None:
        raw = self.raw[index]
        matches = list(re.finditer(re.escape(text), raw, re.IGNORECASE)) if len(text) <= len(raw) else []
        if not matches:
            return None
        out = text
        for m in matches[:1]:  # every occurrence has the same text; the first one decides
            out = self._apply(text, index, m.start())
        return out

    def _quotes(self, text: str, index: int | None) -> str:
        """Quoted pieces ('...' or "...") located in an utterance and redacted there."""
        def one(m: re.Match) -> str:
            inner = m.group(2)
            order = ([index] if index is not None else []) + [i for i in self.raw if i != index]
            for i in order:
                located = self._locate(inner, i) if i in self.by_utt else None
                if located is not None:
                    return m.group(1) + located + m.group(3)
            return m.group(0)

        return re.sub(r"(['\"])(.+?)(\1)", one, text)

    def sweep(self, text: str | None) -> str | None:
        """Every value of the call's findings, and its words, replaced in `text` (any free text)."""
        if not text or not self.active:
            return text
        for value, lab in self._values:
            if value.lower() in text.lower():
                text = re.sub(re.escape(value), lab, text, flags=re.IGNORECASE)
        toks = [t for t in tokens(text) if t.text.isalnum()]
        spans: list[tuple[int, int, str]] = []
        k = 0
        while k < len(toks):
            w = fold(toks[k].text)
            best = (0, None)
            for words, lab in self._words:
                for s in (s for s, x in enumerate(words) if x == w):
                    n = 0
                    while k + n < len(toks) and s + n < len(words) and fold(toks[k + n].text) == words[s + n]:
                        n += 1
                    if n > best[0]:
                        best = (n, lab)
            if best[0] >= 2:
                spans.append((toks[k].start, toks[k + best[0] - 1].end, best[1]))
                k += best[0]
                continue
            if w in self._single:
                spans.append((toks[k].start, toks[k].end, self._single[w]))
            elif any(c.isdigit() for c in w) and len(w) >= 3 and any(w in fold(v) for v, _ in self._values):
                spans.append((toks[k].start, toks[k].end, next(lab for v, lab in self._values if w in fold(v))))
            k += 1
        for a, b, lab in reversed(spans):
            text = text[:a] + lab + text[b:]
        return text
