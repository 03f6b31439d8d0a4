"""Speech activity per channel, with crosstalk suppression on stereo calls.

Two detectors, each where it is good: webrtcvad makes the fast 30 ms frame decisions the metrics read
(`Activity.speech`); Silero VAD (qa_pipeline.audio.silero) finds the speech regions ASR transcribes
(`Activity.asr_speech`, `padded_regions`), because on real phone lines webrtcvad calls line noise, breath and echo
speech. Real stereo recordings bleed: each channel also carries the other party, quieter. A frame counts as a
channel's own speech only when its energy is clearly above what leaks in from the other channel at that moment;
the leak gain is estimated per call from the frames where the other channel is loud. The same test applies to
both detectors' frames, so the other party's bleed never becomes a second, fake utterance."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import webrtcvad

from qa_pipeline.audio import silero
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
    asr_speech: np.ndarray | None = None
    """Own-speech decisions for ASR from Silero VAD (vad.asr_detector silero), crosstalk test applied.
    shape: (n_channels, n_asr_frames) bool, one frame = asr_frame_s seconds; None = ASR uses `speech`."""
    asr_frame_s: float = silero.FRAME_S

    def regions(self, channel: int) -> list[SpeechRegion]:
        return _runs(self.speech[channel], self.frame_s, channel)

    def asr_regions(self, channel: int) -> list[SpeechRegion]:
        """Unpadded speech regions ASR transcribes on `channel` (Silero's when present, else webrtcvad's)."""
        if self.asr_speech is None:
            return self.regions(channel)
        return _runs(self.asr_speech[channel], self.asr_frame_s, channel)


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
    own = energy > options.min_level_db  # frames above the level floor and (stereo) clear of crosstalk
    leaks = [0.0] * n_ch
    if n_ch == 2:
        for c in range(2):
            o = 1 - c
            leaks[c] = estimate_leak_db(energy[c], energy[o], options.min_level_db)
            # own speech must stand clear of what the other party's voice leaks into this channel
            own[c] &= energy[c] >= energy[o] + leaks[c] + options.bleed_margin_db
    speech = np.stack([_smooth(vad[c] & own[c], frame_s, options) for c in range(n_ch)])
    asr_speech = None
    if options.asr_detector == "silero":
        asr_speech = _silero_speech(samples, sample_rate, own, frame_s, options)
    return Activity(speech=speech, energy_db=energy, frame_s=frame_s, leak_db=tuple(leaks), asr_speech=asr_speech)


def _silero_speech(samples: np.ndarray, sample_rate: int, own: np.ndarray, frame_s: float,
                   options: VadOptions) -> np.ndarray:
    """Silero's speech frames of each channel that also pass the crosstalk test and the level floor (`own`, on
    the webrtc frame grid), smoothed like webrtcvad's. shape: (n_channels, n_silero_frames) bool."""
    n_ch = samples.shape[0]
    if sample_rate != silero.SAMPLE_RATE:  # audio.sample_rate set to something else: Silero hears 16 kHz
        n = int(round(samples.shape[1] * silero.SAMPLE_RATE / sample_rate))
        t = np.arange(n) * (sample_rate / silero.SAMPLE_RATE)
        samples = np.stack([np.interp(t, np.arange(samples.shape[1]), samples[c]).astype(np.int16)
                            for c in range(n_ch)])
        sample_rate = silero.SAMPLE_RATE
    # each Silero frame (32 ms) takes the crosstalk decision of the webrtc frame (30 ms) at its centre
    n_frames = -(-samples.shape[1] // silero.FRAME_SAMPLES)
    centre = ((np.arange(n_frames) + 0.5) * silero.FRAME_S / frame_s).astype(np.int64)
    inside = centre < own.shape[1]
    ok = np.zeros((n_ch, n_frames), dtype=bool)
    ok[:, inside] = own[:, centre[inside]]

    def probabilities(c: int) -> np.ndarray:  # Silero is not run where no frame can be this channel's speech
        return silero.speech_probabilities(samples[c], sample_rate, reset_s=options.silero_reset_s, active=ok[c])

    with ThreadPoolExecutor(max_workers=n_ch) as pool:  # onnxruntime releases the GIL: channels in parallel
        probs = list(pool.map(probabilities, range(n_ch)))
    out = []
    for c in range(n_ch):
        flags = silero.hysteresis(probs[c], options.silero_threshold, options.silero_neg_threshold)
        out.append(_smooth(flags & ok[c], silero.FRAME_S, options))
    return np.stack(out)


def padded_regions(activity: Activity, channel: int, options: VadOptions, duration_s: float) -> list[SpeechRegion]:
    """Speech regions of one channel for ASR, padded by pad_ms on each side (Silero's by silero_onset_pad_ms more
    before speech) and merged where the padded regions touch or overlap: every instant of the call lies in at most
    one region, so no audio is transcribed twice."""
    pad = options.pad_ms / 1000
    onset = pad + (options.silero_onset_pad_ms / 1000 if activity.asr_speech is not None else 0.0)
    out: list[SpeechRegion] = []
    for r in sorted(activity.asr_regions(channel), key=lambda r: r.start):
        s, e = round(max(0.0, r.start - onset), 3), round(min(duration_s, r.end + pad), 3)
        if e <= s:
            continue
        if out and s <= out[-1].end:
            out[-1] = SpeechRegion(channel, out[-1].start, max(out[-1].end, e))
        else:
            out.append(SpeechRegion(channel, s, e))
    return out
