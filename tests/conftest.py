import os
import wave
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
