"""Parquet datasets on disk: one file per call per dataset, written atomically, hive-partitioned by call date.

Why one file per call: a rerun or a retried task replaces exactly that call's file (never a duplicate row), two
workers never write the same file, and a reader never sees a half-written one (write to a hidden temp file, then
rename). The `calls` row is written last: a call is complete when its `calls` row exists."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .errors import SchemaMismatchError
from .schema import DATASETS, PARTITION, SCHEMA_VERSION, to_table

_PARTITIONING = ds.partitioning(pa.schema([(PARTITION, pa.string())]), flavor="hive")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_rows(data_dir: str | Path, dataset: str, call_date: str, key: str, rows: list[dict]) -> Path:
    """Replace the file of `key` (a call id) in `dataset` with `rows`, atomically. Returns the file path."""
    schema = DATASETS[dataset]
    table = to_table(rows, schema)
    folder = Path(data_dir) / dataset / f"{PARTITION}={call_date}"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{_safe(key)}.parquet"
    tmp = folder / f".{final.name}.{uuid.uuid4().hex}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, final)
    # the same key in another date partition is stale (the call's date changed): remove it
    for other in (Path(data_dir) / dataset).glob(f"{PARTITION}=*/{final.name}"):
        if other != final:
            other.unlink(missing_ok=True)
    return final


def remove_key(data_dir: str | Path, dataset: str, key: str) -> None:
    for p in (Path(data_dir) / dataset).glob(f"{PARTITION}=*/{_safe(key)}.parquet"):
        p.unlink(missing_ok=True)


def read_dataset(data_dir: str | Path, dataset: str, columns: list[str] | None = None) -> pa.Table:
    """The whole dataset as a Table (with `call_date`), empty with the right schema if nothing is written yet.

    Raises:
        SchemaMismatchError: a file was written with another schema version.
    """
    schema = DATASETS[dataset]
    root = Path(data_dir) / dataset
    full = schema.append(pa.field(PARTITION, pa.string()))
    if not root.is_dir() or not any(root.glob(f"{PARTITION}=*/*.parquet")):
        empty = full.empty_table()
        return empty.select(columns) if columns else empty
    files = sorted(str(p) for p in root.glob(f"{PARTITION}=*/*.parquet"))
    first_meta = pq.read_schema(files[0]).metadata or {}
    version = first_meta.get(b"schema_version", b"?").decode()
    if version != SCHEMA_VERSION:
        raise SchemaMismatchError(
            f"{root} was written with schema version {version}, this qa-pipeline writes {SCHEMA_VERSION}; "
            "run `qa-pipeline migrate --data DIR` or process into a new data folder"
        )
    dataset_ = ds.dataset(files, schema=full, format="parquet", partitioning=_PARTITIONING, partition_base_dir=str(root))
    return dataset_.to_table(columns=columns)
