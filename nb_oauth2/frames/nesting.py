"""How deep a JSON document nests, read from its raw bytes before any parser sees them (case 55).

A 20 kB page of ``[[[[...]]]]`` nested 10,000 levels crashes pyarrow's JSON
reader (a segfault: the kernel dies) and makes :mod:`json` raise a raw
RecursionError. :func:`check_nesting` refuses such a page with a typed error.

The scan is linear and runs in C: escaped backslashes and quotes are removed,
every byte but ``"[]{}`` is dropped, bracket-free strings (``""`` pairs) go,
and what is left - the document's skeleton, a few bytes per record - is
counted with numpy (brackets inside strings are skipped by quote parity).
For valid JSON the depth is exact; on invalid JSON it agrees with any parser
up to the first byte the parser rejects, so no parser recurses past it. A page
with no more opening brackets than the limit cannot nest deeper: its skeleton
is counted, not scanned (most pages of 100 records).
"""

from __future__ import annotations

from ..core.errors import ResultTooLarge
from ..core.redact import redact_url

__all__ = ["MAX_DEPTH", "nesting_depth", "check_nesting"]

#: deepest nesting a page may have: far beyond real APIs (< 20), well within every parser's stack
MAX_DEPTH = 512

_DROP = bytes(b for b in range(256) if b not in b'"[]{}')
_OPEN, _CLOSE, _QUOTE = frozenset(b"[{"), frozenset(b"]}"), ord('"')


def nesting_depth(raw: bytes) -> int:
    """The deepest ``[``/``{`` nesting in ``raw`` (brackets inside strings do not count)."""
    return _skeleton_depth(_skeleton(raw))


def _skeleton(raw: bytes) -> bytes:
    """``raw`` with escapes removed and every byte but ``"[]{}`` dropped."""
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    return raw.translate(None, _DROP)


def _skeleton_depth(skeleton: bytes) -> int:
    skeleton = skeleton.replace(b'""', b"")
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with pandas
        return _depth_python(skeleton)
    if not skeleton:
        return 0
    a = np.frombuffer(skeleton, dtype=np.uint8)
    opens = (a == 91) | (a == 123)
    closes = (a == 93) | (a == 125)
    if _QUOTE in skeleton:
        outside = (np.cumsum(a == _QUOTE, dtype=np.int64) & 1) == 0
        opens &= outside
        closes &= outside
    steps = opens.astype(np.int32) - closes.astype(np.int32)
    return max(0, int(np.cumsum(steps, dtype=np.int64).max()))


def _depth_python(skeleton: bytes) -> int:
    depth = deepest = 0
    in_string = False
    for byte in skeleton:
        if byte == _QUOTE:
            in_string = not in_string
        elif not in_string:
            depth += 1 if byte in _OPEN else -1
            deepest = max(deepest, depth)
    return deepest


def check_nesting(raw: bytes, *, url: str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`~nb_oauth2.core.errors.ResultTooLarge` when ``raw`` nests deeper than ``limit``."""
    if len(raw) <= limit:  # too short to nest that deep
        return
    skeleton = _skeleton(raw)
    if skeleton.count(b"[") + skeleton.count(b"{") <= limit:  # too few brackets to nest that deep
        return
    depth = _skeleton_depth(skeleton)
    if depth > limit:
        safe = redact_url(url)
        raise ResultTooLarge(
            f"A page of {safe} nests JSON {depth:,} levels deep, more than the limit of {limit} levels; it was "
            "not parsed (such pages crash JSON parsers). The API is broken or hostile: check the URL.", url=safe)
