"""The ABX player: one ``st.components.v2`` component, Web Audio, clips passed as base64 data.

No audio URL exists: A, B and X arrive in the component's data as differently dithered WAV
bytes under a random key, start in sync, loop, and switching only moves gains (a short
crossfade) so the playhead keeps its place (docs/listening.md#player-and-blinding). The component
reports cumulative listening counts with ``setStateValue``; the app keeps the maximum it has seen.
"""

from __future__ import annotations

import base64
from typing import Any

import streamlit as st

HTML = '<div class="seofp-player"></div>'

CSS = """
.seofp-player { display: flex; gap: 0.6rem; align-items: center; flex-wrap: wrap; }
.seofp-player button { font-size: 1.2rem; min-width: 4.2rem; padding: 0.5rem 0.9rem;
  border-radius: 0.5rem; border: 1px solid #888; background: #f4f4f4; cursor: pointer; }
.seofp-player button.on { background: #ff4b4b; color: white; border-color: #ff4b4b; }
.seofp-player .status { margin-left: 0.8rem; color: #555; font-family: sans-serif; }
"""

JS = r"""
function b64ToBuf(s) {
  const bin = atob(s); const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function makePlayer(data) {
  const p = { data, ctx: null, buffers: null, sources: [], gains: [], current: null,
    heard: {}, plays: {}, switches: 0, blur: 0, events: [], t0: performance.now(),
    lastTick: null, startedAt: null, firstX: null, sent: {}, send: null, root: null };
  data.labels.forEach((l) => { p.heard[l] = 0; p.plays[l] = 0; });
  const fade = Math.max(data.crossfade_ms, 1) / 1000;
  const log = (event, label) => p.events.push({ event, label: label || null,
    t_ms: Math.round(performance.now() - p.t0) });
  const report = () => {
    if (!p.send) return;
    p.send("log", { heard: { ...p.heard }, plays: { ...p.plays }, switches: p.switches,
      blur: p.blur, loops: p.loops(), events: p.events.slice(-200), first_x_epoch_ms: p.firstX,
      sample_rate: p.ctx ? p.ctx.sampleRate : null,
      output_latency: p.ctx && p.ctx.outputLatency ? p.ctx.outputLatency : null });
  };
  p.loops = () => {
    if (!p.ctx || p.startedAt === null || !p.buffers) return 0;
    return Math.floor((p.ctx.currentTime - p.startedAt) / p.buffers[0].duration);
  };
  const tick = () => {  // credit the time since the last tick to the clip being heard
    if (p.root && !p.root.isConnected) {  // unmounted (break, debrief): silence it for good
      p.detached = (p.detached || 0) + 1;
      if (p.detached > 5) { p.destroy(); delete window.__seofpPlayers[data.trial]; return; }
    } else p.detached = 0;
    if (!p.ctx || p.current === null) { p.lastTick = null; return; }
    const now = p.ctx.currentTime;
    if (p.lastTick !== null) p.heard[p.current] += (now - p.lastTick) * 1000;
    p.lastTick = now;
    const need = data.min_play_ms;
    for (const l of data.labels) {
      if (p.heard[l] >= need && !p.sent[l]) { p.sent[l] = true; report(); }
    }
  };
  p.timer = setInterval(tick, 100);
  const ensure = async () => {
    if (!p.ctx) {
      p.ctx = new AudioContext({ sampleRate: data.rate });
      p.buffers = await Promise.all(data.clips.map((c) => p.ctx.decodeAudioData(b64ToBuf(c))));
    }
    if (p.ctx.state === "suspended") await p.ctx.resume();
    if (!p.sources.length) {
      const when = p.ctx.currentTime + 0.05;
      p.buffers.forEach((buf) => {
        const src = p.ctx.createBufferSource(); src.buffer = buf; src.loop = true;
        const g = p.ctx.createGain(); g.gain.value = 0;
        src.connect(g).connect(p.ctx.destination); src.start(when);
        p.sources.push(src); p.gains.push(g);
      });
      p.startedAt = when;
    }
  };
  p.play = async (label) => {
    await ensure(); tick();
    const t = p.ctx.currentTime;
    if (p.current !== null && p.current !== label) p.switches += 1;
    data.labels.forEach((l, i) => {
      const g = p.gains[i].gain; g.cancelScheduledValues(t); g.setValueAtTime(g.value, t);
      g.linearRampToValueAtTime(l === label ? 1 : 0, t + fade);
    });
    p.current = label; p.plays[label] += 1; p.lastTick = p.ctx.currentTime;
    if (label === "X" && p.firstX === null) p.firstX = Date.now();
    log("play", label); p.render(); report();
  };
  p.stop = () => {
    if (!p.ctx) return;
    tick();
    const t = p.ctx.currentTime;
    p.gains.forEach((n) => {
      n.gain.cancelScheduledValues(t); n.gain.setValueAtTime(n.gain.value, t);
      n.gain.linearRampToValueAtTime(0, t + fade);
    });
    log("stop", p.current); p.current = null; p.lastTick = null; p.render(); report();
  };
  p.render = () => {
    if (!p.root) return;
    p.root.querySelectorAll("button[data-label]").forEach((b) =>
      b.classList.toggle("on", b.dataset.label === p.current));
    const s = p.root.querySelector(".status");
    if (s) s.textContent = p.current === null ? "stopped" : "playing " + p.current;
  };
  p.mount = (parent) => {
    const root = parent.querySelector(".seofp-player");
    if (!root || root === p.root) return;
    root.innerHTML = "";
    for (const l of data.labels) {
      const b = document.createElement("button"); b.textContent = l; b.dataset.label = l;
      b.onclick = () => p.play(l); root.appendChild(b);
    }
    const st = document.createElement("button"); st.textContent = "Stop"; st.dataset.stop = "1";
    st.onclick = () => p.stop(); root.appendChild(st);
    const s = document.createElement("span"); s.className = "status"; root.appendChild(s);
    p.root = root; p.render();
  };
  p.onKey = (e) => {
    if (e.target && ["INPUT", "TEXTAREA"].includes(e.target.tagName)) return;
    const k = e.key.toUpperCase();
    if (data.labels.includes(k)) { e.preventDefault(); p.play(k); }
    else if (e.key === " ") {
      e.preventDefault();
      if (p.current === null) p.play(data.labels[0]); else p.stop();
    }
  };
  p.onBlur = () => { p.blur += 1; log("blur"); report(); };
  p.onFocus = () => log("focus");
  document.addEventListener("keydown", p.onKey);
  window.addEventListener("blur", p.onBlur);
  window.addEventListener("focus", p.onFocus);
  p.destroy = () => {
    clearInterval(p.timer);
    document.removeEventListener("keydown", p.onKey);
    window.removeEventListener("blur", p.onBlur);
    window.removeEventListener("focus", p.onFocus);
    p.sources.forEach((s) => { try { s.stop(); } catch (e) {} });
    if (p.ctx) p.ctx.close();
  };
  return p;
}

export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const reg = (window.__seofpPlayers = window.__seofpPlayers || {});
  for (const k of Object.keys(reg)) {  // one trial at a time: a new trial silences the last
    if (k !== data.trial) { reg[k].destroy(); delete reg[k]; }
  }
  let p = reg[data.trial];
  if (!p) p = reg[data.trial] = makePlayer(data);
  p.send = setStateValue;
  p.mount(parentElement);
  // re-renders of the same trial keep playing: no cleanup that would restart the audio
}
"""

_component = st.components.v2.component("seofp_abx_player", html=HTML, css=CSS, js=JS)


def player(trial: Any, key: str, min_play_s: float, crossfade_ms: float, rate: int
           ) -> dict[str, Any] | None:
    """Mount the player for a :class:`~seofp_lab.listening.served.ServedTrial`.

    Returns the component's latest cumulative log (or None before the first report).
    """
    data = {"trial": trial.public_id, "labels": list(trial.labels),
            "clips": [base64.b64encode(w).decode("ascii") for w in trial.wavs],
            "rate": rate, "min_play_ms": min_play_s * 1000.0, "crossfade_ms": crossfade_ms}
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
    for k in ("events", "first_x_epoch_ms", "sample_rate", "output_latency"):
        if log.get(k) is not None:
            out[k] = log[k]
    return out
