"""The data folder: Parquet datasets, one file per call per dataset, hive-partitioned by call date, on a local disk
or an object store alike (`DataFolder`).

Why one file per call: a rerun or a retried task replaces exactly that call's file (never a duplicate row), two
workers never write the same file, and a reader never sees a half-written one. The `calls` row is written last: a
call is complete when its `calls` row exists.

Every write goes through one primitive, `DataFolder.write_bytes`: locally a hidden temp file in the same folder,
flushed and fsynced, renamed over the target (`os.replace`), then the folder fsynced, so after a crash or power
loss the file is the old one or the new one, whole; on an object store (`s3://bucket/prefix`, any fsspec
filesystem) one PUT, which the store makes visible whole or not at all. Endpoints and credentials come from the
usual environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...).

A `*.parquet` file a reader cannot use (torn by a copy, not Parquet at all, another dataset's or another schema's
file) is moved aside to `_quarantine/<dataset>/<partition>/` and recorded in the `failures` dataset (code E703,
stage "storage"); the read goes on without it, so one bad file never breaks every later read. A whole dataset of
another schema version is different: that is an upgrade, refused with `SchemaMismatchError` pointing to
`qa-pipeline migrate`.

Writes that replace shared partitions (`replace_partitions`: a rescore; the imports; a migration) hold a lock on
the folder (`DataFolder.lock`: an flock locally, a lease on an object store; `qa_pipeline.store.lock`).

The module-level functions (`write_rows`, `read_dataset`, ...) are thin wrappers over `DataFolder` for callers
that hold a path."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Mapping

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from qa_pipeline.errors import Errors, SchemaMismatchError, StorageError
from qa_pipeline.store.keys import file_key
from qa_pipeline.store.lock import DATASETS_LOCK
from qa_pipeline.store.schema import DATASETS, PARTITION, PARTITIONS, SCHEMA_VERSION, to_table

log = logging.getLogger("qa_pipeline")

QUARANTINE_DIR = "_quarantine"
E_QUARANTINED = Errors.E703.code  # failures.error_code of a dataset file moved aside
STALE_TMP_S = 3600.0  # a temp file of another machine is left alone for this long (its writer may be alive)
_URI_READ_THREADS = 8  # object stores: files are fetched concurrently (latency-bound)


def partition_of(dataset: str) -> str:
    return PARTITIONS.get(dataset, PARTITION)


def is_uri(data_dir: str | Path) -> bool:
    """True for `scheme://...` locations other than plain local files."""
    return isinstance(data_dir, str) and "://" in data_dir and not data_dir.startswith("file://")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _host() -> str:
    return _safe(socket.gethostname()).replace(".", "_")


def _writer() -> str:
    """`<host>-<pid>` of this process (computed per call: worker processes are forked or spawned)."""
    return f"{_host()}-{os.getpid()}"


def _fs(uri: str):
    """(fsspec filesystem, path inside it without trailing slash) of a data-folder URI."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(uri)
    return fs, path.rstrip("/")


