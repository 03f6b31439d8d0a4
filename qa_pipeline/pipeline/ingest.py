"""Find the recordings in a calls folder and what is known about each: manifest row, JSON sidecar or file name.

A call is identified by the SHA-256 of its audio bytes, so a rerun recognises what it has already done even when
a file was renamed or moved."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path

from qa_pipeline.config import IngestOptions
from qa_pipeline.errors import Errors, IngestError, W_MISSING_METADATA, W_UNKNOWN_AGENT
from qa_pipeline.types import CallMeta

log = logging.getLogger("qa_pipeline")

CALL_TYPES = (
    "information",
    "order",
    "complaint",
    "support",
    "survey",
    "telesales_cold",
    "telesales_warm",
    "telesales_hot",
)
DIRECTIONS = ("inbound", "outbound")
_FIELDS = ("call_id", "agent_id", "team", "campaign", "direction", "call_type", "started_at", "language")


@dataclass(frozen=True, slots=True)
class DiscoveredFile:
    path: Path
    kind: str  # audio / transcript


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def discover(calls_dir: str | Path, options: IngestOptions = IngestOptions()) -> list[DiscoveredFile]:
    """Audio files and `*.transcript.json` imports under `calls_dir`, sorted by path (stable order)."""
    root = Path(calls_dir)
    if not root.is_dir():
        raise IngestError(Errors.E101, root=root)
    found = []
    exts = {e.lower() for e in options.audio_extensions}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.name.endswith(".transcript.json"):
            found.append(DiscoveredFile(p, "transcript"))
        elif p.suffix.lower() in exts:
            found.append(DiscoveredFile(p, "audio"))
    return found


def _clean(value) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def load_manifest(calls_dir: Path, options: IngestOptions) -> dict[str, dict]:
    """Rows of the manifest keyed by file name relative to calls_dir (and by bare name)."""
    path = calls_dir / options.manifest_name
    if not path.is_file():
        return {}
    rows: dict[str, dict] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "file" not in reader.fieldnames:
            raise IngestError(Errors.E102, path=path, columns=f"file,{','.join(_FIELDS)},channels,agent_channel")
        for row in reader:
            name = _clean(row.get("file"))
            if name:
                rows[name] = row
                rows.setdefault(Path(name).name, row)
    return rows


def _validated(values: dict, where: str) -> dict:
    out = {k: _clean(values.get(k)) for k in _FIELDS}
    if out["direction"]:
        out["direction"] = out["direction"].lower()
        if out["direction"] not in DIRECTIONS:
            log.warning("%s: direction %r is not one of %s; ignored", where, out["direction"], DIRECTIONS)
            out["direction"] = None
    if out["call_type"]:
        out["call_type"] = out["call_type"].lower().replace("-", "_").replace(" ", "_")
        if out["call_type"] not in CALL_TYPES:
            log.warning("%s: call type %r is not one of %s; ignored", where, out["call_type"], CALL_TYPES)
            out["call_type"] = None
    if out["language"]:
        out["language"] = out["language"].lower()[:2]
    ch = _clean(values.get("channels"))
    out["declared_channels"] = int(ch) if ch and ch.isdigit() else None
    agent_channel = (_clean(values.get("agent_channel")) or "").lower() or None
    if agent_channel not in (None, "left", "right", "auto"):
        log.warning("%s: agent_channel %r is not left/right/auto; using auto", where, agent_channel)
        agent_channel = "auto"
    out["agent_channel"] = agent_channel
    return out


def describe(path: Path, calls_dir: Path, manifest: dict[str, dict], options: IngestOptions) -> CallMeta:
    """Metadata for one audio file: manifest row, else `<file>.json` sidecar, else the file-name pattern."""
    rel = str(path.relative_to(calls_dir)) if path.is_relative_to(calls_dir) else path.name
    source, values = "none", {}
    if rel in manifest or path.name in manifest:
        source, values = "manifest", manifest.get(rel) or manifest[path.name]
    else:
        for sidecar in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
            if sidecar.is_file():
                try:
                    values = json.loads(sidecar.read_text(encoding="utf-8"))
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    raise IngestError(Errors.E103, path=sidecar, problem=f"not valid JSON: {e}") from e
                if not isinstance(values, dict):
                    raise IngestError(Errors.E103, path=sidecar, problem=f"it holds a {type(values).__name__}")
                source = "sidecar"
                break
        if source == "none" and options.filename_pattern:
            m = re.search(options.filename_pattern, path.stem)
            if m:
                source, values = "filename", m.groupdict()
    fields = _validated(values, str(path))
    sha = file_sha256(path)
    issues = []
    if source == "none" or not fields["agent_id"]:
        issues.append(W_MISSING_METADATA)
    if fields["agent_id"] and options.known_agents and fields["agent_id"] not in options.known_agents:
        issues.append(W_UNKNOWN_AGENT)
    return CallMeta(
        path=str(path),
        call_id=fields["call_id"] or f"sha-{sha[:16]}",
        audio_sha256=sha,
        agent_id=fields["agent_id"],
        team=fields["team"],
        campaign=fields["campaign"],
        direction=fields["direction"],
        call_type=fields["call_type"],
        started_at=fields["started_at"],
        language=fields["language"],
        declared_channels=fields["declared_channels"],
        agent_channel=fields["agent_channel"],
        metadata_source=source,
        issues=tuple(issues),
    )


def with_issue(meta: CallMeta, issue: str) -> CallMeta:
    return replace(meta, issues=meta.issues + (issue,)) if issue not in meta.issues else meta
