"""One loader for every recording: decode (PyAV/FFmpeg), resample to 16 kHz, keep the channels.

Samples are kept as int16 (half the memory of float32: a 2-hour stereo call is 460 MB) and converted to float32
one window at a time by the stages that need it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from qa_pipeline.config import AudioOptions
from qa_pipeline.errors import AudioDecodeError, AudioTooLongError, AudioTooShortError, Errors
from qa_pipeline.types import Audio

log = logging.getLogger("qa_pipeline")

ACCEPTED_FORMATS = "WAV (PCM, mu-law, A-law), MP3, FLAC, Ogg Vorbis/Opus, M4A/AAC; mono or stereo; any sample rate"


_GROUP_SAMPLES = 500_000  # source samples resampled at a time (about 10 s at 48 kHz; faster-whisper's figure)


def load_audio(path: str | Path, options: AudioOptions = AudioOptions()) -> Audio:
    """Decode `path` to int16 samples of shape (n_channels<=2, n_samples) at options.sample_rate.

    Raises:
        AudioDecodeError: missing, empty, not audio, or an unsupported codec (the message lists what is accepted).
        AudioTooShortError / AudioTooLongError: outside [min_duration_s, max_duration_s].
    """
    import av  # PyAV ships with faster-whisper and bundles FFmpeg's decoders

    path = Path(path)
    if not path.exists():
        raise AudioDecodeError(Errors.E104, path=path, when="before it could be read")
    if path.stat().st_size == 0:
        raise AudioDecodeError(Errors.E205, path=path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except FileNotFoundError as e:
        raise AudioDecodeError(Errors.E104, path=path, when="before it could be read") from e
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as e:
        raise AudioDecodeError(Errors.E206, path=path, error=e, accepted=ACCEPTED_FORMATS) from e
    truncated = False
    with container:
        if not container.streams.audio:
            raise AudioDecodeError(Errors.E207, path=path, accepted=ACCEPTED_FORMATS)
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            tag = getattr(stream, "codec_tag", "") or "unknown"
            raise AudioDecodeError(Errors.E208, path=path, codec=f"tag {tag!r}", error="FFmpeg has no decoder for it",
                                   accepted=ACCEPTED_FORMATS)
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
            for arr in _channels_of(frames, n_out):
                chunks.append(arr)
                total += arr.shape[1]

        fifo = _FrameGroups(resampler)
        try:
            for frame in container.decode(stream):
                take(fifo.add(frame))
                if total > max_samples:
                    raise AudioTooLongError(Errors.E202, path=path, maximum=options.max_duration_s)
            take(fifo.flush())
            take(resampler.resample(None))
            if total > max_samples:
                raise AudioTooLongError(Errors.E202, path=path, maximum=options.max_duration_s)
        except AudioTooLongError:
            raise
        except av.error.FileNotFoundError as e:  # pragma: no cover - vanished while reading
            raise AudioDecodeError(Errors.E104, path=path, when="while it was read") from e
        except (av.error.InvalidDataError, av.error.FFmpegError, ValueError) as e:
            try:
                take(fifo.flush())  # the frames decoded before the damage
            except (av.error.FFmpegError, ValueError):
                pass
            if total == 0:
                if "codec" in str(e).lower() or "decoder" in str(e).lower():
                    raise AudioDecodeError(Errors.E208, path=path, codec=repr(codec), error=e, accepted=ACCEPTED_FORMATS) from e
                raise AudioDecodeError(Errors.E206, path=path, error=e, accepted=ACCEPTED_FORMATS) from e
            truncated = True  # keep what decoded; the call is flagged
            log.warning("%s: decoding stopped early (%s); keeping %.1f s", path, e, total / options.sample_rate)
    if total == 0:
        raise AudioDecodeError(Errors.E209, path=path)
    samples = np.concatenate(chunks, axis=1) if len(chunks) > 1 else chunks[0]
    chunks.clear()  # the pieces are in `samples` now: free them
    duration = samples.shape[1] / options.sample_rate
    if duration < options.min_duration_s:
        raise AudioTooShortError(Errors.E201, path=path, duration=duration, minimum=options.min_duration_s)
    return Audio(
        samples=samples,
        sample_rate=options.sample_rate,
        source_sample_rate=int(source_rate),
        source_channels=int(source_channels),
        codec=codec + (" (truncated)" if truncated else ""),
    )


class _FrameGroups:
    """Decoded frames resampled a group at a time, as faster-whisper's decode_audio does: one resampler call per
    _GROUP_SAMPLES source samples instead of one per 20 ms frame (a 140 s stereo Opus call: 0.72 -> 0.5 s). A
    frame whose format, layout or rate differs from the group's starts a new group."""

    def __init__(self, resampler) -> None:
        import av

        self._av = av
        self.resampler = resampler
        self.fifo = av.AudioFifo()
        self.kind: tuple | None = None

    def add(self, frame) -> list:
        kind = (frame.format.name, frame.layout.name, frame.sample_rate)
        out = self.flush() if self.kind is not None and kind != self.kind else []
        self.kind = kind
        frame.pts = None  # the fifo checks timestamps; a file's are not always continuous
        self.fifo.write(frame)
        if self.fifo.samples >= _GROUP_SAMPLES:
            out += self.resampler.resample(self.fifo.read())
        return out

    def flush(self) -> list:
        if not self.fifo.samples:
            return []
        frames = self.resampler.resample(self.fifo.read())
        self.fifo = self._av.AudioFifo()
        return frames


def _channels_of(frames, n_out: int) -> list[np.ndarray]:
    """Resampled packed-s16 frames as int16 arrays of shape (channels, n) (copies: the frames' buffers are not
    ours to keep)."""
    return [rf.to_ndarray().reshape(-1, n_out).T.copy() for rf in frames]


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


def decode_spans(path: str | Path, spans, sample_rate: int = 16000, *,
                 preroll_s: float = 0.5) -> list[tuple[float, np.ndarray]]:
    """Only the stretches `spans` ((start_s, end_s), in seconds) of a recording, decoded by seeking to each one:
    one per span, (start_s of the samples returned, int16 samples of shape (channels, n) at `sample_rate`), starting
    up to `preroll_s` before the span (a codec needs a little audio before a seek point to decode it right).
    Checking a few seconds of a long file costs a few seconds of decoding, not the whole file."""
    import av

    out: list[tuple[float, np.ndarray]] = []
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.audio[0]
        n_out = 1 if (stream.codec_context.channels or 1) == 1 else 2
        layout = "mono" if n_out == 1 else "stereo"
        for a, b in spans:
            start = max(0.0, float(a) - preroll_s)
            container.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)
            resampler = av.AudioResampler(format="s16", layout=layout, rate=sample_rate)
            pieces: list[np.ndarray] = []
            first = None
            for frame in container.decode(stream):
                t = frame.time
                if t is not None and first is None:
                    first = float(t)
                frame.pts = None
                pieces += _channels_of(resampler.resample(frame), n_out)
                if t is not None and t > b:
                    break
            pieces += _channels_of(resampler.resample(None), n_out)
            if pieces and first is not None:
                out.append((first, np.concatenate(pieces, axis=1)))
            else:  # nothing there (past the end): an empty stretch, so that the i-th result is the i-th span's
                out.append((start, np.zeros((n_out, 0), dtype=np.int16)))
    return out
