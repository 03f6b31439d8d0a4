"""The loaded things one call needs, built by the caller and passed in: speech models and analysis resources."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from qa_pipeline.analysis.nlp import SpacyPipelines
from qa_pipeline.analysis.resources import AnalysisResources
from qa_pipeline.config import PipelineConfig
from qa_pipeline.privacy.detect import PrivacyResources
from qa_pipeline.speech.models import SpeechModels


@dataclass(frozen=True, slots=True)
class Resources:
    """What `process_call` and the analysis of a stored transcript use: never loaded per call."""

    speech: SpeechModels
    analysis: AnalysisResources
    privacy: PrivacyResources | None = None  # the PII detector (loaded on its first use)


class ResourcePool:
    """Resources for any number of configurations in one process: the speech models are shared (they are keyed by
    the weights they load), the analysis resources are built per analysis configuration.

    The caller owns the pool: the CLI builds one per run, a flow worker one per process, the review app one per
    server. Nothing lives in module globals."""

    def __init__(self, speech: SpeechModels | None = None):
        self.speech = speech or SpeechModels()
        self._lock = threading.Lock()
        self.spacy = SpacyPipelines()  # one English pipeline for the analysis and the PII detector
        self._analysis: dict[str, AnalysisResources] = {}
        self._privacy: dict[str, PrivacyResources] = {}

    def for_config(self, config: PipelineConfig) -> Resources:
        key = config.analysis_hash()
        privacy = repr(config.privacy)
        with self._lock:
            if key not in self._analysis:
                self._analysis[key] = AnalysisResources(config.analysis, self.spacy)
            if privacy not in self._privacy:
                self._privacy[privacy] = PrivacyResources(config.privacy, self.spacy)
            return Resources(self.speech, self._analysis[key], self._privacy[privacy])

    def warm(self, config: PipelineConfig, languages=("en",)) -> None:
        """Load now what the calls of `languages` (None: not known, detected) will need: the Whisper models (in
        the background), the spaCy pipelines, scripts and matchers, the PII detector. Called while something else
        waits (the orchestrator's API starting), so that the first call does not pay for them."""
        resources = self.for_config(config)
        transcriber = self.speech.transcriber(config.asr)
        for language in dict.fromkeys(languages):
            transcriber.prefetch(language)
        analysis = resources.analysis
        for language in dict.fromkeys(lang for lang in languages if lang):
            for script in analysis.scripts(None):
                if script.language in (None, language):
                    analysis.matcher(script, language)
            analysis.event_matcher(language)
            analysis.forbidden_matcher(language)
        analysis.sentiment  # noqa: B018 - the property loads the lexicon
        if resources.privacy is not None and config.privacy.enabled:
            resources.privacy.analyzer  # noqa: B018 - the property loads Presidio and its spaCy pipelines

