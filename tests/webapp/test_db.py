"""The review database: the migrations create exactly the models' schema; SQLite runs in WAL mode with foreign
keys; optimistic locking on evaluations; and the same app on a real PostgreSQL server (Debian's `postgresql`
package, started in a temporary folder on a free port; skipped with the reason when it is not installed):
migrations, a login over HTTP, a verdict round trip and the append-only audit log."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm.exc import StaleDataError

from tests.webapp.conftest import add_users, login, make_settings


def _schema_diff(db) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from webapp.models import Base

    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)


def test_migrations_create_exactly_the_models(tmp_path):
    from webapp.db import Database, head_revision

    db = Database(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    assert db.current_revision() is None
    db.upgrade()
    assert db.current_revision() == head_revision() == "0002"
    assert _schema_diff(db) == []
    db.upgrade()  # idempotent
    db.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(client, app):
    db = app.state.qa.db
    assert db.url.endswith("/review.sqlite3")
    for engine in (db.engine, db.write_engine):
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    with pytest.raises(Exception, match="FOREIGN KEY"):
        with db.write() as s:
            s.execute(text("INSERT INTO user_teams (user_id, team) VALUES (999999, 'x')"))


def test_default_database_lives_in_the_data_folder(tmp_path):
    from webapp.config import AppSettings

    assert AppSettings(data_dir=tmp_path).database_url == f"sqlite:///{tmp_path.resolve()}/review.sqlite3"
    with pytest.raises(ValueError, match="--db"):
        AppSettings(data_dir="s3://bucket/qa").database_url


def _verdict_round_trip(db) -> None:
    """An evaluation with a verdict, read back; a stale copy of it cannot overwrite the newer one."""
    from webapp.models import Evaluation, User, Verdict

    with db.write() as s:
        rev = s.scalar(select(User).where(User.username == "rev-alpha"))
        ev = Evaluation(call_id="c1", reviewer_id=rev.id, sample_filters={"team": "alpha"})
        ev.verdicts = [Verdict(target_type="flag", target_id="f1", auto_answer="raised", human_answer="dismissed",
                               comment="said <politely>", evidence_start_s=1.5, evidence_end_s=2.5,
                               by_user_id=rev.id)]
        s.add(ev)
    with db.read() as s:
        got = s.scalar(select(Evaluation).where(Evaluation.call_id == "c1"))
        v = got.verdicts[0]
        assert (got.version, got.state, got.sample_filters) == (1, "draft", {"team": "alpha"})
        assert (v.human_answer, v.comment, v.evidence_start_s, v.at.tzinfo is not None) == (
            "dismissed", "said <politely>", 1.5, True)
    with db.write() as s1, db.read() as s2:
        stale = s2.get(Evaluation, got.id)
        s1.get(Evaluation, got.id).state = "submitted"
    with pytest.raises(StaleDataError):
        with db.write() as s:
            stale = s.merge(stale, load=False)
            stale.state = "resolved"
    with db.read() as s:
        assert s.get(Evaluation, got.id).state == "submitted" and s.get(Evaluation, got.id).version == 2
    # one standard evaluation per call
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        with db.write() as s:
            s.add(Evaluation(call_id="c1", reviewer_id=rev.id))


def test_verdicts_and_optimistic_locking_on_sqlite(client, app):
    _verdict_round_trip(app.state.qa.db)


# ---- PostgreSQL --------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server of its own: initdb + pg_ctl from Debian's package, in a temporary folder, on a free
    port, trust authentication on 127.0.0.1 only; as root, run as the `postgres` system user."""
    pytest.importorskip("psycopg", reason="psycopg (the web extra) is not installed")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    if not found or not found[-1]:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    bindir = Path(found[-1]).parent
    prefix: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="qa-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(tmp)
            pytest.skip("running as root and there is no postgres user to run the server as")
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        runuser = shutil.which("runuser") or shutil.which("su")
        prefix = [runuser, "-u", "postgres", "--"] if runuser.endswith("runuser") else None
        if prefix is None:
            pytest.skip("no runuser to start PostgreSQL as the postgres user")
    port = _free_port()
    data = tmp / "data"
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "qa", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True, timeout=120)
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    started = subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-t", "60",
                              "-l", str(tmp / "log"), "start"], capture_output=True, text=True, timeout=90)
    if started.returncode != 0:
        log = (tmp / "log").read_text() if (tmp / "log").exists() else ""
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {started.stderr}\n{log}")
    try:
        yield f"postgresql+psycopg://qa@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def test_postgresql_migrations_login_and_verdicts(postgres_url, tiny):
    from fastapi.testclient import TestClient

    from webapp.app import create_app
    from webapp.models import AuditEntry

    app = create_app(make_settings(tiny, db_url=postgres_url))
    with TestClient(app) as c:
        db = app.state.qa.db
        assert db.dialect == "postgresql" and _schema_diff(db) == []
        add_users(app)
        r = login(c, "rev-alpha")
        assert r.status_code == 303
        assert c.get(f"/calls/{tiny.ids['alpha-1']}").status_code == 200
        assert c.get(f"/calls/{tiny.ids['beta-1']}").status_code == 404
        assert "3 items to review" in c.get("/").text
        _verdict_round_trip(db)
        with db.read() as s:
            actions = set(s.scalars(select(AuditEntry.action)))
        assert {"user_added", "login", "viewed"} <= actions
        for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(Exception, match="append-only"):
                with db.write() as s:
                    s.execute(text(sql))
