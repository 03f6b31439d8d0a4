"""Bring a data folder to the current SCHEMA_VERSION, or refuse clearly.

A migration is registered under the version it upgrades *from* and turns one file's table into the next
version's. Version 1 is the first: there is nothing to migrate yet, so any other version is refused with a
message saying what to do. Migrated files are written through the data folder's one write primitive
(`DataFolder.write_bytes`: atomic locally, one PUT on an object store), so a migration killed halfway leaves every
file either migrated or not, never torn; running it again finishes the job. It holds the data folder's
DATASETS_LOCK while it rewrites (no rescore or import at the same time), and a file that a run rewrote since it
was checked is left as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from qa_pipeline.errors import Errors, SchemaMismatchError
from qa_pipeline.store.folder import DataFolder, as_folder
from qa_pipeline.store.lock import DATASETS_LOCK
from qa_pipeline.store.schema import DATASETS, SCHEMA_VERSION

# from-version -> (to-version, function(table) -> table)
MIGRATIONS: dict[str, tuple[str, Callable[[pa.Table], pa.Table]]] = {}
UNREADABLE = "unreadable"  # counted, left in place: the next read quarantines it


def file_version(path: str | Path) -> str:
    """The schema version a local dataset file was written with ("?" when it has none)."""
    return ((pq.read_schema(path).metadata or {}).get(b"schema_version", b"?")).decode()


def migrate(data_dir: str | Path | DataFolder, *, dry_run: bool = False) -> dict[str, dict[str, int]]:
    """Check (and with migrations registered, rewrite) every dataset file. Returns {dataset: {version: files}}
    (files that cannot be read at all are counted under "unreadable" and left for the readers to quarantine).

    Raises:
        SchemaMismatchError: a file has a version with no migration path to SCHEMA_VERSION (nothing is changed).
    """
    folder = as_folder(data_dir)
    found: dict[str, dict[str, int]] = {}
    plan: list[tuple[str, str]] = []
    for dataset in DATASETS:
        for rel in folder.dataset_files(dataset):
            try:
                v = folder.file_version(rel)
            except (pa.ArrowException, OSError, ValueError):
                v = UNREADABLE
            found.setdefault(dataset, {}).setdefault(v, 0)
            found[dataset][v] += 1
            if v == UNREADABLE:
                continue
            step = v
            while step != SCHEMA_VERSION:
                if step not in MIGRATIONS:
                    raise SchemaMismatchError(Errors.E702, path=folder.url(rel), found=v, current=SCHEMA_VERSION,
                                              known=sorted(MIGRATIONS) or "none")
                step = MIGRATIONS[step][0]
            if v != SCHEMA_VERSION:
                plan.append((rel, v))
    if dry_run:
        return found
    with folder.lock(DATASETS_LOCK):  # no rescore or import rewrites the derived datasets meanwhile
        for rel, v in plan:
            try:
                with folder.fs.open(folder.path(rel), "rb") as f:
                    pf = pq.ParquetFile(f)
                    now = (pf.schema_arrow.metadata or {}).get(b"schema_version", b"?").decode()
                    if now != v:  # rewritten since it was planned (a run replaced the call's file): leave it
                        continue
                    table = pf.read()
            except FileNotFoundError:  # removed since it was planned
                continue
            while v != SCHEMA_VERSION:
                v, fn = MIGRATIONS[v]
                table = fn(table)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="zstd")
            folder.write_bytes(rel, sink.getvalue().to_pybytes())
    return found
