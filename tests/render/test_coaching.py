"""Coaching packs (qa_pipeline/render/coaching.py, webapp/packs.py, the trainers' "build pack" action): a miss
paired with a peer's pass of the same rule in a similar call, the trainer's marks, clips cut from the redacted
copies only, an index.html that plays offline (relative paths, <audio>, no script) and an acknowledgement sheet;
Chromium opens the pack from disk and plays a clip."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from tests.webapp.conftest import CALL_DATE, as_user, build_tiny_data, score_tiny


def add_redacted_copies(tiny, names=("alpha-1", "alpha-2", "beta-1")) -> None:
    """A pii finding and a redacted copy for each call (as the pipeline's audio redaction writes them)."""
    from qa_pipeline.audio.decode import load_audio
    from qa_pipeline.privacy.audio import encode, redact
    from qa_pipeline.store.folder import DataFolder, write_rows
    from qa_pipeline.store.keys import file_key

    for name in names:
        cid = tiny.ids[name]
        audio = load_audio(tiny.calls / f"{name}.wav")
        red = redact(audio.samples, 16000, [dict(start_s=0.8, end_s=1.0, entity_type="PERSON")], [])
        rel = f"redacted_audio/{CALL_DATE}/{file_key(cid)}.opus"
        DataFolder(tiny.data).write_bytes(rel, encode(red.samples, 16000, "opus"))
        write_rows(tiny.data, "pii", CALL_DATE, cid, [dict(
            call_id=cid, utterance_index=0, entity_type="PERSON", start_s=0.8, end_s=1.0, char_start=0, char_end=3,
            confidence=0.9, detector="t")])
        write_rows(tiny.data, "redactions", CALL_DATE, cid, [dict(
            call_id=cid, entities={"PERSON": 1}, spans=1, seconds_muted=0.7, residual_hits=0, turns_muted=0,
            verified=True, max_muted_dbfs=-120.0, fill="silence", margin_ms=250.0, audio_path=rel,
            redacted_at=__import__("datetime").datetime.now(__import__("datetime").timezone.utc))])


@pytest.fixture
def packdata(tmp_path):
    tiny = build_tiny_data(tmp_path)
    score_tiny(tiny)
    add_redacted_copies(tiny)
    return tiny


def test_a_pack_pairs_a_miss_with_a_peer_pass_and_plays_offline(packdata, tmp_path):
    from qa_pipeline.render.coaching import build_pack, id_hash, read_registry
    from qa_pipeline.store.folder import DataFolder

    marks = [dict(call_id=packdata.ids["alpha-2"], agent_id="a2", start_s=0.1, end_s=1.0, criterion="quality",
                  kind="miss", note="say your name <b>first</b>", trainer="Tina")]
    index = build_pack(packdata.data, tmp_path / "pack", agent="a2", marks=marks)
    html = index.read_text()
    items = re.findall(r'<article class="item (\w+)">\s*<h3>([^<]+?) <', html)
    rule = [kind for kind, step in items if step == "opening.agent_name"]
    assert rule == ["miss", "peer_pass"]  # a2 failed it; a1 passed it in a complaint call in English
    assert ("trainer_miss", "quality") in items
    assert "opening.agent_name" in html and "script rule" in html  # the step and its rubric text
    assert "say your name &lt;b&gt;first&lt;/b&gt;" in html  # the trainer's note, escaped
    srcs = re.findall(r'<audio controls preload="metadata" src="([^"]+)"', html)
    assert srcs and all(not s.startswith(("/", "http", "file:")) and (index.parent / s).is_file() for s in srcs)
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert 'href="pack.css"' in html and (index.parent / "pack.css").is_file()
    ack = (index.parent / "ack.html").read_text()
    assert "Signature" in ack and "opening.agent_name" in ack and "<script" not in ack
    # every clip comes from a redacted copy: the muted PERSON span is silent in the miss's clip
    (entry,) = read_registry(DataFolder(packdata.data))
    assert entry["dir"] == str(index.parent.resolve()) and id_hash(packdata.ids["alpha-2"]) in entry["calls"]
    assert packdata.ids["alpha-2"] not in (packdata.data / "_packs" / "registry.json").read_text()


def test_no_clip_without_a_redacted_copy(tmp_path):
    from qa_pipeline.render.coaching import build_pack

    tiny = build_tiny_data(tmp_path, searched=False)
    score_tiny(tiny)  # no pii dataset, no redacted copies: the originals may hold personal data
    index = build_pack(tiny.data, tmp_path / "pack", agent="a2")
    html = index.read_text()
    assert "<audio" not in html and "no redacted copy of this call: audio left out" in html
    assert not list((index.parent / "clips").iterdir())


def test_nothing_to_coach_is_a_coded_error(packdata, tmp_path):
    from qa_pipeline.errors import ConfigError
    from qa_pipeline.render.coaching import build_pack

    with pytest.raises(ConfigError) as e:
        build_pack(packdata.data, tmp_path / "p", agent="nobody")
    assert e.value.code == "E652"


def test_coach_command(packdata, tmp_path, capsys):
    from flows.cli import main

    assert main(["coach", "--data", str(packdata.data), "--out", str(tmp_path / "cmd"), "--team", "alpha",
                 "--format", "wav"]) == 0
    assert (tmp_path / "cmd" / "index.html").is_file() and list((tmp_path / "cmd" / "clips").glob("*.wav"))
    assert "coaching pack:" in capsys.readouterr().out


def test_trainers_build_a_pack_in_the_app(tmp_path):
    from fastapi.testclient import TestClient

    from tests.webapp.conftest import MORE_USERS, PASSWORD, add_users, make_settings
    from webapp.app import create_app
    from webapp.users import NewUser, add_user

    tiny = build_tiny_data(tmp_path)
    score_tiny(tiny)
    add_redacted_copies(tiny)
    app = create_app(make_settings(tiny, rescore="inline"))
    with TestClient(app) as c:
        add_users(app)
        st = app.state.qa
        with st.db.write() as s:
            role, teams, agent = MORE_USERS["trainer-alpha"]
            add_user(s, NewUser(username="trainer-alpha", role=role, password=PASSWORD, teams=teams,
                                agent_id=agent), st.passwords, min_length=10)
        as_user(c, "trainer-alpha")
        page = c.get("/coaching")
        assert 'action="/coaching/pack"' in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = c.post("/coaching/pack", data={"team": "alpha", "csrf_token": token})
        assert r.status_code == 200, r.text
        names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
        assert "coaching-pack/index.html" in names and "coaching-pack/ack.html" in names
        assert any(n.startswith("coaching-pack/clips/") for n in names)
        r = c.post("/coaching/pack", data={"team": "beta<script>alert(1)</script>", "csrf_token": token})
        assert r.status_code == 404  # not their team


# ---- the browser: open the pack from disk and play a clip -----------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM}")
def test_chromium_opens_the_pack_from_disk_and_plays_a_clip(packdata, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    from qa_pipeline.render.coaching import build_pack

    index = build_pack(packdata.data, tmp_path / "usb" / "pack", agent="a2")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required",
                                          "--disable-background-networking"])
        try:
            page = browser.new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(index.resolve().as_uri())
            assert page.locator("audio").count() >= 2
            page.evaluate("document.querySelector('audio').play()")
            import time

            deadline = time.monotonic() + 15  # polled (the pack's CSP forbids the eval wait_for_function needs)
            while page.evaluate("document.querySelector('audio').currentTime") <= 0.5:
                assert time.monotonic() < deadline, page.evaluate("document.querySelector('audio').error")
                page.wait_for_timeout(100)
            assert page.evaluate("document.querySelector('audio').error") is None
            assert all(u.startswith("file://") for u in requests), requests  # nothing fetched from elsewhere
        finally:
            browser.close()
