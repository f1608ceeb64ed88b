"""Summarise py-spy raw (collapsed) stacks: top functions by inclusive and self share."""

from __future__ import annotations

import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(path: str) -> str:
    for marker in ("/src/persistor/", "/site-packages/", "/lib/python3.11/"):
        if marker in path:
            head = "persistor/" if marker == "/src/persistor/" else ""
            return head + path.split(marker, 1)[1]
    return path


def _key(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{_short(m['file'])}:{m['func']}"


def summarise(raw: str, top: int = 25) -> dict:
    total = 0
    incl: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    for line in raw.splitlines():
        line = line.rstrip()
        if not line or " " not in line:
            continue
        stack, _, n = line.rpartition(" ")
        try:
            count = int(n)
        except ValueError:
            continue
        frames = [_key(f) for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        for k in set(frames):
            incl[k] += count
        self_[frames[-1]] += count
    pct = lambda c: round(100.0 * c / total, 1) if total else 0.0  # noqa: E731
    persistor_incl = [(k, pct(c)) for k, c in incl.most_common() if k.startswith("persistor/")]
    return {
        "samples": total,
        "top_inclusive": [(k, pct(c)) for k, c in incl.most_common(top)],
        "top_self": [(k, pct(c)) for k, c in self_.most_common(top)],
        "persistor_inclusive": persistor_incl[:top],
    }
