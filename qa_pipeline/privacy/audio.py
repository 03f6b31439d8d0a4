"""Redacted copies of the recordings: every PII finding's time span, padded, replaced by silence or a tone.

A finding's time span comes from its words' times (the `pii` dataset); word times are imprecise, so each span is
padded by `privacy.audio_margin_ms` on both sides, and overlapping padded spans are merged. The muted stretch is
muted on every channel (a stereo call's other channel carries the same words as bleed). Duration, channels and
sample rate (the decode rate, 16 kHz) are kept.

The verify loop (`redact`): each muted span's neighbourhood (+-2 s) of the redacted audio is transcribed again
with the same ASR and searched again with the same detector (the caller passes both in as a `Verifier`); a finding
there is a residual: the whole utterance (turn) it falls in is muted, the call is flagged (W008), and the muted
turns are verified once more. `verified` says whether the last check heard nothing.

`muted_level_dbfs` measures what is left inside the muted spans of a written copy (the loudest 20 ms frame, in
dBFS: <= -60 is the goal, digital silence decodes to -inf or close to it even through Opus)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterable, Sequence

import numpy as np

Span = tuple[float, float]
Verifier = Callable[[np.ndarray, int, Sequence[Span]], list[Span]]
"""(samples, sample_rate, windows) -> the time spans of what is still heard in those windows; all windows of a round
in one call, so that the ASR decodes them together (one batch, not one 30 s pass per window)."""
"""(samples (channels, n) int16, sample rate, window (start_s, end_s)) -> the time spans of what the detector
finds in the window's re-transcription (seconds from the call's start)."""

VERIFY_CONTEXT_S = 2.0
TONE_HZ = 1000.0
TONE_DBFS = -20.0
FRAME_S = 0.02
ENCODE_FRAME_S = 20.0
SILENT_DBFS = -120.0  # what an all-zero frame is reported as (instead of -inf)


@dataclass(frozen=True, slots=True)
class AudioRedaction:
    """The redacted samples of one call and its redaction report."""

    samples: np.ndarray  # (channels, n) int16, same shape as the input
    spans: tuple[Span, ...]  # muted stretches, padded and merged, in seconds
    entities: dict[str, int] = field(default_factory=dict)  # entity type -> findings muted
    residual_hits: int = 0
    turns_muted: int = 0
    verified: bool = False

    @property
    def seconds_muted(self) -> float:
        return round(sum(b - a for a, b in self.spans), 3)


def padded_spans(spans: Iterable[Span], margin_s: float, duration_s: float) -> list[Span]:
    """Each span widened by `margin_s` on both sides, clipped to the call, overlapping ones merged, sorted."""
    out: list[list[float]] = []
    for a, b in sorted((max(0.0, float(a) - margin_s), min(duration_s, float(b) + margin_s)) for a, b in spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(round(a, 4), round(b, 4)) for a, b in out]


def mute(samples: np.ndarray, sample_rate: int, spans: Sequence[Span], fill: str = "silence") -> np.ndarray:
    """A copy of `samples` (channels, n) with every span replaced, on every channel, by digital silence or a
    1 kHz tone at -20 dBFS (`fill`)."""
    out = np.array(samples, copy=True)
    n = out.shape[1]
    for a, b in spans:
        i, j = max(0, int(np.floor(a * sample_rate))), min(n, int(np.ceil(b * sample_rate)))
        if j <= i:
            continue
        if fill == "tone":
            t = np.arange(i, j) / sample_rate
            amp = 10 ** (TONE_DBFS / 20) * (32767 if out.dtype.kind == "i" else 1.0)
            tone = amp * np.sin(2 * np.pi * TONE_HZ * t)
            out[:, i:j] = tone.astype(out.dtype)
        else:
            out[:, i:j] = 0
    return out


def muted_level_dbfs(samples: np.ndarray, sample_rate: int, spans: Sequence[Span], *,
                     trim_s: float = 0.0) -> float | None:
    """The loudest 20 ms frame (RMS, dBFS, any channel) inside the spans, each shrunk by `trim_s` at both ends
    (a codec smears a few ms of the neighbouring speech over the edge); None when there is no span."""
    x = samples.astype(np.float64) / (32768.0 if samples.dtype.kind == "i" else 1.0)
    frame = max(1, int(FRAME_S * sample_rate))
    worst = None
    for a, b in spans:
        i, j = int((a + trim_s) * sample_rate), min(x.shape[1], int((b - trim_s) * sample_rate))
        if j - i < frame:
            continue
        seg = x[:, i:i + (j - i) // frame * frame].reshape(x.shape[0], -1, frame)
        rms = np.sqrt(np.mean(seg ** 2, axis=2)).max()
        level = SILENT_DBFS if rms <= 0 else max(SILENT_DBFS, 20 * np.log10(rms))
        worst = level if worst is None else max(worst, level)
    return None if worst is None else round(float(worst), 2)


def redact(samples: np.ndarray, sample_rate: int, findings: Sequence, utterances: Sequence, *,
           margin_s: float = 0.25, fill: str = "silence", verifier: Verifier | None = None) -> AudioRedaction:
    """Mute every finding (objects or rows with start_s, end_s, entity_type), padded by `margin_s`; then, with a
    verifier, re-transcribe and search each muted span's neighbourhood: a residual mutes its whole utterance
    (`utterances`: objects or rows with start/end or start_s/end_s) and is verified again.

    Returns the redacted samples and the report (spans, entities, residual hits, turns muted, verified)."""
    duration = samples.shape[1] / sample_rate
    entities: dict[str, int] = {}
    raw: list[Span] = []
    for f in findings:
        raw.append((_get(f, "start_s"), _get(f, "end_s")))
        kind = _get(f, "entity_type")
        entities[kind] = entities.get(kind, 0) + 1
    spans = padded_spans(raw, margin_s, duration)
    out = mute(samples, sample_rate, spans, fill)
    if verifier is None or not spans:
        return AudioRedaction(out, tuple(spans), entities, verified=False)
    turns = [(_get(u, "start_s", "start"), _get(u, "end_s", "end")) for u in utterances]
    residual = 0
    muted_turns: set[Span] = set()
    to_check = spans
    verified = False
    for _round in range(2):
        hits = _residuals(out, sample_rate, to_check, verifier, duration)
        if not hits:
            verified = True
            break
        if _round == 0:
            residual = len(hits)
        new_turns = {_turn_of(h, turns) for h in hits} - muted_turns
        if not new_turns:  # the residual is inside an already muted turn: widen it no further
            break
        muted_turns |= new_turns
        spans = padded_spans([*spans, *new_turns], margin_s, duration)
        out = mute(samples, sample_rate, spans, fill)
        to_check = padded_spans(new_turns, margin_s, duration)
    return AudioRedaction(out, tuple(spans), entities, residual, len(muted_turns), verified)


def _residuals(samples: np.ndarray, sample_rate: int, spans: Sequence[Span], verifier: Verifier,
               duration: float) -> list[Span]:
    return list(verifier(samples, sample_rate, padded_spans(spans, VERIFY_CONTEXT_S, duration)))


def _turn_of(hit: Span, turns: list[Span]) -> Span:
    """The utterance a residual falls in (most overlap; the nearest one when none overlaps; the hit itself when
    the call has no utterances)."""
    if not turns:
        return hit
    a, b = hit
    best = max(turns, key=lambda t: (min(b, t[1]) - max(a, t[0]), -abs((t[0] + t[1]) / 2 - (a + b) / 2)))
    if min(b, best[1]) - max(a, best[0]) <= 0:
        best = min(turns, key=lambda t: abs((t[0] + t[1]) / 2 - (a + b) / 2))
        return (min(best[0], a), max(best[1], b))
    return best


def _get(x, *names):
    for n in names:
        if isinstance(x, dict) and n in x:
            return x[n]
        if hasattr(x, n):
            return getattr(x, n)
    raise KeyError(names[0])


# ---- encoding --------------------------------------------------------------------------------------------------

def encode(samples: np.ndarray, sample_rate: int, fmt: str = "opus") -> bytes:
    """`samples` (channels, n) int16 as an Ogg/Opus (`opus`) or 16-bit PCM WAV (`wav`) file, with PyAV."""
    import av

    channels = samples.shape[0]
    layout = "stereo" if channels == 2 else "mono"
    buf = io.BytesIO()
    container = av.open(buf, mode="w", format="ogg" if fmt == "opus" else "wav")
    codec = "libopus" if fmt == "opus" else "pcm_s16le"
    rate = sample_rate if fmt != "opus" or sample_rate in (8000, 12000, 16000, 24000, 48000) else 48000
    stream = container.add_stream(codec, rate=rate)
    stream.layout = layout
    if fmt == "opus":
        stream.bit_rate = 24000 * channels
        # libopus's complexity 3 of 10: a 140 s stereo call encodes in about half the time of the default (10),
        # speech at 24 kbit/s a channel still clear for a reviewer's ear; the copy is for listening, not analysis
        stream.options = {"compression_level": "3"}
    data = samples if samples.dtype == np.int16 else samples.astype(np.int16)
    # fed ENCODE_FRAME_S at a time: the interleaved copy PyAV needs stays small (whole, a 2-hour stereo call's
    # copies took 1.4 GB on top of the call's own samples)
    step = max(1, int(ENCODE_FRAME_S * sample_rate))
    for i in range(0, data.shape[1], step):
        chunk = np.ascontiguousarray(data[:, i : i + step].T).reshape(1, -1)  # packed s16: interleaved
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
        frame.sample_rate = sample_rate
        frame.time_base = Fraction(1, sample_rate)
        frame.pts = i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return buf.getvalue()


def extension(fmt: str) -> str:
    return ".opus" if fmt == "opus" else ".wav"
