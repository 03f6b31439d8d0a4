"""Loaded speech models, held by one object the caller builds once per worker process and passes to every call."""

from __future__ import annotations

import logging
import threading

from qa_pipeline.config import AsrOptions
from qa_pipeline.errors import Errors, ModelLoadError
from qa_pipeline.speech.weights import ModelRef, resolve_whisper

log = logging.getLogger("qa_pipeline")


class SpeechModels:
    """Whisper models keyed only by what selects the weights and how they run (model path, device, compute type,
    threads), and diarizers keyed by their options. Two configurations that differ in anything else (scripts,
    thresholds, VAD) share the same loaded weights.

    Thread-safe: loading is serialised per object; a loaded model is used by one call at a time per thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._whisper: dict[tuple, object] = {}
        self._diarizers: dict[object, object] = {}
        self._diarizer_errors: dict[object, str] = {}
        self._loading: set[tuple] = set()
        self._refs: dict[str, ModelRef] = {}

    def ref(self, spec: str) -> ModelRef:
        """The weights `spec` names (resolve_whisper), resolved once per process: a call's Transcriber asks for
        them several times, and reading the manifest and package versions each time took 0.3 s a call."""
        with self._lock:
            if spec not in self._refs:
                self._refs[spec] = resolve_whisper(spec)
            return self._refs[spec]

    def whisper(self, ref: ModelRef, options: AsrOptions):
        """The faster-whisper model of `ref` on `options.device` (loaded on first use).

        Raises:
            ModelLoadError: the folder is not a CTranslate2 model, or the device cannot run it.
        """
        key = _whisper_key(ref, options)
        with self._lock:
            if key not in self._whisper:
                from faster_whisper import WhisperModel

                try:
                    self._whisper[key] = WhisperModel(
                        str(ref.path), device=options.device, compute_type=options.compute_type,
                        cpu_threads=options.cpu_threads, local_files_only=True)
                except (RuntimeError, ValueError, OSError) as e:
                    raise ModelLoadError(Errors.E300, path=ref.path, device=options.device, error=e) from e
            return self._whisper[key]

    def prefetch_whisper(self, ref: ModelRef, options: AsrOptions) -> None:
        """Start loading the model of `ref` in a background thread, unless it is loaded or loading: it then loads
        while the call is decoded and its speech found, and `whisper()` waits for it. A load error is raised by
        `whisper()`, which tries again."""
        key = _whisper_key(ref, options)
        with self._lock:
            if key in self._whisper or key in self._loading:
                return
            self._loading.add(key)

        def load() -> None:
            try:
                self.whisper(ref, options)
            except ModelLoadError:
                pass
            finally:
                with self._lock:
                    self._loading.discard(key)

        threading.Thread(target=load, name="qa-pipeline-whisper-load", daemon=True).start()

    def transcriber(self, options: AsrOptions):
        """A Transcriber for `options` over these models (cheap: it loads nothing until it transcribes)."""
        from qa_pipeline.speech.asr import Transcriber

        return Transcriber(options, self)

    def diarizer(self, options):
        """The Diarizer for `options` (a DiarizationOptions), or None when the diarization extra is missing (the
        reason is in `diarizer_error(options)` and logged once)."""
        with self._lock:
            if options in self._diarizers:
                return self._diarizers[options]
            if options in self._diarizer_errors:
                return None
            try:
                from qa_pipeline.speech.diarization import Diarizer
            except ImportError as e:
                self._diarizer_errors[options] = f"diarization unavailable ({e}); install qa-pipeline[diarization]"
                log.warning(self._diarizer_errors[options])
                return None
            self._diarizers[options] = Diarizer(options)
            return self._diarizers[options]

    def diarizer_error(self, options) -> str | None:
        return self._diarizer_errors.get(options)


def _whisper_key(ref: ModelRef, options: AsrOptions) -> tuple:
    """What makes two loaded Whisper models the same: the weights and how they run."""
    return (str(ref.path), options.device, options.compute_type, options.cpu_threads)
