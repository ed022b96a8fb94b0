"""The lab builder on tiny generated package trees: selection, exclusions, manifest, hash reuse.

No network and no apt: the trees imitate unpacked ``.deb`` files (same paths and licence texts,
a few seconds of generated audio), and the reuse test empties PATH so any apt call would fail.
"""

from __future__ import annotations

import array
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seofp_lab.data import build_lab as lab
from seofp_lab.data.build_embedded import render_attribution
from seofp_lab.data.debian import DebianPackageError, Package, read_manifest

FS = 16000
AST_COPYRIGHT = """Files: *
Copyright: 2003-2010, Allison Smith
License: CC-BY-SA-3.0

Files: fr-*
Copyright: 2006-2008, June Wallack
License: CC-BY-SA-3.0

Files: ru-*
Copyright: 2010, Maxim
License: CC-BY-3.0

Files: it-*
Copyright: 2012 Carlo Flora
"""
COPYRIGHTS = {
    "fillets-ng-data-cs": "GNU General Public License as published by\n the Free Software "
    "Foundation; version 2 dated June, 1991.",
    "lincity-ng-data": "The models, SVG images and sound effects are dual-licensed under the GNU\n"
    ' General Public and the "Creative Commons Attribution Sharealike v2" license.',
    "etw-data": "Files: *\nCopyright: 1997-2011 Gabriele Greco <g@example.org>\nLicense: GPL-2+\n",
    "btanks-data": "Files: *\nCopyright:\nLicense: Battle-Tanks-License\n",
    "ardentryst": "Files: Sounds/*\nCopyright: Kendra Pietruszewski\n Amy Dunwoodie\n"
    "License: CC-BY-SA-3.0\n",
    "sonic-pi-samples": "Files: *\nLicense: MIT\n",
    "pocketsphinx-testdata": "Files: *\nLicense: BSD-2\n",
}
COPYRIGHTS["fillets-ng-data-nl"] = COPYRIGHTS["fillets-ng-data-cs"]


