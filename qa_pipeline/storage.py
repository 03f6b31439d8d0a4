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
from .schema import DATASETS, PARTITION, PARTITIONS, SCHEMA_VERSION, to_table


def partition_of(dataset: str) -> str:
    return PARTITIONS.get(dataset, PARTITION)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_rows(data_dir: str | Path, dataset: str, call_date: str, key: str, rows: list[dict]) -> Path:
    """Replace the file of `key` (a call id) in `dataset` with `rows`, atomically. Returns the file path."""
    schema = DATASETS[dataset]
    table = to_table(rows, schema)
    part = partition_of(dataset)
    folder = Path(data_dir) / dataset / f"{part}={call_date}"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{_safe(key)}.parquet"
    tmp = folder / f".{final.name}.{uuid.uuid4().hex}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, final)
    # the same key in another date partition is stale (the call's date changed): remove it
    for other in (Path(data_dir) / dataset).glob(f"{part}=*/{final.name}"):
        if other != final:
            other.unlink(missing_ok=True)
    return final


def remove_key(data_dir: str | Path, dataset: str, key: str) -> None:
    for p in (Path(data_dir) / dataset).glob(f"{partition_of(dataset)}=*/{_safe(key)}.parquet"):
        p.unlink(missing_ok=True)


def read_dataset(data_dir: str | Path, dataset: str, columns: list[str] | None = None) -> pa.Table:
    """The whole dataset as a Table (with `call_date`), empty with the right schema if nothing is written yet.

    Raises:
        SchemaMismatchError: a file was written with another schema version.
    """
    schema = DATASETS[dataset]
    root = Path(data_dir) / dataset
    part = partition_of(dataset)
    full = schema.append(pa.field(part, pa.string()))
    files = sorted(str(p) for p in root.glob(f"{part}=*/*.parquet")) if root.is_dir() else []
    if not files:
        empty = full.empty_table()
        return empty.select(columns) if columns else empty
    first_meta = pq.read_schema(files[0]).metadata or {}
    version = first_meta.get(b"schema_version", b"?").decode()
    if version != SCHEMA_VERSION:
        raise SchemaMismatchError(
            f"{root} was written with schema version {version}, this qa-pipeline writes {SCHEMA_VERSION}; "
            "run `qa-pipeline migrate --data DIR` or process into a new data folder"
        )
    partitioning = ds.partitioning(pa.schema([(part, pa.string())]), flavor="hive")
    dataset_ = ds.dataset(files, schema=full, format="parquet", partitioning=partitioning, partition_base_dir=str(root))
    return dataset_.to_table(columns=columns)


def replace_partitions(data_dir: str | Path, dataset: str, tables: dict[str, list[dict]], *, key: str = "all") -> None:
    """Rewrite a derived dataset whole: one file per partition value; partitions not in `tables` are removed."""
    root = Path(data_dir) / dataset
    part = partition_of(dataset)
    for value, rows in tables.items():
        write_rows(data_dir, dataset, value, f"{key}-{value}", rows)
    keep = {f"{part}={v}" for v in tables}
    if root.is_dir():
        for folder in root.glob(f"{part}=*"):
            if folder.name not in keep:
                for f in folder.glob("*.parquet"):
                    f.unlink(missing_ok=True)
