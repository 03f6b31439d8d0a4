"""Silero VAD speech probabilities, from the ONNX model faster-whisper ships (`faster_whisper/assets/
silero_vad_v6.onnx`), run on onnxruntime: no torch, no download.

webrtcvad calls line noise, breath and echo speech on real phone lines (about 125 of 140 s of a real SpokenWOZ
call); Silero, a small neural model, holds there. It gives one probability per 32 ms frame (512 samples at 16 kHz);
qa_pipeline.audio.vad turns them into speech regions for ASR."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512  # the model's window at 16 kHz: one probability per 32 ms
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
_CONTEXT = 64  # samples of the previous frame the model sees with each frame
_BLOCK_FRAMES = 10000  # frames per ONNX run (320 s): bounded memory on long calls, the LSTM state carries over


def _session():
    """The ONNX session faster-whisper builds once per process (its own lru_cache; one thread, no arena)."""
    try:
        from faster_whisper.vad import get_vad_model
    except ImportError as e:  # pragma: no cover - faster-whisper is a core dependency
        raise RuntimeError("Silero VAD needs faster-whisper and onnxruntime (pip install qa-pipeline)") from e
    return get_vad_model().session


def speech_probabilities(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, *, reset_s: float | None = None,
                         preroll_s: float = 0.5, active: np.ndarray | None = None) -> np.ndarray:
    """Silero's speech probability of each 32 ms frame of one channel.

    Args:
        samples: shape (n,) int16 (or float32 in [-1, 1]) at 16 kHz.
        reset_s: restart the model from a fresh state every this many seconds, each piece heard with `preroll_s`
            of the audio before it. None = one stream. Why: the model's state drifts over minutes of one
            channel's silence and line noise, and it then misses short turns (measured on a real call: a loud
            0.4 s "all right" after 20 s of the other party talking scored 0.1 in one stream, 0.7 from a fresh
            state).
        active: with reset_s, shape (n_frames,) bool: the pieces holding no active frame are not run (their
            probabilities are 0), e.g. a stereo channel's silence while the other party talks.

    Returns:
        shape (ceil(n / 512),) float32 in [0, 1]; frame i covers samples [512 i, 512 (i + 1)).
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"Silero VAD runs at {SAMPLE_RATE} Hz, got {sample_rate}")
    n_frames = -(-samples.shape[0] // FRAME_SAMPLES)
    if reset_s is None:
        return _stream(samples, 0, n_frames)
    piece = max(1, int(round(reset_s / FRAME_S)))
    pre = int(round(preroll_s / FRAME_S))
    out = np.zeros(n_frames, dtype=np.float32)
    for b in range(0, n_frames, piece):
        a, e = max(0, b - pre), min(n_frames, b + piece)
        if active is not None and not active[b:e].any():
            continue
        out[b:e] = _stream(samples, a, e)[b - a :]
    return out


def _stream(samples: np.ndarray, first: int, end: int) -> np.ndarray:
    """Probabilities of frames [first, end) heard as one stream from a fresh state. shape: (end - first,)."""
    session = _session()
    out = np.zeros(end - first, dtype=np.float32)
    h = np.zeros((1, 1, 128), dtype=np.float32)
    c = np.zeros((1, 1, 128), dtype=np.float32)
    context = np.zeros(_CONTEXT, dtype=np.float32)
    scale = 1.0 / 32768.0 if samples.dtype.kind == "i" else 1.0
    for b in range(first, end, _BLOCK_FRAMES):
        e = min(end, b + _BLOCK_FRAMES)
        x = np.zeros((e - b) * FRAME_SAMPLES, dtype=np.float32)
        chunk = samples[b * FRAME_SAMPLES : e * FRAME_SAMPLES]
        x[: chunk.shape[0]] = chunk.astype(np.float32) * scale
        frames = x.reshape(e - b, FRAME_SAMPLES)  # shape (frames, 512)
        ctx = np.concatenate([context[None], frames[:-1, -_CONTEXT:]], axis=0)  # each frame's preceding 64 samples
        probs, h, c = session.run(None, {"input": np.concatenate([ctx, frames], axis=1), "h": h, "c": c})
        out[b - first : e - first] = np.asarray(probs, dtype=np.float32).reshape(-1)[: e - b]
        context = frames[-1, -_CONTEXT:].copy()
    return out


def hysteresis(probs: np.ndarray, threshold: float, neg_threshold: float) -> np.ndarray:
    """Speech frames as Silero's own post-processing decides them: speech starts at a frame >= threshold and lasts
    while frames stay >= neg_threshold. shape: (n_frames,) bool."""
    above = probs >= threshold
    keep = probs >= neg_threshold
    out = np.zeros(probs.shape[0], dtype=bool)
    # a run of `keep` frames is speech from its first `above` frame on
    d = np.diff(np.concatenate([[0], keep.astype(np.int8), [0]]))
    for s, e in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
        first = np.flatnonzero(above[s:e])
        if first.size:
            out[s + first[0] : e] = True
    return out
