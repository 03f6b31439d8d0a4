"""Transcription with faster-whisper over speech regions only, decoded in batches.

The speech regions of each channel are merged where they overlap and packed, in time order, into windows of at
most `window_s` seconds with a short silence between them, so a stereo call costs about one pass over its speech
rather than one pass per channel over its whole duration, and silence or hold music never reaches the model (no
invented text). Every instant of the call lies in at most one window: nothing is transcribed twice. A window holds
one channel's speech, except that part-filled windows may share one (asr.share_windows), each channel's speech
kept together.

The windows are decoded `batch_size` at a time through CTranslate2, as faster-whisper's BatchedInferencePipeline
does: text only (no timestamp tokens), one encoder and one decoder call per batch, each window exactly once. The
sequential `WhisperModel.transcribe` stops at Whisper's last timestamp when the text looks unfinished and decodes
the rest again from the last word's end: it lost or transcribed twice the speech around that point when the word's
time was off, and its packed windows ended that way 16 times in 36. Windows whose text is too repetitive or too
improbable are decoded again at the next temperature (`asr.temperatures`), together. Word times come from the
cross-attention alignment (faster-whisper's add_word_timestamps), are mapped back to the call's timeline, and each
word keeps its channel; words that still overlap on one channel are deduplicated by time (`dedupe_words`), never by
text."""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from qa_pipeline.audio.decode import to_float
from qa_pipeline.config import AsrOptions
from qa_pipeline.errors import Errors, TranscriptionError
from qa_pipeline.speech.weights import ModelRef
from qa_pipeline.types import AsrInfo, SpeechRegion, Transcript, Word

if TYPE_CHECKING:
    from qa_pipeline.speech.models import SpeechModels

log = logging.getLogger("qa_pipeline")

QuietFinder = Callable[[int, float, float], float]
"""(channel, from_s, to_s) -> the time of the quietest moment in [from_s, to_s] on that channel."""

_CHANNEL_GAP_S = 1.0  # silence between two channels' speech in a shared window (asr.share_windows)
_CUT_SEARCH_S = 5.0  # a region longer than max_region_s is cut at its quietest moment in the last 5 s before it
_MIN_PIECE_S = 0.05
_LONGEST_WORD_S = 30.0  # dedupe_words looks back this far for a word that contains the next one
_PREPEND, _APPEND = "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、"  # punctuation joined to words (faster-whisper's)
_ENCODER_TAIL_S = 5.0  # with asr.encoder_min_s, the encoder hears this much padding after a batch's longest window
_REST_MIN_S = 1.5  # speech left after a window's last word that is decoded again, alone (see _rest)
_REST_PASSES = 2  # at most this many such passes per call
_LOOP_MIN_TOKENS = 8  # a stretch this long said twice in a row is Whisper looping (see _loops)
_VIRTUAL_S = 30.0  # item i of a batch sits at i * 30 s on the aligner's timeline (see _WindowDecoder.words)
_CPU_ENCODE_BATCH = 1  # on the CPU the encoder runs this many windows at a time (see _WindowDecoder.encode)


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


def merge_regions(regions: Sequence[SpeechRegion]) -> list[SpeechRegion]:
    """Regions of each channel merged where they overlap or touch (padding makes neighbours overlap), sorted by
    channel and start: no instant of a channel is in two regions."""
    out: list[SpeechRegion] = []
    for r in sorted(regions, key=lambda r: (r.channel, r.start, r.end)):
        if r.end <= r.start:
            continue
        if out and out[-1].channel == r.channel and r.start <= out[-1].end:
            if r.end > out[-1].end:
                out[-1] = SpeechRegion(r.channel, out[-1].start, r.end)
        else:
            out.append(r)
    return out


def pack_windows(regions: Sequence[SpeechRegion], options: AsrOptions, *,
                 quiet: QuietFinder | None = None) -> list[Window]:
    """Pack regions into windows, one channel at a time in order of start time; overlapping regions are merged
    first and regions longer than max_region_s are cut (at the quietest moment `quiet` finds, else at the limit).
    Windows and their spans never overlap on the call timeline.

    A window holds one channel's speech: Whisper's word times drift by a few hundred ms around the silences
    between packed regions, and a drifting word must land on its own speaker, not on the other party. Only with
    asr.share_windows do the part-filled windows that packing leaves (the last of each channel, above all) share
    one window, each channel's speech kept together, _CHANNEL_GAP_S of silence between them: every window costs
    Whisper's encoder 30 s of audio however little speech it holds."""
    merged = merge_regions(regions)
    windows: list[Window] = []
    for channel in sorted({r.channel for r in merged}):
        windows.extend(_pack_channel([r for r in merged if r.channel == channel], options, quiet))
    return _share(windows, options) if options.share_windows else windows


