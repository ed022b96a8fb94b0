"""Debian packages as audio sources: download, unpack, version and licence evidence
(docs/data.md#rebuilding-the-embedded-corpus).

Both corpus builders fetch ``.deb`` files with ``apt-get download`` (no root, no dependencies,
nothing installed), unpack them with ``dpkg-deb -x`` (no root) and record ``dpkg-deb -f <deb>
Version``. A licence is never guessed: each source names the file inside the package (usually
``usr/share/doc/<pkg>/copyright``) and a regular expression that must match it, so a package whose
terms changed stops the build instead of being shipped under the old name.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from seofp_lab.errors import SeofpError

SR = 16000


class DebianPackageError(SeofpError):
    """apt or dpkg is missing, a package cannot be fetched, or its contents are not as expected."""


@dataclass(frozen=True)
class Package:
    """One downloaded and unpacked package."""

    name: str
    version: str
    deb: Path  # the downloaded .deb
    root: Path  # where it was unpacked; paths inside the package are relative to it

    def path(self, inner: str) -> Path:
        """The unpacked file ``inner`` (a path inside the package), which must exist."""
        p = self.root / inner
        if not p.is_file():
            raise DebianPackageError(
                f"Expected {inner} inside {self.name} {self.version} but it is not there; "
                "a newer package may have moved it"
            )
        return p

    @property
    def copyright_path(self) -> str:
        return f"usr/share/doc/{self.name}/copyright"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DebianPackageError(
            f"Expected the command {name} (a Debian 12 host, "
            "docs/data.md#rebuilding-the-embedded-corpus) but it is not on PATH"
        )
    return found


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)


def _find_deb(folder: Path, name: str) -> Path | None:
    debs = sorted(folder.glob(f"{name}_*.deb"))
    return debs[-1] if debs else None


def download(name: str, folder: Path) -> Path:
    """``apt-get download name`` into ``folder``; an existing ``name_*.deb`` there is reused.

    If apt does not know the package, ``apt-get update`` is run once (it needs root) and the
    download retried.
    """
    folder.mkdir(parents=True, exist_ok=True)
    found = _find_deb(folder, name)
    if found is not None:
        return found
    apt = _tool("apt-get")
    result = _run([apt, "download", name], cwd=folder)
    if result.returncode != 0 and "Unable to locate package" in result.stderr:
        update = _run([apt, "update"])
        if update.returncode != 0:
            raise DebianPackageError(
                f"Expected apt to know {name} but it does not, and apt-get update failed "
                f"(run it as root once): {update.stderr.strip()[-300:]}"
            )
        result = _run([apt, "download", name], cwd=folder)
    found = _find_deb(folder, name)
    if result.returncode != 0 or found is None:
        raise DebianPackageError(
            f"Expected apt-get download {name} to fetch a .deb (Debian 12 bookworm, main) but "
            f"got: {result.stderr.strip()[-300:] or 'no file'}"
        )
    return found


def deb_field(deb: Path, field: str) -> str:
    """A control field of a ``.deb`` (``dpkg-deb -f``), e.g. ``Version``."""
    result = _run([_tool("dpkg-deb"), "-f", str(deb), field])
    if result.returncode != 0 or not result.stdout.strip():
        raise DebianPackageError(f"Expected field {field} in {deb} but got {result.stderr.strip()}")
    return result.stdout.strip()


def unpack(deb: Path, folder: Path) -> Path:
    """``dpkg-deb -x deb folder/<package>``; reused when a completed unpack is already there."""
    name = deb_field(deb, "Package")
    root = folder / name
    done = root / ".unpacked"
    if done.is_file() and done.read_text() == deb.name:
        return root
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    result = _run([_tool("dpkg-deb"), "-x", str(deb), str(root)])
    if result.returncode != 0:
        raise DebianPackageError(f"Expected dpkg-deb -x to unpack {deb} but got {result.stderr}")
    done.write_text(deb.name)  # written last: an interrupted unpack is redone
    return root


def fetch(name: str, work_dir: Path) -> Package:
    """Download and unpack ``name`` under ``work_dir`` (``debs/`` and ``unpacked/``)."""
    deb = download(name, work_dir / "debs")
    root = unpack(deb, work_dir / "unpacked")
    return Package(name=name, version=deb_field(deb, "Version"), deb=deb, root=root)


def check_evidence(package: Package, inner: str, pattern: str) -> str:
    """The text of ``inner`` in ``package``, after checking that ``pattern`` matches it.

    Raises:
        DebianPackageError: if the file is missing or the licence statement is not found.
    """
    text = package.path(inner).read_text(encoding="utf-8", errors="replace")
    if re.search(pattern, text, flags=0) is None:
        raise DebianPackageError(
            f"Expected {inner} of {package.name} {package.version} to match {pattern!r} (the "
            "licence the corpus records) but it does not; check the new terms before building"
        )
    return text


def dep5_field(text: str, files_glob: str, field: str) -> str:
    """One field of the DEP-5 stanza whose ``Files:`` line is exactly ``files_glob``, one line.

    >>> dep5_field("Files: a/*\\nCopyright: X,\\n  Y\\n  Z\\nLicense: CC0\\n", "a/*", "Copyright")
    'X, Y; Z'
    """
    for stanza in re.split(r"\n\s*\n", text):
        if re.search(rf"^Files:\s*{re.escape(files_glob)}\s*$", stanza, flags=re.MULTILINE):
            m = re.search(rf"^{field}:(.*(?:\n[ \t].*)*)", stanza, flags=re.MULTILINE)
            if m:
                lines = [ln.strip() for ln in m.group(1).splitlines() if ln.strip()]
                # a wrapped line (ending in a comma) continues; otherwise a new holder begins
                return "".join(
                    ln if i == 0 else (" " if lines[i - 1].endswith(",") else "; ") + ln
                    for i, ln in enumerate(lines)
                )
    raise DebianPackageError(f"Expected a DEP-5 stanza 'Files: {files_glob}' with {field}")


# ---- MANIFEST.tsv: one row per audio file, shared by both builders ----
MANIFEST_COLUMNS = (
    "file",
    "sha256",
    "duration_s",
    "kind",
    "label",
    "use",
    "package",
    "version",
    "source_path",
    "licence",
    "credit",
)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_row(
    root: Path,
    rel: str,
    kind: str,
    label: str,
    use: str,
    pkg: Package,
    inner: str,
    licence: str,
    credit: str,
    **extra: str,
) -> dict[str, str]:
    """One MANIFEST.tsv row for the file ``root/rel`` (already written)."""
    path = root / rel
    row = {
        "file": rel,
        "sha256": sha256_of(path),
        "duration_s": f"{sf.info(str(path)).frames / SR:.3f}",
        "kind": kind,
        "label": label,
        "use": use,
        "package": pkg.name,
        "version": pkg.version,
        "source_path": inner,
        "licence": licence,
        "credit": " ".join(credit.split()),
    }
    return row | extra


def write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    columns = list(rows[0])
    lines = ["\t".join(columns)] + ["\t".join(r[c] for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_manifest(path: Path) -> list[dict[str, str]]:
    """MANIFEST.tsv as a list of {column: value}, in file order."""
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    columns = header.split("\t")
    return [dict(zip(columns, line.split("\t"), strict=True)) for line in lines]
