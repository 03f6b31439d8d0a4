"""Where model weights come from: packages installed with the project, or a local folder the user names.

Nothing here downloads. Every bundled model is described in the model manifest, qa_pipeline/defaults/models.yaml
(the package it ships in, pinned version, each file's path inside the package, size and SHA-256, its licence and
the config option that selects it); models/README.md explains it. `installed_models(config)` says, for each model,
where it loads from and whether its files are there (and, with `verify`, whether their checksums match):
`qa-pipeline models [--verify]` prints that.

The multilingual base model ships as two halves in two packages; it is joined once into a cache folder
(QA_PIPELINE_CACHE, default ~/.cache/qa-pipeline), atomically, and its checksum checked against the manifest.

A local model path in the config (`asr.english_model: models/whisper-small.en-ct2`) is used as written: a
relative path resolves against the current directory of the process (where `qa-pipeline` is started), `~` is
expanded."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from qa_pipeline.config import DEFAULTS_DIR, PipelineConfig
from qa_pipeline.errors import Errors, ModelLoadError

MANIFEST = DEFAULTS_DIR / "models.yaml"
"""THE model manifest (shipped in the package); models/manifest.yaml is a copy of it."""

_REQUIRED = ("model.bin", "config.json")
_CHUNK = 1 << 22

# checksum states of a ModelStatus
OK, MISMATCH, MISSING, UNCHECKED, LOCAL = "ok", "mismatch", "missing", "present", "local"


# ------------------------------------------------------------------------------------------------ the manifest


@dataclass(frozen=True, slots=True)
class WeightFile:
    path: str  # relative to its package's folder (or, for a joined file, to the joined folder)
    size: int
    sha256: str
    sources: tuple[str, ...] = ()  # a joined file: the "module:path" package files it concatenates, in order


@dataclass(frozen=True, slots=True)
class Package:
    package: str  # distribution name, as pip knows it
    version: str
    module: str  # import name; its folder holds the files
    files: tuple[WeightFile, ...]

    @property
    def pin(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    stage: str
    use: str
    licence: str
    upstream: str
    packages: tuple[Package, ...]
    loads_from: str = ""  # relative to the first package's folder
    spec: str | None = None  # bundled:tiny.en ...: the asr.*_model value that selects it
    selected_by: tuple[tuple[str, Any], ...] = ()  # (config key, value) pairs that must hold for it to be used
    used: bool = True
    joined_folder: str | None = None  # under cache_dir()
    joined: tuple[WeightFile, ...] = ()


def _need(data: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get(key), kind):
        raise ValueError(f"{where}: {key!r} missing or not a {kind.__name__}")
    return data[key]


def _file(data: Any, where: str) -> WeightFile:
    path = _need(data, "path", str, where)
    sha = _need(data, "sha256", str, f"{where} {path}")
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"{where} {path}: sha256 is not 64 lower-case hex digits")
    sources = data.get("from") or []
    if not isinstance(sources, list) or not all(isinstance(s, str) and ":" in s for s in sources):
        raise ValueError(f"{where} {path}: 'from' must be a list of module:path")
    return WeightFile(path, int(_need(data, "size", int, f"{where} {path}")), sha, tuple(sources))


def parse_manifest(data: Any) -> tuple[ModelEntry, ...]:
    """The entries of a manifest already read from YAML. Raises ValueError saying what is wrong."""
    entries = []
    for i, m in enumerate(_need(data, "models", list, "manifest")):
        name = _need(m, "name", str, f"models[{i}]")
        packages = tuple(
            Package(_need(p, "package", str, name), _need(p, "version", str, name),
                    _need(p, "module", str, name),
                    tuple(_file(f, f"{name}") for f in _need(p, "files", list, name)))
            for p in _need(m, "packages", list, name))
        if not packages:
            raise ValueError(f"{name}: no packages")
        joined = m.get("joined") or {}
        selected = m.get("selected_by") or {}
        if not isinstance(selected, dict):
            raise ValueError(f"{name}: selected_by must be a mapping of config keys to values")
        entries.append(ModelEntry(
            name=name, stage=_need(m, "stage", str, name), use=_need(m, "use", str, name),
            licence=_need(m, "licence", str, name), upstream=str(m.get("upstream", "")), packages=packages,
            loads_from=str(m.get("loads_from", "")), spec=m.get("spec"), selected_by=tuple(selected.items()),
            used=bool(m.get("used", True)),
            joined_folder=_need(joined, "folder", str, f"{name} joined") if joined else None,
            joined=tuple(_file(f, f"{name} joined") for f in joined.get("files", [])) if joined else ()))
        if not entries[-1].loads_from and not joined:
            raise ValueError(f"{name}: neither loads_from nor joined")
    return tuple(entries)


def load_manifest(path: str | Path | None = None) -> tuple[ModelEntry, ...]:
    """The model manifest (default: the packaged qa_pipeline/defaults/models.yaml)."""
    path = Path(path) if path is not None else MANIFEST
    try:
        return parse_manifest(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValueError, TypeError) as e:
        raise ModelLoadError(Errors.E305, path=path, problem=e) from e


def _entry_for(spec: str, manifest: Iterable[ModelEntry] | None) -> ModelEntry:
    for entry in load_manifest() if manifest is None else manifest:
        if entry.spec == spec:
            return entry
    raise ModelLoadError(Errors.E302, spec=spec)


# ------------------------------------------------------------------------------------------- files and folders


def cache_dir() -> Path:
    return Path(os.environ.get("QA_PIPELINE_CACHE", Path.home() / ".cache" / "qa-pipeline"))


def package_dir(module: str) -> Path:
    """The folder of an installed package (the one place packages are located: tests swap it)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(Errors.E301, module=module)
    return Path(list(spec.submodule_search_locations)[0])


