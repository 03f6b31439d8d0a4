"""Find the recordings in a calls folder and what is known about each: manifest row, JSON sidecar or file name.

A call is identified by the SHA-256 of its audio bytes, so a rerun recognises what it has already done even when
a file was renamed or moved.

A manifest row describes the file at its `file` path from the calls folder's root (`day1/001.wav`; `./` and `\\`
are normalised). A row that gives a bare file name (`001.wav`) also describes a file of that name in a sub-folder,
but only when the name is unique on both sides: one row of that name in the manifest and one file of that name
in the calls folder. Otherwise the file has no manifest metadata (it is flagged W005 unless a sidecar or the
file-name pattern describes it): `day2/001.wav` never takes the row of `day1/001.wav`.

Metadata is checked as it is read: call_ids (1..128 printable characters; any of them, since file names are
encoded one-to-one, see store/keys.py), field lengths (ingest.max_field_chars), started_at (ISO 8601), the
manifest's encoding (UTF-8) and size (ingest.max_text_file_bytes): each problem is a coded failure of the file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import posixpath
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from qa_pipeline.config import IngestOptions
from qa_pipeline.errors import W_MISSING_METADATA, W_UNKNOWN_AGENT, Errors, IngestError
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
MAX_CALL_ID_CHARS = 128


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


def _language(value) -> str | None:
    """A manifest's language as the pipeline uses it: its two-letter code, lower case ("EN-gb" -> "en")."""
    value = _clean(value)
    return value.lower()[:2] if value else None


def _clean(value) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


@dataclass(frozen=True, slots=True)
class Manifest:
    """The rows of a calls folder's manifest, by the file each describes.

    by_path: normalised relative path (`day1/001.wav`) -> row, for paths listed once.
    by_name: bare file name -> row, for rows whose `file` is a bare name listed once (see the module docstring).
    """

    path: Path | None = None
    by_path: dict[str, dict] = field(default_factory=dict)
    by_name: dict[str, dict] = field(default_factory=dict)

    def languages(self) -> tuple[str | None, ...]:
        """The languages its rows declare, once each (None for a row without one: detected)."""
        return tuple(dict.fromkeys(_language(row.get("language")) for row in self.by_path.values()))

    def row_for(self, rel: str, name_unique: Callable[[], bool]) -> dict | None:
        """The row describing the file at `rel`; `name_unique()` says whether its name is unique among the
        calls folder's files (asked only when a bare-name row could apply)."""
        row = self.by_path.get(rel)
        if row is not None:
            return row
        name = rel.rsplit("/", 1)[-1]
        if name != rel and name in self.by_name and name_unique():
            return self.by_name[name]
        return None


def _normalised(name: str) -> str:
    name = posixpath.normpath(name.replace("\\", "/"))
    return name[2:] if name.startswith("./") else name


def read_text_file(path: Path, options: IngestOptions) -> bytes:
    """The bytes of a transcript, manifest or sidecar, refused above ingest.max_text_file_bytes (E122)."""
    size = path.stat().st_size
    if size > options.max_text_file_bytes:
        raise IngestError(Errors.E122, path=path, size=size, maximum=options.max_text_file_bytes)
    return path.read_bytes()


def load_manifest(calls_dir: Path, options: IngestOptions) -> Manifest:
    """The manifest of `calls_dir` (an empty one when there is none).

    Raises:
        IngestError: no `file` column (E102), not UTF-8 CSV or a NUL byte (E123), too large (E122).
    """
    path = calls_dir / options.manifest_name
    if not path.is_file():
        return Manifest()
    raw = read_text_file(path, options)
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise IngestError(Errors.E123, path=path, problem=f"a NUL byte on line {line}")
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise IngestError(Errors.E123, path=path,
                          problem=f"byte 0x{raw[e.start]:02x} on line {line} is not UTF-8") from e
    listed: dict[str, list[dict]] = {}
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames or "file" not in reader.fieldnames:
            raise IngestError(Errors.E102, path=path, columns=f"file,{','.join(_FIELDS)},channels,agent_channel")
        for row in reader:
            name = _clean(row.get("file"))
            if name:
                listed.setdefault(_normalised(name), []).append(row)
    except csv.Error as e:
        raise IngestError(Errors.E123, path=path, problem=f"line {reader.line_num}: {e}") from e
    by_path = {}
    for rel, rows in listed.items():
        if len(rows) == 1:
            by_path[rel] = rows[0]
        else:
            log.warning("%s lists %s %d times: the file gets no manifest metadata", path, rel, len(rows))
    names = Counter(rel.rsplit("/", 1)[-1] for rel in listed)
    by_name = {rel: row for rel, row in by_path.items() if "/" not in rel and names[rel] == 1}
    return Manifest(path, by_path, by_name)


