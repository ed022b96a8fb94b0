"""Build the committed embedded corpus from Debian packages
(docs/data.md#rebuilding-the-embedded-corpus, maintainers only).

Layout written to ``out_dir`` (normally ``seofp_lab/data/embedded/``)::

    speech/<speaker>/<speaker>_<NNN>.flac   16 kHz mono 16-bit, 1.5-6 s, -26 dBov active level
    noise/<type>/<type>_<NN>.flac           16 kHz mono 16-bit, up to 15 s, RMS -26 dBov
    MANIFEST.tsv                            one row per audio file, columns MANIFEST_COLUMNS
    ATTRIBUTION.md                          render_attribution(manifest rows)
    LICENSES/<package>.copyright            the licence evidence of every source package

In each Asterisk speaker's folder :data:`BABBLE_PER_SPEAKER` clips have ``use=babble``: they make
babble noise and are never targets. Prompts are trimmed to their speech (100 ms margins) and
rejected when they hold a tone (:func:`seofp_lab.data.clips.tone_run`). LibriVox clips longer than
6 s are cut at their quietest 20 ms between 4.5 and 6 s (``source_path`` still names the whole
file); the TIDIGITS clip of the same package (LDC) is never read. Every choice is seeded, so two
builds from the same packages give the same bytes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.progress import Progress

from seofp_lab.data.audio import read_audio
from seofp_lab.data.debian import (
    MANIFEST_COLUMNS,
    DebianPackageError,
    Package,
    check_evidence,
    dep5_field,
    fetch,
    manifest_row,
    read_manifest,
    write_manifest,
)
from seofp_lab.data.level import normalize_active_level
from seofp_lab.errors import AudioError

__all__ = [
    "ALLOWED_LICENCES",
    "MANIFEST_COLUMNS",
    "SIZE_LIMIT_BYTES",
    "build_embedded",
    "read_manifest",
    "render_attribution",
]

CLIPS_PER_SPEAKER = 40
BABBLE_PER_SPEAKER = 4
MIN_S, MAX_S = 1.5, 6.0
NOISE_MAX_S = 15.0
SIZE_LIMIT_BYTES = 12 * 1024 * 1024
ALLOWED_LICENCES = ("CC0-1.0", "CC-BY-3.0", "CC-BY-SA-2.0", "CC-BY-SA-3.0", "public-domain")


# ---- clips: decode, trim, reject tones, normalise, write ------------------------------------
SR = 16000
SEED = 2111  # arXiv 2111.04436
PEAK_LIMIT = 10 ** (-1 / 20)  # -1 dBFS: a clip louder than this after normalising is refused
TONE_RUN = 3  # consecutive 128 ms frames (32 ms hop) of one steady sinusoid >= 300 Hz = a tone


def rng_for(label: str) -> np.random.Generator:
    """A generator seeded by SEED and ``label``: adding a speaker changes no other choice."""
    return np.random.default_rng([SEED, zlib.crc32(label.encode())])


def decode_g722(data: bytes, name: str = "") -> np.ndarray:
    """Raw 64 kbit/s G.722 -> (time,) float64 at 16 kHz, 1.0 = int16 full scale."""
    try:
        from G722 import G722  # noqa: PLC0415  (build-corpus extra; the library never needs it)
    except ImportError:
        raise DebianPackageError(
            "Expected the PyPI package g722 (pip install -e '.[build-corpus]') but it is missing"
        ) from None

    pcm = np.frombuffer(G722(SR, 64000).decode(data), dtype=np.int16)  # fresh: it keeps state
    if pcm.size != 2 * len(data):
        raise AudioError(f"Expected {2 * len(data)} samples from G.722 {name} but got {pcm.size}")
    return pcm.astype(np.float64) / 32768


def load_audio(path: Path) -> np.ndarray:
    """Any soundfile format -> (time,) float64 at 16 kHz mono (mean downmix, resample_poly)."""
    return read_audio(path).astype(np.float64)


def trim_edges(x: np.ndarray, floor_db: float = -45.0, margin_s: float = 0.1) -> np.ndarray:
    """Drop leading/trailing 10 ms frames more than ``-floor_db`` below the loudest frame."""
    n = SR // 100
    power = np.add.reduceat(x * x, np.arange(0, x.size, n))
    loud = np.flatnonzero(power > power.max() * 10 ** (floor_db / 10))
    if loud.size == 0:
        return x[:0]
    m = int(margin_s * SR)
    return x[max(0, loud[0] * n - m) : min(x.size, (loud[-1] + 1) * n + m)]


def tone_run(x: np.ndarray, n: int = 2048, hop: int = 512) -> int:
    """Longest run of frames whose energy sits in <= 2 steady spectral lines at or above 300 Hz.

    Beeps and DTMF put over 97 % of a 128 ms frame into one or two lines that do not move; voiced
    speech does too at its fundamental (these voices are low-passed), but below 300 Hz or gliding.

    >>> t = np.arange(SR) / SR
    >>> tone_run(np.sin(2 * np.pi * 1000 * t)) > TONE_RUN, tone_run(np.random.randn(SR))
    (True, 0)
    """
    if x.size < n:
        return 0
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop] * np.hanning(n)
    p = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    total = p.sum(axis=1)
    bins = np.arange(p.shape[1])
    k1 = p.argmax(axis=1)
    lobe1 = np.abs(bins - k1[:, None]) <= 3
    rest = np.where(lobe1, 0.0, p)
    lobe2 = np.abs(bins - rest.argmax(axis=1)[:, None]) <= 3
    share = ((p * lobe1).sum(axis=1) + (rest * lobe2).sum(axis=1)) / np.maximum(total, 1e-30)
    tonal = (total > total.max() * 1e-4) & (share >= 0.97) & (k1 * SR / n >= 300)
    best = run = 0
    for i in range(tonal.size):
        run = (run + 1 if run and abs(int(k1[i]) - int(k1[i - 1])) <= 1 else 1) if tonal[i] else 0
        best = max(best, run)
    return best


def check_speech(
    x: np.ndarray,
    min_s: float,
    max_s: float,
    name: str | None = None,
    max_clipped: float = 1e-4,
) -> np.ndarray | None:
    """Trim, check and normalise one speech clip to -26 dBov active level.

    Returns:
        The clip, or None if it is too short or long, holds a tone, is clipped or would peak above
        -1 dBFS. With ``name`` given a refusal raises instead (a clip that must be kept).
    """
    x = trim_edges(x)
    why = None
    if not min_s <= x.size / SR <= max_s:
        why = f"a duration in [{min_s}, {max_s}] s but got {x.size / SR:.2f} s"
    elif tone_run(x) >= TONE_RUN:
        why = "speech but got a tone"
    elif np.mean(np.abs(x) >= 0.999) > max_clipped:  # fraction of samples at full scale
        why = "an unclipped recording but got clipped samples"
    else:
        x = normalize_active_level(x, -26.0, SR)
        if np.abs(x).max() > PEAK_LIMIT:
            why = "a peak under -1 dBFS at -26 dBov but got a louder one"
    if why is None:
        return x
    if name is not None:
        raise AudioError(f"Expected {why} in {name}")
    return None


def cut_at_pause(x: np.ndarray, max_s: float, earliest_s: float = 4.5) -> np.ndarray:
    """Shorten ``x`` to at most ``max_s`` at its quietest 20 ms after ``earliest_s``, faded out."""
    if x.size <= max_s * SR:
        return x
    n = SR // 50
    start, stop = int(earliest_s * SR) // n, int(max_s * SR) // n - 1
    power = [
        float(np.dot(x[i * n : (i + 1) * n], x[i * n : (i + 1) * n])) for i in range(start, stop)
    ]
    end = (start + int(np.argmin(power))) * n + n // 2
    y = x[:end].copy()
    y[-n // 2 :] *= np.linspace(1.0, 0.0, n // 2)
    return y


def noise_at_level(x: np.ndarray, rms_db: float = -26.0) -> np.ndarray:
    """Scale noise to ``rms_db`` dB RMS (re full scale), or lower if it would peak over -1 dBFS."""
    rms, peak = np.sqrt(np.mean(x * x)), np.abs(x).max()
    if rms == 0.0:
        raise AudioError("Expected noise but got digital silence")
    return x * min(10 ** (rms_db / 20) / rms, PEAK_LIMIT / peak)


def write_flac(path: Path, x: np.ndarray) -> None:
    """16-bit mono FLAC at 16 kHz; quantised here (round half to even) so the bytes are ours."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
    sf.write(str(path), pcm, SR, subtype="PCM_16", format="FLAC")