def local_path(spec: str | Path) -> Path:
    """A model folder named in the config: `~` expanded, a relative path taken from the current directory."""
    path = Path(spec).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _dist_version(dist: str) -> str:
    try:
        return f"{dist}=={importlib.metadata.version(dist)}"
    except importlib.metadata.PackageNotFoundError:
        return dist


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # no directory handles on this platform: the rename is all there is
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory
    finally:
        os.close(fd)


def _complete(folder: Path, files: Iterable[WeightFile]) -> bool:
    """Every file there with its manifest size (cheap; the checksums are checked when the folder is made)."""
    try:
        return all((folder / f.path).stat().st_size == f.size for f in files)
    except OSError:
        return False


def _concat(sources: list[Path], out: Path) -> str:
    """Write the concatenation of `sources` to `out`, flushed and fsynced; its sha256."""
    digest = hashlib.sha256()
    with open(out, "wb") as o:
        for src in sources:
            with open(src, "rb") as f:
                for block in iter(lambda: f.read(_CHUNK), b""):
                    digest.update(block)
                    o.write(block)
        o.flush()
        os.fsync(o.fileno())
    return digest.hexdigest()


def _source(ref: str) -> Path:
    module, _, rel = ref.partition(":")
    return package_dir(module) / rel


def joined_dir(entry: ModelEntry) -> Path:
    return cache_dir() / str(entry.joined_folder)


