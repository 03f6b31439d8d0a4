"""The review app in a real browser: Playwright driving Debian's Chromium (`executable_path`; never a downloaded
browser) against the app served by uvicorn on 127.0.0.1, over a data folder made by the pipeline itself from real
recordings: the committed clips (tests/data: the stereo and the mono call) and one demo complaint call
(demo/calls/demo-017.opus), run through `run_folder` with the demo's configuration and scored with `rescore`.

The scenario: a reviewer signs in, filters the queue, opens the complaint flag, plays it from its evidence (the
audio really plays: currentTime reaches a second before the span and keeps going), confirms it with the keyboard
and submits; the manager's scorecards page shows the operator's customer-complaints score fall once the background
rescore has run; the agent disputes, the QA lead resolves with a root cause and the score comes back; a
calibration session with two reviewers (blind, then closed, kappa shown); the keyboard shortcuts; screenshots of
the queue and the call page (docs/screenshots/, shown in the README).

Slow (the bundled ASR model transcribes the calls: about a minute with the browser); skipped with the reason when
Chromium or the Playwright package is absent."""

from __future__ import annotations

import csv
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "correct horse battery"
LAUNCH_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (dev extra)")

COMPLAINT, STEREO, MONO = "complaint-017", "stereo-1", "mono-1"
CALLS = [  # the manifest: two calls of agent A01 (team north) in week 2026-W48, one of B02 (team south)
    dict(file="demo-017.opus", call_id=COMPLAINT, agent_id="A01", team="north", campaign="energy-inbound",
         direction="inbound", call_type="complaint", started_at="2026-11-24T10:10:00+01:00", language="en",
         channels="2", agent_channel="left"),
    dict(file="call_stereo.opus", call_id=STEREO, agent_id="A01", team="north", campaign="energy-inbound",
         direction="inbound", call_type="information", started_at="2026-11-25T09:00:00+01:00", language="en",
         channels="2", agent_channel="right"),
    dict(file="call_mono.wav", call_id=MONO, agent_id="B02", team="south", campaign="broadband-support",
         direction="inbound", call_type="support", started_at="2026-11-25T11:00:00+01:00", language="en",
         channels="1", agent_channel=""),
]
SOURCES = {"demo-017.opus": ROOT / "demo" / "calls" / "demo-017.opus",
           "call_stereo.opus": ROOT / "tests" / "data" / "call_stereo.opus",
           "call_mono.wav": ROOT / "tests" / "data" / "call_mono.wav"}
USERS = {  # username -> (role, teams, agent_id)
    "admin": ("admin", (), None),
    "lead": ("qa_lead", (), None),
    "rev-north": ("qa_reviewer", ("north",), None),
    "rev-north2": ("qa_reviewer", ("north",), None),
    "a01": ("agent", (), "A01"),
    "mgr-north": ("manager", ("north",), None),
}


@dataclass
class Served:
    base: str
    app: object
    data: Path
    calls: Path
    flags: dict  # (call_id, flag_type) -> the flags row


