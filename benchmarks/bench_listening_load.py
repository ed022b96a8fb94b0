"""Loopback load test of the listening app: N simulated listeners, one server, one SIGKILL.

Each simulated listener is a programmatic Streamlit client (:class:`SimListener`): it speaks the
app's websocket protocol (protobuf BackMsg/ForwardMsg), reads the page it is sent, fetches each
trial's three clips by their one-use tickets over HTTP as the player does, waits the
server-clock minimum, and clicks through consent, metadata, every trial, the break and the
debrief. Halfway through, the server gets SIGKILL and is restarted on the same port; every
listener reconnects with its ``?token=`` and carries on.

Printed (docs/listening_load.md): CPU-seconds per page (script run), MB per session (websocket
frames plus audio), server memory per session, p50/p95 time to serve a trial (the answer click
until the next trial's audio is in), and answers acknowledged / stored / lost / duplicated.

    nice python benchmarks/bench_listening_load.py --listeners 50
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app" / "asgi.py"
warnings.filterwarnings("ignore", message="connect\\(\\) must be used", category=DeprecationWarning)


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    """``streamlit run app/asgi.py`` on a fixed port; kill -9 and start again."""

    def __init__(self, port: int, env: dict, log: Path, app: Path = APP) -> None:
        self.port, self.env, self.log, self.app = port, env, log, app
        self.proc: subprocess.Popen | None = None
        self.gc = False
        self.cpu_done = 0.0  # CPU of killed incarnations

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(self.app),
             "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             "--runner.postScriptGC", "true" if self.gc else "false"],
            env=self.env, stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stcore/health", timeout=2)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def cpu(self) -> float:
        return self.cpu_done + (_proc_cpu(self.proc.pid) if self.proc else 0.0)

    def rss_mb(self) -> float:
        return _proc_rss_mb(self.proc.pid) if self.proc else 0.0

    def kill9(self) -> None:
        self.cpu_done += _proc_cpu(self.proc.pid)
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.cpu_done += _proc_cpu(self.proc.pid)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclass
class Page:
    """What one script run showed: widgets by label, texts, the player's data."""

    buttons: dict = field(default_factory=dict)  # label -> (id, disabled, is_form_submitter)
    checkboxes: dict = field(default_factory=dict)
    texts: list = field(default_factory=list)
    player: dict | None = None


class Disconnected(Exception):
    pass


@dataclass
class Stats:
    pages: int = 0
    ws_bytes: int = 0
    audio_bytes: int = 0
    trial_s: list = field(default_factory=list)
    acknowledged: int = 0
    reconnects: int = 0
    finished: bool = False
    error: str | None = None
    token: str | None = None


