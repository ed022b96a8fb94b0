"""The ABX player: one ``st.components.v2`` component, Web Audio, audio by one-use tickets.

The component's data holds no audio: only opaque tickets. At the first play click it fetches
each clip once from ``/seofp/audio/<ticket>`` (served by ``app/asgi.py``, rendered with fresh
per-serve transforms, docs/listening_blinding.md) and keeps the decoded buffers in closures, not
on ``window``. A, B and X start in sync, loop, and switching only moves gains (a short
crossfade) so the playhead keeps its place. The component reports cumulative listening counts
with ``setStateValue`` when each clip reaches its minimum, on blur, and once for every new
component instance after something was heard (a reconnect gets a new server session, whose
page keys the player anew and has seen no report; coalesced: at most one report per 400 ms, as
each is a rerun). A report only prompts a rerun, in which
the server's own accounting (:func:`seofp_lab.listening.blinding.playback`) decides whether
the answer unlocks.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from seofp_lab.listening.blinding import AUDIO_ROUTE

HTML = '<div class="seofp-player"></div>'

CSS = """
.seofp-player { display: flex; gap: 0.6rem; align-items: center; flex-wrap: wrap; }
.seofp-player button { font-size: 1.2rem; min-width: 4.2rem; padding: 0.5rem 0.9rem;
  border-radius: 0.5rem; border: 1px solid #888; background: #f4f4f4; cursor: pointer; }
.seofp-player button.on { background: #ff4b4b; color: white; border-color: #ff4b4b; }
.seofp-player .status { margin-left: 0.8rem; color: #555; font-family: sans-serif; }
"""

JS = r"""
// Module scope, not window: the page's globals hold no player, buffer, ticket or clip.
const players = new Map();

function makePlayer(init) {
  let data = init;
  // the audio lives only in these closure variables; nothing returned or stored exposes it
  let ctx = null, buffers = null, loading = null;
  const sources = [], gains = [];
  const heard = {}, plays = {}, sent = {};
  let current = null, switches = 0, blur = 0, lastTick = null, startedAt = null;
  let send = null, root = null, detached = 0, failed = null, attached = init.instance;
  let asked = null;
  const events = [];
  const t0 = performance.now();
  data.labels.forEach((l) => { heard[l] = 0; plays[l] = 0; });
  const fade = () => Math.max(data.crossfade_ms, 1) / 1000;
  const log = (event, label) => events.push({ event, label: label || null,
    t_ms: Math.round(performance.now() - t0) });
  const loops = () => (!ctx || startedAt === null || !buffers) ? 0
    : Math.floor((ctx.currentTime - startedAt) / buffers[0].duration);
  let pending = null;
  const report = () => {  // each report reruns the page: coalesce bursts of clicks into one
    if (pending) return;
    pending = setTimeout(() => { pending = null; reportNow(); }, 400);
  };
  let lastReport = 0;
  const reportNow = () => {
    if (!send) return;
    lastReport = performance.now();
    send("log", { heard: { ...heard }, plays: { ...plays }, switches, blur, loops: loops(),
      events: events.slice(-200), sample_rate: ctx ? ctx.sampleRate : null,
      output_latency: ctx && ctx.outputLatency ? ctx.outputLatency : null });
  };
  const render = () => {
    if (!root) return;
    root.querySelectorAll("button[data-label]").forEach((b) =>
      b.classList.toggle("on", b.dataset.label === current));
    const s = root.querySelector(".status");
    if (s) s.textContent = failed ? failed : (loading && !buffers) ? "loading…"
      : current === null ? "stopped" : "playing " + current;
  };
  const destroy = () => {
    clearInterval(timer);
    if (pending) clearTimeout(pending);
    document.removeEventListener("keydown", onKey);
    window.removeEventListener("blur", onBlur);
    window.removeEventListener("focus", onFocus);
    sources.forEach((s) => { try { s.stop(); } catch (e) {} });
    if (ctx) ctx.close();
    buffers = null;
  };
  const tick = () => {  // credit the time since the last tick to the clip being heard
    if (root && !root.isConnected) {  // unmounted (break, debrief): silence it for good
      detached += 1;
      if (detached > 5) { destroy(); players.delete(data.trial); return; }
    } else detached = 0;
    if (!ctx || current === null) { lastTick = null; return; }
    const now = ctx.currentTime;
    if (lastTick !== null) heard[current] += (now - lastTick) * 1000;
    lastTick = now;
    const need = data.min_play_ms;
    for (const l of data.labels) {
      if (heard[l] >= need && !sent[l]) {
        sent[l] = true; report();
      }
    }
  };
  const timer = setInterval(tick, 100);
  const fetchAll = async () => {  // one request per clip, each ticket good for one fetch
    const raw = await Promise.all(data.tickets.map(async (t) => {
      const r = await fetch(new URL(data.route + "/" + encodeURIComponent(t), document.baseURI),
                            { cache: "no-store", credentials: "same-origin" });
      if (!r.ok) throw new Error("audio " + r.status);
      return r.arrayBuffer();
    }));
    return Promise.all(raw.map((b) => ctx.decodeAudioData(b)));
  };
  const ensure = async () => {
    if (!ctx) ctx = new AudioContext({ sampleRate: data.rate });
    if (!buffers) {
      if (!loading) { loading = fetchAll(); render(); }
      try { buffers = await loading; } catch (e) {
        loading = null; failed = "audio unavailable: reload the page"; render(); throw e;
      }
    }
    if (ctx.state === "suspended") await ctx.resume();
    if (!sources.length) {
      const when = ctx.currentTime + 0.05;
      buffers.forEach((buf) => {
        const src = ctx.createBufferSource(); src.buffer = buf; src.loop = true;
        const g = ctx.createGain(); g.gain.value = 0;
        src.connect(g).connect(ctx.destination); src.start(when);
        sources.push(src); gains.push(g);
      });
      startedAt = when;
    }
  };
  const play = async (label) => {
    await ensure(); tick();
    const t = ctx.currentTime;
    if (current !== null && current !== label) switches += 1;
    data.labels.forEach((l, i) => {
      const g = gains[i].gain; g.cancelScheduledValues(t); g.setValueAtTime(g.value, t);
      g.linearRampToValueAtTime(l === label ? 1 : 0, t + fade());
    });
    current = label; plays[label] += 1; lastTick = ctx.currentTime;
    log("play", label); render();
    // all minimums met yet still here (the server not convinced, or a lost rerun): ask again,
    // at most every 3 s, so switching does not rerun the page on every click
    if (data.labels.every((x) => sent[x]) && performance.now() - lastReport > 3000) report();
  };
  const stop = () => {
    if (!ctx || !gains.length) return;
    tick();
    const t = ctx.currentTime;
    gains.forEach((n) => {
      n.gain.cancelScheduledValues(t); n.gain.setValueAtTime(n.gain.value, t);
      n.gain.linearRampToValueAtTime(0, t + fade());
    });
    log("stop", current); current = null; lastTick = null; render(); report();
  };
  const onKey = (e) => {
    if (e.target && ["INPUT", "TEXTAREA"].includes(e.target.tagName)) return;
    const k = e.key.toUpperCase();
    if (data.labels.includes(k)) { e.preventDefault(); play(k).catch(() => {}); }
    else if (e.key === " ") {
      e.preventDefault();
      if (current === null) play(data.labels[0]).catch(() => {}); else stop();
    }
  };
  const onBlur = () => { blur += 1; log("blur"); report(); };
  const onFocus = () => log("focus");
  document.addEventListener("keydown", onKey);
  window.addEventListener("blur", onBlur);
  window.addEventListener("focus", onFocus);
  return {
    destroy,
    setSend: (f) => { send = f; },
    update: (d) => {  // same trial re-sent (e.g. after a reconnect): fresh tickets if unloaded
      if (!buffers && !loading) { data = d; failed = null; render(); }
    },
    mount: (parent) => {
      const el = parent.querySelector(".seofp-player");
      if (!el || el === root) return;
      el.innerHTML = ""; el.dataset.trial = data.trial;
      for (const l of data.labels) {
        const b = document.createElement("button"); b.textContent = l; b.dataset.label = l;
        b.onclick = () => { play(l).catch(() => {}); }; el.appendChild(b);
      }
      const sb = document.createElement("button"); sb.textContent = "Stop"; sb.dataset.stop = "1";
      sb.onclick = () => stop(); el.appendChild(sb);
      const s = document.createElement("span"); s.className = "status"; el.appendChild(s);
      root = el; render();
    },
    attach: (instance) => {
      // a new component instance (a reconnect to a new server session makes one) has had no
      // report: send what was already heard again, once per instance, or the new session
      // would store the answer as given without listening
      if (instance === attached) return;
      attached = instance;
      if (data.labels.some((l) => sent[l])) report();
    },
    ask: (nonce) => {  // the server holds an answer until it has this page's log: send it now
      if (!nonce || nonce === asked) return;
      asked = nonce; report();
    },
  };
}

export default function (component) {
  const { data, setStateValue, parentElement } = component;
  for (const [k, old] of players) {  // one trial at a time: a new trial silences the last
    if (k !== data.trial) { old.destroy(); players.delete(k); }
  }
  let p = players.get(data.trial);
  if (!p) { p = makePlayer(data); players.set(data.trial, p); } else p.update(data);
  p.setSend(setStateValue);
  p.attach(data.instance);
  p.ask(data.ask);
  p.mount(parentElement);
  // re-renders of the same trial keep playing: no cleanup that would restart the audio
}
"""

_component = st.components.v2.component("seofp_abx_player", html=HTML, css=CSS, js=JS)


def player(trial: Any, key: str, min_play_s: float, crossfade_ms: float, rate: int,
           ask: str | None = None) -> dict[str, Any] | None:
    """Mount the player for a :class:`~seofp_lab.listening.served.ServedTrial`.

    ``ask`` (a new value each time): report the log now, even if nothing was heard. Returns
    the component's latest cumulative log (or None before the first report).
    """
    data = {"trial": trial.public_id, "labels": list(trial.labels), "tickets": list(trial.tickets),
            "route": AUDIO_ROUTE, "rate": rate, "min_play_ms": min_play_s * 1000.0,
            "crossfade_ms": crossfade_ms, "instance": key, "ask": ask}
    result = _component(data=data, key=key, default={"log": None}, on_log_change=lambda: None)
    return result.log


def merge_log(seen: dict[str, Any], log: dict[str, Any] | None) -> dict[str, Any]:
    """Keep the maximum of each cumulative count: a stale report never lowers what was heard."""
    if not log:
        return seen
    out = dict(seen)
    for group in ("heard", "plays"):
        cur = dict(out.get(group) or {})
        for label, v in (log.get(group) or {}).items():
            cur[label] = max(float(v or 0), float(cur.get(label, 0)))
        out[group] = cur
    for k in ("switches", "blur", "loops"):
        out[k] = max(int(log.get(k) or 0), int(out.get(k) or 0))
    for k in ("events", "sample_rate", "output_latency"):
        if log.get(k) is not None:
            out[k] = log[k]
    return out
