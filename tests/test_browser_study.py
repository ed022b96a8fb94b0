"""One end-to-end run in a real browser: Debian chromium, driven by Playwright, against
``streamlit run app/study_app.py`` on a free local port.

It takes a short study from consent to thank-you, checks the answers landed in the database, that
the answer buttons unlock only after A, B and X have played, and that nothing the browser received
tracks X: its decoded audio never equals A's or B's, and no request URL carries audio.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from synthetic_study import make_study

from seofp_lab.listening.listener import StudyService
from seofp_lab.listening.stimuli import prepare_study
from seofp_lab.listening.store import Answer, TrialRow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--autoplay-policy=no-user-gesture-required"]
APP = Path(__file__).resolve().parents[1] / "app" / "study_app.py"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=(
        "needs Debian's chromium at /usr/bin/chromium: `apt-get install -y chromium "
        "chromium-driver` (as root)")),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    study = make_study(tmp_path, trials={"practice": 1, "blocks": 2, "test_per_block": 2,
                                         "catch_per_block": 0, "null_per_block": 0,
                                         "break_seconds": 1})
    env = dict(os.environ, SEOFP_WORKSPACE=str(tmp_path / "ws"), SEOFP_STUDY_DIR=str(study),
               SEOFP_STUDY_PASSWORD="pw", OMP_NUM_THREADS="1")
    env.pop("SEOFP_STUDY_DB", None)
    monkeypatch.setenv("SEOFP_WORKSPACE", env["SEOFP_WORKSPACE"])
    monkeypatch.delenv("SEOFP_STUDY_DB", raising=False)
    prepare_study(study)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        env=env, stdout=(tmp_path / "server.log").open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + (tmp_path / "server.log").read_text()[-2000:])
    try:
        yield f"http://127.0.0.1:{port}/", study
    finally:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()


def _clips(page) -> list[bytes]:
    """The current trial's clips as the browser holds them (A, B, X in order)."""
    b64 = page.evaluate("() => { const r = window.__seofpPlayers || {}; const k = Object.keys(r);"
                        " return k.length ? r[k[0]].data.clips : []; }")
    return [base64.b64decode(c) for c in b64]


def _static(url: str) -> bool:
    return "/static/" in url or url.endswith("/favicon.png")


def _listen(page, labels: list[str]) -> None:
    player = page.locator(".seofp-player")
    for label in labels:
        player.get_by_role("button", name=label, exact=True).click()
        page.wait_for_timeout(300)
    player.get_by_role("button", name="Stop").click()


def test_consent_to_thank_you_in_chromium(server) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, study = server
    urls: list[str] = []
    per_trial: list[set[str]] = []
    seen_x: list[tuple[bytes, bytes, bytes]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.on("request", lambda r: urls.append(r.url))
        page.set_default_timeout(20000)
        page.goto(url)
        page.get_by_text("I agree to take part").click()
        page.get_by_role("button", name="Start").click()
        page.get_by_role("button", name="Continue").click()  # metadata
        n = 0
        while True:
            answer = page.get_by_role("button", name="X is A")
            heading = page.locator("h2", has_text="Almost done")
            brk = page.get_by_text("Take a short rest")
            answer.or_(heading).or_(brk).first.wait_for()
            if heading.count():
                break
            if brk.count():
                page.wait_for_timeout(1000)
                page.get_by_role("button", name="Continue").click()
                page.wait_for_timeout(300)
                continue
            page.locator(".seofp-player button").first.wait_for()
            expect(answer).to_be_disabled()  # the gate: nothing played yet
            page.wait_for_function("() => Object.keys(window.__seofpPlayers || {}).length")
            trial_id = page.evaluate("() => Object.keys(window.__seofpPlayers)[0]")
            a, b, x = _clips(page)
            seen_x.append((a, b, x))
            mark = len(urls)
            _listen(page, ["A", "B", "X"])
            for _ in range(3):  # a click that lands during a rerun is lost; a person clicks again
                if answer.is_enabled():
                    break
                page.wait_for_timeout(1000)
                _listen(page, ["A", "B", "X"])
            expect(answer).to_be_enabled(timeout=10000)
            per_trial.append({u for u in urls[mark:] if not _static(u)})
            page.get_by_role("button", name="X is A" if n % 2 else "X is B").click()
            # the answered trial's player is gone: replaced by the next trial, or silenced
            page.wait_for_function(f"() => !(window.__seofpPlayers || {{}})['{trial_id}']")
            n += 1
        page.get_by_role("button", name="Finish").click()
        expect(page.get_by_text("All your answers are saved")).to_be_visible()
        browser.close()

    service = StudyService(study)
    with service.store.session() as s:
        answers = s.scalars(select(Answer)).all()
        shown = s.scalars(select(TrialRow)).all()
    assert len(answers) == n == 5  # 1 practice + 2 blocks x 2 test trials
    assert all(a.ms_heard_x > 0 and a.plays_x >= 1 for a in answers)
    assert {t.x_is for t in shown} == {"A", "B"}  # both kinds of trial went through the browser
    for a, b, x in seen_x:
        assert x != a and x != b and len(a) == len(b) == len(x)
        assert x[44:] != a[44:] and x[44:] != b[44:]  # PCM differs too, not only the header
    digests = {hashlib.sha256(c).hexdigest() for trio in seen_x for c in trio}
    assert len(digests) == 3 * len(seen_x)  # no served buffer ever repeats
    # no request ever names audio, and listening to a trial requests nothing at all: the same
    # (empty) URL set for X = A and X = B trials, so nothing in the network tab tracks X
    assert not any(u.endswith((".wav", ".mp3", ".ogg", ".webm")) for u in urls)
    assert not any("/media/" in u and "/static/media/" not in u for u in urls)
    assert all(not got for got in per_trial), per_trial