def access_modes() -> tuple[int, int, int | None]:
    """(file mode, folder mode, group id or None) for what the pipeline writes locally.

    By default only the owner can read or list it (0600 files, 0700 folders): the data folder holds customers'
    words. `QA_DATA_GROUP=<group>` (name or number) shares it read-only with a group, e.g. the QA team's: 0640
    files, 2750 folders (setgid, so new files inherit the group).

    Raises:
        StorageError: E704, QA_DATA_GROUP names no group of this machine.
    """
    group = os.environ.get("QA_DATA_GROUP", "").strip()
    if not group:
        return 0o600, 0o700, None
    import grp

    try:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError as e:
        raise StorageError(Errors.E704, group=group) from e
    return 0o640, 0o2750, gid


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents with the modes of `access_modes` (existing ones are left as they
    are: an administrator's choice)."""
    if folder.is_dir():
        return
    _, dir_mode, gid = access_modes()
    missing = []
    for p in (folder, *folder.parents):
        if p.is_dir():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            os.mkdir(p, dir_mode)
        except FileExistsError:
            continue  # another writer made it
        os.chmod(p, dir_mode)
        if gid is not None:
            os.chown(p, -1, gid)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without directory handles (Windows): the rename is all there is
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the file itself is already on disk
    finally:
        os.close(fd)


class _BadFile(Exception):
    """A dataset file that cannot be used: `problem` says why."""

    def __init__(self, problem: str, *, version_only: str | None = None):
        super().__init__(problem)
        self.problem = problem
        self.version_only = version_only  # set when the only problem is another schema version


class DataFolder:
    """A data folder, local (`DataFolder("/srv/qa-data")`) or on an object store (`DataFolder("s3://qa/data")`).

    All paths given to its methods are relative to the folder (`calls/call_date=2026-11-24/<id>.parquet`)."""

    def __init__(self, root: str | Path):
        self.location = str(root)
        self.is_uri = is_uri(root)
        if self.is_uri:
            self.fs, self.root = _fs(str(root))
            self.protocol = self.location.split("://", 1)[0]
        else:
            from fsspec.implementations.local import LocalFileSystem

            local = str(root)[len("file://"):] if str(root).startswith("file://") else root
            self.fs = LocalFileSystem()
            self.root = Path(local).as_posix().rstrip("/") or "/"
            self.protocol = "file"

    def __repr__(self) -> str:
        return f"DataFolder({self.location!r})"

    # ---- paths ----------------------------------------------------------------------------------------------

    def path(self, relpath: str) -> str:
        """The path of `relpath` inside the folder's filesystem."""
        return f"{self.root}/{relpath}"

    def url(self, relpath: str = "") -> str:
        """A location to show or record: the URI on an object store, the path locally."""
        full = self.path(relpath) if relpath else self.root
        return f"{self.protocol}://{full}" if self.is_uri else full

    def _rel(self, path: str) -> str:
        path = str(path).split("://", 1)[-1] if self.is_uri else Path(path).as_posix()
        prefix = f"{self.root}/"
        return path[len(prefix):] if path.startswith(prefix) else path

    # ---- the write primitive and what is built on it ---------------------------------------------------------

    def write_bytes(self, relpath: str, data: bytes) -> str:
        """Replace `relpath` with `data` atomically; returns its path. The one way anything is written.

        Locally: a hidden temp file `.<name>.<host>-<pid>.<random>.tmp` in the same folder (named after its
        writer, so a later run can tell a dead writer's leftovers), flushed and fsynced, renamed over the target,
        then the folder fsynced (the rename itself survives a power loss). On an object store: one PUT."""
        if self.is_uri:
            final = self.path(relpath)
            self.fs.pipe_file(final, bytes(data))  # one PUT: visible whole or not at all
            return final
        final = Path(self.path(relpath))
        file_mode, _, gid = access_modes()
        make_private_dirs(final.parent)
        tmp = final.parent / f".{final.name}.{_writer()}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
            with open(fd, "wb") as f:
                os.fchmod(fd, file_mode)  # the umask may have taken bits away; the mode is the rule
                if gid is not None:
                    os.fchown(fd, -1, gid)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)
        return str(final)

    def write_text(self, relpath: str, text: str, encoding: str = "utf-8") -> str:
        return self.write_bytes(relpath, text.encode(encoding))

    def read_bytes(self, relpath: str) -> bytes:
        return self.fs.cat_file(self.path(relpath))

    def exists(self, relpath: str) -> bool:
        if self.is_uri:
            self.fs.invalidate_cache()
        return self.fs.exists(self.path(relpath))

    def glob(self, pattern: str) -> list[str]:
        """Relative paths matching `pattern` (e.g. `calls/*/*.parquet`), sorted."""
        if not self.is_uri:
            root = Path(self.root)
            return sorted(p.relative_to(root).as_posix() for p in root.glob(pattern)) if root.is_dir() else []
        self.fs.invalidate_cache()  # another process may have written since this one last listed
        return sorted(self._rel(p) for p in self.fs.glob(self.path(pattern)))

    def remove(self, relpath: str) -> None:
        if self.is_uri:
            try:
                self.fs.rm(self.path(relpath))
            except FileNotFoundError:
                pass
            return
        Path(self.path(relpath)).unlink(missing_ok=True)

    # ---- datasets ----------------------------------------------------------------------------------------------

    def dataset_files(self, dataset: str, partitions: Iterable[str] | None = None) -> list[str]:
        """Relative paths of the dataset's `*.parquet` files, sorted; only those partition values when given."""
        part = partition_of(dataset)
        if partitions is None:
            return self.glob(f"{dataset}/{part}=*/*.parquet")
        out: list[str] = []
        for value in sorted(set(partitions)):
            out += self.glob(f"{dataset}/{part}={value}/*.parquet")
        return out

    def write_parquet(self, dataset: str, partition_value: str, key: str, rows: list[Mapping] | pa.Table) -> str:
        """Replace the file of `key` (a call id) in `dataset` with `rows` (dicts, or a Table of the dataset's
        schema), atomically; the same key in another partition (the call's date changed) is removed. Returns
        the file's path."""
        schema = DATASETS[dataset]
        table = rows if isinstance(rows, pa.Table) else to_table(rows, schema)
        if not table.schema.equals(schema, check_metadata=False):
            table = table.select(schema.names).cast(schema)
        table = table.replace_schema_metadata(schema.metadata)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        part = partition_of(dataset)
        name = f"{file_key(key)}.parquet"
        rel = f"{dataset}/{part}={partition_value}/{name}"
        final = self.write_bytes(rel, sink.getvalue().to_pybytes())
        for other in self.glob(f"{dataset}/{part}=*/{name}"):
            if other != rel:
                self.remove(other)
        return final

    def remove_key(self, dataset: str, key: str) -> None:
        for rel in self.glob(f"{dataset}/{partition_of(dataset)}=*/{file_key(key)}.parquet"):
            self.remove(rel)

    def replace_partitions(self, dataset: str, tables: Mapping[str, list[Mapping] | pa.Table], *,
                           key: str = "all") -> None:
        """Rewrite a derived dataset whole: one file per partition value; partitions not in `tables` lose their
        files. Under the folder's DATASETS_LOCK (re-entered when the caller holds it already, as a rescore does
        from its first read).

        Raises:
            StorageError: E705, the lock could not be had (`lock`)."""
        part = partition_of(dataset)
        items = list(tables.items())
        with self.lock(DATASETS_LOCK):
            # Parquet encoding releases the GIL: several partitions are encoded at once
            with ThreadPoolExecutor(max(1, min(4, len(items), os.cpu_count() or 1))) as ex:
                list(ex.map(lambda item: self.write_parquet(dataset, item[0], f"{key}-{item[0]}", item[1]), items))
            keep = {f"{part}={v}" for v in tables}
            for rel in self.dataset_files(dataset):
                if rel.split("/")[-2] not in keep:
                    self.remove(rel)

    def lock(self, name: str = DATASETS_LOCK, *, timeout_s: float | None = None, ttl_s: float | None = None):
        """An exclusive lock on this data folder, as a context manager: `with folder.lock("datasets"): ...`.
        Locally an `flock` on `_locks/<name>.lock` (released by the OS when the process dies); on an object store
        a lease `_locks/<name>.json` made with a conditional PUT (expires `ttl_s` after its holder stops renewing
        it). Re-entrant within a thread. See `qa_pipeline.store.lock`.

        Raises:
            StorageError: E705, still held by another process or thread after `timeout_s` (default
                QA_LOCK_TIMEOUT_S, 300 s).
        """
        from qa_pipeline.store.lock import folder_lock

        return folder_lock(self, name, timeout_s=timeout_s, ttl_s=ttl_s)

    def read_dataset(self, dataset: str, columns: list[str] | None = None, *,
                     partitions: Iterable[str] | None = None) -> pa.Table:
        """The dataset as a Table of its schema plus the partition column (e.g. `call_date`); empty with the right
        schema when nothing is written yet. Only those partition values when `partitions` is given.

        Every file's footer is checked first (Parquet, this dataset's columns and types, this schema version), and
        a file whose data then fails to read is found file by file; a file that fails is quarantined (see the
        module docstring) and the read goes on without it.

        Raises:
            SchemaMismatchError: the dataset was written whole by another schema version (run `qa-pipeline
                migrate`).
        """
        part = partition_of(dataset)
        full = DATASETS[dataset].append(pa.field(part, pa.string()))
        wanted = columns or full.names
        empty = pa.schema([full.field(c) for c in wanted]).empty_table()
        files = self.dataset_files(dataset, partitions)
        footers = self._map(lambda rel: self._read_file(dataset, rel, None), files)
        good = [rel for rel, f in zip(files, footers) if isinstance(f, pa.Table)]
        self._settle(dataset, files, footers, any_good=bool(good))
        if not good:
            return empty
        try:  # one multi-threaded scan of the checked files
            return ds.dataset([self.path(rel) for rel in good], schema=full, format="parquet",
                              partitioning=ds.partitioning(pa.schema([(part, pa.string())]), flavor="hive"),
                              partition_base_dir=self.path(dataset),
                              filesystem=self.fs if self.is_uri else None).to_table(columns=wanted)
        except (pa.ArrowException, OSError):  # a file torn inside (its footer was fine), or replaced meanwhile
            results = self._map(lambda rel: self._read_file(dataset, rel, wanted), good)
            self._settle(dataset, good, results, any_good=True)
            tables = [r for r in results if isinstance(r, pa.Table)]
            return pa.concat_tables(tables) if tables else empty

    def check_dataset(self, dataset: str, relpaths: Iterable[str] | None = None, *, read: bool = True) -> list[str]:
        """Check every file of `dataset` (or just `relpaths`): its footer (Parquet, this dataset's columns and
        types, this schema version) and, with `read`, its data; quarantine those that fail. Returns the
        quarantined paths. For readers other than `read_dataset` (DuckDB), before reading and after a bad file.

        Raises:
            SchemaMismatchError: as `read_dataset`.
        """
        files = self.dataset_files(dataset) if relpaths is None else list(relpaths)
        columns = DATASETS[dataset].names if read else None
        results = self._map(lambda rel: self._read_file(dataset, rel, columns), files)
        if relpaths is not None and any(isinstance(r, _BadFile) and r.version_only for r in results):
            return self.check_dataset(dataset, read=read)  # another version: only the whole dataset tells
        return self._settle(dataset, files, results, any_good=any(isinstance(r, pa.Table) for r in results))

    def _settle(self, dataset: str, files: list[str], results: list, *, any_good: bool) -> list[str]:
        """Quarantine the bad files among `results`; refuse a dataset whose readable files are all of another
        schema version (an upgrade: `qa-pipeline migrate`). Returns the quarantined paths."""
        bad = [(rel, r) for rel, r in zip(files, results) if isinstance(r, _BadFile) and not r.version_only]
        other = [(rel, r) for rel, r in zip(files, results) if isinstance(r, _BadFile) and r.version_only]
        moved = [rel for rel, r in bad if self.quarantine(dataset, rel, r.problem)]
        if other and not any_good:
            raise SchemaMismatchError(Errors.E700, root=self.url(dataset), found=other[0][1].version_only,
                                      current=SCHEMA_VERSION)
        moved += [rel for rel, r in other if self.quarantine(dataset, rel, r.problem)]
        return moved

    def file_version(self, relpath: str) -> str:
        """The `schema_version` a dataset file was written with ("?" when it has none)."""
        with self.fs.open(self.path(relpath), "rb") as f:
            meta = pq.read_schema(f).metadata or {}
        return meta.get(b"schema_version", b"?").decode()

    def _map(self, fn, items: list):
        if self.is_uri and len(items) > 1:
            with ThreadPoolExecutor(min(_URI_READ_THREADS, len(items))) as ex:
                return list(ex.map(fn, items))
        return [fn(x) for x in items]

    def _read_file(self, dataset: str, rel: str, columns: list[str] | None) -> pa.Table | _BadFile | None:
        """One file's table (with the partition column; an empty table when `columns` is None: only the footer
        is checked), a _BadFile, or None when it vanished meanwhile (a writer replaced or removed it: not a
        problem)."""
        schema = DATASETS[dataset]
        part = partition_of(dataset)
        for attempt in (1, 2):
            try:
                if self.is_uri:
                    with self.fs.open(self.path(rel), "rb") as f:
                        return self._parse(f, schema, part, rel, columns)
                return self._parse(self.path(rel), schema, part, rel, columns)
            except FileNotFoundError:
                return None
            except _BadFile as e:
                return e
            except (pa.ArrowException, OSError, ValueError) as e:
                if attempt == 2:  # read twice: a file replaced during the first read is not corrupt
                    return _BadFile(f"cannot be read as Parquet ({type(e).__name__}: {e})")
        return None

    @staticmethod
    def _parse(source, schema: pa.Schema, part: str, rel: str, columns: list[str] | None) -> pa.Table:
        with pq.ParquetFile(source) as pf:
            return DataFolder._parse_open(pf, schema, part, rel, columns)

    @staticmethod
    def _parse_open(pf: pq.ParquetFile, schema: pa.Schema, part: str, rel: str, columns: list[str] | None) -> pa.Table:
        physical = pf.schema_arrow
        version = (physical.metadata or {}).get(b"schema_version", b"?").decode()
        if version not in (SCHEMA_VERSION, "?"):
            raise _BadFile(f"was written with schema version {version}, not {SCHEMA_VERSION}", version_only=version)
        got = {f.name: f.type for f in physical}
        want = {f.name: f.type for f in schema}
        if version == "?" or list(got) != list(want) or any(not got[n].equals(t) for n, t in want.items()):
            missing = [n for n in want if n not in got]
            extra = [n for n in got if n not in want]
            types = [n for n, t in want.items() if n in got and not got[n].equals(t)]
            raise _BadFile(f"is not a file of this dataset (schema version {version}; missing columns {missing[:5]}, "
                           f"unknown columns {extra[:5]}, other types {types[:5]})")
        if columns is None:  # the footer only
            return pa.table({})
        data_cols = [c for c in columns if c != part]
        table = pf.read(columns=data_cols)
        table = pa.Table.from_arrays(table.columns, schema=pa.schema([schema.field(c) for c in data_cols]))
        if part in columns:
            value = rel.split("/")[-2].split("=", 1)[-1]
            column = pa.repeat(pa.scalar(value, pa.string()), table.num_rows)
            table = table.append_column(pa.field(part, pa.string()), column)
        return table.select(columns)

    # ---- bad files ----------------------------------------------------------------------------------------------

    def quarantine(self, dataset: str, relpath: str, problem: str) -> str | None:
        """Move a dataset file a reader cannot use to `_quarantine/<dataset>/<partition>/` and record it in
        `failures` (E703). Returns where it went, or None when it was gone already (another reader moved it)."""
        stamp = dt.datetime.now(dt.timezone.utc)
        parts = relpath.split("/")
        name = parts[-1]
        partition = parts[-2] if len(parts) >= 3 else "_"
        dest = f"{QUARANTINE_DIR}/{dataset}/{partition}/{name}.{stamp:%Y%m%dT%H%M%S%f}.quarantined"
        try:
            if self.is_uri:
                self.fs.mv(self.path(relpath), self.path(dest))
            else:
                make_private_dirs(Path(self.path(dest)).parent)
                os.replace(self.path(relpath), self.path(dest))
        except FileNotFoundError:
            return None
        message = Errors.E703.format(relpath=relpath, problem=problem, dest=dest)
        log.warning("quarantined %s: %s", self.url(relpath), message)
        value = partition.split("=", 1)[-1]
        date = value if partition_of(dataset) == PARTITION and partition != "_" else stamp.date().isoformat()
        fid = "storage-" + hashlib.sha256(f"{relpath}|{stamp.isoformat()}".encode()).hexdigest()[:16]
        call_id = name[: -len(".parquet")] if partition_of(dataset) == PARTITION else None
        try:
            self.write_parquet("failures", date, fid, [dict(
                failure_id=fid, path=self.url(relpath), call_id=call_id, stage="storage", error_code=E_QUARANTINED,
                message=message, failed_at=stamp)])
        except Exception as e:  # the file is out of the way already; a failed record must not stop the read
            log.error("could not record the quarantine of %s in failures: %s", relpath, e)
        return dest

    # ---- crash leftovers ----------------------------------------------------------------------------------------

    def clean_stale_temp_files(self, *, max_age_s: float = STALE_TMP_S) -> list[Path]:
        """Remove the temp files a killed writer left behind; returns them. Live writers' files are kept.

        Readers never see these (they are hidden and not `*.parquet`); this only reclaims space and keeps the
        folder clean. A temp file is stale when its writer process (same machine) is gone, or it is older than
        `max_age_s`. Object stores have none (a PUT leaves nothing behind)."""
        root = Path(self.root)
        if self.is_uri or not root.is_dir():
            return []
        removed = []
        now = time.time()
        for p in root.rglob(".*.tmp"):
            parts = p.name[1:-4].split(".")  # <file>.<ext>.<writer>.<uuid>
            writer = parts[-2] if len(parts) >= 4 else ""
            try:
                old = now - p.stat().st_mtime > max_age_s
            except FileNotFoundError:
                continue  # its writer just renamed it
            if old or (writer and not _writer_alive(writer)):
                p.unlink(missing_ok=True)
                removed.append(p)
        return removed


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