# ---- attribution and the finished corpus --------------------------------------------------------
def render_attribution(rows: list[dict[str, str]]) -> str:
    """ATTRIBUTION.md for a corpus: one entry per label and source, rendered from its manifest.

    >>> row = dict(file="noise/rain/rain_00.flac", kind="noise", label="rain", use="noise",
    ...            package="p", version="1", source_path="a.ogg", licence="CC0-1.0", credit="X")
    >>> "**rain**: 1 file" in render_attribution([row])
    True
    """
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for r in rows:
        key = (
            r["kind"],
            r["label"],
            r.get("split", ""),
            r["package"],
            r["version"],
            r["licence"],
            r["credit"],
        )
        groups.setdefault(key, []).append(r)
    out = [
        "# Attribution",
        "",
        "Generated from MANIFEST.tsv by `render_attribution` in",
        "`seofp_lab/data/build_embedded.py`; do not edit it by hand. The licence evidence of every",
        "source package is in `LICENSES/`. The audio was decoded, downmixed, resampled to 16 kHz,",
        "trimmed and level-normalised, and nothing else was changed.",
        "",
    ]
    for kind in ("speech", "noise"):
        keys = sorted(k for k in groups if k[0] == kind)
        out += [f"## {kind.capitalize()}", ""] if keys else []
        for key in keys:
            _, label, split, package, version, licence, credit = key
            members = groups[key]
            uses = sorted({r["use"] for r in members})
            paths = sorted({r["source_path"] for r in members})
            where = f"`{paths[0]}`"
            if len(paths) > 1:
                where = f"{len(paths)} files under `{os.path.commonpath(paths)}/`"
            n = len(members)
            out.append(
                f"- **{label}**: {n} file{'s' * (n != 1)} ({', '.join(uses)}"
                f"{', split ' + split if split else ''}). {credit}. Licence: {licence}. "
                f"Debian package `{package}` {version}, {where}."
            )
        out += [""] if keys else []
    return "\n".join(out)


