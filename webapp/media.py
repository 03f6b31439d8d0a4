"""Which audio file a user may hear for a call, and its waveform peaks.

Files are served only from inside the allowed roots (`--calls DIR`, resolved): a call's `calls.path` is
resolved with every symlink followed and must land inside one of them, as a regular file; anything else (a path
outside, `..`, a symlink pointing out, a URI) is refused. The app's own files come only from its static folder
(`webapp.app`); nothing else on disk is reachable by URL.

**Redacted or original.** A user with `can_view_unredacted` gets the original recording. Everyone else gets the
redacted copy (`redacted_audio_path`: `<DATA>/redacted_audio/<call_date>/<file key>.opus|.wav`, written by the
pipeline's audio redaction for every call with personal data). A call searched and found without personal data
has no copy: its original is played. A call with neither (processed with privacy off or before audio redaction
existed, or its copy failed) is refused to them (403, with a message saying why) unless the server was started
with `--allow-original-audio` (`AppSettings.require_redacted_audio` off, default on); the audit log records which
copy was served ("variant", and the "note" when it is the original for someone without the permission).

**Peaks** for the waveform are computed on the server from the decoded audio (`qa_pipeline.audio.decode.
load_audio`, at 8 kHz: plenty for a picture) and cached in the data folder (`_app/peaks/<variant>/<call_id>.json`,
a few hundred KB for an hour), keyed by the file's size and mtime: the browser never decodes a 1-hour call."""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa_pipeline.store.folder import DataFolder
from webapp.config import AppSettings
from webapp.models import CallIndex, User

AUDIO_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg",
               ".oga": "audio/ogg", ".opus": "audio/ogg", ".m4a": "audio/mp4", ".mp4": "audio/mp4",
               ".aac": "audio/aac", ".webm": "audio/webm"}
PEAKS_DIR = "_app/peaks"
PEAKS_VERSION = 1
PEAKS_SAMPLE_RATE = 8000
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
NO_REDACTED_COPY = ("This call's recording has no redacted copy, and your account may hear only redacted recordings: "
                    "it is not played. Someone with the unredacted permission can listen to it; reprocessing the "
                    "call with audio redaction on (privacy.audio) makes the copy.")
NOTE_CLEAN = "no personal data found"
NOTE_NO_COPY = "no redacted copy yet"


class AudioUnavailable(Exception):
    """No audio for this user and call; `status` is the HTTP answer (404 none / 403 not for you), `message`
    says why in words a user can act on."""

    def __init__(self, message: str, status: int = 404):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class AudioSource:
    path: Path
    media_type: str
    variant: str  # original / redacted
    note: str | None = None  # e.g. "no redacted copy yet"


def inside(path: Path, root: Path) -> bool:
    """True when `path` (already resolved) lies inside `root` (already resolved)."""
    return path == root or path.is_relative_to(root)


def resolve_roots(roots) -> tuple[Path, ...]:
    out = []
    for r in roots or ():
        try:
            out.append(Path(r).resolve(strict=True))
        except OSError:
            continue
    return tuple(out)


def contained_file(candidates: list[Path], roots: tuple[Path, ...]) -> Path | None:
    """The first candidate that, with symlinks followed, is a regular file inside one of `roots`."""
    for c in candidates:
        try:
            real = c.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if real.is_file() and any(inside(real, root) for root in roots):
            return real
    return None


def original_audio_path(call_path: str, roots: tuple[Path, ...]) -> Path:
    """The recording of `calls.path`, if it lies inside an allowed root.

    A relative path is tried against each root, then against the working directory (the pipeline stores the
    path it was given). Raises AudioUnavailable."""
    if not roots:
        raise AudioUnavailable("audio is not served: start the server with --calls DIR (the folder of the "
                               "recordings)")
    if "://" in call_path:
        raise AudioUnavailable("this recording is on object storage, which the app does not serve yet")
    p = Path(call_path)
    candidates = [p] if p.is_absolute() else [root / p for root in roots] + [Path.cwd() / p]
    found = contained_file(candidates, roots)
    if found is None:
        raise AudioUnavailable("the recording is not inside the calls folder(s) the server was started with "
                               "(--calls), or it is gone")
    return found


def redacted_audio_path(call: CallIndex, settings: AppSettings) -> Path | None:
    """The redacted copy of the call's audio (`qa_pipeline.pipeline.audio_redaction`:
    `<DATA>/redacted_audio/<call_date>/<file key>.opus|.wav`), checked with `contained_file` against the data
    folder; None when there is none (or the data folder is on an object store)."""
    from qa_pipeline.pipeline.audio_redaction import FORMATS
    from qa_pipeline.privacy.audio import extension
    from qa_pipeline.store.folder import is_uri
    from qa_pipeline.store.keys import file_key
    from qa_pipeline.store.schema import REDACTED_AUDIO_DIR

    if is_uri(settings.data_dir):
        return None
    root = Path(settings.data_dir) / REDACTED_AUDIO_DIR
    roots = resolve_roots([root])
    if not roots:
        return None
    key = file_key(call.call_id)
    candidates = [root / call.call_date / f"{key}{extension(fmt)}" for fmt in FORMATS]
    candidates += sorted(p for fmt in FORMATS for p in root.glob(f"*/{key}{extension(fmt)}"))
    return contained_file(candidates, roots)


