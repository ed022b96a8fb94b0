"""Bounded YAML for config files and overrides: nothing a file holds costs unbounded time or memory.

``yaml.safe_load`` alone expands aliases (a 540-byte "billion laughs" file becomes a structure
whose error message ran to 84 MB after 21 s), recurses once per nesting level, converts integers
of any length and reads any bytes. :func:`load_yaml_bytes` refuses, before constructing anything:
a file over :data:`MAX_BYTES`, bytes that are not UTF-8 text (naming the byte offset), more than
:data:`MAX_ALIASES` aliases or more than :data:`MAX_NODES` values once aliases are expanded
(64 aliases of 9 nested levels are already 43 million strings), nesting deeper than
:data:`MAX_DEPTH`, and scalars longer than :data:`MAX_SCALAR` characters; every message is one line
naming the file.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 1 << 20  # the largest config in configs/ is about 2 KB
MAX_ALIASES = 64  # configs/ uses none; a few `<<: *base` merges stay possible
MAX_DEPTH = 32
MAX_NODES = 100_000  # values once aliases are expanded; a config has a few hundred
MAX_SCALAR = 4096
MAX_SNIPPET = 200  # characters of a parser message quoted in an error
# libyaml's parser when PyYAML has it: the pure-Python scanner takes seconds on deep flow nesting
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YAMLFileError(ValueError):
    """A config file or value refused before or while parsing; the message names it."""


def _text(data: bytes, where: str) -> str:
    if len(data) > MAX_BYTES:
        raise YAMLFileError(f"{where}: expected a config file of at most {MAX_BYTES:,} bytes but "
                            f"it has {len(data):,}")
    for bom, name in ((b"\xff\xfe\0\0", "UTF-32"), (b"\0\0\xfe\xff", "UTF-32"),
                      (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if data.startswith(bom):
            raise YAMLFileError(f"{where}: expected UTF-8 text but the file is {name} (byte-order "
                                f"mark at byte 0); save it as UTF-8")
    nul = data.find(b"\0")
    if nul >= 0:
        raise YAMLFileError(f"{where}: expected YAML text but byte {nul} is NUL (a binary file?)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1].hex()
        raise YAMLFileError(f"{where}: expected UTF-8 text but byte {exc.start} is 0x{bad} "
                            f"(Latin-1 or another encoding? save the file as UTF-8)") from None


def _check_events(text: str, where: str) -> None:
    """One pass over the parser's events (no objects built): aliases, the size the document would
    have with every alias expanded, depth and scalar length."""
    aliases = depth = nodes = 0
    sizes: dict[str, int] = {}  # anchor -> its node's expanded size
    stack: list[list] = []  # open collections: [expanded size so far, anchor]

    def add(n: int) -> None:
        nonlocal nodes
        nodes += n
        if stack:
            stack[-1][0] += n
        if nodes > MAX_NODES:
            raise YAMLFileError(f"{where}: expected a document of at most {MAX_NODES:,} values "
                                f"with its aliases expanded but got more (line "
                                f"{event.start_mark.line + 1}); aliases can expand a small file "
                                f"into an enormous value")

    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise YAMLFileError(f"{where}: expected at most {MAX_ALIASES} YAML aliases (*name) "
                                    f"but got more (line {event.start_mark.line + 1}); aliases "
                                    f"can expand a small file into an enormous value")
            add(sizes.get(event.anchor, 1))
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YAMLFileError(f"{where}: expected YAML nested at most {MAX_DEPTH} deep but "
                                    f"line {event.start_mark.line + 1} goes deeper")
            stack.append([0, event.anchor])
            add(1)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            size, anchor = stack.pop()
            if anchor:
                sizes[anchor] = size
            if stack:
                stack[-1][0] += size
        elif isinstance(event, yaml.ScalarEvent):
            if len(event.value) > MAX_SCALAR:
                raise YAMLFileError(f"{where}: expected values of at most {MAX_SCALAR} "
                                    f"characters but line {event.start_mark.line + 1} has one of "
                                    f"{len(event.value):,}")
            if event.anchor:
                sizes[event.anchor] = 1
            add(1)


def _snippet(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= MAX_SNIPPET else text[:MAX_SNIPPET] + " ..."


def load_yaml_bytes(data: bytes, where: str) -> Any:
    """The YAML document in ``data``, bounded as the module says; YAMLFileError otherwise."""
    return load_yaml_text(_text(data, where), where)


def load_yaml_text(text: str, where: str) -> Any:
    """As :func:`load_yaml_bytes` for text already decoded (a command-line override)."""
    try:
        _check_events(text, where)
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise YAMLFileError(f"{where}: not valid YAML ({_snippet(exc)})") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. int() of 5,000 digits
        if isinstance(exc, YAMLFileError):
            raise
        raise YAMLFileError(f"{where}: a value YAML cannot convert ({_snippet(exc)})") from None
