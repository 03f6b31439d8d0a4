"""Transcription with faster-whisper over speech regions only.

The speech regions of all channels are packed, in time order, into windows of at most `window_s` seconds with a
short silence between them, so a stereo call costs about one pass over its speech rather than one pass per channel
over its whole duration, and silence or hold music never reaches the model (no invented text). Word times are
mapped back to the call's timeline and each word keeps the channel it came from."""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from qa_pipeline.audio.decode import to_float
from qa_pipeline.config import AsrOptions
from qa_pipeline.errors import Errors, TranscriptionError
from qa_pipeline.speech.weights import ModelRef, resolve_whisper
from qa_pipeline.types import AsrInfo, SpeechRegion, Transcript, Word

if TYPE_CHECKING:
    from qa_pipeline.speech.models import SpeechModels

log = logging.getLogger("qa_pipeline")

@dataclass(frozen=True, slots=True)
class PackedSpan:
    packed_start: float  # seconds inside the window
    packed_end: float
    channel: int
    call_start: float  # where packed_start lies on the call timeline


@dataclass(frozen=True, slots=True)
class Window:
    spans: tuple[PackedSpan, ...]
    duration_s: float


def pack_windows(regions: Sequence[SpeechRegion], options: AsrOptions) -> list[Window]:
    """Pack regions into windows, one channel at a time in order of start time; long regions are cut.

    A window never mixes channels: Whisper's word times drift by a few hundred ms around the silences between
    packed regions, and a drifting word must land on its own speaker, not on the other party."""
    windows: list[Window] = []
    for channel in sorted({r.channel for r in regions}):
        windows.extend(_pack_channel([r for r in regions if r.channel == channel], options))
    return windows


def _pack_channel(regions: Sequence[SpeechRegion], options: AsrOptions) -> list[Window]:
    pieces: list[SpeechRegion] = []
    for r in sorted(regions, key=lambda r: r.start):
        s = r.start
        while r.end - s > options.max_region_s:
            pieces.append(SpeechRegion(r.channel, s, s + options.max_region_s))
            s += options.max_region_s
        if r.end - s > 0.05:
            pieces.append(SpeechRegion(r.channel, s, r.end))
    windows: list[Window] = []
    spans: list[PackedSpan] = []
    pos = 0.0
    for p in pieces:
        length = p.end - p.start
        start = pos + (options.gap_s if spans else 0.0)
        if spans and start + length > options.window_s:
            windows.append(Window(tuple(spans), pos))
            spans, start = [], 0.0
        spans.append(PackedSpan(start, start + length, p.channel, p.start))
        pos = start + length
    if spans:
        windows.append(Window(tuple(spans), pos))
    return windows


def window_audio(samples: np.ndarray, sample_rate: int, window: Window) -> np.ndarray:
    """Float32 mono audio of a window: its spans cut from their channels, silence between them."""
    out = np.zeros(int(round(window.duration_s * sample_rate)) + 1, dtype=np.float32)
    for sp in window.spans:
        a = int(round(sp.call_start * sample_rate))
        n = int(round((sp.packed_end - sp.packed_start) * sample_rate))
        o = int(round(sp.packed_start * sample_rate))
        chunk = to_float(samples[sp.channel, a : a + n])
        out[o : o + chunk.shape[0]] = chunk
    return out


def _map_word(window: Window, starts: list[float], w_start: float, w_end: float) -> tuple[PackedSpan, float, float]:
    """The span a word belongs to, and its times on the call timeline.

    Whisper's word times drift late (a sentence's last word often ends inside the following silence), so a word
    belongs to the last span that began before the word did (with 0.1 s of slack), never to the next one."""
    i = max(0, bisect.bisect_right(starts, w_start + 0.1) - 1)
    sp = window.spans[i]
    s = min(max(w_start, sp.packed_start), sp.packed_end)
    e = min(max(w_end, sp.packed_start), sp.packed_end)
    return sp, sp.call_start + (s - sp.packed_start), sp.call_start + (e - sp.packed_start)


class Transcriber:
    """Chooses the model by language and transcribes packed speech windows."""

    def __init__(self, options: AsrOptions, models: SpeechModels):
        self.options = options
        self.models = models
        self._refs: dict[str, ModelRef] = {}

    def ref(self, spec: str) -> ModelRef:
        if spec not in self._refs:
            self._refs[spec] = resolve_whisper(spec)
        return self._refs[spec]

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        model = self.models.whisper(self.ref(self.options.multilingual_model), self.options)
        lang, prob, _ = model.detect_language(audio[: 30 * 16000])
        return lang, float(prob)

    def transcribe(
        self,
        samples: np.ndarray,
        sample_rate: int,
        regions: Sequence[SpeechRegion],
        *,
        language: str | None,
        speaker_of_channel: dict[int, str],
        hotwords: Sequence[str] = (),
    ) -> Transcript:
        """Words of the given speech regions; `samples` is (channels, n) int16. `hotwords`: names this call may
        contain (its company), added to `asr.hotwords`.

        Raises:
            TranscriptionError: the model failed on a window.
        """
        opts = self.options
        windows = pack_windows(regions, opts)
        speech_s = sum(sp.packed_end - sp.packed_start for w in windows for sp in w.spans)
        language = language or opts.language
        lang_prob = 1.0
        if not windows:
            ref = self.ref(opts.english_model if language == "en" else opts.multilingual_model)
            return Transcript((), AsrInfo(ref.name, ref.version, language or "", 0.0, 0.0, 0))
        if language is None:
            probe = np.concatenate([window_audio(samples, sample_rate, w) for w in windows[:2]])
            language, lang_prob = self.detect_language(probe)
        eng = self.ref(opts.english_model) if opts.english_model else None
        ref = eng if (language == "en" and eng is not None) else self.ref(opts.multilingual_model)
        model = self.models.whisper(ref, opts)
        hint = ", ".join(dict.fromkeys((*opts.hotwords, *hotwords))) or None
        words: list[Word] = []
        for w in windows:
            audio = window_audio(samples, sample_rate, w)
            if opts.seed is not None:
                import ctranslate2

                ctranslate2.set_random_seed(opts.seed)  # same audio, same words: reruns are reproducible
            try:
                segments, _ = model.transcribe(
                    audio,
                    language=None if ref.english_only else language,
                    beam_size=opts.beam_size,
                    word_timestamps=True,
                    condition_on_previous_text=False,
                    vad_filter=False,
                    hotwords=hint,
                )
                segments = list(segments)  # the generator does the work: materialise it here
            except (RuntimeError, ValueError) as e:
                raise TranscriptionError(Errors.E400, start=w.spans[0].call_start, error=e) from e
            starts = [sp.packed_start for sp in w.spans]
            for seg in segments:
                for wd in seg.words or ():
                    text = wd.word.strip()
                    if not text or wd.probability < opts.min_word_probability:
                        continue
                    sp, s, e = _map_word(w, starts, wd.start, wd.end)
                    words.append(Word(round(s, 3), round(e, 3), text, round(float(wd.probability), 4),
                                      speaker_of_channel.get(sp.channel, "unknown")))
        words.sort(key=lambda x: (x.start, x.end))
        return Transcript(tuple(words), AsrInfo(ref.name, ref.version, language, round(lang_prob, 4),
                                                round(speech_s, 3), len(windows)))
