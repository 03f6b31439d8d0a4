"""One loader for every recording: decode (PyAV/FFmpeg), resample to 16 kHz, keep the channels.

Samples are kept as int16 (half the memory of float32: a 2-hour stereo call is 460 MB) and converted to float32
one window at a time by the stages that need it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from qa_pipeline.config import AudioOptions
from qa_pipeline.errors import AudioDecodeError, AudioTooLongError, AudioTooShortError
from qa_pipeline.types import Audio

log = logging.getLogger("qa_pipeline")

ACCEPTED_FORMATS = "WAV (PCM, mu-law, A-law), MP3, FLAC, Ogg Vorbis/Opus, M4A/AAC; mono or stereo; any sample rate"


def load_audio(path: str | Path, options: AudioOptions = AudioOptions()) -> Audio:
    """Decode `path` to int16 samples of shape (n_channels<=2, n_samples) at options.sample_rate.

    Raises:
        AudioDecodeError: missing, empty, not audio, or an unsupported codec (the message lists what is accepted).
        AudioTooShortError / AudioTooLongError: outside [min_duration_s, max_duration_s].
    """
    import av  # PyAV ships with faster-whisper and bundles FFmpeg's decoders

    path = Path(path)
    if not path.exists():
        raise AudioDecodeError(f"{path}: file disappeared before it could be read", code="E204")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path}: file is empty (0 bytes); re-export the recording", code="E205")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except FileNotFoundError as e:
        raise AudioDecodeError(f"{path}: file disappeared before it could be read", code="E204") from e
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as e:
        raise AudioDecodeError(
            f"{path}: not a readable audio file ({e}); accepted: {ACCEPTED_FORMATS}", code="E206"
        ) from e
    truncated = False
    with container:
        if not container.streams.audio:
            raise AudioDecodeError(f"{path}: holds no audio stream; accepted: {ACCEPTED_FORMATS}", code="E207")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            tag = getattr(stream, "codec_tag", "") or "unknown"
            raise AudioDecodeError(
                f"{path}: unsupported audio codec (tag {tag!r}): FFmpeg has no decoder for it; convert the recording "
                f"(e.g. `ffmpeg -i IN -c:a pcm_s16le OUT.wav`); accepted: {ACCEPTED_FORMATS}", code="E208")
        codec = stream.codec_context.name
        source_rate = stream.codec_context.sample_rate or stream.rate or 0
        source_channels = stream.codec_context.channels or 1
        layout = "mono" if source_channels == 1 else "stereo"
        n_out = 1 if layout == "mono" else 2
        max_samples = int(options.max_duration_s * options.sample_rate)
        resampler = av.AudioResampler(format="s16", layout=layout, rate=options.sample_rate)
        chunks: list[np.ndarray] = []
        total = 0

        def take(frames):
            nonlocal total
            for rf in frames:
                arr = rf.to_ndarray().reshape(-1, n_out).T  # packed s16 -> (channels, n)
                chunks.append(arr.copy())
                total += arr.shape[1]

        try:
            for frame in container.decode(stream):
                frame.pts = None
                take(resampler.resample(frame))
                if total > max_samples:
                    raise AudioTooLongError(
                        f"{path}: longer than max_duration_s={options.max_duration_s:.0f}; split the recording or "
                        "raise audio.max_duration_s",
                        code="E202",
                    )
            take(resampler.resample(None))
        except AudioTooLongError:
            raise
        except av.error.FileNotFoundError as e:  # pragma: no cover - vanished while reading
            raise AudioDecodeError(f"{path}: file disappeared while it was read", code="E204") from e
        except (av.error.InvalidDataError, av.error.FFmpegError, ValueError) as e:
            if total == 0:
                if "codec" in str(e).lower() or "decoder" in str(e).lower():
                    raise AudioDecodeError(f"{path}: unsupported codec {codec!r} ({e}); accepted: {ACCEPTED_FORMATS}", code="E208") from e
                raise AudioDecodeError(f"{path}: audio data could not be decoded ({e}); accepted: {ACCEPTED_FORMATS}", code="E206") from e
            truncated = True  # keep what decoded; the call is flagged
            log.warning("%s: decoding stopped early (%s); keeping %.1f s", path, e, total / options.sample_rate)
    if total == 0:
        raise AudioDecodeError(f"{path}: no audio samples could be decoded (truncated or empty stream)", code="E209")
    samples = np.concatenate(chunks, axis=1) if len(chunks) > 1 else chunks[0]
    del chunks
    duration = samples.shape[1] / options.sample_rate
    if duration < options.min_duration_s:
        raise AudioTooShortError(
            f"{path}: only {duration:.2f} s of audio (minimum {options.min_duration_s} s): not a call", code="E201"
        )
    return Audio(
        samples=samples,
        sample_rate=options.sample_rate,
        source_sample_rate=int(source_rate),
        source_channels=int(source_channels),
        codec=codec + (" (truncated)" if truncated else ""),
    )


def to_float(samples: np.ndarray) -> np.ndarray:
    """int16 -> float32 in [-1, 1]."""
    return samples.astype(np.float32) / 32768.0


def channel_correlation(samples: np.ndarray, max_points: int = 16000 * 120) -> float:
    """Pearson correlation of the two channels (on up to 2 minutes, evenly strided)."""
    if samples.shape[0] < 2:
        return 1.0
    step = max(1, samples.shape[1] // max_points)
    a = samples[0, ::step].astype(np.float64)
    b = samples[1, ::step].astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return 1.0 if (a.std() == 0 and b.std() == 0) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def downmix(samples: np.ndarray) -> np.ndarray:
    """(channels, n) int16 -> (1, n) int16 mean of channels."""
    if samples.shape[0] == 1:
        return samples
    return samples.astype(np.int32).mean(axis=0, dtype=np.float32).astype(np.int16)[None, :]