def _share(windows: list[Window], options: AsrOptions) -> list[Window]:
    """Part-filled windows put together, first fit by decreasing length; a full window stays alone."""
    bins: list[list[Window]] = []
    for w in sorted(windows, key=lambda w: -w.duration_s):
        for b in bins:
            if _joined_length(sorted(b + [w], key=lambda x: x.spans[0].call_start), options) <= options.window_s:
                b.append(w)
                break
        else:
            bins.append([w])
    out = []
    for b in bins:
        if len(b) == 1:
            out.append(b[0])
            continue
        b.sort(key=lambda w: w.spans[0].call_start)
        spans: list[PackedSpan] = []
        pos = 0.0
        for w in b:
            if spans:
                pos += options.gap_s if w.spans[0].channel == spans[-1].channel else max(options.gap_s, _CHANNEL_GAP_S)
            spans += [replace(sp, packed_start=sp.packed_start + pos, packed_end=sp.packed_end + pos) for sp in w.spans]
            pos += w.duration_s
        out.append(Window(tuple(spans), pos))
    out.sort(key=lambda w: (w.spans[0].channel, w.spans[0].call_start))
    return out


def _joined_length(windows: Sequence[Window], options: AsrOptions) -> float:
    gaps = sum(options.gap_s if a.spans[0].channel == b.spans[0].channel else max(options.gap_s, _CHANNEL_GAP_S)
               for a, b in zip(windows, windows[1:]))
    return sum(w.duration_s for w in windows) + gaps


def _pieces(r: SpeechRegion, max_region_s: float, quiet: QuietFinder | None) -> list[SpeechRegion]:
    out: list[SpeechRegion] = []
    s = r.start
    while r.end - s > max_region_s:
        cut = s + max_region_s
        if quiet is not None:
            search = min(_CUT_SEARCH_S, max_region_s / 2)
            cut = min(max(quiet(r.channel, cut - search, cut), s + max_region_s / 2), s + max_region_s)
        out.append(SpeechRegion(r.channel, s, cut))
        s = cut
    if r.end - s > _MIN_PIECE_S:
        out.append(SpeechRegion(r.channel, s, r.end))
    return out


def _pack_channel(regions: Sequence[SpeechRegion], options: AsrOptions,
                  quiet: QuietFinder | None = None) -> list[Window]:
    # two regions closer than gap_s keep the real pause between them: shorter than the silence packing would put
    # there, and what Whisper hears is what was said
    joined: list[SpeechRegion] = []
    for r in merge_regions(regions):
        if joined and r.start - joined[-1].end <= options.gap_s:
            joined[-1] = SpeechRegion(r.channel, joined[-1].start, r.end)
        else:
            joined.append(r)
    pieces = [p for r in joined for p in _pieces(r, options.max_region_s, quiet)]
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