@contextlib.contextmanager
def staging_for(out_dir: Path) -> Iterator[Path]:
    """A fresh sibling of ``out_dir`` to build in; removed if the build fails."""
    staging = out_dir.with_name(out_dir.name + ".building")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # out_dir is untouched
        raise


def finish_corpus(
    staging: Path,
    out_dir: Path,
    rows: list[dict[str, str]],
    packages: dict[str, Package],
    evidence: dict[str, list[str]],
    size_limit: int | None = None,
) -> int:
    """Write MANIFEST.tsv, ATTRIBUTION.md and LICENSES/, then swap ``staging`` into ``out_dir``.

    Args:
        evidence: package name -> paths inside it to copy into LICENSES/ (copyright first).
        size_limit: refuse (before the swap) a corpus larger than this many bytes.

    Returns:
        The total size in bytes of every file in the finished corpus.
    """
    lic = staging / "LICENSES"
    lic.mkdir(parents=True, exist_ok=True)
    for name, inners in sorted(evidence.items()):
        for inner in inners:
            suffix = "copyright" if inner.endswith("/copyright") else Path(inner).name
            shutil.copyfile(packages[name].path(inner), lic / f"{name}.{suffix}")
    write_manifest(staging / "MANIFEST.tsv", rows)
    (staging / "ATTRIBUTION.md").write_text(render_attribution(rows), encoding="utf-8")
    size = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file())
    if size_limit is not None and size > size_limit:
        raise DebianPackageError(f"Expected a corpus under {size_limit} bytes but got {size}")
    if out_dir.exists():
        if any(out_dir.iterdir()) and not (out_dir / "MANIFEST.tsv").is_file():
            raise DebianPackageError(
                f"Expected {out_dir} to be a corpus (MANIFEST.tsv) or empty "
                "but it holds other files; refusing to replace it"
            )
        shutil.rmtree(out_dir)
    staging.replace(out_dir)
    return size


@dataclass(frozen=True)
class Source:
    """Where one speaker's or noise type's audio comes from, and the licence evidence for it."""

    label: str
    package: str
    path: str  # folder (speech) or file (noise) inside the package
    licence: str  # SPDX-style id recorded in the manifest
    evidence: str  # regex that must match the evidence file; group 1, if any, ends the credit
    credit: str
    evidence_file: str = ""  # default: usr/share/doc/<package>/copyright
    split: str = "train"


