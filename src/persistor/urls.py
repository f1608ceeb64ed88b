"""Database URLs: which engine, and how to show one without its password."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_PASSWORD_RE = re.compile(r"(?P<pre>://[^:/?#@]*:)(?P<pw>[^@/?#]*)(?P<post>@)")
_KV_PASSWORD_RE = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")

POSTGRES_SCHEMES = ("postgresql", "postgres")


def mask_url(url: str) -> str:
    """Return the URL with any password replaced by '***'."""
    masked = _PASSWORD_RE.sub(
        lambda m: f"{m['pre']}***{m['post']}" if m["pw"] else f"{m['pre'][:-1]}{m['post']}", url
    )
    return _KV_PASSWORD_RE.sub(lambda m: f"{m.group(1)}***", masked)


def scrub(message: str, url: str) -> str:
    """Remove the URL's password (raw or percent-decoded) from a message, e.g. a driver error."""
    secrets: set[str] = set()
    m = _PASSWORD_RE.search(url)
    if m and m["pw"]:
        secrets.add(m["pw"])
    secrets.update(v for v in re.findall(r"(?i)password=([^&\s]+)", url) if v)
    for secret in list(secrets):
        secrets.add(unquote(secret))
        # libpq quotes the undecodable token it stopped at: hide any fragment of it
        secrets.update(part for part in re.split(r"%[0-9A-Fa-f]{0,2}", secret) if len(part) >= 3)
    for secret in sorted(secrets, key=len, reverse=True):
        message = message.replace(secret, "***")
    return mask_url(message)


def scheme_of(url: str) -> str:
    """Return the URL's scheme in lower case ('' when it has none)."""
    return urlsplit(url).scheme.lower() if "://" in url or url.startswith("sqlite:") else ""


def sqlite_path(url: str) -> str:
    """Return the file path of a sqlite:///relative or sqlite:////absolute URL."""
    if not url.startswith("sqlite:///"):
        raise ValueError(
            f"invalid SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    path = url[len("sqlite:///") :]
    path = path.split("?", 1)[0]
    if not path:
        raise ValueError("the SQLite URL names no file: use sqlite:///path/to/file.db")
    return path
