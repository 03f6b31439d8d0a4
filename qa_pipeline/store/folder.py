"""Parquet datasets on disk: one file per call per dataset, written atomically, hive-partitioned by call date.

Why one file per call: a rerun or a retried task replaces exactly that call's file (never a duplicate row), two
workers never write the same file, and a reader never sees a half-written one (write to a hidden temp file, then
rename). The `calls` row is written last: a call is complete when its `calls` row exists.

A data folder may also be an object-store URI (`s3://bucket/prefix`, any fsspec filesystem): there each file is one
PUT, which the store makes visible whole or not at all, so no temp file is needed. Endpoints and credentials come
from the usual environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from qa_pipeline.errors import Errors, SchemaMismatchError
from qa_pipeline.store.keys import file_key
from qa_pipeline.store.schema import DATASETS, PARTITION, PARTITIONS, SCHEMA_VERSION, to_table


def partition_of(dataset: str) -> str:
    return PARTITIONS.get(dataset, PARTITION)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_rows(data_dir: str | Path, dataset: str, call_date: str, key: str, rows: list[dict]) -> Path:
    """Replace the file of `key` (a call id) in `dataset` with `rows`, atomically. Returns the file path."""
    schema = DATASETS[dataset]
    table = to_table(rows, schema)
    part = partition_of(dataset)
    if is_uri(data_dir):
        return _write_rows_uri(str(data_dir), dataset, part, call_date, key, table)
    folder = Path(data_dir) / dataset / f"{part}={call_date}"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{file_key(key)}.parquet"
    # hidden (readers glob *.parquet) and named after its writer, so a later run can tell a dead writer's leftovers
    tmp = folder / f".{final.name}.{_writer()}.{uuid.uuid4().hex[:12]}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, final)
    # the same key in another date partition is stale (the call's date changed): remove it
    for other in (Path(data_dir) / dataset).glob(f"{part}=*/{final.name}"):
        if other != final:
            other.unlink(missing_ok=True)
    return final


def remove_key(data_dir: str | Path, dataset: str, key: str) -> None:
    if is_uri(data_dir):
        fs, root = _fs(data_dir)
        for p in fs.glob(f"{root}/{dataset}/{partition_of(dataset)}=*/{file_key(key)}.parquet"):
            fs.rm(p)
        return
    for p in (Path(data_dir) / dataset).glob(f"{partition_of(dataset)}=*/{file_key(key)}.parquet"):
        p.unlink(missing_ok=True)


def read_dataset(data_dir: str | Path, dataset: str, columns: list[str] | None = None) -> pa.Table:
    """The whole dataset as a Table (with `call_date`), empty with the right schema if nothing is written yet.

    Raises:
        SchemaMismatchError: a file was written with another schema version.
    """
    schema = DATASETS[dataset]
    part = partition_of(dataset)
    full = schema.append(pa.field(part, pa.string()))
    filesystem = None
    if is_uri(data_dir):
        filesystem, base = _fs(data_dir)
        root = f"{base}/{dataset}"
        filesystem.invalidate_cache()  # another process may have written since this one last listed
        files = sorted(filesystem.glob(f"{root}/{part}=*/*.parquet"))
    else:
        root = Path(data_dir) / dataset
        files = sorted(str(p) for p in root.glob(f"{part}=*/*.parquet")) if root.is_dir() else []
    if not files:
        empty = full.empty_table()
        return empty.select(columns) if columns else empty
    first_meta = pq.read_schema(files[0], filesystem=filesystem).metadata or {}
    version = first_meta.get(b"schema_version", b"?").decode()
    if version != SCHEMA_VERSION:
        raise SchemaMismatchError(Errors.E700, root=root, found=version, current=SCHEMA_VERSION)
    partitioning = ds.partitioning(pa.schema([(part, pa.string())]), flavor="hive")
    dataset_ = ds.dataset(files, schema=full, format="parquet", partitioning=partitioning, partition_base_dir=str(root),
                          filesystem=filesystem)
    return dataset_.to_table(columns=columns)


def replace_partitions(data_dir: str | Path, dataset: str, tables: dict[str, list[dict]], *, key: str = "all") -> None:
    """Rewrite a derived dataset whole: one file per partition value; partitions not in `tables` are removed."""
    part = partition_of(dataset)
    for value, rows in tables.items():
        write_rows(data_dir, dataset, value, f"{key}-{value}", rows)
    keep = {f"{part}={v}" for v in tables}
    if is_uri(data_dir):
        fs, base = _fs(data_dir)
        for f in fs.glob(f"{base}/{dataset}/{part}=*/*.parquet"):
            if f.split("/")[-2] not in keep:
                fs.rm(f)
        return
    root = Path(data_dir) / dataset
    if root.is_dir():
        for folder in root.glob(f"{part}=*"):
            if folder.name not in keep:
                for f in folder.glob("*.parquet"):
                    f.unlink(missing_ok=True)


# ---- object storage and crash leftovers ----------------------------------------------------------------------

def _host() -> str:
    return _safe(socket.gethostname()).replace(".", "_")


def _writer() -> str:
    """`<host>-<pid>` of this process (computed per call: worker processes are forked or spawned)."""
    return f"{_host()}-{os.getpid()}"

STALE_TMP_S = 3600.0  # a temp file of another machine is left alone for this long (its writer may be alive)


def is_uri(data_dir: str | Path) -> bool:
    """True for `scheme://...` locations other than plain local files."""
    return isinstance(data_dir, str) and "://" in data_dir and not data_dir.startswith("file://")


def _fs(uri: str):
    """(fsspec filesystem, path inside it without trailing slash) of a data-folder URI."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(uri)
    return fs, path.rstrip("/")


def _write_rows_uri(uri: str, dataset: str, part: str, call_date: str, key: str, table: pa.Table) -> str:
    fs, base = _fs(uri)
    name = f"{file_key(key)}.parquet"
    final = f"{base}/{dataset}/{part}={call_date}/{name}"
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    fs.pipe_file(final, sink.getvalue().to_pybytes())  # one PUT: visible whole or not at all
    for other in fs.glob(f"{base}/{dataset}/{part}=*/{name}"):
        if other != final:
            fs.rm(other)
    return final


def _writer_alive(writer: str) -> bool:
    host, _, pid = writer.rpartition("-")
    if host != _host() or not pid.isdigit():
        return True  # another machine's writer: only its age can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temp_files(data_dir: str | Path, *, max_age_s: float = STALE_TMP_S) -> list[Path]:
    """Remove the temp files a killed writer left behind; returns them. Live writers' files are kept.

    Readers never see these (they are hidden and not `*.parquet`); this only reclaims space and keeps the folder
    clean. A temp file is stale when its writer process (same machine) is gone, or it is older than `max_age_s`."""
    if is_uri(data_dir) or not Path(data_dir).is_dir():
        return []
    removed = []
    now = time.time()
    for p in Path(data_dir).glob("*/*/.*.tmp"):
        parts = p.name[1:-4].split(".")  # <file>.parquet.<writer>.<uuid>
        writer = parts[-2] if len(parts) >= 4 else ""
        try:
            old = now - p.stat().st_mtime > max_age_s
        except FileNotFoundError:
            continue  # its writer just renamed it
        if old or (writer and not _writer_alive(writer)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