def as_folder(data_dir: str | Path | DataFolder) -> DataFolder:
    return data_dir if isinstance(data_dir, DataFolder) else DataFolder(data_dir)


# ---- thin wrappers for callers holding a path -----------------------------------------------------------------

def write_rows(data_dir: str | Path | DataFolder, dataset: str, call_date: str, key: str,
               rows: list[dict] | pa.Table) -> Path | str:
    """Replace the file of `key` (a call id) in `dataset` with `rows`, atomically. Returns the file path."""
    folder = as_folder(data_dir)
    final = folder.write_parquet(dataset, call_date, key, rows)
    return final if folder.is_uri else Path(final)


def remove_key(data_dir: str | Path | DataFolder, dataset: str, key: str) -> None:
    as_folder(data_dir).remove_key(dataset, key)


def read_dataset(data_dir: str | Path | DataFolder, dataset: str, columns: list[str] | None = None) -> pa.Table:
    """The whole dataset as a Table (with `call_date`); see `DataFolder.read_dataset`."""
    return as_folder(data_dir).read_dataset(dataset, columns)


def replace_partitions(data_dir: str | Path | DataFolder, dataset: str, tables: dict[str, list[dict] | pa.Table], *,
                       key: str = "all") -> None:
    as_folder(data_dir).replace_partitions(dataset, tables, key=key)


def clean_stale_temp_files(data_dir: str | Path | DataFolder, *, max_age_s: float = STALE_TMP_S) -> list[Path]:
    return as_folder(data_dir).clean_stale_temp_files(max_age_s=max_age_s)