def _join(entry: ModelEntry) -> Path:
    """The folder of a joined model (the base model's two halves), made on first use.

    Atomic as a folder: the files are written into a hidden temp folder next to the target, each fsynced, their
    sha256 compared with the manifest, the folder fsynced, renamed to its final name, and the cache folder fsynced.
    A crash leaves a temp folder (ignored), never a half-joined model; two workers joining at once both succeed
    (the loser of the rename discards its copy). Written here rather than with store.folder.DataFolder.write_bytes:
    that writes one file from bytes in memory, and this is 145 MB streamed into several files that must appear
    together."""
    target = joined_dir(entry)
    if _complete(target, entry.joined):
        return target
    cache = target.parent
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if _complete(target, entry.joined):  # another worker finished it meanwhile
            return target
        if target.exists():  # an incomplete folder from an older qa-pipeline, or damaged: never one of ours
            stale = cache / f".{target.name}.stale.{uuid.uuid4().hex[:12]}"
            try:
                os.rename(target, stale)
            except FileNotFoundError:  # another worker moved it first
                pass
            shutil.rmtree(stale, ignore_errors=True)
        tmp = cache / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
        tmp.mkdir()
    except OSError as e:
        raise ModelLoadError(Errors.E307, path=target, error=e) from e
    try:
        for f in entry.joined:
            got = _concat([_source(s) for s in f.sources], tmp / f.path)
            if got != f.sha256:
                raise ModelLoadError(Errors.E304, path=target / f.path, got=got, expected=f.sha256,
                                     packages=" ".join(p.pin for p in entry.packages))
        _fsync_dir(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _complete(target, entry.joined):  # not "another worker won the race": a real failure
                raise
        _fsync_dir(cache)
    except OSError as e:
        raise ModelLoadError(Errors.E307, path=target, error=e) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
    return target


def _join_base_model(manifest: Iterable[ModelEntry] | None = None) -> Path:
    return _join(_entry_for("bundled:base", manifest))


# ----------------------------------------------------------------------------------------------- Whisper models


@dataclass(frozen=True, slots=True)
class ModelRef:
    name: str  # tiny.en, base, or the folder name
    version: str  # package==version, or a content fingerprint of a user folder
    path: Path
    english_only: bool


def resolve_whisper(spec: str, *, manifest: Iterable[ModelEntry] | None = None) -> ModelRef:
    """`bundled:tiny.en`, `bundled:base` (the manifest's specs), or a path to a CTranslate2 Whisper model folder
    (relative: from the current directory)."""
    if spec.startswith("bundled:"):
        entry = _entry_for(spec, manifest)
        first = entry.packages[0]
        path = _join(entry) if entry.joined else package_dir(first.module) / entry.loads_from
        name = spec.split(":", 1)[1]
        return ModelRef(name, _dist_version(first.package), path, name.endswith(".en"))
    path = local_path(spec)
    missing = [n for n in _REQUIRED if not (path / n).is_file()]
    if missing:
        raise ModelLoadError(Errors.E303, path=path, missing=missing)
    cfg = (path / "config.json").read_bytes()
    fingerprint = hashlib.sha256(cfg + str((path / "model.bin").stat().st_size).encode()).hexdigest()[:12]
    english_only = path.name.endswith(".en") or b'"lang_ids"' not in cfg and "en" in path.name
    return ModelRef(path.name, f"local:{fingerprint}", path, english_only)


# ------------------------------------------------------------------------------------------ installed models


@dataclass(frozen=True, slots=True)
class ModelStatus:
    name: str
    stage: str
    use: str
    source: str  # "package==version" (+ "; installed: other") of each package, or "local folder"
    path: Path | None  # what the loader is given
    checksum: str  # ok | mismatch | missing | present (sizes right, not hashed) | local (a user folder)
    licence: str
    in_use: bool  # selected by this config
    selected_by: str  # the config setting that selects it
    problems: tuple[str, ...] = ()
    fix: str = ""  # the command (or step) that repairs it
    used: bool = True  # False: installed, listed, never loaded by the pipeline (whatever the config)
    joined: bool = False  # `path` is a cache folder joined from the packages on first use

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_files(folder: Path, files: Iterable[WeightFile], verify: bool, label: str) -> tuple[str, list[str]]:
    state, problems = OK if verify else UNCHECKED, []
    for f in files:
        p = folder / f.path
        try:
            size = p.stat().st_size
        except OSError:
            problems.append(f"{label}: {f.path} is missing")
            state = MISSING
            continue
        if size != f.size:
            problems.append(f"{label}: {f.path} has {size} bytes, the manifest says {f.size}")
        elif verify and (got := sha256_file(p)) != f.sha256:
            problems.append(f"{label}: {f.path} sha256 {got[:12]}..., the manifest says {f.sha256[:12]}...")
        else:
            continue
        if state != MISSING:
            state = MISMATCH
    return state, problems


def _config_value(config: PipelineConfig, key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part, None)
    return value


def _selection(entry: ModelEntry, config: PipelineConfig) -> tuple[bool, str]:
    if not entry.used:
        return False, "not loaded by the pipeline"
    if entry.spec:
        keys = [k for k in ("asr.english_model", "asr.multilingual_model") if _config_value(config, k) == entry.spec]
        return bool(keys), ", ".join(f"{k}: {entry.spec}" for k in keys) or f"asr.*_model: {entry.spec}"
    wanted = [(k, v) for k, v in entry.selected_by]
    text = ", ".join(f"{k}: {'null' if v is None else v}" for k, v in wanted) or "always"
    return all(_config_value(config, k) == v for k, v in wanted), text


def _bundled_status(entry: ModelEntry, config: PipelineConfig, verify: bool) -> ModelStatus:
    in_use, selected = _selection(entry, config)
    states, problems, sources, broken = [], [], [], []
    path = None
    for pkg in entry.packages:
        installed = _installed_version(pkg.package)
        try:
            folder = package_dir(pkg.module)
        except ModelLoadError:
            folder = None
        if folder is None:
            sources.append(f"{pkg.pin} (not installed)")
            problems.append(f"{pkg.package} is not installed")
            states.append(MISSING)
            broken.append(pkg.pin)
            continue
        if installed is not None and installed != pkg.version:
            sources.append(f"{pkg.pin} (installed: {installed})")
            problems.append(f"{pkg.package} {installed} is installed, the manifest pins {pkg.version}")
            broken.append(pkg.pin)
        else:
            sources.append(pkg.pin)
        state, found = _check_files(folder, pkg.files, verify, pkg.package)
        states.append(state)
        problems += found
        if found and pkg.pin not in broken:
            broken.append(pkg.pin)
        if path is None and entry.loads_from:
            path = folder / entry.loads_from
    fix = f"pip install --force-reinstall {' '.join(broken)}" if broken else ""
    if entry.joined:
        path = joined_dir(entry)
        if path.exists():  # made on first use; a damaged one is deleted and made again
            state, found = _check_files(path, entry.joined, verify, "joined model")
            states.append(state)
            problems += found
            if found and not broken:
                fix = f"delete {path} (it is joined again from the packages on next use)"
    checksum = next((s for s in (MISSING, MISMATCH, UNCHECKED) if s in states), OK)
    return ModelStatus(entry.name, entry.stage, entry.use, "; ".join(sources), path, checksum, entry.licence,
                       in_use, selected, tuple(problems), fix, entry.used, bool(entry.joined))


def _local_status(stage: str, use: str, key: str, spec: str, required: tuple[str, ...], fix: str) -> ModelStatus:
    path = local_path(spec)
    missing = [n for n in required if not (path / n).is_file()]
    problems = (f"{path}: missing {', '.join(missing)}",) if missing else ()
    return ModelStatus(path.name, stage, use, "local folder", path, MISSING if missing else LOCAL,
                       "its own", True, f"{key}: {spec}", problems, fix if missing else "")


def installed_models(config: PipelineConfig | None = None, *, verify: bool = False,
                     manifest: Iterable[ModelEntry] | None = None) -> list[ModelStatus]:
    """Every model of the manifest, and the local models the config names: where each loads from, whether this
    config uses it, and whether its files are there with the manifest's sizes (`verify`: and checksums; about
    450 MB to hash, a few seconds). Nothing is downloaded, joined or written."""
    config = config or PipelineConfig()
    entries = load_manifest() if manifest is None else tuple(manifest)
    out = [_bundled_status(e, config, verify) for e in entries]
    convert = ("put a CTranslate2 Whisper model there: download or convert one on a machine with internet "
               "(models/README.md)")
    for key, use in (("asr.english_model", "transcription of English calls"),
                     ("asr.multilingual_model", "language detection and transcription of other languages")):
        spec = _config_value(config, key)
        if spec and not str(spec).startswith("bundled:"):
            out.append(_local_status("asr", use, key, str(spec), _REQUIRED, convert))
    pipeline_dir = config.diarization.pipeline_dir
    if pipeline_dir:
        out.append(_local_status("diarization", "pyannote diarization pipeline for mono calls",
                                 "diarization.pipeline_dir", pipeline_dir, ("config.yaml",),
                                 "put a pyannote pipeline there: `hf download pyannote/speaker-diarization-"
                                 "community-1 --local-dir DIR` on a machine with internet (models/README.md)"))
    return out


def verify(config: PipelineConfig | None = None, *,
           manifest: Iterable[ModelEntry] | None = None) -> list[ModelStatus]:
    """`installed_models` with every checksum checked. The models in use that fail: `[s for s in ... if s.in_use
    and not s.ok]`."""
    return installed_models(config, verify=True, manifest=manifest)
