"""No dead ends, in a real browser (Debian chromium via Playwright) against ``streamlit run
app/asgi.py`` (the study app with the one-use audio route, as ``seofp study serve`` runs it:
every clip fetched by ticket, every answer unlocked by the server's playback record): a phone
is refused with a clear page, a failed listening check ends on a page with the screened-out
code, a link with markdown in it shows as plain text, a closed tab resumes from the link the
browser kept, and the break countdown moves and ends by itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from _browser import APP, ARGS, CHROMIUM, MARKS
from sqlalchemy import func, select
from synthetic_study import make_study

from seofp_lab.listening.listener import StudyService
from seofp_lab.listening.stimuli import prepare_study
from seofp_lab.listening.store import Answer, Participant

pytestmark = MARKS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """``streamlit run app/asgi.py`` as ``seofp study serve`` starts it; returns once it answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         "--client.showErrorDetails", "none", "--runner.postScriptGC", "false"],
        env=env, stdout=log.open("a"), stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail("streamlit did not start: " + log.read_text()[-2000:])


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("participant")
    study = make_study(
        tmp_path, trials={"practice": 0, "blocks": 2, "test_per_block": 2, "catch_per_block": 0,
                          "null_per_block": 0, "break_seconds": 4},
        screening={"headphone_trials": 0, "headphone_pass": 0, "environment_trials": 2,
                   "environment_pass": 2},
        crowd={"completion_code": "DONE42", "completion_url": "https://example.org/done?cc={code}",
               "screened_out_code": "OUT7"})
    env = dict(os.environ, SEOFP_WORKSPACE=str(tmp_path / "ws"), SEOFP_STUDY_DIR=str(study),
               OMP_NUM_THREADS="1")
    env.pop("SEOFP_STUDY_DB", None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEOFP_WORKSPACE", env["SEOFP_WORKSPACE"])
        mp.delenv("SEOFP_STUDY_DB", raising=False)
        prepare_study(study)
        port = _free_port()
        proc = _launch(env, port, tmp_path / "server.log")
        try:
            yield f"http://127.0.0.1:{port}/", study
        finally:
            _stop(proc)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20000)  # two shared cores: a rerun can take seconds
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield pw, b
        b.close()


def _participants(study: Path) -> int:
    with StudyService(study).store.session() as s:
        return s.scalar(select(func.count(Participant.id)))


def _token(page) -> str:  # noqa: ANN001 - a Playwright Page
    return parse_qs(urlsplit(page.url).query)["token"][0]


def _start(page, url: str) -> str:  # noqa: ANN001
    page.goto(url)
    page.get_by_text("I agree to take part").click()
    page.get_by_role("button", name="Start").click()
    page.get_by_role("heading", name="About you").wait_for()
    return _token(page)


def _listen_until(page, labels: list[str], gate) -> None:  # noqa: ANN001
    """Play each clip, then wait for ``gate`` to unlock; a click lost in a rerun is retried."""
    player = page.locator(".seofp-player")
    for _ in range(4):
        for label in labels:
            player.get_by_role("button", name=label, exact=True).click()
            page.wait_for_timeout(300)
        player.get_by_role("button", name="Stop").click()
        for _ in range(10):
            if gate():
                return
            page.wait_for_timeout(200)
    raise AssertionError("the answer never unlocked after listening")


def _screen(page, study: Path, token: str, right: bool, attempt: int, i: int) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    # this screening item's page, not the previous one's still shown while the rerun runs
    expect(page.get_by_text(f"{i + 1} of 2", exact=True)).to_be_visible()
    page.locator(".seofp-player button").first.wait_for()
    listener = StudyService(study).listener(token)
    correct = listener._screen_stimulus("environment", attempt, i)[1]
    choice = str((correct if right else 1 - correct) + 1)
    radio = page.locator('[data-testid="stRadio"]')
    _listen_until(page, ["1", "2"],
                  lambda: radio.locator("input").first.is_enabled())
    radio.get_by_text(choice, exact=True).click()
    submit = page.get_by_role("button", name="Submit")
    expect(submit).to_be_enabled()
    submit.click()
    # the next page has no choice made yet (or no choice at all): the answer went through
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stRadio\"] "
                           "input:checked')")


def test_a_phone_is_refused_with_a_clear_page(server, browser) -> None:
    url, study = server
    pw, b = browser
    context = b.new_context(**pw.devices["iPhone 13"])
    page = context.new_page()
    page.goto(url)
    page.get_by_role("heading", name="Please use a computer").wait_for(timeout=30000)
    assert page.get_by_role("button", name="Start").count() == 0
    assert _participants(study) == 0
    context.close()


def test_markdown_in_the_link_is_never_rendered(server, browser) -> None:
    url, _ = server
    _, b = browser
    page = b.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    for bad in ("[click here](http://evil/)", "![x](http://evil/x.png)"):
        page.goto(f"{url}?token={quote(bad)}")
        page.get_by_role("heading", name="This link does not work").wait_for(timeout=30000)
        assert page.locator('a[href*="evil"]').count() == 0
        assert page.locator('img[src*="evil"]').count() == 0
    assert not any(urlsplit(u).hostname == "evil" for u in asked)  # no fetch of an image
    page.close()


