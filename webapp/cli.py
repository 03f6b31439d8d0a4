"""`qa-pipeline serve | users | db`: the review app's commands (dispatched here by `flows/cli.py`; the library's
CLI knows nothing of them).

    qa-pipeline serve --data DATA [--db URL] [--host 127.0.0.1] [--port 8000] [--calls DIR ...]
                      [--dispute-window-days 7] [--rescore on-submit|flow] [--rubric FILE] [--config FILE]
                      [--allow-original-audio]
    qa-pipeline users add USERNAME --role ROLE [--team T ...] [--agent-id A] [--unredacted] [--password-stdin]
    qa-pipeline users passwd USERNAME [--password-stdin]
    qa-pipeline users disable USERNAME
    qa-pipeline users list
    qa-pipeline db upgrade | sync [--full] | current

Every `users` and `db` command takes `--data DATA` (the database is `DATA/review.sqlite3`) or `--db URL`; the
environment variable QA_REVIEW_DB gives the URL when neither is given."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path

from webapp.config import AppSettings
from webapp.models import ROLES


def _db_args(p: argparse.ArgumentParser, *, data_required: bool = False) -> None:
    p.add_argument("--data", required=data_required, help="the data folder (default database: DATA/review.sqlite3)")
    p.add_argument("--db", default=os.environ.get("QA_REVIEW_DB"),
                   help="the review database URL: sqlite:////path/review.sqlite3 or "
                        "postgresql+psycopg://user:password@host/dbname (default: $QA_REVIEW_DB)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa-pipeline", description="the QA review app")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the review web app")
    _db_args(serve, data_required=True)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--calls", action="append", type=Path, metavar="DIR",
                       help="a folder recordings may be served from (repeat for several); default: the demo calls "
                            "folder for the demo data, else none (audio off)")
    serve.add_argument("--no-audio", action="store_true", help="serve no audio at all")
    serve.add_argument("--allow-original-audio", action="store_true",
                       help="play a call's original recording to accounts without the unredacted permission when "
                            "it has no redacted copy (calls processed with privacy off or before audio redaction); "
                            "default: refused, with a message")
    serve.add_argument("--secure-cookies", choices=("auto", "yes", "no"), default="auto",
                       help="the cookies' Secure attribute (auto: when the request came over HTTPS; behind a TLS "
                            "proxy use yes, with --proxy-headers)")
    serve.add_argument("--proxy-headers", action="store_true",
                       help="trust X-Forwarded-For/-Proto from --forwarded-allow-ips (a reverse proxy)")
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    serve.add_argument("--sync-interval", type=float, default=60.0,
                       help="seconds between looks for changed datasets (0: only at start)")
    serve.add_argument("--dispute-window-days", type=float, default=7.0,
                       help="days after submission during which the agent (or their manager) may acknowledge or "
                            "dispute an evaluation (default 7)")
    serve.add_argument("--rescore", choices=("on-submit", "flow"), default="on-submit",
                       help="on-submit (default): submitted and resolved verdicts are exported to the reviews "
                            "dataset and the scorecards recomputed right after, in the background; flow: exported "
                            "at once, rescored by the next `qa-pipeline rescore` / nightly flow")
    serve.add_argument("--rubric", type=Path, help="the rubric the app rescores with (default: the default "
                                                   "rubric; must be the one the stored scores were made with)")
    serve.add_argument("--config", type=Path, help="the pipeline configuration \"swap speakers\" re-analyses "
                                                   "calls with (default: the demo's for the demo data, else the "
                                                   "defaults)")
    serve.add_argument("--log-level", default="info")

    users = sub.add_parser("users", help="accounts of the review app")
    us = users.add_subparsers(dest="action", required=True)
    add = us.add_parser("add", help="create an account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--team", action="append", default=[], help="a team the user belongs to (repeat)")
    add.add_argument("--agent-id", help="for an agent: the agent_id of their calls")
    add.add_argument("--display-name")
    add.add_argument("--unredacted", action="store_true", help="may hear and read unredacted audio and text")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _db_args(add)
    passwd = us.add_parser("passwd", help="set a new password (ends the user's sessions)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    _db_args(passwd)
    disable = us.add_parser("disable", help="disable an account (ends its sessions; never deleted)")
    disable.add_argument("username")
    _db_args(disable)
    lst = us.add_parser("list", help="list the accounts")
    _db_args(lst)

    db = sub.add_parser("db", help="the review database")
    ds = db.add_subparsers(dest="action", required=True)
    up = ds.add_parser("upgrade", help="apply the migrations (also done at every server start)")
    _db_args(up)
    sync = ds.add_parser("sync", help="bring the queue index up to date with the datasets")
    _db_args(sync, data_required=True)
    sync.add_argument("--full", action="store_true", help="re-read every date, not only the changed ones")
    cur = ds.add_parser("current", help="the schema revision of the database")
    _db_args(cur)
    return p


def _settings(args, **kw) -> AppSettings:
    if not args.data and not args.db:
        raise SystemExit("error: give --data DATA (database DATA/review.sqlite3) or --db URL")
    return AppSettings(data_dir=args.data or ".", db_url=args.db, **kw)


def _password(args, *, prompt: str) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("again: ") != first:
        raise SystemExit("error: the two passwords differ")
    return first


def _serve(args) -> int:
    import uvicorn

    from webapp.app import create_app

    roots = () if args.no_audio else (tuple(args.calls) if args.calls else None)
    secure = {"auto": None, "yes": True, "no": False}[args.secure_cookies]
    settings = AppSettings(data_dir=args.data, db_url=args.db, calls_roots=roots, cookie_secure=secure,
                           sync_interval_s=args.sync_interval, dispute_window_days=args.dispute_window_days,
                           rescore=args.rescore, rubric_path=args.rubric, pipeline_config=args.config,
                           require_redacted_audio=not args.allow_original_audio)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    print(f"QA review app on http://{args.host}:{args.port}/ (data: {args.data}; database: "
          f"{app.state.qa.db!r}); create the first account with `qa-pipeline users add NAME --role admin "
          f"--data {args.data}`", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, proxy_headers=args.proxy_headers,
                forwarded_allow_ips=args.forwarded_allow_ips, log_level=args.log_level, server_header=False)
    return 0


def _users(args) -> int:
    from webapp.db import Database
    from webapp.security import Passwords
    from webapp.users import AccountError, NewUser, add_user, disable_user, list_users, set_password

    settings = _settings(args)
    db = Database(settings.database_url)
    db.upgrade()
    passwords = Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.action == "add":
            password = _password(args, prompt=f"password for {args.username}: ")
            with db.write() as s:
                user = add_user(s, NewUser(username=args.username, role=args.role, password=password,
                                           display_name=args.display_name, teams=tuple(args.team),
                                           agent_id=args.agent_id, can_view_unredacted=args.unredacted),
                                passwords, min_length=settings.password_min_length, actor_name=actor)
                print(f"added {user.username} ({user.role}"
                      f"{', teams ' + ', '.join(sorted(user.team_names)) if user.teams else ''})")
        elif args.action == "passwd":
            password = _password(args, prompt=f"new password for {args.username}: ")
            with db.write() as s:
                set_password(s, args.username, password, passwords, min_length=settings.password_min_length,
                             actor_name=actor)
            print(f"password changed; {args.username}'s sessions ended")
        elif args.action == "disable":
            with db.write() as s:
                disable_user(s, args.username, actor_name=actor)
            print(f"disabled {args.username}")
        else:
            with db.read() as s:
                for u in list_users(s):
                    print("\t".join([u.username, u.role, ",".join(sorted(u.team_names)) or "-", u.agent_id or "-",
                                     "unredacted" if u.can_view_unredacted else "redacted",
                                     "disabled" if u.disabled else "active", u.display_name]))
    except AccountError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0


def _db(args) -> int:
    from webapp.db import Database, head_revision

    settings = _settings(args)
    db = Database(settings.database_url)
    try:
        if args.action == "upgrade":
            db.upgrade()
            print(f"{db!r} at revision {db.current_revision()} (head {head_revision()})")
        elif args.action == "current":
            print(db.current_revision() or "empty (run qa-pipeline db upgrade)")
        else:
            from webapp.sync import Syncer

            db.upgrade()
            r = Syncer(db, settings.data_dir).sync(full=args.full)
            print(f"queue index: {r.partitions} date(s) re-read, {r.removed} removed, {r.calls} calls, "
                  f"{r.items} items to review ({r.seconds:.1f} s)")
    finally:
        db.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return {"serve": _serve, "users": _users, "db": _db}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