def no_personal_data(call: CallIndex, settings: AppSettings) -> bool:
    """True when the call was searched for personal data and none was found (its `pii` file holds no row): its
    recording has nothing to mute, so it has no redacted copy and the original may be played."""
    from qa_pipeline.store.folder import is_uri
    from qa_pipeline.store.keys import file_key

    if is_uri(settings.data_dir):
        return False
    path = Path(settings.data_dir) / "pii" / f"call_date={call.call_date}" / f"{file_key(call.call_id)}.parquet"
    if not path.is_file():
        return False
    try:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows == 0
    except (OSError, ValueError):
        return False


def audio_for(call: CallIndex, user: User, settings: AppSettings, roots: tuple[Path, ...]) -> AudioSource:
    """The file `user` gets for `call` (see the module docstring). Raises AudioUnavailable."""
    if call.mode == "transcript":
        raise AudioUnavailable("this call was imported as a transcript: there is no recording")
    note = None
    if not user.can_view_unredacted:
        redacted = redacted_audio_path(call, settings)
        if redacted is not None:
            return AudioSource(redacted, AUDIO_TYPES.get(redacted.suffix.lower(), "application/octet-stream"),
                               "redacted")
        if no_personal_data(call, settings):
            path = original_audio_path(call.path, roots)
            return AudioSource(path, AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"), "original",
                               NOTE_CLEAN)
        if settings.require_redacted_audio:
            raise AudioUnavailable(NO_REDACTED_COPY, status=403)
        note = NOTE_NO_COPY
    path = original_audio_path(call.path, roots)
    return AudioSource(path, AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"), "original", note)


# ---- peaks ---------------------------------------------------------------------------------------------------

def compute_peaks(path: Path, *, per_second: int, max_points: int) -> dict:
    """Max |amplitude| per bucket and channel, in [0, 1] with 3 decimals, from the decoded audio."""
    from qa_pipeline.audio.decode import load_audio
    from qa_pipeline.config import AudioOptions

    audio = load_audio(path, AudioOptions(sample_rate=PEAKS_SAMPLE_RATE, min_duration_s=0.0))
    x = audio.samples  # shape: (channels, n) int16 (or float in [-1, 1])
    n_samples = x.shape[1]
    duration = n_samples / audio.sample_rate
    n = max(1, min(max_points, math.ceil(duration * per_second)))
    bucket = max(1, math.ceil(n_samples / n))
    scale = 32768.0 if x.dtype.kind == "i" else 1.0
    channels = []
    for ch in x:
        pad = np.zeros(bucket * n - n_samples, dtype=ch.dtype) if bucket * n > n_samples else ch[:0]
        a = np.abs(np.concatenate([ch, pad])[: bucket * n].astype(np.float32).reshape(n, bucket)).max(axis=1)
        channels.append([round(float(v), 3) for v in np.minimum(a / scale, 1.0)])
    return {"version": PEAKS_VERSION, "duration": round(duration, 3), "per_second": n / duration if duration else 0,
            "channels": channels}


class PeaksCache:
    """Peaks per call and variant, computed once (one computation per file at a time) and kept in the data
    folder."""

    def __init__(self, folder: DataFolder, settings: AppSettings):
        self.folder = folder
        self.settings = settings
        self._locks = tuple(threading.Lock() for _ in range(64))  # a file's peaks are computed once at a time

    def _lock(self, key: str) -> threading.Lock:
        return self._locks[hash(key) % len(self._locks)]

    def get(self, call_id: str, source: AudioSource) -> bytes:
        """The peaks JSON (bytes) of `source`, from the cache when the file has not changed."""
        st = source.path.stat()
        stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        rel = f"{PEAKS_DIR}/{source.variant}/{_SAFE_NAME.sub('_', call_id)}.json"
        with self._lock(rel):
            if self.folder.exists(rel):
                try:
                    cached = json.loads(self.folder.read_bytes(rel))
                    if cached.get("source") == stamp and cached.get("version") == PEAKS_VERSION:
                        return json.dumps(cached, separators=(",", ":")).encode()
                except (ValueError, OSError):
                    pass  # unreadable cache: computed again below
            peaks = compute_peaks(source.path, per_second=self.settings.peaks_per_second,
                                  max_points=self.settings.peaks_max)
            peaks["source"] = stamp
            data = json.dumps(peaks, separators=(",", ":")).encode()
            self.folder.write_bytes(rel, data)
            return data
