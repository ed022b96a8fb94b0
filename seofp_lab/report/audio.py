"""Audio examples for the report: the same utterances across runs, as base64 WAV data URIs.

Layout read (``tracking.log_audio_examples``): ``audio/<id>_{noisy,enhanced,clean}.wav`` plus an
``audio/examples.html`` whose rows carry each example's info (e.g. ``snr=5``).
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf

from seofp_lab.report.artifacts import Artifacts
from seofp_lab.report.runs import RunRecord

KINDS = ("noisy", "enhanced", "clean")


@dataclass
class Clip:
    label: str  # "noisy input", "clean reference" or the run's label
    src: str  # data:audio/wav;base64,...
    seconds: float
    note: str = ""  # e.g. "first 4.0 s of 9.1 s"


@dataclass
class AudioItem:
    item_id: str
    info: str
    clips: list[Clip] = field(default_factory=list)


def _ids(names: Sequence[str]) -> list[str]:
    """Utterance ids that have all three WAVs, in artifact order."""
    found: dict[str, set[str]] = {}
    for name in names:
        base = name.rsplit("/", 1)[-1]
        if base.endswith(".wav") and "_" in base:
            item, kind = base[:-4].rsplit("_", 1)
            found.setdefault(item, set()).add(kind)
    return [i for i, kinds in found.items() if kinds >= set(KINDS)]


def _info(page: bytes | None, item_id: str) -> str:
    """The ``k=v, ...`` text ``log_audio_examples`` wrote next to the id, unescaped."""
    if not page:
        return ""
    m = re.search(
        rf"<td>{re.escape(item_id)}<br><small>(.*?)</small>", page.decode("utf-8", "replace")
    )
    return html.unescape(m.group(1)) if m else ""


def wav_data_uri(data: bytes, max_bytes: int) -> tuple[str, float, str]:
    """A WAV as a data URI, trimmed to at most ``max_bytes`` (16-bit PCM); (uri, seconds, note).

    >>> buf = io.BytesIO(); sf.write(buf, np.zeros(16000), 16000, format="WAV")
    >>> wav_data_uri(buf.getvalue(), 8044)[1:]
    (0.25, 'first 0.25 s of 1 s')
    """
    wave, fs = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    seconds = len(wave) / fs
    note = ""
    if len(data) > max_bytes:
        keep = max(1, (max_bytes - 44) // (2 * wave.shape[1]))  # 44-byte header, 16-bit samples
        note = f"first {keep / fs:.3g} s of {seconds:.3g} s"
        wave, seconds = wave[:keep], keep / fs
        buf = io.BytesIO()
        sf.write(buf, np.clip(wave, -1.0, 1.0), fs, format="WAV", subtype="PCM_16")
        data = buf.getvalue()
    return "data:audio/wav;base64," + base64.b64encode(data).decode("ascii"), seconds, note


def collect_examples(
    runs: Sequence[RunRecord], items: int = 2, max_clip_bytes: int = 400_000
) -> list[AudioItem]:
    """Up to ``items`` utterances logged by every run that has audio (else by the most runs).

    Each item: the noisy input and the clean reference (from the first run that has them), then
    each run's enhanced output. Runs without audio artifacts are simply absent.
    """
    if items <= 0:
        return []
    readers = [Artifacts(r) for r in runs]
    listed = {id(a): _ids(a.list("audio")) for a in readers}
    with_audio = [a for a in readers if listed[id(a)]]
    if not with_audio:
        return []
    order = listed[id(with_audio[0])]
    counts = {i: sum(i in listed[id(a)] for a in with_audio) for i in order}
    chosen = sorted(order, key=lambda i: -counts[i])[:items]  # stable: keeps artifact order
    out = []
    for item_id in chosen:
        have = [a for a in with_audio if item_id in listed[id(a)]]
        first = have[0]
        item = AudioItem(item_id, _info(first.read("audio/examples.html"), item_id))
        sources = [("noisy input", first, "noisy"), ("clean reference", first, "clean")]
        sources += [(a.run.label, a, "enhanced") for a in have]
        for label, reader, kind in sources:
            data = reader.read(f"audio/{item_id}_{kind}.wav")
            if data is None:
                continue
            src, seconds, note = wav_data_uri(data, max_clip_bytes)
            item.clips.append(Clip(label, src, seconds, note))
        out.append(item)
    return out
