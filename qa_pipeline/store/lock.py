"""Locks on a data folder, for the writes that replace shared partitions (`DataFolder.lock`).

    with folder.lock(DATASETS_LOCK):          # waits up to QA_LOCK_TIMEOUT_S (300 s), then StorageError E705
        ...read, compute, replace partitions...

Per-call files need no lock (each call has its own file, and two writers of one call write the same rows). The
derived datasets do: a rescore replaces every partition of `call_scores`, `scorecards_weekly` and `calibration`,
an import of division complaints rewrites a month's file with what it read before; two of them at once delete
each other's partitions or lose rows. They hold `DATASETS_LOCK` from their first read to their last write
(`qa_pipeline.scoring.score.rescore`, `import_reviews`, `import_division_complaints`,
`qa_pipeline.store.migrate.migrate`, and `DataFolder.replace_partitions` itself), so they run one after another.

**Local folder**: an exclusive `flock` on `<data>/_locks/<name>.lock`, polled until the timeout. The OS releases
it when its process ends, however it ends (`kill -9` included): a lock is never left behind. The lock file is
created once and never replaced or removed (a lock on a file renamed over would lock nothing); who holds it is
written beside it, `<name>.holder.json`, through the folder's atomic write, for the message of a waiter that
gives up. (`flock` is POSIX; on a network file system it is as reliable as the server's locking.)

**Object store** (a lease, best-effort by nature): the object `_locks/<name>.json` (owner token, host, pid,
acquired_at, expires_at) is created with one conditional PUT, `If-None-Match: *`: S3 answers 412 when it exists,
so of two writers exactly one creates it. It is read back (its owner must be this holder), renewed every ttl/3 by
a heartbeat thread with `If-Match` on its ETag, and deleted at release with `If-Match` (never someone else's
lease). A holder that dies stops renewing: once its lease is `ttl_s` (default 60 s) plus EXPIRY_MARGIN_S past its
last renewal, a waiter takes it over with a PUT conditional on the dead lease's ETag (one winner again). What is
not guaranteed: a holder stalled for longer than its lease (a paused VM) loses it without knowing until its next
renewal (logged as an error); expiry compares the holder's clock with the waiter's, so they must agree within the
margin; a store that ignores the conditions (S3-compatible stores without conditional writes, other fsspec
file systems, where no condition is sent) is covered by the read-back after a short pause only, which catches most
but not every concurrent writer. Lease lock files are small JSON objects written with one PUT each: the same
single-PUT write as `DataFolder.write_bytes`, with a precondition it cannot express.

**Within one process**: a thread holding a lock may take it again (re-entered; released by its outermost block);
another thread waits for it as another process would."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

from qa_pipeline.errors import Errors, StorageError

log = logging.getLogger("qa_pipeline")

LOCKS_DIR = "_locks"
DATASETS_LOCK = "datasets"  # the lock of the writes that replace shared partitions (see the module docstring)
DEFAULT_TIMEOUT_S = 300.0  # QA_LOCK_TIMEOUT_S overrides it
DEFAULT_TTL_S = 60.0  # object-store leases
EXPIRY_MARGIN_S = 2.0  # a lease counts as dead this long after it expired (clock differences between holders)
SETTLE_S = 0.3  # object stores without conditional writes: the pause before a written lease is read back
_POLL_S = (0.01, 0.5)  # first and longest pause between two tries

# Locks held by the current thread: lock location -> [lock, depth]. Process state, not a cache: a lock is held
# by a thread of a process, and a second `flock` on another descriptor of the same file would wait for itself.
_HELD = threading.local()


def timeout_default() -> float:
    try:
        return float(os.environ.get("QA_LOCK_TIMEOUT_S", "") or DEFAULT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_TIMEOUT_S


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _holder_text(note: dict | None) -> str:
    if not note:
        return "another process"
    text = f"pid {note.get('pid')} on {note.get('host')} since {note.get('acquired_at')}"
    if note.get("expires_at") is not None:
        until = dt.datetime.fromtimestamp(float(note["expires_at"]), dt.timezone.utc).isoformat(timespec="seconds")
        text += f", lease until {until}"
    return text


@contextlib.contextmanager
def folder_lock(folder, name: str, *, timeout_s: float | None = None, ttl_s: float | None = None) -> Iterator[None]:
    """Hold the lock `name` of `folder` (a DataFolder) for the block; see the module docstring.

    Raises:
        StorageError: E705, the lock was still held by someone else after `timeout_s` (QA_LOCK_TIMEOUT_S, 300 s).
        ValueError: a name that is not a plain file name.
    """
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise ValueError(f"lock name {name!r}: letters, digits, '-', '_' and '.' only")
    held = _HELD.__dict__.setdefault("locks", {})
    where = f"{LOCKS_DIR}/{name}"
    key = folder.url(where) if folder.is_uri else os.path.realpath(folder.path(where))  # one lock, however named
    if key in held:  # re-entered by the thread holding it
        held[key][1] += 1
        try:
            yield
        finally:
            held[key][1] -= 1
        return
    timeout = timeout_default() if timeout_s is None else float(timeout_s)
    lock = _Lease(folder, name, ttl_s or DEFAULT_TTL_S) if folder.is_uri else _FileLock(folder, name)
    lock.acquire(timeout)
    held[key] = [lock, 1]
    try:
        yield
    finally:
        del held[key]
        lock.release()


def _wait(deadline: float, pause: float) -> float | None:
    """Sleep before the next try; None when the deadline has passed. Returns the next pause."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    time.sleep(min(pause, left))
    return min(pause * 2, _POLL_S[1])


