"""How many object keys a JSON body holds, counted on its bytes before anything is decoded.

Decoding builds every key of every object: a 15 MiB body that is one record with a million
unknown keys costs seconds and hundreds of MB before validation can say "unknown field". A
valid scoring body holds at most 20 keys per record plus a few for its envelope, so the keys
are counted first. Every key is followed by a `:` outside any string, so the count of `:`
bytes is an upper bound and costs one `bytes.count`. A key's closing quote followed by `:` can
only appear inside a string escaped (`\\":`), which gives a lower bound as cheap. Only a body
between the two bounds (colons inside strings, or odd whitespace before colons) has its strings
blanked out (one regex pass, as costly as a decode) to count exactly.
"""

from __future__ import annotations

import re

# A JSON string literal, escapes included, written as an unrolled loop (no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def key_count(raw: bytes) -> int:
    """The number of object keys in `raw` (exact for valid JSON; invalid JSON fails to decode later)."""
    colons = raw.count(b":")
    if colons == 0:
        return 0
    return _STRING.sub(b"", raw).count(b":")


def _lower_bound(raw: bytes) -> int:
    """Keys that surely end in `":` or `" :` (those inside strings have an escaped quote)."""
    return (raw.count(b'":') - raw.count(b'\\":')) + (raw.count(b'" :') - raw.count(b'\\" :'))


def over_key_budget(raw: bytes, budget: int) -> int | None:
    """The key count (or a lower bound of it) when it is over `budget`, else None; a few `bytes.count`
    for every body within budget and for a body of far too many plain keys."""
    if raw.count(b":") <= budget:
        return None
    surely = _lower_bound(raw)
    if surely > budget:
        return surely
    keys = key_count(raw)
    return keys if keys > budget else None