def _build_data(root: Path) -> tuple[Path, Path]:
    from qa_pipeline.config import load_config
    from qa_pipeline.pipeline.runner import run_folder
    from qa_pipeline.scoring.score import rescore

    calls, data = root / "calls", root / "data"
    calls.mkdir(parents=True)
    for row in CALLS:
        shutil.copy(SOURCES[row["file"]], calls / row["file"])
    with open(calls / "calls.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CALLS[0]))
        w.writeheader()
        w.writerows(CALLS)
    summary = run_folder(calls, data, load_config(str(ROOT / "demo" / "config.yaml")))
    assert summary.count("done") == len(CALLS), summary.outcomes
    rescore(data)
    return calls, data


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app on a free loopback port (uvicorn in a thread, a socket bound here), with one account per role."""
    import uvicorn

    from qa_pipeline.store.folder import read_dataset
    from webapp.app import create_app
    from webapp.config import AppSettings
    from webapp.users import NewUser, add_user

    calls, data = _build_data(tmp_path_factory.mktemp("browser"))
    flags = {(r["call_id"], r["flag_type"]): r for r in read_dataset(data, "flags").to_pylist()}
    assert (COMPLAINT, "customer_complaint") in flags, sorted(flags)
    settings = AppSettings(data_dir=data, calls_roots=(calls,), argon2_time_cost=1, argon2_memory_kib=1024,
                           login_delay_base_s=0.0, sync_interval_s=0.0, rescore="on-submit",
                           rescore_min_interval_s=0.0)
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    st = app.state.qa
    with st.db.write() as s:
        for name, (role, teams, agent) in USERS.items():
            add_user(s, NewUser(username=name, role=role, password=PASSWORD, teams=teams, agent_id=agent),
                     st.passwords, min_length=10)
    try:
        yield Served(base=f"http://127.0.0.1:{port}", app=app, data=data, calls=calls, flags=flags)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


def _page(browser, served, username: str):
    """A fresh browser context signed in as `username` through the login form."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=served.base)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(served.base + "/")
    page.js_errors = errors
    return page


def _anchor(x: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", x)


def _player(page, expr: str):
    return page.evaluate(f"(() => {{ const a = document.getElementById('player'); return {expr}; }})()")


def _wait_playing_from(page, at_least: float, timeout_ms: int = 10_000) -> None:
    """The audio element plays and its currentTime has reached `at_least` (and moved on from where it started)."""
    page.wait_for_function("(t) => { const a = document.getElementById('player');"
                           " return a && !a.paused && a.currentTime >= t; }", arg=at_least, timeout=timeout_ms)


def _wait_waveform(page) -> None:
    page.wait_for_function("() => { const w = document.getElementById('waveform');"
                           " return w && w.firstElementChild !== null; }")
    page.wait_for_timeout(300)  # drawn


def _save_screenshot(page, name: str) -> Path:
    """A 1280x800 PNG of the viewport, reduced to a 256-colour palette (UI pictures: a few tens of KB)."""
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = SCREENSHOTS / name
    raw = out.with_suffix(".raw.png")
    page.screenshot(path=str(raw), clip={"x": 0, "y": 0, "width": 1280, "height": 800})
    with Image.open(raw) as img:
        img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    raw.unlink()
    return out


def _card(page, agent: str):
    """The scorecards page's row of `agent`."""
    return page.locator("table.cards tbody tr", has=page.locator(f"a[href*='agent={agent}&criterion=']"))


def _score(page, agent: str, criterion: str) -> str:
    """The number in the scorecards page's cell of `agent` and `criterion` ("overall": the overall score)."""
    row = _card(page, agent)
    if criterion == "overall":
        return row.locator("td.overall").inner_text().strip()
    return row.locator(f"a[href*='criterion={criterion}']").inner_text().strip()


def _wait_score(page, agent: str, criterion: str, expected: str, timeout_s: float = 90) -> None:
    """Reload the scorecards page until the cell shows `expected` (the app rescores in the background)."""
    deadline = time.monotonic() + timeout_s
    while True:
        page.goto("/scorecards")
        shown = _score(page, agent, criterion)
        if shown == expected:
            return
        assert time.monotonic() < deadline, f"{agent} {criterion}: still {shown}, expected {expected}"
        page.wait_for_timeout(500)


def _wait_reviews(served, target: str, n: int, timeout_s: float = 60) -> list[dict]:
    """The `reviews` rows of `target` once there are `n` (the rescorer exports right after the request)."""
    from qa_pipeline.store.folder import read_dataset

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            rows = [r for r in read_dataset(served.data, "reviews").to_pylist() if r["target"] == target]
        except Exception:  # no reviews dataset yet
            rows = []
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


# ---- screenshots and the keyboard ----------------------------------------------------------------------------

def test_queue_and_call_page_screenshots(browser, served):
    page = _page(browser, served, "rev-north")
    rows = page.locator("table.queue tbody tr")
    assert rows.count() >= 5
    assert page.locator("table.queue").inner_text().count("south") == 0  # another team's calls are not listed
    shot = _save_screenshot(page, "queue.png")
    assert 0 < shot.stat().st_size < 400_000

    flag = served.flags[(COMPLAINT, "customer_complaint")]
    page.goto(f"/calls/{COMPLAINT}")
    _wait_waveform(page)
    row = page.locator(f"#v-flag-{_anchor(flag['flag_id'])}")
    row.locator("td").first.click()  # selected, as a reviewer would before judging
    shot = _save_screenshot(page, "call.png")
    assert 0 < shot.stat().st_size < 400_000
    # nothing overflows the 1280 px window sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert not page.js_errors, page.js_errors
    page.context.close()


def test_keyboard_shortcuts(browser, served):
    page = _page(browser, served, "rev-north")
    page.goto(f"/calls/{COMPLAINT}")
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    page.locator("h1").click()  # focus on the page, not in a field
    assert _player(page, "a.paused")
    # space plays, space again pauses
    page.keyboard.press(" ")
    _wait_playing_from(page, 0.3)
    page.keyboard.press(" ")
    page.wait_for_function("() => document.getElementById('player').paused")
    paused_at = _player(page, "a.currentTime")
    page.wait_for_timeout(400)
    assert _player(page, "a.currentTime") == paused_at
    # n: the next evidence is selected and plays from a second before its span; n again: the one after; p: back
    evidence = page.evaluate("Array.from(document.querySelectorAll('#evaluation tbody.vt[data-evidence]'))"
                             ".map(r => [r.id, parseFloat(r.getAttribute('data-evidence'))])")
    assert len(evidence) >= 2, evidence
    for i in (0, 1):
        page.keyboard.press("n")
        page.wait_for_function("(id) => document.getElementById(id).classList.contains('selected')",
                               arg=evidence[i][0])
        _wait_playing_from(page, evidence[i][1] - 0.05)
        assert _player(page, "a.currentTime") < evidence[i][1] + 4
        assert page.locator("#evaluation tbody.vt.selected").count() == 1
    page.keyboard.press("p")
    page.wait_for_function("(id) => document.getElementById(id).classList.contains('selected')", arg=evidence[0][0])
    # speed, back 5 s, the list of shortcuts
    page.keyboard.press(">")
    assert _player(page, "a.playbackRate") == 1.25 and page.locator("#speed").input_value() == "1.25"
    page.keyboard.press("<")
    page.keyboard.press("<")
    assert _player(page, "a.playbackRate") == 0.75
    page.keyboard.press(" ")  # pause
    page.wait_for_function("() => document.getElementById('player').paused")
    page.evaluate("document.getElementById('player').currentTime = 20")
    page.keyboard.press("ArrowLeft")
    assert 14.9 <= _player(page, "a.currentTime") <= 15.1
    assert not page.locator("details.shortcuts").evaluate("d => d.open")
    page.keyboard.press("?")
    assert page.locator("details.shortcuts").evaluate("d => d.open")
    # shortcuts are off while typing
    field = page.locator("#evaluation input.verdict-comment").first
    field.click()
    field.type("n n")
    assert field.input_value() == "n n" and _player(page, "a.paused")
    # a transcript line plays from its start
    line = page.locator(".transcript li[data-seek]").nth(2)
    start = float(line.get_attribute("data-seek"))
    line.locator(".text").click()
    _wait_playing_from(page, start - 0.05)
    assert not page.js_errors, page.js_errors
    page.context.close()


# ---- the lifecycle ---------------------------------------------------------------------------------------------

def test_review_dispute_resolve_and_the_scorecard_follows(browser, served):
    flag = served.flags[(COMPLAINT, "customer_complaint")]
    row_id = f"v-flag-{_anchor(flag['flag_id'])}"

    # the manager's scorecard before: A01's complaint is pending, the customer-complaints score is 100
    manager = _page(browser, served, "mgr-north")
    manager.goto("/scorecards")
    assert "Team north" in manager.content() and "Team south" not in manager.content()
    before_overall = float(_score(manager, "A01", "overall"))
    assert _score(manager, "A01", "customer_complaints") == "100.0"

    # the reviewer: sign in, filter the queue to customer complaints
    page = _page(browser, served, "rev-north")
    total = page.locator("#queue-rows p.muted").first.inner_text()
    page.select_option("select[name=flag_type]", "customer_complaint")
    page.wait_for_url(re.compile(r".*flag_type=customer_complaint.*"))
    page.wait_for_function("(t) => document.querySelector('#queue-rows p.muted').textContent !== t", arg=total)
    rows = page.locator("table.queue tbody tr")
    assert rows.count() == 1 and "customer complaint" in rows.first.inner_text()
    assert "(filtered)" in page.locator("#queue-rows").inner_text()

    # open the flag: the call page, at the flag
    rows.first.locator("a", has_text="open").click()
    page.wait_for_url(re.compile(rf".*/calls/{COMPLAINT}#t-flag-.*"))
    assert page.locator(f"#t-flag-{_anchor(flag['flag_id'])}").count() == 1

    # play from its evidence: a second before the span, and it really plays
    row = page.locator(f"#{row_id}")
    play = row.locator("button.play")
    seek = float(play.get_attribute("data-seek"))
    assert seek == pytest.approx(max(0.0, flag["start_s"] - 1), abs=0.01)
    play.click()
    _wait_playing_from(page, flag["start_s"] - 1.05, timeout_ms=5_000)
    _wait_playing_from(page, seek + 0.3, timeout_ms=5_000)  # moving on
    assert _player(page, "a.currentTime") < flag["end_s"] + 5
    assert "selected" in row.get_attribute("class")  # the ▶ selected the row: the verdict keys act on it

    # confirm it with the keyboard (c), then submit
    page.locator("h1").click()
    page.keyboard.press("c")
    page.wait_for_function("(id) => { const r = document.getElementById(id);"
                           " return r && r.querySelector('td.human .answer.justified'); }", arg=row_id)
    assert "confirmed" in page.locator(f"#{row_id} td.human").inner_text()
    page.click("#evaluation button.primary:has-text('Submit the evaluation')")
    page.wait_for_function("() => document.querySelector('#evaluation .eval-head .state').textContent"
                           ".trim() === 'submitted'")

    # the verdict is in the reviews dataset, and the scorecard follows once the background rescore has run
    verdicts = _wait_reviews(served, flag["flag_id"], 1)
    assert [(v["verdict"], v["reviewer"]) for v in verdicts] == [("justified", "rev-north")]
    _wait_score(manager, "A01", "customer_complaints", "50.0")
    assert float(_score(manager, "A01", "overall")) < before_overall
    manager.locator("a[href*='agent=A01&criterion=customer_complaints']").first.click()
    assert COMPLAINT[:12] in manager.content()  # the drill-down lists the complaint that counted

    # the agent disputes it within the window
    agent = _page(browser, served, "a01")
    agent.goto(f"/calls/{COMPLAINT}")
    agent.fill(".dispute-form textarea[name=reason]", "the customer had been told the wrong date by billing")
    agent.click(".dispute-form button[type=submit]")
    agent.wait_for_selector("#evaluation .dispute")
    assert agent.locator("#evaluation .eval-head .state").inner_text().strip() == "disputed"
    assert agent.locator(".resolve-form").count() == 0  # an agent cannot resolve

    # the QA lead resolves it: root cause, the verdict changed, a note; the score comes back
    lead = _page(browser, served, "lead")
    lead.goto(f"/calls/{COMPLAINT}")
    form = lead.locator(".resolve-form")
    form.locator("select[name=root_cause]").select_option("judgement")
    form.locator("select[name^=answer_]").select_option("unjustified")
    form.locator("textarea[name=note]").fill("billing gave the wrong date: not the agent's fault")
    form.locator("button[type=submit]").click()
    lead.wait_for_selector("#evaluation .dispute.resolved")
    resolved = lead.locator("#evaluation .dispute.resolved").inner_text()
    assert "overturned" in resolved and "judgement" in resolved and "wrong date" in resolved
    _wait_score(manager, "A01", "customer_complaints", "100.0")
    assert float(_score(manager, "A01", "overall")) == before_overall
    latest = max(_wait_reviews(served, flag["flag_id"], 2), key=lambda r: r["reviewed_at"])
    assert latest["verdict"] == "unjustified" and latest["reviewer"] == "lead"
    for p in (page, manager, agent, lead):
        assert not p.js_errors, p.js_errors
        p.context.close()


# ---- calibration -------------------------------------------------------------------------------------------------

def test_calibration_with_two_reviewers(browser, served):
    lead = _page(browser, served, "lead")
    lead.goto("/calibration")
    form = lead.locator("form.calibration-form")
    form.locator("input[name=name]").fill("week 48, north")
    form.locator("textarea[name=calls]").fill(f"{COMPLAINT}\n{STEREO}")
    for name in ("rev-north", "rev-north2"):
        form.get_by_role("checkbox", name=f"{name} (qa reviewer)", exact=True).check()
    form.locator("button[type=submit]").click()
    lead.wait_for_url(re.compile(r".*/calibration/\d+$"))
    session_url = lead.url
    assert "blind" in lead.content()

    # each rater judges the first four targets of both calls, blind; rev-north2 differs from rev-north on two
    def rate(username: str, flip: set[int]) -> list[str]:
        page = _page(browser, served, username)
        page.goto(session_url)
        links = [a.get_attribute("href") for a in page.locator("ul.cal-calls a").all()]
        assert len(links) == 2
        answers = []
        n = 0
        for href in links:
            page.goto(href)
            assert page.locator("#evaluation td.auto").count() == 0  # no automatic answer: blind
            assert "Automatic answer" not in page.locator("#evaluation").inner_text()
            ids = [r.get_attribute("id") for r in page.locator("#evaluation tbody.vt").all()][:4]
            for row_id in ids:
                key = "2" if (n % 2 == 1) != (n in flip) else "1"
                button = page.locator(f"#{row_id} button[data-verdict-key='{key}']")
                answers.append(button.inner_text().strip())
                button.click()
                page.wait_for_function("(id) => { const r = document.getElementById(id);"
                                       " return r && r.querySelector('td.human .answer'); }", arg=row_id)
                n += 1
            page.click("#evaluation button.primary")
            page.wait_for_function("() => document.querySelector('#evaluation .eval-head .state').textContent"
                                   ".trim() === 'submitted'")
        assert not page.js_errors, page.js_errors
        page.context.close()
        return answers

    first = rate("rev-north", set())
    second = rate("rev-north2", {1, 6})
    assert sum(a != b for a, b in zip(first, second)) == 2

    # while open, the session page shows progress only; closed, the agreement and every rater's answers
    lead.goto(session_url)
    assert lead.locator("table.agreement").count() == 0
    lead.click("form[action$='/close'] button[type=submit]")
    lead.wait_for_selector("table.agreement")
    total = lead.locator("table.agreement tr.total").inner_text()
    kappa = re.search(r"(-?\d+\.\d+)\s+Cohen", total)
    assert kappa, total
    assert -1.0 <= float(kappa.group(1)) < 1.0  # two disagreements: below perfect
    answers = lead.locator("table.answers").inner_text()
    assert "rev-north:" in answers and "rev-north2:" in answers
    assert not lead.js_errors, lead.js_errors
    lead.context.close()
