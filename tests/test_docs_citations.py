"""Every doc citation in code, tests, configs and the README resolves inside docs/ (docs/README.md).

A citation is ``docs/<page>.md`` or ``docs/<page>.md#<anchor>``; the page must exist in ``docs/``
and the anchor must be the GitHub anchor of one of its headings. Specifications that are not in the
repository must not be cited at all.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCANNED = {
    "seofp_lab": ("*.py", "*.c", "*.h", "*.yaml", "*.html", "*.js"),
    "tests": ("*.py",),
    "app": ("*.py",),
    "benchmarks": ("*.py",),
    "kernels": ("*.py", "*.c", "*.h"),
    "configs": ("*.yaml",),
    "studies": ("*.yaml",),
}
TOP_FILES = ("README.md", "Makefile", "pyproject.toml", "setup.py")
CITATION = re.compile(r"docs/([A-Za-z0-9_.-]+\.md)(?:#([\w-]+))?")
# specifications that never were part of the repository (built from pieces so that this file
# does not match its own search)
OUTSIDE = re.compile(r"\b(?:" + "|".join(["LISTENING", "METHOD", "KERNEL", "DATA", "DESIGN"])
                     + r")\.md\b")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lower case, punctuation out, spaces '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) -> text
    text = text.replace("`", "").replace("*", "")
    text = unicodedata.normalize("NFC", text.strip().lower())
    text = "".join(ch for ch in text
                   if ch in " -_" or unicodedata.category(ch)[0] in ("L", "N"))
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors of every heading outside fenced code, with GitHub's -1, -2 for repeats."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if fenced or not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def scanned_files() -> list[Path]:
    files = [ROOT / name for name in TOP_FILES if (ROOT / name).exists()]
    for folder, patterns in SCANNED.items():
        for pattern in patterns:
            files += [p for p in (ROOT / folder).rglob(pattern)
                      if ".venv" not in p.parts and "__pycache__" not in p.parts]
    # this file's own examples of broken citations are not citations
    return sorted(set(files) - {Path(__file__).resolve()})


def problems(files: list[Path], docs: Path) -> list[str]:
    """One line per broken citation: file:line, what is cited, what is wrong."""
    pages: dict[str, set[str] | None] = {}
    found: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{lineno}"
            for m in OUTSIDE.finditer(line):
                found.append(f"{where}: cites {m.group(0)}, which is not in the repository; "
                             "cite a section of docs/ instead")
            for m in CITATION.finditer(line):
                page, anchor = m.group(1), m.group(2)
                if page not in pages:
                    doc = docs / page
                    pages[page] = anchors(doc.read_text(encoding="utf-8")) if doc.exists() else None
                if pages[page] is None:
                    found.append(f"{where}: cites docs/{page}, which does not exist")
                elif anchor and anchor not in pages[page]:
                    found.append(f"{where}: cites docs/{page}#{anchor}, but docs/{page} has no "
                                 f"such heading (anchors: {', '.join(sorted(pages[page]))})")
    return found


def test_slug_follows_github():
    assert slug("The papers' figures") == "the-papers-figures"
    assert slug("The `.seofp` model file (format version 2)") == (
        "the-seofp-model-file-format-version-2")
    assert slug("EOFP-QNN Table 2: PESQ against kept bits") == (
        "eofp-qnn-table-2-pesq-against-kept-bits")
    assert slug("Sensitivity d-prime") == "sensitivity-d-prime"
    assert anchors("# A\n## B\n```\n# not a heading\n```\n## B\n") == {"a", "b", "b-1"}


def test_checker_catches_broken_citations(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.md").write_text("# Page\n## Good section\n")
    code = tmp_path / "code.py"
    outside = "METH" + "OD.md"
    code.write_text('"""docs/page.md#good-section docs/page.md#missing docs/none.md '
                    f'{outside}"""\n')
    found = problems([code], docs)
    assert len(found) == 3, found
    assert any("#missing" in f for f in found)
    assert any("none.md" in f for f in found)
    assert any(outside in f for f in found)


def test_every_doc_citation_resolves():
    files = scanned_files()
    assert any(p.name == "dispatch.c" for p in files), "expected to scan the kernels"
    found = problems(files, DOCS)
    if found:
        pytest.fail(f"{len(found)} citation(s) do not resolve inside docs/:\n" + "\n".join(found))
