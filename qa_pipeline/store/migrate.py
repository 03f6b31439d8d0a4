"""Bring a data folder to the current SCHEMA_VERSION, or refuse clearly.

A migration is registered under the version it upgrades *from* and turns one file's table into the next
version's. Version 1 is the first: there is nothing to migrate yet, so any other version is refused with a
message saying what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from qa_pipeline.errors import Errors, SchemaMismatchError
from qa_pipeline.store.schema import DATASETS, SCHEMA_VERSION
from qa_pipeline.store.folder import is_uri, partition_of

# from-version -> (to-version, function(table) -> table)
MIGRATIONS: dict[str, tuple[str, Callable[[pa.Table], pa.Table]]] = {}


def file_version(path: str | Path) -> str:
    return ((pq.read_schema(path).metadata or {}).get(b"schema_version", b"?")).decode()


def migrate(data_dir: str | Path, *, dry_run: bool = False) -> dict[str, dict[str, int]]:
    """Check (and with migrations registered, rewrite) every dataset file. Returns {dataset: {version: files}}.

    Raises:
        SchemaMismatchError: a file has a version with no migration path to SCHEMA_VERSION (nothing is changed).
    """
    if is_uri(data_dir):
        raise SchemaMismatchError(Errors.E701, data_dir=data_dir)
    found: dict[str, dict[str, int]] = {}
    plan: list[tuple[Path, str]] = []
    for dataset in DATASETS:
        root = Path(data_dir) / dataset
        for f in sorted(root.glob(f"{partition_of(dataset)}=*/*.parquet")) if root.is_dir() else []:
            v = file_version(f)
            found.setdefault(dataset, {}).setdefault(v, 0)
            found[dataset][v] += 1
            step = v
            while step != SCHEMA_VERSION:
                if step not in MIGRATIONS:
                    raise SchemaMismatchError(Errors.E702, path=f, found=v, current=SCHEMA_VERSION,
                                              known=sorted(MIGRATIONS) or "none")
                step = MIGRATIONS[step][0]
            if v != SCHEMA_VERSION:
                plan.append((f, v))
    if dry_run:
        return found
    import os
    import uuid

    for f, v in plan:
        table = pq.read_table(f, partitioning=None)
        while v != SCHEMA_VERSION:
            v, fn = MIGRATIONS[v]
            table = fn(table)
        tmp = f.with_name(f".{f.name}.{uuid.uuid4().hex[:12]}.tmp")
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, f)
    return found
