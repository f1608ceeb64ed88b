"""Summarise py-spy raw (collapsed) stacks: top functions by inclusive and self share."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

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
        frames = [
            _key(f)
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
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


def categories(raw: str) -> dict[str, float]:
    """Share of wall samples: imports, waiting on PostgreSQL, persistor's own code, the rest."""
    total = 0
    cat: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, n = line.rstrip().rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [_key(f) for f in stack.split(";")]
        total += count
        leaf = frames[-1] if frames else ""
        if any("_find_and_load" in f for f in frames):
            cat["importing modules"] += count
        elif (
            "Connection.wait" in leaf
            or "selectors.py" in leaf
            or "waiting" in leaf
            or "_connect_gen" in leaf
        ):
            cat["waiting on PostgreSQL (psycopg wait)"] += count
        elif leaf.startswith("persistor/"):
            cat["persistor code (self)"] += count
        elif leaf.startswith("psycopg/"):
            cat["psycopg (client library)"] += count
        elif leaf.startswith("pglast/"):
            cat["pglast (offline parse)"] += count
        else:
            cat["other Python / stdlib under persistor"] += count
    return {k: round(100.0 * v / total, 1) for k, v in cat.most_common()} if total else {}


if __name__ == "__main__":
    import sys

    for path in sys.argv[1:]:
        raw = Path(path).read_text()
        s = summarise(raw, 15)
        print(f"== {path}: {s['samples']} samples")
        for k, v in categories(raw).items():
            print(f"   {v:5.1f}%  {k}")
        print("   top persistor functions (inclusive):")
        for k, v in s["persistor_inclusive"]:
            print(f"   {v:5.1f}%  {k}")
        print("   top self:")
        for k, v in s["top_self"][:10]:
            print(f"   {v:5.1f}%  {k}")
