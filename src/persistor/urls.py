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


def url_problem(url: str) -> str | None:
    """Return what is wrong with the form of a database URL, or None; connects to nothing.

    PostgreSQL URLs may name several hosts (`postgresql://h1:5432,h2:5432/db`), as
    libpq does for failover; each port must be a number.
    """
    scheme = scheme_of(url)
    if scheme == "sqlite":
        try:
            sqlite_path(url)
        except ValueError as exc:
            return str(exc)
        return None
    if scheme not in POSTGRES_SCHEMES:
        return "the scheme must be postgresql://, postgres:// or sqlite:///"
    if any(c.isspace() for c in url):
        return "it holds a space; percent-encode it (%20)"
    rest = url.split("://", 1)[1]
    netloc, _, tail = rest.partition("/")
    hosts = netloc.rpartition("@")[2]
    for entry in hosts.split(",") if hosts else []:
        port = _port_of(entry)
        if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
            return f"host {entry!r} has no valid port (give a number from 1 to 65535)"
    query = tail.partition("?")[2]
    for item in query.split("&") if query else []:
        if "=" not in item:
            return f"the parameter {item!r} is not NAME=VALUE"
    return None


def _port_of(host: str) -> str | None:
    """Return the port text of `host:port` or `[v6 address]:port`, None when there is none."""
    if host.startswith("["):
        after = host.partition("]")[2]
        return after[1:] if after.startswith(":") else None
    return host.partition(":")[2] if ":" in host else None