class _FileLock:
    """`flock` on `<data>/_locks/<name>.lock` (local folders)."""

    def __init__(self, folder, name: str):
        self.folder, self.name = folder, name
        self.path = Path(folder.path(f"{LOCKS_DIR}/{name}.lock"))
        self.note = f"{LOCKS_DIR}/{name}.holder.json"
        self.fd: int | None = None

    def _open(self) -> int:
        from qa_pipeline.store.folder import access_modes, make_private_dirs

        file_mode, _, gid = access_modes()
        make_private_dirs(self.path.parent)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, file_mode)
        except PermissionError:  # another user's lock file, shared with a group read-only: flock needs no write
            return os.open(self.path, os.O_RDONLY)
        try:  # the mode is the rule, whatever the umask (as for every file the folder writes)
            os.fchmod(fd, file_mode)
            if gid is not None:
                os.fchown(fd, -1, gid)
        except PermissionError:  # another user's file: its mode is theirs to set
            pass
        return fd

    def acquire(self, timeout_s: float) -> None:
        import fcntl

        start = time.monotonic()
        deadline, pause = start + timeout_s, _POLL_S[0]
        fd = self._open()
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                pause = _wait(deadline, pause)
                if pause is None:
                    raise StorageError(Errors.E705, location=self.folder.url(), name=self.name,
                                       holder=_holder_text(self._read_note()), waited=time.monotonic() - start)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        try:
            self.folder.write_text(self.note, json.dumps(dict(host=socket.gethostname(), pid=os.getpid(),
                                                              acquired_at=_now_iso())))
        except OSError as e:  # a read-only share may refuse the note: the lock holds without it
            log.debug("could not write the lock note %s: %s", self.note, e)

    def _read_note(self) -> dict | None:
        try:
            return json.loads(self.folder.read_bytes(self.note))
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        import fcntl

        if self.fd is None:
            return
        try:
            self.folder.remove(self.note)  # before unlocking: the next holder's note is never removed
        except OSError:
            pass
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
            self.fd = None


def _precondition_failed(error: BaseException) -> bool:
    """An object store's 412 (or 409: a concurrent conditional write) as s3fs raises it."""
    if isinstance(error, FileExistsError):
        return True
    text = f"{error} {error.__cause__ or ''} {error.__context__ or ''}"
    return any(s in text for s in ("PreconditionFailed", "pre-conditions", "ConditionalRequestConflict", "412"))


