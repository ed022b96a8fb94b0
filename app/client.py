"""Small browser helpers as ``st.components.v2`` components: a device probe that also keeps the
resume token in localStorage, a live countdown, and a download that never has a URL.

None of them is trusted: the server decides (device refusal is also done on the User-Agent,
the break end on the server clock, downloads only render after an experimenter login).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

_PROBE_JS = r"""
export default function (component) {
  const { data, setStateValue } = component;
  let saved = null;
  try {
    if (data.token) localStorage.setItem(data.store_key, data.token);
    saved = localStorage.getItem(data.store_key);
  } catch (e) { saved = null; }
  const mq = (q) => (window.matchMedia ? window.matchMedia(q).matches : null);
  const info = { screen_w: window.screen ? window.screen.width : null,
    inner_w: window.innerWidth, coarse: mq("(pointer: coarse)"), saved };
  const sig = JSON.stringify(info);
  if (window.__seofpProbe !== sig) { window.__seofpProbe = sig; setStateValue("info", info); }
}
"""

_COUNTDOWN_JS = r"""
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const root = parentElement.querySelector(".seofp-countdown");
  if (!root) return;
  if (root.__timer) clearInterval(root.__timer);
  const end = performance.now() + data.seconds * 1000;  // relative: the client's clock offset
  const show = () => {                                   // does not matter
    const left = Math.max(0, Math.ceil((end - performance.now()) / 1000));
    root.textContent = left > 0 ? left + " s left" : "Starting...";
    if (left <= 0) { clearInterval(root.__timer); root.__timer = null;
      setTriggerValue("done", true); }
  };
  show();
  root.__timer = setInterval(show, 250);
}
"""

_DOWNLOAD_JS = r"""
export default function (component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector(".seofp-download");
  if (!root) return;
  root.innerHTML = "";
  const b = document.createElement("button");
  b.textContent = data.label;
  b.onclick = () => {  // a Blob in this page: the file exists only in this browser tab
    const url = URL.createObjectURL(new Blob([data.text], { type: data.mime }));
    const a = document.createElement("a"); a.href = url; a.download = data.name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  root.appendChild(b);
}
"""

_CSS = """
.seofp-countdown { font-size: 2.2rem; font-weight: 600; font-family: sans-serif; }
.seofp-download button { padding: 0.4rem 0.9rem; border-radius: 0.5rem; border: 1px solid #888;
  background: #f4f4f4; cursor: pointer; font-size: 1rem; }
"""

_probe = st.components.v2.component("seofp_probe", html="<span></span>", js=_PROBE_JS)
_countdown = st.components.v2.component(
    "seofp_countdown", html='<div class="seofp-countdown"></div>', css=_CSS, js=_COUNTDOWN_JS)
_download = st.components.v2.component(
    "seofp_download", html='<div class="seofp-download"></div>', css=_CSS, js=_DOWNLOAD_JS)


def probe(store_key: str, token: str | None) -> dict[str, Any]:
    """Screen width, touch-only pointer, and the token this browser saved for ``store_key``
    (saving ``token`` first when given). Empty until the browser has reported once."""
    result = _probe(data={"store_key": store_key, "token": token}, key="seofp-probe",
                    default={"info": None}, on_info_change=lambda: None)
    return dict(result.info or {})


def countdown(seconds: float, key: str) -> bool:
    """A countdown that moves in the browser; True on the run its end triggered."""
    result = _countdown(data={"seconds": float(seconds)}, key=key, on_done_change=lambda: None)
    return bool(result.done)


def download(label: str, text: str, name: str, key: str, mime: str = "text/csv") -> None:
    """A download button whose file is made in the browser from data sent over this session."""
    _download(data={"label": label, "text": text, "name": name, "mime": mime}, key=key)
