"""The database: where it is, how connections are set up, migrations.

    db = Database("sqlite:////srv/qa-data/review.sqlite3")     # or postgresql+psycopg://user:pw@host/qa
    db.upgrade()                                             # Alembic `upgrade head`
    with db.read() as s: ...                                  # a read-only unit of work (rolled back at the end)
    with db.write() as s: ...                                 # committed at the end, rolled back on error

SQLite (the default, `<DATA>/review.sqlite3`): every connection sets `journal_mode=WAL` (readers never wait for
the writer), `foreign_keys=ON`, `busy_timeout` and `synchronous=NORMAL` (safe with WAL). Write transactions start
with `BEGIN IMMEDIATE`, through a second engine on the same file, so two writers queue on the busy timeout at
their start instead of failing half-way when a read lock cannot be upgraded; reads start a plain deferred
transaction and run alongside. PostgreSQL: one engine for both, psycopg 3, pool pre-ping.

The schema is Alembic's (`webapp/migrations/`); `upgrade()` runs at server start and from
`qa-pipeline db upgrade`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from qa_pipeline.store.folder import access_modes, make_private_dirs

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DB_FILE = "review.sqlite3"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def default_url(data_dir: str | Path) -> str:
    """The SQLite database inside the data folder (a local folder only: an object store cannot hold one)."""
    if isinstance(data_dir, str) and "://" in data_dir and not data_dir.startswith("file://"):
        raise ValueError(f"the data folder {data_dir} is not local: give the review database with --db URL")
    return f"sqlite:///{(Path(str(data_dir).removeprefix('file://')).resolve() / DB_FILE).as_posix()}"


def _sqlite_engine(url: str, *, immediate: bool, echo: bool) -> Engine:
    engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False,
                                                         "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The review database at `url` (see the module docstring)."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                db_file = Path(parsed.database)
                make_private_dirs(db_file.parent)
                # created private before SQLite opens it: its -wal and -shm files take the same mode
                os.close(os.open(db_file, os.O_CREAT | os.O_WRONLY, access_modes()[0]))
            self.engine = _sqlite_engine(url, immediate=False, echo=echo)
            self.write_engine = _sqlite_engine(url, immediate=True, echo=echo)
        else:
            self.engine = self.write_engine = create_engine(url, echo=echo, pool_pre_ping=True)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading: nothing is committed (closing it rolls its transaction back); the objects it
        loaded stay readable after the block (detached, attributes kept)."""
        with self._read() as s:
            yield s

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose changes are committed at the end (rolled back if the block raises)."""
        with self._write() as s, s.begin():
            yield s

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to `revision` (Alembic)."""
        from alembic import command

        with self.write_engine.connect() as conn:
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


def alembic_config(url: str):
    """An Alembic Config for this database, without an alembic.ini (`alembic -c` users: see migrations/env.py)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
