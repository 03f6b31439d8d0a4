"""What the analysis stage loads, held by one object built from the analysis options and passed to every call."""

from __future__ import annotations

import dataclasses
import threading

from qa_pipeline.analysis.compliance import Rule, Script, ScriptMatcher, load_scripts
from qa_pipeline.analysis.events import event_matcher
from qa_pipeline.analysis.nlp import SpacyPipelines
from qa_pipeline.analysis.sentiment import SentimentModel
from qa_pipeline.config import AnalysisOptions


class AnalysisResources:
    """spaCy pipelines per language, the scripts (with the configured company names), their matchers, the event
    matchers and the sentiment lexicons, for one set of analysis options.

    Everything is built on first use and kept for the life of this object; nothing is shared through module
    globals, so two configurations in one process (tests, a flow run per campaign, the review app) never see each
    other's scripts. Safe to share between threads: construction is serialised, matching itself is read-only."""

    def __init__(self, options: AnalysisOptions = AnalysisOptions(), spacy: SpacyPipelines | None = None):
        self.options = options
        self.spacy = spacy or SpacyPipelines()  # the process's shared pipelines (ResourcePool's), else its own
        self._lock = threading.RLock()
        self._nlp: dict[str, object] = {}
        self._scripts: dict[tuple[str, ...], tuple[Script, ...]] = {}
        self._matchers: dict[tuple[str, str], ScriptMatcher] = {}
        self._event_matchers: dict[str, ScriptMatcher] = {}
        self._sentiment: SentimentModel | None = None
        self._forbidden = _forbidden_script(options)

    def nlp(self, language: str):
        with self._lock:
            if language not in self._nlp:
                self._nlp[language] = self.spacy.analysis(language)
            return self._nlp[language]

    def scripts(self, campaign: str | None) -> tuple[Script, ...]:
        """The scripts of `options.scripts_dir` and the defaults, each also accepting the campaign's company names."""
        extra = tuple(c.lower() for c in self.options.companies_for(campaign))
        with self._lock:
            if extra not in self._scripts:
                self._scripts[extra] = tuple(
                    dataclasses.replace(s, companies=tuple(dict.fromkeys(s.companies + extra))) if extra else s
                    for s in load_scripts(self.options.scripts_dir))
            return self._scripts[extra]

    def matcher(self, script: Script, language: str) -> ScriptMatcher:
        key = (repr(script), language)  # the whole script: company names or a forbidden list change it
        with self._lock:
            if key not in self._matchers:
                self._matchers[key] = ScriptMatcher(script, self.nlp(language), ner=self.spacy.entities)
            return self._matchers[key]

    def event_matcher(self, language: str) -> ScriptMatcher:
        with self._lock:
            if language not in self._event_matchers:
                self._event_matchers[language] = event_matcher(language, self.nlp(language))
            return self._event_matchers[language]

    def forbidden_matcher(self, language: str) -> ScriptMatcher | None:
        """The matcher of `options.forbidden_phrases`, None when none are configured."""
        return None if self._forbidden is None else self.matcher(self._forbidden, language)

    @property
    def sentiment(self) -> SentimentModel:
        with self._lock:
            if self._sentiment is None:
                self._sentiment = SentimentModel()
            return self._sentiment


def _forbidden_script(options: AnalysisOptions) -> Script | None:
    if not options.forbidden_phrases:
        return None
    return Script("forbidden", "1", "xx", {"forbidden": tuple(p.lower() for p in options.forbidden_phrases)},
                  (Rule("conduct.forbidden_content", "conduct", "configured forbidden phrases", "none",
                        ("forbidden",), severity="critical"),))