class SimListener:
    """One participant, driven through the app's own websocket protocol."""

    def __init__(self, port: int, think_s: float, rerun_trial: int = 0) -> None:
        self.port, self.think_s, self.rerun_trial = port, think_s, rerun_trial
        self.ws = None
        self.query = ""
        self.stats = Stats()

    # ------------------------------------------------------------------ protocol
    def connect(self) -> Page:
        from websockets.sync.client import connect  # noqa: PLC0415

        try:
            self.ws = connect(f"ws://127.0.0.1:{self.port}/_stcore/stream",
                              subprotocols=["streamlit"], origin=f"http://127.0.0.1:{self.port}",
                              max_size=None, open_timeout=10)
        except (OSError, TimeoutError) as exc:  # server down (being restarted)
            raise Disconnected(str(exc)) from None
        return self.rerun([])

    def rerun(self, widgets: list) -> Page:
        from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: PLC0415

        msg = BackMsg()
        msg.rerun_script.query_string = self.query
        msg.rerun_script.widget_states.widgets.extend(widgets)
        try:
            self.ws.send(msg.SerializeToString())
            return self._read_page()
        except Exception as exc:  # noqa: BLE001 - any socket failure is a disconnect here
            raise Disconnected(str(exc)) from None

    def _read_page(self) -> Page:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: PLC0415

        page = Page()
        while True:
            raw = self.ws.recv(timeout=120)
            self.stats.ws_bytes += len(raw)
            fm = ForwardMsg()
            fm.ParseFromString(raw)
            kind = fm.WhichOneof("type")
            if kind == "new_session":  # a script run starts: the page is rebuilt from scratch
                page = Page()
            elif kind == "page_info_changed":
                self.query = fm.page_info_changed.query_string
            elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                self._element(fm.delta.new_element, page)
            elif kind == "script_finished":
                self.stats.pages += 1
                if fm.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    return page

    @staticmethod
    def _element(el, page: Page) -> None:  # noqa: ANN001 - an Element proto
        kind = el.WhichOneof("type")
        if kind == "button":
            page.buttons[el.button.label] = (el.button.id, el.button.disabled)
        elif kind == "checkbox":
            page.checkboxes[el.checkbox.label] = el.checkbox.id
        elif kind == "heading":
            page.texts.append(el.heading.body)
        elif kind == "markdown":
            page.texts.append(el.markdown.body)
        elif kind == "alert":
            page.texts.append(el.alert.body)
        elif kind == "bidi_component" and el.bidi_component.json:
            data = json.loads(el.bidi_component.json)
            if isinstance(data, dict) and "tickets" in data:  # the player, not the page's
                page.player = data  # browser probe or break countdown

    @staticmethod
    def _click(wid: str):  # noqa: ANN205 - a WidgetState
        from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: PLC0415

        return WidgetState(id=wid, trigger_value=True)

    def _fetch(self, player: dict) -> None:
        for t in player["tickets"]:
            url = f"http://127.0.0.1:{self.port}/{player['route']}/{t}"
            try:
                with urllib.request.urlopen(url, timeout=60) as r:
                    self.stats.audio_bytes += len(r.read())
            except (OSError, http.client.HTTPException) as exc:  # server gone: reconnect
                raise Disconnected(str(exc)) from None

    # ------------------------------------------------------------------ a session
    def step(self, page: Page, fetched: set) -> Page:
        """One action on the page shown; returns the next page."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: PLC0415

        text = " ".join(page.texts)
        if "All your answers are saved" in text:
            self.stats.finished = True
            return page
        if "I agree to take part" in page.checkboxes:
            agree = WidgetState(id=page.checkboxes["I agree to take part"], bool_value=True)
            page = self.rerun([agree])
            return self.rerun([agree, self._click(page.buttons["Start"][0])])
        if "Finish" in page.buttons:
            return self.rerun([self._click(page.buttons["Finish"][0])])
        if "Take a short rest" in text:
            time.sleep(1.0)
            return self.rerun([self._click(page.buttons["Continue"][0])])
        if "Continue" in page.buttons:  # the metadata form
            return self.rerun([self._click(page.buttons["Continue"][0])])
        if page.player and "X is A" in page.buttons and self.rerun_trial:
            for _ in range(self.rerun_trial):  # page cost only: rerun the first trial page
                time.sleep(self.think_s)
                page = self.rerun([])
            self.stats.finished = True
            return page
        if page.player and "X is A" in page.buttons:
            trial = page.player["trial"]
            if page.buttons["X is A"][1]:  # locked: listen (fetch once), wait, ask again
                if trial not in fetched:
                    self._fetch(page.player)
                    fetched.add(trial)
                    if self.t_click is not None:
                        self.stats.trial_s.append(time.perf_counter() - self.t_click)
                        self.t_click = None
                    needed = 3 * page.player["min_play_ms"] / 1000
                    time.sleep(max(needed + 0.1, self.think_s))
                else:
                    time.sleep(0.3)
                return self.rerun([])
            self.t_click = time.perf_counter()
            # this client sends no player log, so the page holds its first click for the log
            # (docs/listening_participants.md#no-dead-ends) and the next click saves it as is
            nxt = self.rerun([self._click(page.buttons["X is A"][0])])
            if not (nxt.player and nxt.player["trial"] == trial):
                self.stats.acknowledged += 1  # the page moved on: the server took the answer
            return nxt
        time.sleep(0.3)
        return self.rerun([])

    def run(self, deadline: float) -> None:
        fetched: set = set()
        self.t_click = None
        page = None
        while time.time() < deadline and not self.stats.finished:
            try:
                if page is None:
                    page = self.connect()
                page = self.step(page, fetched)
            except Disconnected:
                self.stats.reconnects += 1
                try:
                    if self.ws is not None:
                        self.ws.close()
                except Exception:  # noqa: BLE001, S110 - already gone
                    pass
                page, fetched = None, set()  # a fresh page gets fresh tickets
                self.t_click = None
                time.sleep(0.5)
            except Exception as exc:  # noqa: BLE001 - report, do not hang the benchmark
                self.stats.error = f"{type(exc).__name__}: {exc}"
                break
        if self.ws is not None:
            self.ws.close()
        self.stats.token = dict(kv.split("=", 1) for kv in self.query.split("&") if "=" in kv
                                ).get("token")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(listeners: int, think_s: float, kill_at: float | None, timeout_s: float,
        workdir: Path, app: Path = APP, rerun_trial: int = 0, gc: bool = False) -> dict:
    """Start a server on a synthetic study, run the listeners, kill -9 once; return figures."""
    from sqlalchemy import func, select  # noqa: PLC0415

    from seofp_lab.listening.listener import StudyService  # noqa: PLC0415
    from seofp_lab.listening.stimuli import prepare_study  # noqa: PLC0415
    from seofp_lab.listening.store import Answer, Participant  # noqa: PLC0415
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # test helper
    from synthetic_study import make_run_dirs, make_study  # noqa: PLC0415

    ws_dir = workdir / "ws"
    os.environ["SEOFP_WORKSPACE"] = str(ws_dir)
    os.environ.pop("SEOFP_STUDY_DB", None)
    study = make_study(workdir, name="load", stimuli={"side_metrics": False, "max_seconds": 4.0},
                       trials={"practice": 2, "blocks": 2, "test_per_block": 8,
                               "catch_per_block": 1, "null_per_block": 1, "break_seconds": 1},
                       player={"min_play_seconds": 0.5}, utterances=8)
    make_run_dirs(study / "runs", utterances=8, seconds=4.0)  # clips as long as a real study's
    prepare_study(study)
    per_session = 2 + 2 * (8 + 1 + 1)
    env = dict(os.environ, SEOFP_STUDY_DIR=str(study), SEOFP_STUDY_PASSWORD="pw",
               OMP_NUM_THREADS="1")
    if os.environ.get("SEOFP_LOAD_SERVER_PYTHONPATH"):  # e.g. an older checkout, to compare
        env["PYTHONPATH"] = os.environ["SEOFP_LOAD_SERVER_PYTHONPATH"]
    server = Server(_free_port(), env, workdir / "server.log", app)
    server.gc = gc
    server.start()
    time.sleep(1.0)
    rss0 = server.rss_mb()
    cpu0 = server.cpu()
    sims = [SimListener(server.port, think_s, rerun_trial) for _ in range(listeners)]
    deadline = time.time() + timeout_s
    threads = [threading.Thread(target=s.run, args=(deadline,), daemon=True) for s in sims]
    t0 = time.time()
    for i, t in enumerate(threads):
        t.start()
        time.sleep(0.05 * (i % 10 == 9))
    rss_peak, killed = rss0, False
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        if server.proc.poll() is None:
            rss_peak = max(rss_peak, server.rss_mb())
        done = sum(s.stats.finished for s in sims)
        if kill_at is not None and not killed and done < listeners and (
                sum(s.stats.acknowledged for s in sims) >= kill_at * listeners * per_session):
            server.kill9()
            killed = True
            server.start()
    wall = time.time() - t0
    cpu = server.cpu() - cpu0
    server.stop()
    service = StudyService(study)
    with service.store.session() as s:
        stored = s.scalar(select(func.count(Answer.id))) or 0
        distinct = s.scalar(select(func.count()).select_from(
            select(Answer.participant_id, Answer.trial_index).distinct().subquery())) or 0
        per_token = dict(s.execute(select(Participant.token, func.count(Answer.id))
                                   .join(Answer, Answer.participant_id == Participant.id)
                                   .group_by(Participant.token)).all())
    acked = sum(s.stats.acknowledged for s in sims)
    lost = sum(max(0, s.stats.acknowledged - per_token.get(s.stats.token, 0)) for s in sims)
    pages = sum(s.stats.pages for s in sims)
    finished = [s for s in sims if s.stats.finished]
    times = sorted(t for s in sims for t in s.stats.trial_s)
    mb = [(s.stats.ws_bytes + s.stats.audio_bytes) / 1e6 for s in finished]
    return {
        "listeners": listeners, "finished": len(finished), "killed": killed, "wall_s": wall,
        "pages": pages, "cpu_s": cpu, "cpu_per_page_s": cpu / max(pages, 1),
        "mb_per_session": sum(mb) / max(len(mb), 1),
        "ws_mb_per_session": sum(s.stats.ws_bytes for s in finished) / 1e6 / max(len(mb), 1),
        "rss_base_mb": rss0, "rss_peak_mb": rss_peak,
        "mem_per_session_mb": (rss_peak - rss0) / max(listeners, 1),
        "p50_trial_s": times[len(times) // 2] if times else float("nan"),
        "p95_trial_s": times[int(0.95 * (len(times) - 1))] if times else float("nan"),
        "acknowledged": acked, "stored": stored, "lost": lost, "duplicated": stored - distinct,
        "reconnects": sum(s.stats.reconnects for s in sims),
        "errors": [s.stats.error for s in sims if s.stats.error][:3],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listeners", type=int, default=10)
    ap.add_argument("--think", type=float, default=2.0,
                    help="seconds each listener spends per trial (at least the gate's minimum)")
    ap.add_argument("--kill-at", type=float, default=0.5,
                    help="SIGKILL when this fraction of all answers is in (negative: never)")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--app", type=Path, default=APP, help="the app script to serve (to compare "
                    "with an older checkout; set SEOFP_LOAD_SERVER_PYTHONPATH to its root)")
    ap.add_argument("--rerun-trial", type=int, default=0, metavar="K",
                    help="page cost only: rerun the first trial page K times, answer nothing")
    ap.add_argument("--gc", action="store_true", help="keep Streamlit's gc after every rerun")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="seofp-load-") as tmp:
        r = run(args.listeners, args.think, None if args.kill_at < 0 else args.kill_at,
                args.timeout, Path(tmp), args.app, args.rerun_trial, args.gc)
    rows = [
        ("listeners (finished)", f"{r['listeners']} ({r['finished']})"),
        ("SIGKILL + restart mid-run", "yes" if r["killed"] else "no"),
        ("wall time", f"{r['wall_s']:.0f} s"),
        ("pages (script runs)", f"{r['pages']}"),
        ("server CPU", f"{r['cpu_s']:.1f} s"),
        ("CPU per page", f"{r['cpu_per_page_s'] * 1000:.0f} ms"),
        ("MB per session (websocket + audio)",
         f"{r['mb_per_session']:.2f} (websocket {r['ws_mb_per_session']:.2f})"),
        ("server RSS base / peak", f"{r['rss_base_mb']:.0f} / {r['rss_peak_mb']:.0f} MB"),
        ("memory per session", f"{r['mem_per_session_mb']:.2f} MB"),
        ("time to serve a trial p50 / p95",
         f"{r['p50_trial_s'] * 1000:.0f} / {r['p95_trial_s'] * 1000:.0f} ms"),
        ("answers acknowledged / stored", f"{r['acknowledged']} / {r['stored']}"),
        ("answers lost / duplicated", f"{r['lost']} / {r['duplicated']}"),
        ("reconnects", f"{r['reconnects']}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if r["errors"]:
        print("errors:", *r["errors"], sep="\n  ")


if __name__ == "__main__":
    main()