_AST = "usr/share/asterisk/sounds/"
_BY = "Asterisk core sounds (Digium, Inc.), recorded by "
_SONIC = "usr/share/sonic-pi/samples/"
SPEAKERS: tuple[Source, ...] = (
    Source(
        "ast_en_f",
        "asterisk-core-sounds-en-g722",
        _AST + "en_US_f_Allison",
        "CC-BY-SA-3.0",
        r"Allison Smith[\s\S]*?License: CC-BY-SA-3\.0",
        _BY + "Allison Smith (F, en-US)",
        split="test",
    ),
    Source(
        "ast_fr_f",
        "asterisk-core-sounds-fr-g722",
        _AST + "fr_CA_f_June",
        "CC-BY-SA-3.0",
        r"Files: fr-\*\nCopyright: [^\n]*June Wallack\nLicense: CC-BY-SA-3\.0",
        _BY + "June Wallack (F, fr-CA)",
    ),
    Source(
        "ast_it_m",
        "asterisk-core-sounds-it-g722",
        _AST + "it_IT_m_Carlo",
        "CC-BY-SA-3.0",
        r"Files: \*\n[\s\S]*?License: CC-BY-SA-3\.0[\s\S]*?Carlo Flora",
        _BY + "Carlo Flora (M, it-IT)",
    ),
    Source(
        "ast_ru_f",
        "asterisk-core-sounds-ru-g722",
        _AST + "ru_RU_f_IvrvoiceRU",
        "CC-BY-3.0",
        r"Files: ru-\*\n(?:.+\n)*?License: CC-BY-3\.0",
        _BY + "Maxim Topal / ivrvoice.ru (F, ru-RU)",
    ),
)
LIBRIVOX = Source(
    "lv_en_m",
    "pocketsphinx-testdata",
    "usr/share/pocketsphinx/test/data/librivox",
    "public-domain",
    r"sense_and_sensibility_01_austen_64kb",
    "LibriVox volunteer reader (M), Sense and Sensibility ch. 1 by Jane Austen (librivox.org, "
    "public domain); via CMU's pocketsphinx test data",
    evidence_file="usr/share/pocketsphinx/test/data/librivox/fileids",
    split="test",
)
NOISES: tuple[Source, ...] = (
    Source(
        "rain",
        "ardentryst",
        "usr/share/games/ardentryst/Sounds/Rain_Loop.ogg",
        "CC-BY-SA-3.0",
        r"Files: Sounds/\*\n(?:.+\n)*?License: CC-BY-SA-3\.0",
        "Ardentryst (Jordan Trudgett), Sounds/ by ",
        split="test",
    ),
    Source(
        "machine",
        "sonic-pi-samples",
        _SONIC + "loop_3d_printer.flac",
        "CC0-1.0",
        r"Creative Commons 0[\s\S]*?`:loop_3dprinter` - (https?://\S+)",
        "Sonic Pi samples (Samuel Aaron), freesound.org ",
        evidence_file=_SONIC + "README.md",
    ),
    Source(
        "music",
        "sonic-pi-samples",
        _SONIC + "loop_mika.flac",
        "CC0-1.0",
        r"Creative Commons 0[\s\S]*?`:loop_mika` - (https?://\S+)",
        "Sonic Pi samples (Samuel Aaron), freesound.org ",
        evidence_file=_SONIC + "README.md",
    ),
    Source(
        "market",
        "lincity-ng-data",
        "usr/share/games/lincity-ng/sounds/MarketFull1.wav",
        "CC-BY-SA-2.0",
        r"sound effects are dual-licensed under the GNU\s+General Public and the\s+"
        r"\"Creative Commons Attribution Sharealike v2\"",
        "LinCity-NG (I J Peters and contributors); its sound effects are dual-licensed "
        "GPL-2+ / CC-BY-SA-2.0 and used here under CC-BY-SA-2.0",
        split="test",
    ),
)


def credit_for(pkg: Package, src: Source) -> str:
    """Check the source's licence evidence in ``pkg``; the credit line, completed from it."""
    text = check_evidence(pkg, src.evidence_file or pkg.copyright_path, src.evidence)
    if src.package == "ardentryst":  # every author its Sounds/* stanza names
        return src.credit + dep5_field(text, "Sounds/*", "Copyright")
    m = re.search(src.evidence, text)
    return src.credit + (m.group(1) if m and m.groups() else "")


def asterisk_clips(
    pkg: Package, src: Source, min_s: float, max_s: float
) -> list[tuple[str, np.ndarray]]:
    """Every usable prompt of one Asterisk voice, as (path inside the package, clip), sorted."""
    folder = pkg.root / src.path
    if not folder.is_dir():
        raise DebianPackageError(f"Expected the folder {src.path} in {pkg.name} {pkg.version}")
    found = []
    for f in sorted(folder.rglob("*.g722")):
        inner = f.relative_to(pkg.root).as_posix()
        if "/silence/" in inner or not min_s <= f.stat().st_size / 8000 <= max_s + 2.0:
            continue  # 64 kbit/s = 8000 bytes/s; the exact duration is checked after trimming
        x = check_speech(decode_g722(f.read_bytes(), name=inner), min_s, max_s)
        if x is not None:
            found.append((inner, x))
    return found