def quiet_finder(samples: np.ndarray, sample_rate: int, frame_s: float = 0.05, hop_s: float = 0.01) -> QuietFinder:
    """A QuietFinder over `samples` ((channels, n) int16): the centre of the lowest-energy 50 ms frame."""
    frame, hop = int(frame_s * sample_rate), int(hop_s * sample_rate)

    def find(channel: int, lo: float, hi: float) -> float:
        a, b = max(0, int(lo * sample_rate)), min(samples.shape[1], int(hi * sample_rate))
        if b - a < frame + hop:
            return hi
        x = samples[channel, a:b].astype(np.float32)
        c = np.concatenate([[0.0], np.cumsum(x * x, dtype=np.float64)])
        starts = np.arange(0, b - a - frame, hop)
        energy = c[starts + frame] - c[starts]  # shape (n_frames,)
        return (a + int(starts[int(np.argmin(energy))]) + frame // 2) / sample_rate

    return find


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
    belongs to the last span that began before the word did (with 0.1 s of slack). Now and then the first word
    of a span drifts early, into the silence before it: a word that starts after its span has ended and reaches
    more than 0.1 s into the next span is the next span's ("three five" / "five one nine" on a card number read
    in two turns, the second "five" timed 1.5 s early, at the end of the first turn)."""
    i = max(0, bisect.bisect_right(starts, w_start + 0.1) - 1)
    sp = window.spans[i]
    if w_start >= sp.packed_end and i + 1 < len(window.spans) and w_end > window.spans[i + 1].packed_start + 0.1:
        sp = window.spans[i + 1]
    s = min(max(w_start, sp.packed_start), sp.packed_end)
    e = min(max(w_end, sp.packed_start), sp.packed_end)
    return sp, sp.call_start + (s - sp.packed_start), sp.call_start + (e - sp.packed_start)


def dedupe_words(words: Sequence[Word]) -> list[Word]:
    """Words in time order, with the duplicates one stretch of audio can yield removed, by time, never by text: on
    one speaker's track, of two words with the same span or one span inside the other, the less probable goes (a
    word with a real span beats a zero-length one); a zero-length word strictly inside another word's span goes.
    Words that merely overlap (drifting neighbours), or touch, both stay; so does a word said twice."""
    out: list[Word] = []
    for spk in dict.fromkeys(w.speaker for w in words):
        kept: list[Word] = []  # sorted by start: a word can only clash with kept words that start before it ends
        for w in sorted((w for w in words if w.speaker == spk), key=lambda w: (w.start, w.start - w.end)):
            clash = None
            for j in range(len(kept) - 1, -1, -1):
                k = kept[j]
                if k.start < w.start - _LONGEST_WORD_S:
                    break
                if _contains(k, w) or _contains(w, k):
                    clash = j
                    break
            if clash is None:
                kept.append(w)
            elif _better(w, kept[clash]):
                kept[clash] = w
        out.extend(kept)
    out.sort(key=lambda w: (w.start, w.end))
    return out


def _contains(outer: Word, inner: Word) -> bool:
    """Whether `inner` is a duplicate inside `outer`: a real span inside (or equal to) outer's real span, or a
    zero-length word strictly inside it (a zero-length word on a span's edge is a neighbour clamped there)."""
    if outer.end <= outer.start:
        return False
    if inner.end <= inner.start:
        return outer.start < inner.start < outer.end
    return outer.start <= inner.start and inner.end <= outer.end


def _better(a: Word, b: Word) -> bool:
    """Whether `a` should replace `b`: a real span beats a zero-length one, then the higher probability."""
    a_len, b_len = a.end > a.start, b.end > b.start
    if a_len != b_len:
        return a_len
    return a.probability > b.probability


# ============================================================================================== batched decoding


@dataclass(frozen=True, slots=True)
class _Decoded:
    """One window's chosen decoding."""

    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    temperature: float


@dataclass(frozen=True, slots=True)
class _Encoded:
    """A batch's encoder output, and on the CPU its host copy (batch, frames / 2, d_model) float32."""

    output: object  # ctranslate2.StorageView
    host: np.ndarray | None


class _WindowDecoder:
    """Decodes batches of ≤ 30 s audio windows with one model, language and prompt (faster-whisper's internals, as
    BatchedInferencePipeline drives them: features, `encode`, `model.generate` on the batch, `add_word_timestamps`),
    with faster-whisper's temperature fallback per window."""

    def __init__(self, model, options: AsrOptions, language: str | None, hotwords: str | None,
                 prompt: str | None = None):
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.options = options
        self.tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                                   language=language if model.model.is_multilingual else None)
        # text only, as BatchedInferencePipeline decodes: with timestamp tokens Whisper ended 16 of 36 windows early
        # ("the next segment starts at t", then end of text), and the words after t were lost or, decoded again
        # from t, duplicated; the word times come from the cross-attention alignment either way
        self.prompt = model.get_prompt(self.tokenizer, self.previous_tokens(prompt, hotwords),
                                       without_timestamps=True, hotwords=hotwords)
        self.suppress = list(get_suppressed_tokens(self.tokenizer, [-1]))

    def previous_tokens(self, prompt: str | None, hotwords: str | None) -> list[int]:
        """`prompt` as the text before each window (faster-whisper's initial_prompt: "previous text" tokens), its
        end kept when it and the hotwords pass Whisper's limit of max_length // 2 - 1 (223) prompt tokens."""
        if not prompt or not prompt.strip():
            return []
        tokens = self.tokenizer.encode(" " + prompt.strip())
        limit = self.model.max_length // 2 - 1
        if hotwords:
            limit -= min(len(self.tokenizer.encode(" " + hotwords.strip())), limit)
        return tokens[-limit:] if limit > 0 else []

    def features(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel features of one window (at most 30 s). shape: (n_mels, n_frames), 100 frames a second."""
        feats = self.model.feature_extractor(audio)[..., :-1]
        return feats[..., : self.model.feature_extractor.nb_max_frames]

    def encoder_frames(self, frames: Sequence[int]) -> int:
        """Frames the encoder hears for a batch whose windows have `frames` content frames: Whisper's 30 s, or with
        asr.encoder_min_s the longest window plus _ENCODER_TAIL_S of padding, at least encoder_min_s."""
        full = self.model.feature_extractor.nb_max_frames
        if self.options.encoder_min_s is None:
            return full
        fps = self.model.frames_per_second
        n = max(max(frames) + int(_ENCODER_TAIL_S * fps), int(self.options.encoder_min_s * fps))
        return min(full, -(-n // fps) * fps)

    def decode(self, features: Sequence[np.ndarray]) -> list[list[dict]]:
        """Words (times in seconds inside each window) of a batch of windows' features."""
        frames = [f.shape[-1] for f in features]
        n = self.encoder_frames(frames)
        batch = np.zeros((len(features), features[0].shape[0], n), dtype=np.float32)
        for i, f in enumerate(features):  # shape (batch, n_mels, n): zero-padded, as faster-whisper's pad_or_trim
            batch[i, :, : f.shape[-1]] = f
        encoded = self.encode(batch)
        chosen = self._generate_with_fallback(encoded, batch)
        return self.words(encoded.output, chosen, frames)

    def encode(self, batch: np.ndarray) -> _Encoded:
        """Whisper's encoder output for a batch of features (batch, n_mels, frames). On the CPU a whole batch at
        once is slower per window than one window at a time (6 windows of 30 s, tiny.en int8, one thread: 0.64 s
        each as one batch, 0.60 s two at a time, 0.57 s one by one; two threads 0.34 / 0.32 / 0.31 s: a big batch's
        activations leave the caches), so the CPU encodes windows one by one and the outputs are joined for the
        decoder, their host copy kept for the temperature fallback; a GPU takes the batch."""
        if self.model.model.device != "cpu":
            return _Encoded(self.model.encode(batch), None)
        import ctranslate2

        parts = [np.asarray(self.model.encode(batch[i : i + _CPU_ENCODE_BATCH]))
                 for i in range(0, batch.shape[0], _CPU_ENCODE_BATCH)]
        host = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return _Encoded(ctranslate2.StorageView.from_array(host), host)

    def subset(self, encoded: _Encoded, features: np.ndarray, rows: Sequence[int]):
        """The encoder output of some windows of a batch: taken from the host copy on the CPU (a fallback does not
        encode its windows again), encoded again on a GPU (cheap there, and the batch stays on the device)."""
        if encoded.host is None:
            return self.model.encode(features[list(rows)])
        import ctranslate2

        return ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded.host[list(rows)]))

    def _generate(self, encoder_output, n: int, temperature: float):
        import ctranslate2

        o = self.options
        if o.seed is not None:
            # CTranslate2 4.8 seeds a thread's sampler at its first draw (later seeds do not restart it): the same
            # calls in the same order give the same words on every run; a sampled fallback of one call depends on
            # the fallbacks sampled before it in the process
            ctranslate2.set_random_seed(o.seed)
        if temperature > 0:
            kwargs = {"beam_size": 1, "num_hypotheses": o.best_of, "sampling_topk": 0,
                      "sampling_temperature": temperature}
        else:
            kwargs = {"beam_size": o.beam_size, "patience": 1.0}
        return self.model.model.generate(
            encoder_output, [list(self.prompt) for _ in range(n)], length_penalty=1.0, repetition_penalty=1.0,
            no_repeat_ngram_size=0, max_length=self.model.max_length, return_scores=True, return_no_speech_prob=True,
            suppress_blank=True, suppress_tokens=self.suppress, **kwargs)

    def _generate_with_fallback(self, encoded: _Encoded, features: np.ndarray) -> list[_Decoded | None]:
        """faster-whisper's rule, per window: keep the first temperature whose text is neither too repetitive
        (compression ratio) nor too improbable (average log probability), unless the window is silence (no-speech
        probability high, text improbable); when every temperature fails, the most probable of the not-repetitive
        results. None = silence."""
        from faster_whisper.transcribe import get_compression_ratio

        o = self.options
        n = features.shape[0]
        tried: list[list[tuple[_Decoded, float]]] = [[] for _ in range(n)]
        chosen: list[_Decoded | None] = [None] * n
        pending = list(range(n))
        for k, temperature in enumerate(o.temperatures):
            if not pending:
                break
            enc = encoded.output if len(pending) == n else self.subset(encoded, features, pending)
            results = self._generate(enc, len(pending), temperature)
            still: list[int] = []
            for i, res in zip(pending, results):
                tokens = list(res.sequences_ids[0])
                avg = res.scores[0] * len(tokens) / (len(tokens) + 1)  # length_penalty 1: scores are per token
                ratio = get_compression_ratio(self.tokenizer.decode(tokens).strip())
                d = _Decoded(tokens, float(avg), float(res.no_speech_prob), temperature)
                tried[i].append((d, ratio))
                repetitive = ((o.compression_ratio_threshold is not None and ratio > o.compression_ratio_threshold)
                              or _loops(tokens))
                improbable = o.log_prob_threshold is not None and avg < o.log_prob_threshold
                silent = (o.no_speech_threshold is not None and d.no_speech_prob > o.no_speech_threshold
                          and improbable)
                if silent:
                    chosen[i] = None  # faster-whisper skips such a window: no speech
                elif (repetitive or improbable) and k + 1 < len(o.temperatures):
                    still.append(i)
                elif repetitive or improbable:  # every temperature failed
                    ok = [t for t in tried[i] if not _loops(t[0].tokens) and (
                        o.compression_ratio_threshold is None or t[1] <= o.compression_ratio_threshold)] or tried[i]
                    chosen[i] = max(ok, key=lambda t: t[0].avg_logprob)[0]
                else:
                    chosen[i] = d
            pending = still
        return chosen

    def words(self, encoder_output, chosen: list[_Decoded | None], frames: list[int]) -> list[list[dict]]:
        """Word timings of each window (seconds inside the window): faster-whisper's add_word_timestamps on the
        whole batch, each window one segment. Item i is laid at i * 30 s on the aligner's timeline, so its
        heuristics (the first word after a pause is not stretched over the silence before it) see each window
        start after a pause, as the sequential decoder sees each call."""
        fps = self.model.frames_per_second
        eot = self.tokenizer.eot
        batch = []
        for i, d in enumerate(chosen):
            offset = i * _VIRTUAL_S
            tokens = [t for t in d.tokens if t < eot] if d is not None else []
            batch.append([{"seek": int(round(offset * fps)), "start": offset, "end": offset + frames[i] / fps,
                           "tokens": tokens}])
        self.model.add_word_timestamps(batch, self.tokenizer, encoder_output, frames, _PREPEND, _APPEND, 0.0)
        return [[{**w, "start": w["start"] - i * _VIRTUAL_S, "end": w["end"] - i * _VIRTUAL_S}
                 for s in segs for w in s.get("words") or ()] for i, segs in enumerate(batch)]


