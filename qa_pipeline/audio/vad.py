"""Speech activity per channel with webrtcvad, with crosstalk suppression on stereo calls.

Real stereo recordings bleed: each channel also carries the other party, quieter. A frame counts as a channel's
own speech only when its energy is clearly above what leaks in from the other channel at that moment; the leak
gain is estimated per call from the frames where the other channel is loud."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import webrtcvad

from qa_pipeline.config import VadOptions
from qa_pipeline.types import SpeechRegion

_BLOCK_FRAMES = 20000  # energy computed in blocks: bounded memory on long calls


@dataclass(frozen=True, slots=True)
class Activity:
    """Frame-level speech decisions. shape: (n_channels, n_frames) bool, one frame = frame_s seconds."""

    speech: np.ndarray
    energy_db: np.ndarray  # shape (n_channels, n_frames) float32 dBFS
    frame_s: float
    leak_db: tuple[float, ...]  # estimated crosstalk gain into each channel (dB), 0 for mono

    def regions(self, channel: int) -> list[SpeechRegion]:
        return _runs(self.speech[channel], self.frame_s, channel)


def frame_energy_db(samples: np.ndarray, frame_len: int) -> np.ndarray:
    """samples: (n,) int16 -> (n_frames,) float32 dBFS per frame."""
    n_frames = samples.shape[0] // frame_len
    out = np.empty(n_frames, dtype=np.float32)
    for b in range(0, n_frames, _BLOCK_FRAMES):
        e = min(n_frames, b + _BLOCK_FRAMES)
        x = samples[b * frame_len : e * frame_len].astype(np.float32).reshape(e - b, frame_len) / 32768.0
        out[b:e] = 10.0 * np.log10(np.mean(x * x, axis=1) + 1e-10)
    return out


def _webrtc_frames(samples: np.ndarray, sample_rate: int, frame_len: int, mode: int) -> np.ndarray:
    vad = webrtcvad.Vad(mode)
    n_frames = samples.shape[0] // frame_len
    out = np.zeros(n_frames, dtype=bool)
    raw = np.ascontiguousarray(samples[: n_frames * frame_len]).tobytes()
    step = frame_len * 2
    for i in range(n_frames):
        out[i] = vad.is_speech(raw[i * step : (i + 1) * step], sample_rate)
    return out


def _smooth(flags: np.ndarray, frame_s: float, options: VadOptions) -> np.ndarray:
    """Bridge short gaps, drop short blips."""
    flags = flags.copy()
    max_gap = int(round(options.min_silence_ms / 1000 / frame_s))
    min_len = int(round(options.min_speech_ms / 1000 / frame_s))
    starts, ends = _edges(flags)
    for s, e in zip(ends[:-1], starts[1:]):
        if e - s <= max_gap:
            flags[s:e] = True
    starts, ends = _edges(flags)
    for s, e in zip(starts, ends):
        if e - s < min_len:
            flags[s:e] = False
    return flags


def _edges(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _runs(flags: np.ndarray, frame_s: float, channel: int) -> list[SpeechRegion]:
    starts, ends = _edges(flags)
    return [SpeechRegion(channel, round(s * frame_s, 3), round(e * frame_s, 3)) for s, e in zip(starts, ends)]


def estimate_leak_db(own_db: np.ndarray, other_db: np.ndarray, min_level_db: float) -> float:
    """Typical level difference own-minus-other while the other channel is loud (crosstalk gain into `own`)."""
    loud = other_db > max(min_level_db, float(np.percentile(other_db, 70)))
    if loud.sum() < 10:
        return -60.0
    diff = own_db[loud] - other_db[loud]
    return float(np.clip(np.percentile(diff, 20), -60.0, -3.0))


def detect_activity(samples: np.ndarray, sample_rate: int, options: VadOptions = VadOptions()) -> Activity:
    """Frame-level own-speech decisions for each channel of `samples` ((channels, n) int16)."""
    frame_len = sample_rate * options.frame_ms // 1000
    frame_s = options.frame_ms / 1000
    n_ch = samples.shape[0]
    energy = np.stack([frame_energy_db(samples[c], frame_len) for c in range(n_ch)])
    vad = np.stack([_webrtc_frames(samples[c], sample_rate, frame_len, options.aggressiveness) for c in range(n_ch)])
    speech = vad & (energy > options.min_level_db)
    leaks = [0.0] * n_ch
    if n_ch == 2:
        for c in range(2):
            o = 1 - c
            leaks[c] = estimate_leak_db(energy[c], energy[o], options.min_level_db)
            # own speech must stand clear of what the other party's voice leaks into this channel
            speech[c] &= energy[c] >= energy[o] + leaks[c] + options.bleed_margin_db
    speech = np.stack([_smooth(speech[c], frame_s, options) for c in range(n_ch)])
    return Activity(speech=speech, energy_db=energy, frame_s=frame_s, leak_db=tuple(leaks))


def padded_regions(activity: Activity, channel: int, options: VadOptions, duration_s: float) -> list[SpeechRegion]:
    """Speech regions of one channel, padded by pad_ms on each side (for ASR) and merged where they touch."""
    pad = options.pad_ms / 1000
    out: list[SpeechRegion] = []
    for r in activity.regions(channel):
        s, e = max(0.0, r.start - pad), min(duration_s, r.end + pad)
        if out and s <= out[-1].end:
            out[-1] = SpeechRegion(channel, out[-1].start, max(out[-1].end, e))
        else:
            out.append(SpeechRegion(channel, round(s, 3), round(e, 3)))
    return out