def _validated(values: dict, where: str, options: IngestOptions = IngestOptions()) -> dict:
    """The metadata fields of `values` cleaned and checked.

    Raises:
        IngestError: an invalid call_id (E121), a field over ingest.max_field_chars (E124), a started_at that is
            not ISO 8601 (E125).
    """
    out = {k: _clean(values.get(k)) for k in _FIELDS}
    for key in (*_FIELDS, "channels", "agent_channel"):
        value = out[key] if key in out else _clean(values.get(key))
        if key != "call_id" and value is not None and len(value) > options.max_field_chars:
            raise IngestError(Errors.E124, where=where, field=key, length=len(value),
                              maximum=options.max_field_chars)
    if out["call_id"] is not None:
        check_call_id(out["call_id"], where)
    if out["started_at"]:
        try:
            from qa_pipeline.pipeline.rows import parse_timestamp

            parse_timestamp(out["started_at"])
        except ValueError as e:
            raise IngestError(Errors.E125, where=where, value=out["started_at"], error=e) from e
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
    out["language"] = _language(out["language"])
    ch = _clean(values.get("channels"))
    out["declared_channels"] = int(ch) if ch and ch.isdigit() else None
    agent_channel = (_clean(values.get("agent_channel")) or "").lower() or None
    if agent_channel not in (None, "left", "right", "auto"):
        log.warning("%s: agent_channel %r is not left/right/auto; using auto", where, agent_channel)
        agent_channel = "auto"
    out["agent_channel"] = agent_channel
    return out


def check_call_id(call_id: str, where: str) -> str:
    """`call_id` if it is 1..128 printable characters.

    Any printable character is allowed, `/` too: file names are a one-to-one encoding of the id
    (store/keys.py), never a path. Control, format (bidi overrides, zero-width) and other invisible characters
    are refused: two ids that look the same must be the same id.

    Raises:
        IngestError: E121, saying which rule failed.
    """
    rule = None
    if not call_id:
        rule = "it is empty"
    elif len(call_id) > MAX_CALL_ID_CHARS:
        rule = f"it is {len(call_id)} characters long, more than {MAX_CALL_ID_CHARS}"
    elif call_id != call_id.strip():
        rule = "it starts or ends with a space"
    elif not call_id.isprintable():
        bad = next(c for c in call_id if not c.isprintable())
        rule = f"it holds the control or invisible character U+{ord(bad):04X}"
    if rule:
        raise IngestError(Errors.E121, where=where, call_id=call_id[:MAX_CALL_ID_CHARS + 2], rule=rule)
    return call_id


def describe(path: Path, calls_dir: Path, manifest: Manifest, options: IngestOptions, *,
             name_unique: bool | None = None) -> CallMeta:
    """Metadata for one audio file: manifest row, else `<file>.json` sidecar, else the file-name pattern.

    Args:
        name_unique: whether the file's name is unique among the calls folder's files (the caller that listed
            them knows); None: the folder is listed when a bare-name manifest row could apply.

    Raises:
        IngestError: the manifest or sidecar cannot be used, or the metadata is invalid (see _validated).
    """
    rel = path.relative_to(calls_dir).as_posix() if path.is_relative_to(calls_dir) else path.name

    def unique() -> bool:
        if name_unique is not None:
            return name_unique
        return sum(1 for f in discover(calls_dir, options) if f.path.name == path.name) == 1

    source, values = "none", {}
    row = manifest.row_for(rel, unique)
    if row is not None:
        source, values = "manifest", row
    else:
        for sidecar in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
            if sidecar.is_file():
                try:
                    values = json.loads(read_text_file(sidecar, options).decode("utf-8"))
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
    where = f"{manifest.path} (row of {rel})" if source == "manifest" else f"{path} ({source})"
    fields = _validated(values, where, options)
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
