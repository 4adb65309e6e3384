"""Showing text that came from outside (file names, cell values, parser messages) safely.

A file name or a cell is the user's input: written into a log it could forge lines, copied into
a reason or a job result it could be 200 MB. Everything shown goes through here: clipped to a
bound, control characters escaped, file names shortened to what a file system accepts.
"""

from __future__ import annotations

import hashlib
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
REASON_LIMIT = 4096  # a reason or a job result's text: a few KB, never a copy of the input
NAME_LIMIT = 200  # bytes of a file name bankops writes (a file system allows 255; room for suffixes)


def escape(text: str) -> str:
    """`text` on one line: control characters (newline, carriage return, escape, ...) as \\n, \\x1b, ..."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    note = f"… ({len(text) - limit} more characters)"
    return text[: max(limit - len(note), 0)] + note


def shown(value: str, limit: int = 40) -> str:
    """A value quoted for a message: escaped and clipped, never the whole input."""
    return "'" + clip(escape(value), limit) + "'"


def for_log(name: str, limit: int = 300) -> str:
    """A file name for a log line: one line, bounded."""
    return clip(escape(name), limit)


def safe_file_name(name: str, limit: int = NAME_LIMIT) -> str:
    """A plain file name close to `name`: no separators or control characters, at most `limit` UTF-8 bytes.

    A shortened name keeps its extension and gains a short hash of the original, so two long names
    that differ only at the end stay apart.
    """
    plain = _CONTROL.sub("_", name).replace("/", "_").replace("\\", "_").lstrip(".") or "unnamed"
    if len(plain.encode()) <= limit:
        return plain
    stem, dot, ext = plain.rpartition(".")
    if not dot or len(ext) > 10:
        stem, ext = plain, ""
    tag = "~" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8] + (f".{ext}" if ext else "")
    room = limit - len(tag.encode())
    cut = stem.encode()[:room].decode("utf-8", "ignore")
    return cut + tag