def speechlike(seconds: float, seed: int, fs: int = FS) -> np.ndarray:
    """Noise bursts at a syllable rate: speech-like to the level meter and the tone detector."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    env = np.clip(np.sin(2 * np.pi * 3.5 * t + seed), 0, None) ** 2
    return 0.2 * env * rng.standard_normal(t.size)


def write(path: Path, x: np.ndarray, fs: int = FS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, fs)


def fake_tree(root: Path) -> dict[str, Package]:
    """Every package the lab build reads, with 2-3 s of audio per file."""
    from G722 import G722

    pkgs: dict[str, Path] = {}

    def pkg(name: str, copyright_text: str) -> Path:
        base = root / name
        (base / f"usr/share/doc/{name}").mkdir(parents=True)
        (base / f"usr/share/doc/{name}/copyright").write_text(copyright_text)
        pkgs[name] = base
        return base

    for src in lab.SPEAKERS:
        base = pkg(src.package, AST_COPYRIGHT + " Carlo Flora\n")
        for i in range(3):
            pcm = (speechlike(2.5, i) * 32767).astype(np.int16)
            data = G722(FS, 64000).encode(array.array("h", pcm.tobytes()))
            (base / src.path).mkdir(parents=True, exist_ok=True)
            (base / src.path / f"prompt{i}.g722").write_bytes(data)
        beep = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(2 * FS) / FS) * 32767).astype(np.int16)
        (base / src.path / "beep.g722").write_bytes(G722(FS, 64000).encode(array.array("h", beep)))
    for lang, stereo in (("cs", False), ("nl", True)):
        base = pkg(f"fillets-ng-data-{lang}", COPYRIGHTS[f"fillets-ng-data-{lang}"])
        snd = base / lab.FILLETS
        names = [f"kitchen/{lang}/kit-{c}-line{i}" for c in ("m", "v") for i in range(3)]
        if lang == "cs":  # minor characters: three human, two excluded effect voices
            names += [f"gods/cs/b1-{i}" for i in range(3)] + [f"gods/cs/b2-{i}" for i in range(3)]
            names += [f"bathyscaph/cs/bat-s-{i}" for i in range(3)]
            names += [f"cabin1/cs/cab-pap-{i}" for i in range(3)]  # parrot: excluded
            names += [f"corridor/cs/cor-r-{i}" for i in range(3)]  # robot: excluded
            names += ["briefcase/cs/help1", "briefcase/cs/help2", "briefcase/cs/help3"]
        for k, name in enumerate(names):
            x = speechlike(2.0, 100 + k, 22050)
            write(snd / f"{name}.ogg", np.stack([x, x], 1) if stereo else x, 22050)
    base = pkg("pocketsphinx-testdata", COPYRIGHTS["pocketsphinx-testdata"])
    lv = base / lab.LIBRIVOX.path
    for i in range(2):
        write(lv / f"sense_and_sensibility_01_austen_64kb-08{i}0.wav", speechlike(3.0, 50 + i))
    (lv / "fileids").write_text("sense_and_sensibility_01_austen_64kb-0800\n")
    write(lv.parent / "tidigits" / "man.ah.wav", speechlike(2.0, 9))  # LDC: must never be read
    for name, files in {
        "lincity-ng-data": [
            "usr/share/games/lincity-ng/sounds/" + n
            for n in ("TraficLow1.wav", "IndustryHigh1.wav", "MarketFull1.wav")
        ],
        "etw-data": ["usr/share/games/etw/crowd/crowd01.wav"],
        "btanks-data": [
            "usr/share/games/btanks/data/sounds/" + n
            for n in ("train.ogg", "ambient/forest.ogg", "ambient/city.ogg")
        ],
        "ardentryst": ["usr/share/games/ardentryst/Sounds/Rain_Loop.ogg"],
        "sonic-pi-samples": ["usr/share/sonic-pi/samples/loop_x.flac"],
    }.items():
        base = pkg(name, COPYRIGHTS[name])
        for i, f in enumerate(files):
            fs = 11025 if name == "lincity-ng-data" else 22050
            write(base / f, np.random.default_rng(i).standard_normal(int(2.5 * fs)) * 0.1, fs)
    (pkgs["sonic-pi-samples"] / "usr/share/sonic-pi/samples/README.md").write_text(
        "All samples in this directory are from http://freesound.org and have\nbeen placed in "
        "the public domain via the Creative Commons 0 License:\n"
    )
    return {n: Package(n, "1.0-test", root / f"{n}.deb", p) for n, p in pkgs.items()}


def small_babble(mp: pytest.MonkeyPatch) -> None:
    """2 talkers of 2 clips: the fake tree has 3 human minor characters."""
    for name in ("BABBLE_TALKERS", "BABBLE_MIN_CLIPS", "BABBLE_CLIPS"):
        mp.setattr(lab, name, 2)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as mp:
        small_babble(mp)
        return lab.assemble_lab(root / "corpora" / "lab", fake_tree(root / "unpacked"), 2)


def test_fillets_code_parsing() -> None:
    cases = {
        "kit-m-pozor": "m",
        "cab-pap-3": "pap",
        "b1-10": "b1",
        "m-obdivovat": "m",
        "agenti-m": "m",
        "help3": "",
        "d1-1-hudba0": "1",
    }
    assert {s: lab.fillets_code(s) for s in cases} == cases


def test_babble_groups_apply_the_exclusions() -> None:
    files = [
        ("a", "gods", "b1"),
        ("b", "kitchen", "m"),
        ("c", "cabin1", "pap"),
        ("d", "briefcase", "kd"),
        ("e", "viking1", "1"),
        ("f", "corridor", "r"),
    ]
    assert lab.babble_groups(files, "cs") == {"fil_cs_b1": ["a"]}


def test_manifest_speakers_splits_and_uses(built: Path) -> None:
    rows = read_manifest(built / "MANIFEST.tsv")
    assert list(rows[0])[-2:] == ["split", "band_hz"]
    by: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by.setdefault(r["label"], []).append(r)
        assert (built / r["file"]).is_file()
        assert sf.info(str(built / r["file"])).samplerate == FS
    for src in lab.SPEAKERS:
        assert len(by[src.label]) == 2 and {r["split"] for r in by[src.label]} == {src.split}
        assert not any("beep" in r["source_path"] for r in by[src.label])  # the tone is rejected
    for label, _, code, split in lab.FILLETS_LEADS:
        assert len(by[label]) == 2 and {r["split"] for r in by[label]} == {split}
        assert all(f"-{code}-" in r["source_path"] for r in by[label])
    babble = {r["label"] for r in rows if r["use"] == "babble"}
    assert len(babble) == 2 and babble <= {"fil_cs_b1", "fil_cs_b2", "fil_cs_s"}
    assert all(r["split"] == "test" for r in rows if r["use"] == "babble")
    assert len(by["lv_en_m"]) == 2 and not any("tidigits" in r["source_path"] for r in rows)


def test_lincity_noises_are_band_limited_training_noises(built: Path) -> None:
    rows = [r for r in read_manifest(built / "MANIFEST.tsv") if r["kind"] == "noise"]
    assert {r["label"] for r in rows} == {n.label for n in lab.NOISE_TYPES}
    for r in rows:
        if r["package"] == "lincity-ng-data":
            assert (r["split"], r["band_hz"]) == ("train", "5512")  # never a test noise alone
    assert {r["label"] for r in rows if r["split"] == "test"} == {"rain", "street", "music"}


def test_attribution_and_licences(built: Path) -> None:
    rows = read_manifest(built / "MANIFEST.tsv")
    assert (built / "ATTRIBUTION.md").read_text() == render_attribution(rows)
    assert "split test" in (built / "ATTRIBUTION.md").read_text()
    assert (built / "LICENSES" / "sonic-pi-samples.README.md").is_file()


def test_reuse_needs_no_apt_and_a_new_config_rebuilds(
    built: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    small_babble(monkeypatch)  # the fixture's config, so its hash matches
    monkeypatch.setenv("PATH", str(tmp_path))  # any apt-get/dpkg-deb call would now fail
    before = (built / "MANIFEST.tsv").stat().st_mtime_ns
    assert lab.build_lab(built, tmp_path / "work", per_speaker=2) == built
    assert (built / "MANIFEST.tsv").stat().st_mtime_ns == before
    assert lab.is_current(built, lab.config_hash(lab.build_config(2)))
    assert not lab.is_current(built, lab.config_hash(lab.build_config(3)))
    monkeypatch.setattr(lab, "BABBLE_TALKERS", 6)
    assert not lab.is_current(built, lab.config_hash(lab.build_config(2)))
    with pytest.raises(DebianPackageError, match="Expected the command apt-get"):
        lab.build_lab(built, tmp_path / "work", per_speaker=3)


def test_a_changed_licence_stops_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small_babble(monkeypatch)
    packages = fake_tree(tmp_path / "unpacked")
    (packages["etw-data"].root / "usr/share/doc/etw-data/copyright").write_text("License: other\n")
    with pytest.raises(DebianPackageError, match="etw-data"):
        lab.assemble_lab(tmp_path / "lab", packages, 2)
    assert not (tmp_path / "lab").exists() and not (tmp_path / "lab.building").exists()