def _loops(tokens: Sequence[int], min_span: int = _LOOP_MIN_TOKENS) -> bool:
    """Whether Whisper looped: a stretch of at least `min_span` tokens said again right after itself ("... in the
    year 1462, which also was printed ... in the year 1462, which ..."). Text-only decoding loops now and then, and
    three copies of a sentence still pass the compression-ratio test; people do not repeat 8 tokens verbatim."""
    n = len(tokens)
    for span in range(min_span, n // 2 + 1):
        for i in range(0, n - 2 * span + 1):
            if tokens[i : i + span] == tokens[i + span : i + 2 * span]:
                return True
    return False


class Transcriber:
    """Chooses the model by language and transcribes packed speech windows."""

    def __init__(self, options: AsrOptions, models: SpeechModels):
        self.options = options
        self.models = models

    def ref(self, spec: str) -> ModelRef:
        return self.models.ref(spec)

    def model_ref(self, language: str | None) -> ModelRef:
        """The model a call in `language` is transcribed with: the English one for English when configured, else
        the multilingual one (also when the language is unknown)."""
        opts = self.options
        return self.ref(opts.english_model if (language == "en" and opts.english_model) else opts.multilingual_model)

    def prefetch(self, language: str | None) -> None:
        """Start loading the model a call in `language` needs (the multilingual one when it is unknown), in the
        background: call it before decoding the call, so that the load overlaps decoding and finding speech."""
        self.models.prefetch_whisper(self.model_ref(language or self.options.language), self.options)

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
        prompt_for: Callable[[str], str | None] | None = None,
    ) -> Transcript:
        """Words of the given speech regions; `samples` is (channels, n) int16. `hotwords`: names this call may
        contain (its company), added to `asr.hotwords`. `prompt_for(language)`: this call's text for Whisper to
        hear as the words before each window (its campaign's script, see asr.script_prompt), after
        `asr.initial_prompt`.

        Raises:
            TranscriptionError: the model failed on a window.
        """
        opts = self.options
        windows = pack_windows(regions, opts, quiet=quiet_finder(samples, sample_rate))
        speech_s = sum(sp.packed_end - sp.packed_start for w in windows for sp in w.spans)
        language = language or opts.language
        lang_prob = 1.0
        if not windows:
            ref = self.model_ref(language)
            return Transcript((), AsrInfo(ref.name, ref.version, language or "", 0.0, 0.0, 0))
        if language is None:
            probe = np.concatenate([window_audio(samples, sample_rate, w) for w in windows[:2]])
            language, lang_prob = self.detect_language(probe)
        ref = self.model_ref(language)
        model = self.models.whisper(ref, opts)
        if ref is self.ref(opts.multilingual_model) and opts.multilingual_beam_size is not None:
            opts = replace(opts, beam_size=opts.multilingual_beam_size)
        hint = ", ".join(dict.fromkeys((*opts.hotwords, *hotwords))) or None
        prompt = " ".join(p.strip() for p in (opts.initial_prompt, prompt_for(language) if prompt_for else None)
                          if p and p.strip()) or None
        decoder = _WindowDecoder(model, opts, None if ref.english_only else language, hint, prompt)
        words: list[Word] = []
        todo = windows
        for _ in range(1 + _REST_PASSES):
            rests: list[Window] = []
            # windows of similar length decode together: with asr.encoder_min_s a batch is as long as its longest
            order = sorted(todo, key=lambda w: w.duration_s) if opts.encoder_min_s is not None else todo
            for b in range(0, len(order), opts.batch_size):
                batch = order[b : b + opts.batch_size]
                try:
                    decoded = decoder.decode([decoder.features(window_audio(samples, sample_rate, w)) for w in batch])
                except (RuntimeError, ValueError) as e:
                    raise TranscriptionError(Errors.E400, start=batch[0].spans[0].call_start, error=e) from e
                for w, window_words in zip(batch, decoded):
                    words.extend(_call_words(w, window_words, opts.min_word_probability, speaker_of_channel))
                    rest = _rest(w, window_words)
                    if rest is not None:
                        rests.append(rest)
            if not rests:
                break
            todo = _share(rests, opts) if opts.share_windows else rests
        words = dedupe_words(words)
        return Transcript(tuple(words), AsrInfo(ref.name, ref.version, language, round(lang_prob, 4),
                                                round(speech_s, 3), len(windows)))


