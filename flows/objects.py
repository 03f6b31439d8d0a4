"""Calls on object storage: listing, safe local copies, and knowing what was already fetched.

Two rules. A key never becomes a local path outside the staging folder (`calls/../../x.wav`, `calls//etc/x.wav`,
an absolute key: refused with a coded failure). And an object already processed is not downloaded again: the data
folder keeps, per object, the size and ETag it had when it was fetched and the SHA-256 of its content
(`<data>/_objects/<id>.json`), so the next run compares the listing with it and only fetches what is new or
changed."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from qa_pipeline.errors import Errors, IngestError
from qa_pipeline.store.folder import DataFolder

INDEX_FOLDER = "_objects"


@dataclass(frozen=True, slots=True)
class StoredObject:
    uri: str
    size: int | None
    etag: str | None

    def same_as(self, entry: dict | None) -> bool:
        """True when `entry` (an index entry) describes this very object: same size and, where the store gives
        one, the same ETag (an overwritten object gets a new ETag even at the same size)."""
        if not entry or self.size is None or entry.get("size") != self.size:
            return False
        return self.etag is None or entry.get("etag") == self.etag


def relative_key(root: str, key: str) -> str:
    """`key` relative to `root`, refusing anything that could land outside a local copy of `root`.

    Raises:
        IngestError: E130 for `..` or `.` segments, empty segments (`a//b`), absolute or backslash keys, and keys
            outside `root`.
    """
    root = root.rstrip("/")
    if not key.startswith(root + "/"):
        raise IngestError(Errors.E130, key=key, problem=f"it is not under {root}/")
    rel = key[len(root) + 1:]
    segments = rel.split("/")
    if not rel or "\\" in rel or rel.startswith("/") or any(s in ("", ".", "..") for s in segments):
        raise IngestError(Errors.E130, key=key, problem="it has empty, '.', '..' or absolute path segments")
    return rel


def local_path(staging: Path, rel: str) -> Path:
    """Where `rel` is copied under `staging`; checked to stay inside it (E130 otherwise)."""
    base = staging.resolve()
    target = (base / rel).resolve()
    if os.path.commonpath([base, target]) != str(base) or target == base:
        raise IngestError(Errors.E130, key=rel, problem=f"it resolves outside the staging folder {base}")
    return target


def list_objects(fs, root: str, protocol: str, *, extensions: set[str]) -> list[StoredObject]:
    """The call files under `root` (audio with one of `extensions`, `*.transcript.json`), with size and ETag."""
    out = []
    fs.invalidate_cache()  # a listing cached by an earlier run in this process would hide new ETags
    for path, info in sorted(fs.find(root, detail=True).items()):
        name = path.rsplit("/", 1)[-1]
        if name.startswith("."):
            continue
        if name.endswith(".transcript.json") or os.path.splitext(name)[1].lower() in extensions:
            etag = info.get("ETag") or info.get("etag")
            out.append(StoredObject(f"{protocol}://{path}", info.get("size"), str(etag).strip('"') if etag else None))
    return out


def _entry_name(uri: str) -> str:
    return f"{INDEX_FOLDER}/{hashlib.sha256(uri.encode()).hexdigest()[:32]}.json"


def load_index(data: DataFolder) -> dict[str, dict]:
    """uri -> {"size", "etag", "sha256"} of every object fetched into this data folder."""
    names = data.glob(f"{INDEX_FOLDER}/*.json")
    if not names:
        return {}
    contents = data.fs.cat([data.path(n) for n in names], on_error="omit")  # one batch of GETs on a store
    index = {}
    for raw in contents.values():
        try:
            entry = json.loads(raw)
            index[entry["uri"]] = entry
        except (ValueError, KeyError, TypeError):
            continue  # a torn entry only costs a download
    return index


def record_object(data: DataFolder, obj: StoredObject, sha256: str) -> None:
    data.write_text(_entry_name(obj.uri), json.dumps({"uri": obj.uri, "size": obj.size, "etag": obj.etag,
                                                      "sha256": sha256}))


STAGING_ROOT = "qa-pipeline-staging"


def staging_root() -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / STAGING_ROOT


class Staging:
    """A private folder (mode 0700) for one task's downloaded call, removed when the task ends. Named after its
    process, so that after a crash (kill -9, OOM) the next discovery removes it: downloaded customer audio never
    outlives its task for longer than until the next run."""

    def __enter__(self) -> Path:
        import socket
        import uuid

        root = staging_root()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = root / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.path.mkdir(mode=0o700)
        return self.path

    def __exit__(self, *exc) -> None:
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)


def clean_stale_staging() -> list[Path]:
    """Remove the staging folders of dead processes on this machine; returns them."""
    import shutil
    import socket

    root = staging_root()
    removed = []
    if not root.is_dir():
        return removed
    host = socket.gethostname()
    for folder in root.iterdir():
        name_host, _, rest = folder.name.rpartition("-")[0].rpartition("-")
        pid = rest
        if name_host != host or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