def test_failed_check_ends_with_the_code_and_a_closed_tab_resumes(server, browser) -> None:
    from playwright.sync_api import expect

    url, study = server
    _, b = browser
    context = b.new_context()
    page = context.new_page()
    page.set_default_timeout(20000)
    token = _start(page, url)
    expect(page.get_by_text(f"?token={token}")).to_be_visible()  # the resume link, shown
    page.close()  # the tab is closed; the study link (no token) is opened again
    page = context.new_page()
    page.set_default_timeout(20000)
    page.goto(url)
    resume = page.get_by_role("link", name="Continue where you left off")
    resume.wait_for()
    page.goto(resume.get_attribute("href"))
    page.get_by_role("heading", name="About you").wait_for()
    assert _token(page) == token and _participants(study) == 1
    # a page just opened from the resume link may still be in the rerun its URL started; a
    # click then can be dropped (docs/listening_load.md#known-limits): one more click, once
    heading = page.get_by_role("heading", name="Listening environment")
    page.get_by_role("button", name="Continue").click()
    try:
        heading.wait_for(timeout=8000)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError
        page.get_by_role("button", name="Continue").click()
        heading.wait_for()
    expect(page.get_by_text("Click 1 and 2")).to_be_visible()
    _screen(page, study, token, True, 1, 0)
    _screen(page, study, token, False, 1, 1)
    expect(page.get_by_text("you have one more try")).to_be_visible()
    _screen(page, study, token, False, 2, 0)
    _screen(page, study, token, False, 2, 1)
    page.get_by_role("heading", name="Thank you!").wait_for()
    expect(page.get_by_text("did not pass the listening checks")).to_be_visible()
    expect(page.get_by_text("OUT7")).to_be_visible()
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "/work/" not in body and "Error" not in body
    context.close()


def test_break_countdown_moves_and_ends_by_itself(server, browser) -> None:
    from playwright.sync_api import expect

    url, study = server
    _, b = browser
    page = b.new_page()
    page.set_default_timeout(20000)
    token = _start(page, url)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Listening environment").wait_for()
    _screen(page, study, token, True, 1, 0)
    _screen(page, study, token, True, 1, 1)
    shown = []
    for k in range(4):
        # the new trial's page, not the last one's still on screen while the rerun runs
        expect(page.get_by_text(f"trial {k + 1} of 4")).to_be_visible()
        shown.append(page.locator('[data-testid="stProgress"]').inner_text())
        answer = page.get_by_role("button", name="X is A")
        page.locator(".seofp-player button").first.wait_for()
        # the answered trial's buttons (keyed by its id, so a click on them answers nothing)
        # stay until the rerun finishes: wait for the new trial's, locked until it is heard
        page.wait_for_function("() => { const b = [...document.querySelectorAll('button')]"
                               ".filter((b) => b.innerText.trim() === 'X is A');"
                               " return b.length === 1 && b[0].disabled; }")
        _listen_until(page, ["A", "B", "X"], answer.is_enabled)
        answer.click()
        expect(page.get_by_text(f"Answer {k + 1} saved.")).to_be_visible()
        if k == 1:
            clock = page.locator(".seofp-countdown")
            clock.wait_for()
            first = clock.inner_text()
            page.wait_for_timeout(1300)
            assert clock.inner_text() != first, first  # it moves
            # no click: the block starts when the server's clock says the break is over
            page.get_by_role("heading", name="Block 2 of 2").wait_for(timeout=15000)
    assert shown == [f"Block {1 + k // 2} of 2 · trial {k + 1} of 4" for k in range(4)]
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_text("DONE42")).to_be_visible()
    link = page.get_by_role("link", name="Return to the study platform")
    assert link.get_attribute("href") == "https://example.org/done?cc=DONE42"
    page.close()


def test_after_a_server_restart_the_player_reports_again(tmp_path: Path, browser) -> None:
    """The server is killed (SIGKILL) after A, B and X were heard and started again; the page
    reconnects to a new server session, which has no report from the player. The answer click
    must be neither lost nor stored as given without hearing X: the player (kept by the page)
    reports what was heard again, and the click waits for it."""
    from playwright.sync_api import expect

    study = make_study(tmp_path, trials={"practice": 0, "blocks": 1, "test_per_block": 4,
                                         "catch_per_block": 0, "null_per_block": 0,
                                         "break_seconds": 0})
    env = dict(os.environ, SEOFP_WORKSPACE=str(tmp_path / "ws"), SEOFP_STUDY_DIR=str(study),
               OMP_NUM_THREADS="1")
    env.pop("SEOFP_STUDY_DB", None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEOFP_WORKSPACE", env["SEOFP_WORKSPACE"])
        mp.delenv("SEOFP_STUDY_DB", raising=False)
        prepare_study(study)
        port, log = _free_port(), tmp_path / "server.log"
        proc = _launch(env, port, log)
        _, b = browser
        page = b.new_page()
        page.set_default_timeout(20000)
        try:
            _start(page, f"http://127.0.0.1:{port}/")
            page.get_by_role("button", name="Continue").click()
            answer = page.get_by_role("button", name="X is A")
            page.locator(".seofp-player button").first.wait_for()
            _listen_until(page, ["A", "B", "X"], answer.is_enabled)
            proc.kill()
            proc.wait(10)
            proc = _launch(env, port, log)
            # the page reconnects, but its new server session runs the page only when the
            # participant clicks: that first click finds no report from the player there;
            # it is held, the player is asked for its log, and the answer saved with it
            page.wait_for_function("() => !document.body.innerText.includes('Connecting')",
                                   timeout=60000)
            page.wait_for_timeout(3000)  # the websocket is open again (a click sent before is
            expect(answer).to_be_enabled(timeout=30000)  # lost in the browser, not the server)
            answer.click()
            expect(page.get_by_text("Answer 1 saved.")).to_be_visible(timeout=30000)
        finally:
            page.close()
            _stop(proc)
        with StudyService(study).store.session() as s:
            row = s.execute(select(Answer.plays_x, Answer.ms_heard_x,
                                   Answer.answered_without_x)).one()
    assert row.plays_x >= 1 and row.ms_heard_x > 0 and not row.answered_without_x, row