class _Lease:
    """A lease object `_locks/<name>.json` on an object store."""

    def __init__(self, folder, name: str, ttl_s: float):
        self.folder, self.name, self.ttl_s = folder, name, float(ttl_s)
        self.rel = f"{LOCKS_DIR}/{name}.json"
        self.path = folder.path(self.rel)
        self.owner = uuid.uuid4().hex
        self.conditional = folder.protocol in ("s3", "s3a")
        self.etag: str | None = None
        self.acquired_at = _now_iso()
        self.lost = False
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # ---- the object ---------------------------------------------------------------------------------------

    def _body(self) -> bytes:
        now = time.time()
        return json.dumps(dict(owner=self.owner, host=socket.gethostname(), pid=os.getpid(), name=self.name,
                               acquired_at=self.acquired_at, renewed_at=now, expires_at=now + self.ttl_s,
                               ttl_s=self.ttl_s)).encode()

    def _put(self, **condition) -> str | None:
        """Write the lease with the condition (IfNoneMatch="*" or IfMatch=etag); its ETag, or None when the
        condition failed."""
        fs = self.folder.fs
        try:
            if self.conditional:
                response = fs.pipe_file(self.path, self._body(), **condition)
            else:
                response = fs.pipe_file(self.path, self._body())
        except OSError as e:
            if _precondition_failed(e):
                return None
            raise
        etag = response.get("ETag") if isinstance(response, dict) else None
        return etag or self._current()[1] or "?"

    def _current(self) -> tuple[dict | None, str | None]:
        """(the stored lease, its ETag); (None, None) when there is none. The ETag is read first: a lease renewed
        in between then fails a write conditional on that ETag, instead of being taken over."""
        fs = self.folder.fs
        fs.invalidate_cache()
        try:
            etag = fs.info(self.path).get("ETag")
            data = json.loads(fs.cat_file(self.path))
        except FileNotFoundError:
            return None, None
        except ValueError:  # a torn or foreign object: treat it as an expired lease
            return {}, etag
        return (data if isinstance(data, dict) else {}), etag

    def _mine(self) -> bool:
        lease, _ = self._current()
        return bool(lease) and lease.get("owner") == self.owner

    # ---- acquire, renew, release ------------------------------------------------------------------------------

    def acquire(self, timeout_s: float) -> None:
        start = time.monotonic()
        deadline, pause = start + timeout_s, _POLL_S[0]
        while True:
            lease, etag = self._current()
            got = None
            if lease is None:
                got = self._put(IfNoneMatch="*")
            elif time.time() > float(lease.get("expires_at") or 0) + EXPIRY_MARGIN_S:
                log.warning("taking over the expired lock %s of %s", self.folder.url(self.rel), _holder_text(lease))
                got = self._put(IfMatch=etag) if etag else None
            if got is not None:
                if not self.conditional:
                    time.sleep(SETTLE_S)  # a concurrent writer would have overwritten it by now, most likely
                if self._mine():
                    self.etag = got
                    break
            pause = _wait(deadline, pause)
            if pause is None:
                raise StorageError(Errors.E705, location=self.folder.url(), name=self.name,
                                   holder=_holder_text(self._current()[0]), waited=time.monotonic() - start)
        self._heartbeat = threading.Thread(target=self._renew, name=f"lease-{self.name}", daemon=True)
        self._heartbeat.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not self.conditional and not self._mine():
                    etag = None
                else:
                    etag = self._put(IfMatch=self.etag)
            except OSError as e:  # the store is unreachable for now: try again at the next beat
                log.warning("could not renew the lock %s: %s", self.folder.url(self.rel), e)
                continue
            if etag is None:
                self.lost = True
                log.error("the lock %s was taken over by another holder while this one held it (stalled for "
                          "longer than its %.0f s lease?)", self.folder.url(self.rel), self.ttl_s)
                return
            self.etag = etag

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        if self.lost:
            return
        fs = self.folder.fs
        try:
            if self.conditional:
                bucket, key, _ = fs.split_path(self.path)
                try:
                    fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=self.etag)
                    return
                except OSError as e:
                    if _precondition_failed(e):
                        return  # not ours any more
                    log.debug("conditional delete refused (%s): checking the owner instead", e)
            if self._mine():
                fs.rm(self.path)
        except FileNotFoundError:
            pass
        except OSError as e:  # it expires by itself
            log.warning("could not remove the lock %s: %s", self.folder.url(self.rel), e)
        finally:
            fs.invalidate_cache()
