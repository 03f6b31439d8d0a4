"""Load bench of the review app: N synthetic calls (bench/rescore_bench.py's generator: calls, metrics, compliance,
events, sentiment, utterances, flags; then `rescore` for the item scores and weekly scorecards), the queue index
synced, the app served by uvicorn on 127.0.0.1 in its own process (the real security settings: argon2 at its
default cost, sessions, CSRF), and C concurrent reviewer clients (threads, one httpx client and one reviewer account
each, signed in through the login form), bounded in requests and in time, whichever comes first:

- queue pages: the first page and deep pages (up to page 400), with and without filters (team, severity, kind,
  flag type, review state), as the browser asks for them;
- call pages of calls seen on those queue pages;
- verdicts: the reviewer opens a call of their own (distinct calls, none shared with another client), confirms or
  overrides its flag and submits the evaluation (each with the page's CSRF token and the evaluation's version);
- contested verdicts: the two reviewers of a pair (same teams) open the same call, wait for each other, and both
  post a verdict on it with the version they read: exactly one must win and the other get 409, never overwrite.

Then the evaluations' export to the `reviews` dataset is awaited and the verdicts are checked: every verdict answered
2xx is in the database exactly once (its call, flag, reviewer and answer) and, its evaluation submitted and
exported, in the `reviews` dataset exactly once; every verdict answered 409 is in neither; nothing else is.

Baseline, in the same command against the same server: one reviewer alone reads queue and call pages one after
another first (the pages' own cost, without the queueing that 20 clients on a few cores add).

Writes OUT/app_load.json and OUT/app_load.md (p50 / p95 / max of each kind of request, counts, integrity).

Usage: python bench/app_load_bench.py [--calls 100000] [--clients 20] [--requests 2000] [--seconds 120]
                                      [--out bench/results] [--data KEEP_DIR]
Loopback only: the server binds 127.0.0.1 and the clients talk to it there; the server process is stopped at the
end (and killed if it does not stop)."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # webapp/, as the other benches import flows/

HOST = "127.0.0.1"
PASSWORD = "bench password 2026"
TEAMS = 10  # the generator's teams: team0 .. team9
SHARED_PER_PAIR = 12  # contested calls per pair of reviewers
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
VERSION = re.compile(r'id="evaluation"[^>]*data-version="(\d+)"')
CALL_LINK = re.compile(r'href="/calls/([^"#?]+)')


def reviewer_name(i: int) -> str:
    return f"bench-r{i:02d}"


def reviewer_teams(i: int) -> tuple[str, str]:
    """Reviewers i and i + 10 see the same two teams (a pair); every team is seen by four reviewers."""
    return f"team{i % TEAMS}", f"team{(i + 1) % TEAMS}"


# ---- the server, in its own process ----------------------------------------------------------------------------

def serve(data: Path, port: int) -> None:
    """`--serve`: the app on 127.0.0.1:port over `data` (the index already synced; no audio for synthetic calls)."""
    import uvicorn

    from webapp.app import create_app
    from webapp.config import AppSettings

    settings = AppSettings(data_dir=data, calls_roots=(), sync_on_start=False, sync_interval_s=0.0,
                           rescore="on-submit")
    uvicorn.run(create_app(settings), host=HOST, port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(data: Path, port: int) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", str(data), "--port", str(port)],
                            cwd=str(HERE.parent), start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with {proc.returncode}")
        try:
            if httpx.get(f"http://{HOST}:{port}/login", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise SystemExit("the app did not start within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly (the lifespan stops the rescorer)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        return None
    return None


# ---- the data ----------------------------------------------------------------------------------------------------

def prepare(data: Path, n_calls: int, n_clients: int) -> dict:
    """Synthetic datasets, scores, the database with the queue index and one reviewer account per client."""
    from rescore_bench import make_data
    from sqlalchemy import select

    from qa_pipeline.scoring.score import rescore
    from webapp.db import Database, default_url
    from webapp.models import CallIndex, ReviewQueueItem
    from webapp.security import Passwords
    from webapp.sync import Syncer
    from webapp.users import NewUser, add_user

    timings = {}
    t0 = time.perf_counter()
    make_data(data, n_calls)
    timings["generate_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    rescore(data)
    timings["rescore_s"] = round(time.perf_counter() - t0, 1)
    db = Database(default_url(data))
    db.upgrade()
    t0 = time.perf_counter()
    synced = Syncer(db, data).sync()
    timings["sync_s"] = round(time.perf_counter() - t0, 1)
    passwords = Passwords()  # the default cost, as served
    with db.write() as s:
        for i in range(n_clients):
            add_user(s, NewUser(username=reviewer_name(i), role="qa_reviewer", password=PASSWORD,
                                teams=reviewer_teams(i)), passwords, min_length=10)
    with db.read() as s:
        by_team: dict[str, list[str]] = defaultdict(list)
        for call_id, team in s.execute(select(CallIndex.call_id, CallIndex.team).order_by(CallIndex.call_id)):
            by_team[team].append(call_id)
        items = s.scalar(select(ReviewQueueItem.id).order_by(ReviewQueueItem.id.desc()).limit(1))
    db.dispose()
    return {"timings": timings, "by_team": dict(by_team), "indexed_calls": synced.calls,
            "queue_items": synced.items, "max_item_id": items}


def assignments(by_team: dict[str, list[str]], n_clients: int) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """distinct[i]: calls only client i judges (its first team's calls, split between the pair by position);
    shared[p]: the calls both clients of pair p (clients p and p + 10) contest, in the order they take them."""
    distinct, shared = {}, {}
    for i in range(n_clients):
        team = reviewer_teams(i)[0]
        calls = by_team.get(team, [])
        pair = i % TEAMS
        shared.setdefault(pair, calls[:SHARED_PER_PAIR])
        rest = calls[SHARED_PER_PAIR:]
        distinct[i] = rest[i // TEAMS::2]  # client i takes the even positions, client i + 10 the odd ones
        random.Random(i).shuffle(distinct[i])
    return distinct, shared


# ---- the clients -------------------------------------------------------------------------------------------------

@dataclass
class Budget:
    max_requests: int
    deadline: float
    used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, n: int = 1) -> bool:
        """Reserve n requests (an action's whole sequence); False when the budget or the time is spent."""
        with self.lock:
            if self.used + n > self.max_requests or time.monotonic() >= self.deadline:
                return False
            self.used += n
            return True


@dataclass
class Record:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    verdicts_ok: list[tuple] = field(default_factory=list)  # (call_id, flag_id, username, answer)
    verdicts_409: list[tuple] = field(default_factory=list)
    submits_ok: list[tuple] = field(default_factory=list)  # (call_id, username)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    def __init__(self, i: int, base: str, rec: Record, budget: Budget, distinct: list[str], shared: list[str],
                 barriers: dict[str, threading.Barrier]):
        import httpx

        self.i, self.name, self.rec, self.budget = i, reviewer_name(i), rec, budget
        self.http = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
        self.rng = random.Random(1000 + i)
        self.distinct, self.shared, self.barriers = list(distinct), list(shared), barriers
        self.seen: list[str] = []
        self.teams = reviewer_teams(i)

    def timed(self, kind: str, method: str, url: str, **kw):
        t0 = time.perf_counter()
        r = self.http.request(method, url, **kw)
        dt = time.perf_counter() - t0
        with self.rec.lock:
            self.rec.latencies[kind].append(dt)
            self.rec.statuses[(kind, r.status_code)] += 1
        return r

    def login(self) -> None:
        page = self.http.get("/login")
        r = self.http.post("/login", data={"username": self.name, "password": PASSWORD, "next": "/",
                                           "csrf_token": CSRF.search(page.text).group(1)})
        if r.status_code != 303:
            raise RuntimeError(f"{self.name}: login answered {r.status_code}")

    def queue_page(self) -> None:
        params: dict = {}
        roll = self.rng.random()
        if roll < 0.5:
            params["team"] = self.rng.choice(self.teams)
        if self.rng.random() < 0.3:
            params["severity"] = self.rng.choice(["medium", "low"])
        if self.rng.random() < 0.2:
            params["kind"] = self.rng.choice(["flag", "item"])
        if self.rng.random() < 0.15:
            params["state"] = self.rng.choice(["unreviewed", "submitted"])
        deep = self.rng.random()
        if deep < 0.4:
            params["page"] = self.rng.randint(2, 400)  # deep pages (past the end answers the last page)
        params["per_page"] = self.rng.choice([25, 50, 100])
        r = self.timed("queue", "GET", "/", params=params)
        if r.status_code != 200:
            self.unexpected(f"queue {params}: {r.status_code}")
            return
        links = CALL_LINK.findall(r.text)
        if links:
            self.seen = links[:20]

    def call_page(self) -> None:
        if not self.seen:
            return self.queue_page()
        call_id = self.rng.choice(self.seen)
        r = self.timed("call", "GET", f"/calls/{call_id}")
        if r.status_code != 200:
            self.unexpected(f"call {call_id}: {r.status_code}")

    def unexpected(self, what: str) -> None:
        with self.rec.lock:
            self.rec.unexpected.append(f"{self.name}: {what}")

    def _form(self, call_id: str) -> tuple[str, int] | None:
        r = self.timed("call", "GET", f"/calls/{call_id}")
        if r.status_code != 200:
            self.unexpected(f"call {call_id}: {r.status_code}")
            return None
        return CSRF.search(r.text).group(1), int(VERSION.search(r.text).group(1))

    def _verdict(self, call_id: str, token: str, version: int, action: str):
        return self.timed("verdict", "POST", f"/calls/{call_id}/evaluation/verdicts",
                          headers={"hx-request": "true"},
                          data={"csrf_token": token, "version": str(version), "target_type": "flag",
                                "target_id": call_id, "action": action, "comment": f"load bench {self.name}"})

    def _submit(self, call_id: str, token: str, version: int) -> None:
        r = self.timed("submit", "POST", f"/calls/{call_id}/evaluation/submit", headers={"hx-request": "true"},
                       data={"csrf_token": token, "version": str(version)})
        if r.status_code == 200:
            with self.rec.lock:
                self.rec.submits_ok.append((call_id, self.name))
        else:
            self.unexpected(f"submit {call_id}: {r.status_code} {r.text[:120]}")

    def judge_distinct(self) -> None:
        if not self.distinct:
            return self.queue_page()
        call_id = self.distinct.pop()
        form = self._form(call_id)
        if form is None:
            return
        token, version = form
        action = self.rng.choice(["confirm", "override"])
        r = self._verdict(call_id, token, version, action)
        answer = "justified" if action == "confirm" else "unjustified"
        if r.status_code != 200:
            self.unexpected(f"verdict {call_id}: {r.status_code} {r.text[:120]}")
            return
        with self.rec.lock:
            self.rec.verdicts_ok.append((call_id, call_id, self.name, answer))
        self._submit(call_id, token, int(VERSION.search(r.text).group(1)))

    def contest(self) -> bool:
        """Take the pair's next shared call: read the page, wait for the other reviewer, both post. False when
        none is left (or the other reviewer has stopped)."""
        if not self.shared:
            return False
        call_id = self.shared.pop(0)
        barrier = self.barriers[call_id]
        form = self._form(call_id)
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            self.shared.clear()
            return False
        if form is None:
            return True
        token, version = form
        action = "confirm" if self.i < TEAMS else "override"  # the two answers differ: an overwrite would show
        answer = "justified" if action == "confirm" else "unjustified"
        r = self._verdict(call_id, token, version, action)
        if r.status_code == 200:
            with self.rec.lock:
                self.rec.verdicts_ok.append((call_id, call_id, self.name, answer))
            try:
                barrier.wait(timeout=30)  # the other post is answered before the winner submits
            except threading.BrokenBarrierError:
                pass
            self._submit(call_id, token, int(VERSION.search(r.text).group(1)))
        elif r.status_code == 409:
            with self.rec.lock:
                self.rec.verdicts_409.append((call_id, call_id, self.name, answer))
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
        else:
            self.unexpected(f"contested verdict {call_id}: {r.status_code} {r.text[:120]}")
        return True

    def run_reads(self, n: int) -> None:
        """The baseline: n queue and call pages, one after another, nobody else asking."""
        self.login()
        for k in range(n):
            self.queue_page() if k % 2 == 0 else self.call_page()
        self.http.close()

    def run(self) -> None:
        try:
            self.login()
            while True:
                roll = self.rng.random()
                if self.shared and roll < 0.12:
                    if not self.budget.take(3):
                        break
                    self.contest()
                elif roll < 0.50:
                    if not self.budget.take(1):
                        break
                    self.queue_page()
                elif roll < 0.80:
                    if not self.budget.take(1):
                        break
                    self.call_page()
                else:
                    if not self.budget.take(3):
                        break
                    self.judge_distinct()
        except Exception as e:  # recorded, and the bench fails on it
            self.unexpected(f"crashed: {type(e).__name__}: {e}")
        finally:
            for call_id in self.shared:  # the other reviewer must not wait for us
                self.barriers[call_id].abort()
            self.http.close()


# ---- the integrity check ------------------------------------------------------------------------------------

def wait_exported(data: Path, timeout_s: float = 180) -> int:
    """Wait until no submitted evaluation waits for its export; returns how many still wait."""
    from sqlalchemy import func, select

    from webapp.db import Database, default_url
    from webapp.models import Evaluation

    db = Database(default_url(data))
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with db.read() as s:
                pending = s.scalar(select(func.count()).select_from(Evaluation).where(
                    Evaluation.state == "submitted", Evaluation.exported_at.is_(None)))
            if not pending or time.monotonic() > deadline:
                return pending
            time.sleep(0.5)
    finally:
        db.dispose()


def check(data: Path, rec: Record) -> dict:
    from sqlalchemy import select

    from qa_pipeline.store.folder import read_dataset
    from webapp.db import Database, default_url
    from webapp.models import Evaluation, User, Verdict

    db = Database(default_url(data))
    with db.read() as s:
        names = {uid: name for uid, name in s.execute(select(User.id, User.username))}
        rows = list(s.execute(select(Evaluation.call_id, Evaluation.state, Evaluation.exported_at, Verdict.target_id,
                                     Verdict.by_user_id, Verdict.human_answer)
                              .join(Verdict, Verdict.evaluation_id == Evaluation.id)
                              .where(Evaluation.kind == "standard")))
    db.dispose()
    in_db = Counter((r.call_id, r.target_id, names[r.by_user_id], r.human_answer) for r in rows)
    state = {r.call_id: (r.state, r.exported_at is not None) for r in rows}
    try:
        reviews = read_dataset(data, "reviews").to_pylist()
    except Exception:  # no verdict exported at all
        reviews = []
    in_reviews = Counter((r["call_id"], r["target"], r["reviewer"], r["verdict"]) for r in reviews)
    ok, lost409 = Counter(rec.verdicts_ok), Counter(rec.verdicts_409)
    submitted = {c for c, _ in rec.submits_ok}
    problems = []
    for key, n in ok.items():
        if n != 1:
            problems.append(f"answered 2xx {n} times: {key}")
        if in_db[key] != 1:
            problems.append(f"2xx verdict {in_db[key]} times in the database: {key}")
        if key[0] in submitted and in_reviews[key] != 1:
            problems.append(f"submitted verdict {in_reviews[key]} times in reviews: {key}")
    for key in lost409:
        if in_db[key] or in_reviews[key]:
            problems.append(f"a 409 verdict was stored: {key} (db {in_db[key]}, reviews {in_reviews[key]})")
        others = [k for k in in_db if k[0] == key[0] and k[2] == key[2]]
        if others:
            problems.append(f"a refused reviewer's verdict is on the call: {others}")
    for key, n in in_db.items():
        if key not in ok:
            problems.append(f"in the database without a 2xx answer: {key} x{n}")
    for key, n in in_reviews.items():
        if key not in ok or key[0] not in submitted:
            problems.append(f"in reviews without a 2xx submit: {key} x{n}")
        elif n != 1:
            problems.append(f"in reviews {n} times: {key}")
    for call_id in submitted:
        if state.get(call_id) != ("submitted", True):
            problems.append(f"submitted evaluation of {call_id} is {state.get(call_id)}")
    contested = {k[0] for k in rec.verdicts_409}
    return {"verdicts_2xx": sum(ok.values()), "verdicts_409": sum(lost409.values()),
            "submits_2xx": len(rec.submits_ok), "contested_calls": len(contested),
            "verdicts_in_db": sum(in_db.values()), "review_rows": len(reviews),
            "lost": sum(1 for k in ok if in_db[k] == 0 or (k[0] in submitted and in_reviews[k] == 0)),
            "duplicated": sum(1 for k in ok if in_db[k] > 1 or in_reviews[k] > 1),
            "stored_409s": sum(1 for k in lost409 if in_db[k] or in_reviews[k]),
            "problems": problems[:50], "ok": not problems}


# ---- the report ----------------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q / 100 * len(v) + 0.5)) - 1))]


def summary(latencies: dict[str, list[float]]) -> dict:
    out = {}
    for kind in ("queue", "call", "verdict", "submit"):
        v = latencies.get(kind, [])
        out[kind] = {"n": len(v), "p50_ms": round(1000 * pct(v, 50)) if v else None,
                     "p95_ms": round(1000 * pct(v, 95)) if v else None,
                     "max_ms": round(1000 * max(v)) if v else None}
    return out


def markdown(result: dict) -> str:
    lat = result["latency"]
    names = {"queue": "queue page (filters, deep pages)", "call": "call page", "verdict": "verdict POST",
             "submit": "submit POST"}
    base = result["baseline_one_client"]
    lines = [f"App under load: {result['calls']:,} synthetic calls ({result['queue_items']:,} queue items), "
             f"{result['clients']} concurrent reviewers, {result['requests']:,} requests in {result['wall_s']} s "
             f"({result['requests_per_s']}/s), server and clients on {result['cpus']} CPUs (the server process used "
             f"{result['server_cpu_share']} of a CPU; load average {result['load_avg_1m']}). Baseline: one reviewer "
             "alone, same server and data.", "",
             "| request | n | p50 | p95 | max | one reviewer alone: p50 / p95 |", "|---|---:|---:|---:|---:|---:|"]
    for kind, label in names.items():
        x, b = lat[kind], base.get(kind, {})
        alone = f"{b['p50_ms']} / {b['p95_ms']} ms" if b.get("n") else "–"
        if x["n"]:
            lines.append(f"| {label} | {x['n']:,} | {x['p50_ms']} ms | {x['p95_ms']} ms | {x['max_ms']} ms | {alone} |")
    i = result["integrity"]
    lines += ["", f"Verdicts: {i['verdicts_2xx']} answered 2xx ({i['submits_2xx']} evaluations submitted), "
              f"{i['verdicts_409']} answered 409 on {i['contested_calls']} contested calls; lost {i['lost']}, "
              f"duplicated {i['duplicated']}, 409s stored {i['stored_409s']} "
              f"({'OK' if i['ok'] else 'FAILED'}: database and `reviews` dataset checked)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=2000, help="at most this many requests in all")
    ap.add_argument("--seconds", type=float, default=120, help="and at most this long")
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--baseline", type=int, default=60, help="pages the lone reviewer of the baseline reads first")
    ap.add_argument("--data", type=Path, help="write the data folder here and keep it (default: a temp dir)")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, args.port)
    if not 1 <= args.clients <= 2 * TEAMS:
        raise SystemExit(f"--clients: 1 to {2 * TEAMS} (pairs of reviewers share {TEAMS} pairs of teams)")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        if data.exists() and any(data.iterdir()):
            raise SystemExit(f"{data} is not empty")
        print(f"generating {args.calls:,} calls, scoring, syncing the queue index ...", flush=True)
        prep = prepare(data, args.calls, args.clients)
        distinct, shared = assignments(prep["by_team"], args.clients)
        pairs = {i % TEAMS for i in range(args.clients) if (i + TEAMS) < args.clients or i >= TEAMS}
        barriers = {c: threading.Barrier(2) for p in pairs for c in shared[p]}
        port = free_port()
        proc = start_server(data, port)
        try:
            # the baseline, same server and data: one reviewer alone, queue and call pages one after another
            base = Record()
            print(f"baseline: one reviewer, {args.baseline} pages ...", flush=True)
            Client(0, f"http://{HOST}:{port}", base, Budget(10**9, time.monotonic() + 600), [], [], {}).run_reads(
                args.baseline)
            rec = Record()
            cpu0 = cpu_seconds(proc.pid)
            budget = Budget(args.requests, time.monotonic() + args.seconds)
            clients = [Client(i, f"http://{HOST}:{port}", rec, budget, distinct[i],
                              shared[i % TEAMS] if (i % TEAMS) in pairs else [], barriers)
                       for i in range(args.clients)]
            print(f"{args.clients} reviewers on http://{HOST}:{port} (at most {args.requests} requests, "
                  f"{args.seconds:g} s) ...", flush=True)
            t0 = time.perf_counter()
            threads = [threading.Thread(target=c.run, name=c.name) for c in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=args.seconds + 120)
            wall = time.perf_counter() - t0
            cpu1 = cpu_seconds(proc.pid)
            load = os.getloadavg()[0]
            pending = wait_exported(data)
            server_rss = peak_rss_mb(proc.pid)
        finally:
            stop_server(proc)
        integrity = check(data, rec)
        if pending:
            integrity["problems"].append(f"{pending} submitted evaluations were never exported")
            integrity["ok"] = False
        if rec.unexpected or base.unexpected:
            integrity["problems"] += (base.unexpected + rec.unexpected)[:20]
            integrity["ok"] = False
    n = sum(len(v) for v in rec.latencies.values())
    result = {"calls": args.calls, "clients": args.clients, "max_requests": args.requests,
              "max_seconds": args.seconds, "requests": n, "wall_s": round(wall, 1),
              "requests_per_s": round(n / wall, 1), "cpus": os.cpu_count(), **prep["timings"],
              "indexed_calls": prep["indexed_calls"], "queue_items": prep["queue_items"],
              "server_peak_rss_mb": server_rss,
              "server_cpu_share": round((cpu1 - cpu0) / wall, 2) if cpu0 is not None and cpu1 is not None else None,
              "load_avg_1m": round(load, 1), "latency": summary(rec.latencies),
              "baseline_one_client": summary(base.latencies),
              "statuses": {f"{k} {s}": c for (k, s), c in sorted(rec.statuses.items())},
              "integrity": integrity}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "app_load.json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    (args.out / "app_load.md").write_text(md)
    print(md)
    if not integrity["ok"]:
        print("\n".join(integrity["problems"]), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