def select_clips(n_eligible: int, label: str, n: int, n_babble: int) -> list[tuple[int, str]]:
    """Seeded choice of ``n`` of ``n_eligible`` clips; ``n_babble`` of them for babble.

    Returns:
        (index, use) in increasing index order, ``use`` being ``target`` or ``babble``.

    >>> sum(use == "babble" for _, use in select_clips(100, "x", 40, 4))
    4
    """
    if n_eligible < n:
        raise DebianPackageError(
            f"Expected at least {n} usable clips for {label} but got {n_eligible}"
        )
    rng = rng_for(label)
    chosen = sorted(rng.choice(n_eligible, size=n, replace=False).tolist())
    babble = set(rng.choice(chosen, size=n_babble, replace=False).tolist())
    return [(i, "babble" if i in babble else "target") for i in chosen]


def licence_files(
    packages: dict[str, Package], sources: tuple[Source, ...]
) -> dict[str, list[str]]:
    """Package -> files for LICENSES/: its copyright, and a README that carries the licence."""
    files = {s.package: [packages[s.package].copyright_path] for s in sources}
    for s in sources:
        if s.evidence_file.endswith("README.md") and s.evidence_file not in files[s.package]:
            files[s.package].append(s.evidence_file)
    return files


def build_embedded(out_dir: Path, work_dir: Path) -> Path:
    """Download the source packages, process their audio and (re)write the embedded corpus.

    Args:
        out_dir: the corpus folder, replaced as a whole (normally ``seofp_lab/data/embedded``).
        work_dir: a scratch folder for the ``.deb`` files and their unpacked trees (reused).

    Returns:
        ``out_dir``, holding speech/, noise/, MANIFEST.tsv, ATTRIBUTION.md and LICENSES/.

    Raises:
        DebianPackageError: apt/dpkg missing, a package not found, a licence statement changed,
            too few usable clips, or a corpus over :data:`SIZE_LIMIT_BYTES`.
        AudioError: a source file that cannot be read.
    """
    console = Console(stderr=True)
    start = time.perf_counter()
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    sources = (*SPEAKERS, LIBRIVOX, *NOISES)
    names = sorted({s.package for s in sources})
    with Progress(console=console, transient=True) as progress, staging_for(out_dir) as staging:
        task = progress.add_task("apt-get download, dpkg-deb -x", total=len(names))
        packages: dict[str, Package] = {}
        for name in names:
            packages[name] = fetch(name, work_dir)
            progress.advance(task)
        credits = {src.label: credit_for(packages[src.package], src) for src in sources}
        rows: list[dict[str, str]] = []

        def emit(rel: str, x: np.ndarray, src: Source, use: str, inner: str) -> None:
            write_flac(staging / rel, x)
            kind = "noise" if use == "noise" else "speech"
            pkg, credit = packages[src.package], credits[src.label]
            rows.append(
                manifest_row(staging, rel, kind, src.label, use, pkg, inner, src.licence, credit)
            )

        task = progress.add_task("speech and noise", total=len(sources))
        for src in SPEAKERS:
            clips = asterisk_clips(packages[src.package], src, MIN_S, MAX_S)
            picked = select_clips(len(clips), src.label, CLIPS_PER_SPEAKER, BABBLE_PER_SPEAKER)
            for j, (i, use) in enumerate(picked):
                emit(
                    f"speech/{src.label}/{src.label}_{j:03d}.flac",
                    clips[i][1],
                    src,
                    use,
                    clips[i][0],
                )
            progress.advance(task)
        pkg, lv = packages[LIBRIVOX.package], LIBRIVOX.label
        for j, f in enumerate(sorted((pkg.root / LIBRIVOX.path).glob("*.wav"))):  # not tidigits/
            inner = f.relative_to(pkg.root).as_posix()
            x = check_speech(cut_at_pause(load_audio(f), MAX_S), MIN_S, MAX_S, name=inner)
            emit(f"speech/{lv}/{lv}_{j:03d}.flac", x, LIBRIVOX, "target", inner)
        progress.advance(task)
        for src in NOISES:
            x = load_audio(packages[src.package].path(src.path))[: int(NOISE_MAX_S * SR)]
            emit(
                f"noise/{src.label}/{src.label}_00.flac", noise_at_level(x), src, "noise", src.path
            )
            progress.advance(task)
        evidence = licence_files(packages, sources)
        size = finish_corpus(staging, out_dir, rows, packages, evidence, SIZE_LIMIT_BYTES)
    console.print(
        f"embedded corpus: {len(rows)} files, {size / 2**20:.2f} MiB, "
        f"{time.perf_counter() - start:.1f} s -> {out_dir}"
    )
    return out_dir