def _rest(window: Window, timed: Sequence[dict]) -> Window | None:
    """The part of a window after its last word, as a window of its own, when it holds at least _REST_MIN_S of
    speech: Whisper sometimes ends its text early (end of text with speech left in the window), and the speech
    after its last word is decoded again, alone, as the sequential decoder does from its last timestamp. Nothing
    is given twice: the rest starts where the last word ends. A window with no words is silence to Whisper."""
    if not timed:
        return None
    covered = max(float(w["end"]) for w in timed)
    spans = []
    for sp in window.spans:
        s = max(sp.packed_start, covered)
        if sp.packed_end - s > _MIN_PIECE_S:
            spans.append(PackedSpan(s, sp.packed_end, sp.channel, sp.call_start + (s - sp.packed_start)))
    if sum(sp.packed_end - sp.packed_start for sp in spans) < _REST_MIN_S:
        return None
    off = spans[0].packed_start
    return Window(tuple(replace(sp, packed_start=sp.packed_start - off, packed_end=sp.packed_end - off)
                        for sp in spans), window.duration_s - off)


def _call_words(window: Window, timed: Sequence[dict], min_probability: float,
                speaker_of_channel: dict[int, str]) -> list[Word]:
    """A window's words ({word, start, end, probability}, seconds inside the window) on the call's timeline."""
    starts = [sp.packed_start for sp in window.spans]
    out = []
    for wd in timed:
        text = wd["word"].strip()
        if not text or wd["probability"] < min_probability:
            continue
        sp, s, e = _map_word(window, starts, float(wd["start"]), float(wd["end"]))
        out.append(Word(round(s, 3), round(e, 3), text, round(float(wd["probability"]), 4),
                        speaker_of_channel.get(sp.channel, "unknown")))
    return out
