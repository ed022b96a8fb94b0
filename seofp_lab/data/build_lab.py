"""Build the lab corpus from Debian packages into ``corpora/lab/`` of the workspace
(docs/data.md#lab-corpus).

Same layout as the embedded corpus (:mod:`seofp_lab.data.build_embedded`), never committed::

    speech/<speaker>/<speaker>_<NNN>.flac   16 kHz mono 16-bit, 1.5-8 s, -26 dBov active level
    noise/<type>/<type>_<NN>.flac           16 kHz mono 16-bit, <= 20 s, up to 60 s per type
    MANIFEST.tsv   the embedded columns, then ``split`` (train | test) and ``band_hz``
    ATTRIBUTION.md, LICENSES/, BUILD.json (the build config and its hash)

``band_hz`` is the source's Nyquist frequency, capped at 8000: most lincity sounds are 11.025 kHz,
so their noise stops at 5.5 kHz. That is a trivial cue, so lincity types are training noises only
and the mixer should add wideband noise to them. Speakers: 6 train and 2 test talkers with
``per_speaker`` clips each (``use=target``), the LibriVox clips as extra English test material,
and :data:`BABBLE_TALKERS` Fillets minor characters (``use=babble``, split test). Robot and effect
voices, tutorial recordings and lines whose talker the file name does not tell are excluded by
:data:`EXCLUDED_VOICES` and :data:`EXCLUDED_ROOMS`; that list comes from the file names and pitch
statistics, not from listening. The build is reused while BUILD.json's hash is unchanged.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.progress import Progress

from seofp_lab.data.build_embedded import (
    LIBRIVOX,
    SPEAKERS,
    SR,
    Source,
    asterisk_clips,
    check_speech,
    credit_for,
    finish_corpus,
    load_audio,
    noise_at_level,
    rng_for,
    select_clips,
    staging_for,
    write_flac,
)
from seofp_lab.data.debian import DebianPackageError, Package, fetch, manifest_row

LAB_VERSION = 1  # bump when the processing changes: the hash then forces a rebuild
MIN_S, MAX_S = 1.5, 8.0
NOISE_CLIP_S, NOISE_TOTAL_S = 20.0, 60.0
BABBLE_TALKERS, BABBLE_CLIPS, BABBLE_MIN_CLIPS = 6, 10, 5
FILLETS = "usr/share/games/fillets-ng/sound"
MAIN_CODES = {"m": "small fish (female)", "v": "big fish (male)"}
EXCLUDED_VOICES = {  # Fillets speaker codes that never make babble, and why
    "": "tutorial and help recordings read by the two fish",
    "pap": "the parrot: squawked, an effect voice",
    "k": "the crab: pitch-shifted effect voice",
    "leb": "the skull: echo-processed effect voice",
    "x": "computer and effect voices spread over many rooms",
    "r": "the robot in the corridor",
    "l": "a processed stereo voice in the hole",
    "c": "ending lines, all under 1.5 s",
}
EXCLUDED_ROOMS = {  # rooms whose file names number lines or events, not talkers
    "briefcase": "tutorial tape, read by the fish",
    "fdto": "intro read by the fish",
    "rush": "lines of the fish",
    "ending": "ending lines, under 1.5 s",
    "keys": "numbered lines, talker unknown",
    "key": "numbered lines, talker unknown",
    "electromagnet": "numbered lines, talker unknown",
    "linux": "numbered lines, talker unknown",
    "viking1": "numbered lines, talker unknown",
    "viking2": "numbered lines, talker unknown",
}


@dataclass(frozen=True)
class NoiseType:
    label: str
    split: str
    package: str
    folder: str
    patterns: tuple[str, ...]


_LC, _BT = "usr/share/games/lincity-ng/sounds", "usr/share/games/btanks/data/sounds"
NOISE_TYPES: tuple[NoiseType, ...] = (
    NoiseType("traffic", "train", "lincity-ng-data", _LC, ("Trafic*",)),
    NoiseType("crowd", "train", "etw-data", "usr/share/games/etw/crowd", ("crowd[0-9][0-9].wav",)),
    NoiseType("train", "train", "btanks-data", _BT, ("train.ogg",)),
    NoiseType(
        "forest", "train", "btanks-data", _BT + "/ambient", ("forest*", "country*", "swamp*")
    ),
    NoiseType(
        "industry",
        "train",
        "lincity-ng-data",
        _LC,
        ("Industry*", "Mill*", "Substation*", "PowerCoal*"),
    ),
    NoiseType("market", "train", "lincity-ng-data", _LC, ("Market*", "School*", "SportsCroud*")),
    NoiseType("rain", "test", "ardentryst", "usr/share/games/ardentryst/Sounds", ("*rain*",)),
    NoiseType("street", "test", "btanks-data", _BT + "/ambient", ("city.ogg",)),
    NoiseType("music", "test", "sonic-pi-samples", "usr/share/sonic-pi/samples", ("loop_*.flac",)),
)
_GPL2 = r"GNU General Public License as published by\s+the Free Software Foundation; version 2"
_FIL = "Fish Fillets NG (ALTAR interactive, Ivo and Pavel Danihelka)"
LICENCES: dict[str, Source] = {  # package -> licence, evidence and credit (label/path unused)
    "fillets-ng-data-cs": Source("", "fillets-ng-data-cs", "", "GPL-2", _GPL2, _FIL + ", cs"),
    "fillets-ng-data-nl": Source("", "fillets-ng-data-nl", "", "GPL-2", _GPL2, _FIL + ", nl"),
    "lincity-ng-data": Source(
        "",
        "lincity-ng-data",
        "",
        "GPL-2+ OR CC-BY-SA-2.0",
        r"dual-licensed under the GNU\s+General Public",
        "LinCity-NG (I J Peters and contributors)",
    ),
    "etw-data": Source(
        "",
        "etw-data",
        "",
        "GPL-2+",
        r"Files: \*\nCopyright: [^\n]*Gabriele Greco[^\n]*\nLicense: GPL-2\+",
        "Eat the Whistle (Gabriele Greco)",
    ),
    "btanks-data": Source(
        "",
        "btanks-data",
        "",
        "GPL-2 with the Battle Tanks exception",
        r"License: Battle-Tanks-License",
        "Battle Tanks (Netive Media Group)",
    ),
    "ardentryst": Source(
        "",
        "ardentryst",
        "",
        "CC-BY-SA-3.0",
        r"Files: Sounds/\*\n(?:.+\n)*?License: CC-BY-SA-3\.0",
        "Ardentryst (Jordan Trudgett and the Sounds/ authors in its copyright)",
    ),
    "sonic-pi-samples": Source(
        "",
        "sonic-pi-samples",
        "",
        "CC0-1.0",
        r"All samples in this directory are from[\s\S]*?Creative Commons 0",
        "Sonic Pi samples (freesound.org users, see README.md)",
        evidence_file="usr/share/sonic-pi/samples/README.md",
    ),
}
FILLETS_LEADS = (  # (label, package, code, split)
    ("fil_cs_f", "fillets-ng-data-cs", "m", "train"),
    ("fil_cs_m", "fillets-ng-data-cs", "v", "train"),
    ("fil_nl_f", "fillets-ng-data-nl", "m", "train"),
    ("fil_nl_m", "fillets-ng-data-nl", "v", "test"),
)


def fillets_code(stem: str) -> str:
    """The talker code of a Fillets file name: ``room-code-line``, ``code-line`` or ``line-code``.

    >>> [fillets_code(s) for s in ("kit-m-pozor", "b1-10", "v-chytra", "agenti-m", "help3")]
    ['m', 'b1', 'v', 'm', '']
    """
    parts = stem.split("-")
    if len(parts) >= 3:
        return parts[1]
    if len(parts) == 2:
        a, b = parts
        return b if b in MAIN_CODES else a  # line-code (fdto) or code-line (gods: b1-10)
    return ""


def fillets_files(root: Path) -> list[tuple[str, str, str]]:
    """(path inside the package, room, code) of every dialogue file, sorted by path."""
    out = []
    for f in sorted((root / FILLETS).glob("**/*.ogg")):
        rel = f.relative_to(root / FILLETS).parts  # room/<lang>/file or share/<room>/<lang>/file
        out.append((f.relative_to(root).as_posix(), rel[-3], fillets_code(f.stem)))
    return out


def babble_groups(files: list[tuple[str, str, str]], lang: str) -> dict[str, list[str]]:
    """Talker label -> files, for minor characters left after the exclusion lists."""
    groups: dict[str, list[str]] = {}
    for inner, room, code in files:
        if code in MAIN_CODES or code in EXCLUDED_VOICES or room in EXCLUDED_ROOMS:
            continue
        if code.isdigit():  # numbered lines: the talker is unknown
            continue
        groups.setdefault(f"fil_{lang}_{code}", []).append(inner)
    return groups


def noise_sources(root: Path, nt: NoiseType) -> list[Path]:
    """The files of one noise type, sorted; an error names the type if none is found."""
    folder = root / nt.folder
    found = sorted(
        p
        for p in folder.glob("*")
        if p.is_file() and any(fnmatch.fnmatch(p.name.lower(), q.lower()) for q in nt.patterns)
    )
    if not found:
        raise DebianPackageError(
            f"Expected {', '.join(nt.patterns)} in {nt.folder} of "
            f"{nt.package} for noise {nt.label} but found none"
        )
    return found


def build_config(per_speaker: int) -> dict:
    """Everything that decides the output; its hash keys reuse."""
    return {
        "version": LAB_VERSION,
        "per_speaker": per_speaker,
        "durations": [MIN_S, MAX_S],
        "asterisk": [asdict(s) for s in SPEAKERS],
        "fillets": FILLETS_LEADS,
        "excluded": [sorted(EXCLUDED_VOICES), sorted(EXCLUDED_ROOMS)],
        "babble": [BABBLE_TALKERS, BABBLE_CLIPS, BABBLE_MIN_CLIPS],
        "noise": [asdict(n) for n in NOISE_TYPES],
        "noise_s": [NOISE_CLIP_S, NOISE_TOTAL_S],
    }


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def is_current(out_dir: Path, digest: str) -> bool:
    """True if ``out_dir`` holds a finished build (BUILD.json, MANIFEST.tsv) of this hash."""
    try:
        recorded = json.loads((out_dir / "BUILD.json").read_text())["hash"]
    except (OSError, ValueError, KeyError):
        return False
    return recorded == digest and (out_dir / "MANIFEST.tsv").is_file()


@dataclass(frozen=True)
class Origin:
    """Where a group of clips comes from: the manifest fields they share."""

    package: Package
    licence: str
    credit: str
    split: str


class _Writer:
    """Writes clips into the staging folder and collects their manifest rows."""

    def __init__(self, staging: Path) -> None:
        self.staging, self.rows = staging, []

    def speech(self, label: str, clips: list[tuple[str, np.ndarray]], use: str, o: Origin) -> None:
        for j, (inner, x) in enumerate(clips):
            self.emit(f"speech/{label}/{label}_{j:03d}.flac", x, "speech", label, use, inner, o)

    def emit(
        self,
        rel: str,
        x: np.ndarray,
        kind: str,
        label: str,
        use: str,
        inner: str,
        o: Origin,
        band: float = SR / 2,
    ) -> None:
        write_flac(self.staging / rel, x)
        extra = {"split": o.split, "band_hz": f"{min(band, SR / 2):.0f}"}
        self.rows.append(
            manifest_row(
                self.staging, rel, kind, label, use, o.package, inner, o.licence, o.credit, **extra
            )
        )


def write_lab(
    staging: Path, packages: dict[str, Package], per_speaker: int
) -> list[dict[str, str]]:
    """Process unpacked ``packages`` into ``staging``; returns the manifest rows (no apt)."""
    lic = {n: (s.licence, credit_for(packages[n], s)) for n, s in LICENCES.items()}  # checks all
    out = _Writer(staging)
    for src in SPEAKERS:  # the Asterisk voices
        pkg = packages[src.package]
        o = Origin(pkg, src.licence, credit_for(pkg, src), src.split)
        clips = asterisk_clips(pkg, src, MIN_S, MAX_S)
        picked = select_clips(len(clips), src.label, per_speaker, 0)
        out.speech(src.label, [clips[i] for i, _ in picked], "target", o)
    for label, name, code, split in FILLETS_LEADS:
        pkg = packages[name]
        inners = [f for f, _, c in fillets_files(pkg.root) if c == code]
        clips = usable_clips(pkg, inners, per_speaker, label)
        if len(clips) < per_speaker:
            raise DebianPackageError(
                f"Expected {per_speaker} usable clips ({MIN_S}-{MAX_S} s, no tone, unclipped) "
                f"for {label} but found {len(clips)} of {len(inners)}; lower per_speaker"
            )
        out.speech(
            label,
            clips,
            "target",
            Origin(pkg, lic[name][0], f"{lic[name][1]}, {MAIN_CODES[code]}", split),
        )
    pkg = packages["fillets-ng-data-cs"]  # nl has no minor characters left after the exclusions
    babble = Origin(pkg, lic[pkg.name][0], f"{lic[pkg.name][1]}, minor character", "test")
    for label, clips in pick_babble(pkg, babble_groups(fillets_files(pkg.root), "cs")):
        out.speech(label, clips, "babble", babble)
    pkg = packages[LIBRIVOX.package]
    o = Origin(pkg, LIBRIVOX.licence, credit_for(pkg, LIBRIVOX), "test")
    wavs = sorted((pkg.root / LIBRIVOX.path).glob("*.wav"))  # never tidigits/ (LDC)
    clips = [(f.relative_to(pkg.root).as_posix(), load_audio(f)) for f in wavs]
    out.speech(
        LIBRIVOX.label, [(i, check_speech(x, MIN_S, MAX_S, i)) for i, x in clips], "target", o
    )
    for nt in NOISE_TYPES:
        o = Origin(packages[nt.package], *lic[nt.package], nt.split)
        for j, (inner, x, band) in enumerate(noise_clips(packages[nt.package], nt)):
            out.emit(
                f"noise/{nt.label}/{nt.label}_{j:02d}.flac",
                x,
                "noise",
                nt.label,
                "noise",
                inner,
                o,
                band,
            )
    return out.rows


def usable_clips(
    pkg: Package,
    inners: list[str],
    n: int,
    label: str,
    max_s: float = MAX_S,
    max_clipped: float = 1e-4,
) -> list[tuple[str, np.ndarray]]:
    """Up to ``n`` usable clips of ``inners``, tried in a seeded order, returned sorted by path.

    Decoding stops once ``n`` are found, so a 700-line Fillets lead costs only what it gives.
    """
    out = []
    for i in rng_for(label).permutation(len(inners)):
        path = pkg.root / inners[i]
        if MIN_S <= sf.info(str(path)).duration <= max_s + 2.0:  # trimming shortens a little
            x = check_speech(load_audio(path), MIN_S, max_s, max_clipped=max_clipped)
            if x is not None:
                out.append((inners[i], x))
                if len(out) == n:
                    break
    return sorted(out, key=lambda c: c[0])


def pick_babble(pkg: Package, groups: dict[str, list[str]]) -> list[tuple[str, list]]:
    """Seeded choice of BABBLE_TALKERS minor characters, up to BABBLE_CLIPS clips each.

    Babble is noise material: clips may last up to NOISE_CLIP_S and hold up to 0.1 % clipped
    samples (the game's recordings of minor characters often touch full scale).
    """
    eligible = sorted(k for k, v in groups.items() if len(v) >= BABBLE_MIN_CLIPS)
    picked = []
    for label in rng_for("babble").permutation(eligible).tolist():
        clips = usable_clips(pkg, groups[label], BABBLE_CLIPS, label, NOISE_CLIP_S, 1e-3)
        if len(clips) >= BABBLE_MIN_CLIPS:
            picked.append((label, clips))
        if len(picked) == BABBLE_TALKERS:
            return sorted(picked, key=lambda p: p[0])
    raise DebianPackageError(
        f"Expected {BABBLE_TALKERS} babble talkers with {BABBLE_MIN_CLIPS}+ usable clips in "
        f"{pkg.name} but found {len(picked)} among {', '.join(eligible)}"
    )


def noise_clips(pkg: Package, nt: NoiseType) -> list[tuple[str, np.ndarray, float]]:
    """Up to NOISE_TOTAL_S of one type in clips of <= NOISE_CLIP_S: (inner, clip, band Hz)."""
    files = noise_sources(pkg.root, nt)
    left, n, out = int(NOISE_TOTAL_S * SR), int(NOISE_CLIP_S * SR), []
    for i in rng_for(nt.label).permutation(len(files)):
        x, band = load_audio(files[i]), sf.info(str(files[i])).samplerate / 2
        for start in range(0, x.size, n):
            seg = x[start : start + min(n, left)]
            if seg.size >= SR and np.sqrt(np.mean(seg**2)) >= 1e-4:  # >= 1 s and not silent
                out.append((files[i].relative_to(pkg.root).as_posix(), noise_at_level(seg), band))
                left -= seg.size
    return out


def build_lab(out_dir: Path, work_dir: Path, per_speaker: int = 40) -> Path:
    """Build (or reuse) the lab corpus: 8 talkers, LibriVox, babble talkers and 9 real noises.

    Args:
        out_dir: the corpus folder, normally ``workspace_path("corpora", "lab")``; replaced whole.
        work_dir: scratch folder for ``.deb`` files and unpacked trees (about 240 MB, reused).
        per_speaker: target clips per talker (at most about 200 for the Asterisk voices).

    Returns:
        ``out_dir``. Nothing is rebuilt while its BUILD.json hash matches this build config.

    Raises:
        DebianPackageError: apt/dpkg missing, a package not found, a licence statement changed or
            too few usable clips for ``per_speaker``.
    """
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    config = build_config(per_speaker)
    digest = config_hash(config)
    console = Console(stderr=True)
    if is_current(out_dir, digest):
        console.print(f"lab corpus {digest} is current: {out_dir}")
        return out_dir
    start = time.perf_counter()
    names = sorted({s.package for s in SPEAKERS} | set(LICENCES) | {LIBRIVOX.package})
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("apt-get download, dpkg-deb -x", total=len(names))
        packages = {}
        for name in names:
            packages[name] = fetch(name, work_dir)
            progress.advance(task)
        progress.add_task("decoding, resampling, normalising, writing", total=None)
        assemble_lab(out_dir, packages, per_speaker)
    n = len((out_dir / "MANIFEST.tsv").read_text().splitlines()) - 1
    size = sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file())
    console.print(
        f"lab corpus {digest}: {n} files, {size / 2**20:.1f} MiB, "
        f"{time.perf_counter() - start:.1f} s"
    )
    console.print(str(out_dir), soft_wrap=True)
    return out_dir


def assemble_lab(out_dir: Path, packages: dict[str, Package], per_speaker: int) -> Path:
    """Write the lab corpus from already unpacked ``packages`` (no apt), then its BUILD.json."""
    with staging_for(out_dir) as staging:
        rows = write_lab(staging, packages, per_speaker)
        evidence = {n: [packages[n].copyright_path] for n in sorted(packages)}
        evidence["sonic-pi-samples"].append(LICENCES["sonic-pi-samples"].evidence_file)
        finish_corpus(staging, out_dir, rows, packages, evidence)
    config = build_config(per_speaker)
    record = {"hash": config_hash(config), "config": config}
    (out_dir / "BUILD.json").write_text(json.dumps(record, indent=1) + "\n")
    return out_dir
