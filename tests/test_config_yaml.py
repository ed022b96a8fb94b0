"""The config file loader is bounded: hostile YAML gives one short line, quickly (issue 14)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from seofp_lab.config import (
    ConfigError,
    CorpusConfig,
    load_config,
    load_corpus_config,
    load_yaml_model,
    parse_override,
)
from seofp_lab.config_yaml import MAX_ALIASES, MAX_BYTES


def _alias_bomb() -> str:
    """The "billion laughs": 9 levels of 9 aliases each, 9**9 strings once expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\ntrain: *a8\n"


def _refused(tmp_path: Path, content: bytes, name: str = "bad.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.perf_counter() - t0 < 10.0  # was 21 s for the alias bomb; well under 1 s idle
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg and len(msg) < 600, msg
    return msg


def test_an_alias_bomb_is_refused_in_one_short_line(tmp_path: Path) -> None:
    """Issue 14: a 540-byte alias bomb gave an 84 MB error message after 21 s."""
    bomb = _alias_bomb().encode()
    assert len(bomb) < 700
    msg = _refused(tmp_path, bomb)
    assert "with its aliases expanded but got more" in msg  # long before the 65th alias


def test_an_alias_bomb_within_the_alias_count_is_refused_by_its_expanded_size(
    tmp_path: Path
) -> None:
    """Found by `seofp fuzz --seed 1`: 8 levels are 64 aliases, within the count, and 43
    million strings once expanded (the worker hung)."""
    bomb = "\n".join(_alias_bomb().splitlines()[:8]) + "\ntrain: *a7\n"
    assert bomb.count("*") == MAX_ALIASES
    msg = _refused(tmp_path, bomb.encode())
    assert "expected a document of at most 100,000 values with its aliases expanded" in msg


def test_more_aliases_than_the_count_are_refused(tmp_path: Path) -> None:
    text = "x: &n 1\n" + "".join(f"y{i}: *n\n" for i in range(MAX_ALIASES + 1))
    msg = _refused(tmp_path, text.encode())
    assert f"expected at most {MAX_ALIASES} YAML aliases (*name) but got more (line 66)" in msg


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("tracking: {experiment: &e demo}\ntrain: &t {max_epochs: 3}\n")
    assert load_config(path).train.max_epochs == 3
    path.write_text("x: &n 3\n" + "\n".join(f"y{i}: *n" for i in range(MAX_ALIASES)) + "\n")
    with pytest.raises(ConfigError, match="y0: unknown key"):  # 64 aliases parse; keys are wrong
        load_config(path)


@pytest.mark.parametrize(("content", "match"), [
    ("train: {max_epochs: 3}\n# caf\u00e9\n".encode("latin-1"),
     r"expected UTF-8 text but byte 28 is 0xe9 \(Latin-1 or another encoding"),
    (b"train:\n  max_epochs: 3\n\x00\x01\x02\xff\xfe",
     r"expected YAML text but byte 23 is NUL \(a binary file\?\)"),
    ("train: {max_epochs: 3}\n# \u00e9t\u00e9\n".encode("utf-16"),
     r"expected UTF-8 text but the file is UTF-16 \(byte-order mark at byte 0\)"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), r"expected YAML text but byte 8 is NUL"),
    (b"train: " + b"[" * 100 + b"]" * 100, r"expected YAML nested at most 32 deep but line 1"),
    (b"train: " + b"[" * 60000, r"nested at most 32 deep|exceeded maximum nesting depth"),
    (b"train: {max_epochs: " + b"9" * 5000 + b"}", r"values of at most 4096 characters"),
    (b"train: {max_epochs: 3", r"not valid YAML \(while parsing a flow mapping"),
])
def test_binary_latin1_deep_and_malformed_files_are_refused_with_the_offset(
    tmp_path: Path, content: bytes, match: str
) -> None:
    assert re.search(match, _refused(tmp_path, content))


def test_a_long_integer_is_refused_cleanly(tmp_path: Path) -> None:
    """Python refuses int() of over 4,300 digits with a ValueError; the scalar limit comes first."""
    msg = _refused(tmp_path, b"train: {max_epochs: " + b"9" * 4400 + b"}")
    assert "at most 4096 characters but line 1 has one of 4,400" in msg
    with pytest.raises(ConfigError, match=r"at most 4096 characters"):
        parse_override("train.max_epochs=" + "9" * 4400)


def test_a_file_over_the_size_limit_is_refused_unparsed(tmp_path: Path) -> None:
    msg = _refused(tmp_path, b"# " + b"x" * MAX_BYTES + b"\n")
    assert f"expected a config file of at most {MAX_BYTES:,} bytes" in msg


def test_overrides_are_bounded_too() -> None:
    with pytest.raises(ConfigError, match=r"override 'train.x=\[\*a\]': not valid YAML"):
        parse_override("train.x=[*a]")
    with pytest.raises(ConfigError, match=r"nested at most 32 deep"):
        parse_override("train.x=" + "[" * 100 + "]" * 100)


def test_every_reader_of_config_files_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb())
    for load in (load_corpus_config, lambda p: load_yaml_model(p, CorpusConfig)):
        with pytest.raises(ConfigError, match=r"bomb.yaml: .* aliases can expand a small file"):
            load(path)


def test_config_error_messages_are_capped() -> None:
    msg = str(ConfigError("x" * 100_000))
    assert len(msg) < ConfigError.MAX_MESSAGE + 100 and "100,000 characters in all" in msg
