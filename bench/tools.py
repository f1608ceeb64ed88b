"""One adapter per tool: file layout, apply / re-run / status commands, version.

Every adapter gets the same (name, sql) migrations from workloads.py and only
wraps them in the layout its tool expects. Commands run as subprocesses; the
bench times their wall clock, start-up included (that is what a user waits for).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TOOLS = BENCH / ".tools"
VENV = TOOLS / "venv" / "bin"
NPM_BIN = TOOLS / "npm" / "node_modules" / ".bin"
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
# Debian's /usr/bin/psql is a Perl wrapper (pg_wrapper) costing ~30 ms per start;
# the floors use the real client binary when it is there.
_REAL = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
PSQL = str(_REAL[-1]) if _REAL else (shutil.which("psql") or "psql")
_HOSTPORT = PG.split("@", 1)[1]
PG_HOST, PG_PORT = _HOSTPORT.rsplit(":", 1) if ":" in _HOSTPORT else (_HOSTPORT, "5432")
PG_USER = PG.split("//", 1)[1].split("@", 1)[0]


def url(db: str) -> str:
    return f"{PG}/{db}"


@dataclass
class Cmd:
    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return " ".join(shlex.quote(a) for a in self.argv)


class Tool:
    name = "?"
    label = "?"
    has_history = True

    def missing(self) -> str | None:
        """None when usable, else why not."""
        return None

    def version(self) -> str:
        return "?"

    def layout(self, d: Path, migrations: list[tuple[str, str]]) -> None:
        raise NotImplementedError

    def apply(self, d: Path, db: str) -> Cmd:
        raise NotImplementedError

    def rerun(self, d: Path, db: str) -> Cmd | None:
        return self.apply(d, db)

    def status(self, d: Path, db: str) -> Cmd | None:
        return None


def _out(argv: list[str], **kw: object) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)  # type: ignore[call-overload]
        return (
            (r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr).strip() else "?"
        )
    except Exception as exc:
        return f"? ({exc})"


def _pip_version(dist: str) -> str:
    return _out(
        [str(VENV / "python"), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"]
    )


def _write(d: Path, files: dict[str, str]) -> None:
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for name, text in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


# -- floors ------------------------------------------------------------------


class PsqlOneTx(Tool):
    name, label, has_history = "psql_1tx", "psql -1 (floor)", False

    def missing(self) -> str | None:
        return None if shutil.which("psql") else "psql not on PATH"

    def version(self) -> str:
        return _out([PSQL, "--version"]) + f" ({PSQL})"

    def layout(self, d: Path, migrations: list[tuple[str, str]]) -> None:
        _write(d, {"all.sql": "".join(sql for _, sql in migrations)})

    def apply(self, d: Path, db: str) -> Cmd:
        return Cmd(
            [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(d / "all.sql"), url(db)]
        )

    def rerun(self, d: Path, db: str) -> Cmd:
        # No history to read: the floor of a re-run is a connection and one round trip.
        return Cmd([PSQL, "-X", "-q", "-c", "SELECT 1", url(db)])


class PsqlPerFile(Tool):
    name, label, has_history = "psql_files", "psql per file", False

    def missing(self) -> str | None:
        return PsqlOneTx().missing()

    def version(self) -> str:
        return _out([PSQL, "--version"]) + f" ({PSQL})"

    def layout(self, d: Path, migrations: list[tuple[str, str]]) -> None:
        _write(d, {f"{i:05d}_{n}.sql": s for i, (n, s) in enumerate(migrations, 1)})

    def apply(self, d: Path, db: str) -> Cmd:
        script = (
            f"for f in {shlex.quote(str(d))}/*.sql; do "
            f'{PSQL} -X -q -v ON_ERROR_STOP=1 -1 -f "$f" {shlex.quote(url(db))} || exit 1; done'
        )
        return Cmd(["bash", "-c", script])

    def rerun(self, d: Path, db: str) -> None:
        return None


FLOOR_PY = """\
import sys, pathlib, hashlib
import psycopg
url, d, mode = sys.argv[1:4]
files = sorted(pathlib.Path(d).glob("*.sql"))
with psycopg.connect(url, autocommit=True) as conn:
    if mode == "apply":  # everything in one transaction, no history
        with conn.transaction():
            for f in files:
                conn.execute(f.read_text())
    elif mode == "noop":  # interpreter + import + connect + one round trip
        conn.execute("SELECT 1").fetchall()
    elif mode == "apply_tx":  # one transaction per script WITH its history row, one round trip each
        conn.execute("CREATE TABLE IF NOT EXISTS floor_history (rank int PRIMARY KEY, script text, "
                     "checksum text, installed_at timestamptz DEFAULT now())")
        done = {r[0] for r in conn.execute("SELECT script FROM floor_history")}
        conn.execute("SET synchronous_commit TO off")  # as persistor: one flush at the end
        for i, f in enumerate(files, 1):
            if f.name in done:
                continue
            text = f.read_text()
            csum = hashlib.sha256(text.encode()).hexdigest()
            conn.execute(f"BEGIN;\\n{text}\\n;INSERT INTO floor_history (rank, script, checksum) "
                         f"VALUES ({i}, '{f.name}', 'sha256:{csum}'); COMMIT".encode())
        conn.execute("SET synchronous_commit TO on")
        conn.execute("BEGIN; SELECT pg_current_xact_id(); COMMIT")
    elif mode == "noop_tx":  # re-run: read history, read and hash every file, compare
        applied = dict(conn.execute("SELECT script, checksum FROM floor_history").fetchall())
        for f in files:
            csum = "sha256:" + hashlib.sha256(f.read_bytes()).hexdigest()
            assert applied.get(f.name) == csum, f.name
"""


class PythonFloor(Tool):
    name, label, has_history = "python_floor", "bare Python (floor)", False

    def version(self) -> str:
        return f"Python {sys.version.split()[0]}, psycopg {_pip_version('psycopg')}"

    def layout(self, d: Path, migrations: list[tuple[str, str]]) -> None:
        files = {f"{i:05d}_{n}.sql": s for i, (n, s) in enumerate(migrations, 1)}
        files["../floor.py"] = FLOOR_PY
        _write(d, {})
        for name, text in files.items():
            (d / name).write_text(text)

    def apply(self, d: Path, db: str) -> Cmd:
        return Cmd([str(VENV / "python"), str(d.parent / "floor.py"), url(db), str(d), "apply"])

    def rerun(self, d: Path, db: str) -> Cmd:
        return Cmd([str(VENV / "python"), str(d.parent / "floor.py"), url(db), str(d), "noop"])


class PythonFloorTx(PythonFloor):
    """Bare Python doing what persistor promises: a transaction per script with its history row."""

    name, label, has_history = "python_floor_tx", "bare Python, tx+history per script (floor)", True

    def apply(self, d: Path, db: str) -> Cmd:
        return Cmd([str(VENV / "python"), str(d.parent / "floor.py"), url(db), str(d), "apply_tx"])

    def rerun(self, d: Path, db: str) -> Cmd:
        return Cmd([str(VENV / "python"), str(d.parent / "floor.py"), url(db), str(d), "noop_tx"])


# -- persistor ---------------------------------------------------------------


class Persistor(Tool):
    name, label = "persistor", "persistor"

    def missing(self) -> str | None:
        return (
            None if (VENV / "persistor").exists() else "persistor not installed in the bench venv"
        )

    def version(self) -> str:
        rev = _out(["git", "-C", str(BENCH.parent), "rev-parse", "--short", "HEAD"])
        dirty = subprocess.run(
            ["git", "-C", str(BENCH.parent), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return f"{_out([str(VENV / 'persistor'), '--version'])} (git {rev}{', src/ modified' if dirty else ''})"

    def layout(self, d: Path, migrations: list[tuple[str, str]]) -> None:
        w = max(5, len(str(len(migrations))))
        _write(d, {f"V{i:0{w}d}__{n}.sql": s for i, (n, s) in enumerate(migrations, 1)})

    def _cmd(self, what: str, d: Path, db: str, *extra: str) -> Cmd:
        return Cmd([str(VENV / "persistor"), what, "--url", url(db), "--location", str(d), *extra])

    def apply(self, d: Path, db: str) -> Cmd:
        return self._cmd("migrate", d, db, "-q")

    def status(self, d: Path, db: str) -> Cmd:
        return self._cmd("status", d, db)

    def validate(self, d: Path, db: str) -> Cmd:
        return self._cmd("validate", d, db)


class PersistorRef(Persistor):
    """persistor at the commit given to `run.sh --against REF`, in its own venv."""

    name = "persistor_ref"
    venv = TOOLS / "venv-ref" / "bin"

    def __init__(self) -> None:
        self.label = f"persistor @ {os.environ.get('BENCH_REF', '?')}"

    def missing(self) -> str | None:
        if not os.environ.get("BENCH_REF"):
            return "not requested (run.sh --against REF)"
        return None if (self.venv / "persistor").exists() else "persistor @ REF did not install"

    def version(self) -> str:
        return (
            f"{_out([str(self.venv / 'persistor'), '--version'])} (git {os.environ['BENCH_REF']})"
        )

    def _cmd(self, what: str, d: Path, db: str, *extra: str) -> Cmd:
        return Cmd(
            [str(self.venv / "persistor"), what, "--url", url(db), "--location", str(d), *extra]
        )


# -- peers -------------------------------------------------------------------


class Dbmate(Tool):
    name, label = "dbmate", "dbmate"

    def missing(self) -> str | None:
        return None if (NPM_BIN / "dbmate").exists() else "npm package dbmate not installed"

    def version(self) -> str:
        return _out([str(NPM_BIN / "dbmate"), "--version"])

    def layout(self, d: Path, migrations: list[tuple[str, str]]) -> None:
        _write(
            d,
            {
                f"{i:05d}_{n}.sql": f"-- migrate:up\n{s}\n-- migrate:down\n"
                for i, (n, s) in enumerate(migrations, 1)
            },
        )

    def _cmd(self, what: str, d: Path, db: str) -> Cmd:
        return Cmd(
            [str(NPM_BIN / "dbmate"), "--migrations-dir", str(d), "--no-dump-schema", what],
            env={"DATABASE_URL": url(db) + "?sslmode=disable"},
        )

    def apply(self, d: Path, db: str) -> Cmd:
        return self._cmd("up", d, db)

    def status(self, d: Path, db: str) -> Cmd:
        return self._cmd("status", d, db)


class NodePgMigrate(Tool):
    name, label = "node_pg_migrate", "node-pg-migrate"

    def missing(self) -> str | None:
        return (
            None
            if (NPM_BIN / "node-pg-migrate").exists()
            else "npm package node-pg-migrate not installed"
        )

    def version(self) -> str:
        v = _out(
            [
                "node",
                "-e",
                "console.log(require(process.argv[1]).version)",
                str(TOOLS / "npm" / "node_modules" / "node-pg-migrate" / "package.json"),
            ]
        )
        return f"node-pg-migrate {v} (node {_out(['node', '--version'])})"

    def layout(self, d: Path, migrations: list[tuple[str, str]]) -> None:
        _write(
            d,
            {
                f"{i:05d}_{n}.sql": f"-- Up Migration\n{s}\n-- Down Migration\n"
                for i, (n, s) in enumerate(migrations, 1)
            },
        )

    def apply(self, d: Path, db: str) -> Cmd:
        # Defaults kept: node-pg-migrate runs all pending migrations in ONE transaction.
        return Cmd(
            [str(NPM_BIN / "node-pg-migrate"), "up", "-m", str(d), "--no-verbose"],
            env={"DATABASE_URL": url(db)},
        )


class Yoyo(Tool):
    name, label = "yoyo", "yoyo-migrations"

    def missing(self) -> str | None:
        return None if (VENV / "yoyo").exists() else "pip package yoyo-migrations not installed"

    def version(self) -> str:
        return f"yoyo-migrations {_pip_version('yoyo-migrations')}"

    def layout(self, d: Path, migrations: list[tuple[str, str]]) -> None:
        _write(d, {f"{i:05d}_{n}.sql": s for i, (n, s) in enumerate(migrations, 1)})

    def _cmd(self, what: str, d: Path, db: str) -> Cmd:
        return Cmd(
            [str(VENV / "yoyo"), what, "--batch", "--no-config-file", "--database", url(db), str(d)]
        )

    def apply(self, d: Path, db: str) -> Cmd:
        return self._cmd("apply", d, db)

    def status(self, d: Path, db: str) -> Cmd:
        return self._cmd("list", d, db)


ALEMBIC_ENV = """\
import os
from alembic import context
from sqlalchemy import create_engine
engine = create_engine(os.environ["BENCH_DB_URL"])
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
"""


class Alembic(Tool):
    name, label = "alembic", "alembic (op.execute)"

    def missing(self) -> str | None:
        return None if (VENV / "alembic").exists() else "pip package alembic not installed"

    def version(self) -> str:
        return f"alembic {_pip_version('alembic')}, SQLAlchemy {_pip_version('sqlalchemy')}, psycopg2 {_pip_version('psycopg2-binary')}"

    def layout(self, d: Path, migrations: list[tuple[str, str]]) -> None:
        files = {
            "alembic.ini": "[alembic]\nscript_location = %(here)s\n",
            "env.py": ALEMBIC_ENV,
            "script.py.mako": "",
        }
        prev = None
        for i, (n, s) in enumerate(migrations, 1):
            rev = f"r{i:05d}"
            files[f"versions/{rev}_{n}.py"] = (
                f"from alembic import op\nrevision = {rev!r}\ndown_revision = {prev!r}\n"
                f"branch_labels = None\ndepends_on = None\n\n"
                f"def upgrade():\n    op.execute({s!r})\n\n\ndef downgrade():\n    pass\n"
            )
            prev = rev
        _write(d, files)

    def _cmd(self, d: Path, db: str, *args: str) -> Cmd:
        return Cmd(
            [str(VENV / "alembic"), "-c", str(d / "alembic.ini"), *args],
            env={"BENCH_DB_URL": url(db).replace("postgresql://", "postgresql+psycopg2://")},
        )

    def apply(self, d: Path, db: str) -> Cmd:
        return self._cmd(d, db, "upgrade", "head")

    def status(self, d: Path, db: str) -> Cmd:
        return self._cmd(d, db, "history", "--indicate-current")


class Pyway(Tool):
    name, label = "pyway", "pyway"

    def missing(self) -> str | None:
        return None if (VENV / "pyway").exists() else "pip package pyway not installed"

    def version(self) -> str:
        return f"pyway {_pip_version('pyway')}"

    def layout(self, d: Path, migrations: list[tuple[str, str]]) -> None:
        _write(d, {f"V1_{i:05d}__{n}.sql": s for i, (n, s) in enumerate(migrations, 1)})

    def _cmd(self, what: str, d: Path, db: str) -> Cmd:
        return Cmd(
            [
                str(VENV / "pyway"),
                what,
                "--database-type",
                "postgres",
                "--database-host",
                PG_HOST,
                "--database-port",
                PG_PORT,
                "--database-name",
                db,
                "--database-username",
                PG_USER,
                "--database-password",
                "",
                "--database-table",
                "pyway_history",
                "--database-migration-dir",
                str(d),
            ]
        )

    def apply(self, d: Path, db: str) -> Cmd:
        return self._cmd("migrate", d, db)

    def status(self, d: Path, db: str) -> Cmd:
        return self._cmd("info", d, db)


class Sqitch(Tool):
    name, label = "sqitch", "sqitch"

    def missing(self) -> str | None:
        if not shutil.which("sqitch"):
            return "Debian package sqitch not installed"
        return None

    def version(self) -> str:
        return _out(["sqitch", "--version"])

    def layout(self, d: Path, migrations: list[tuple[str, str]]) -> None:
        plan = ["%syntax-version=1.0.0", "%project=bench", ""]
        files: dict[str, str] = {
            "sqitch.conf": "[core]\n\tengine = pg\n\tplan_file = sqitch.plan\n\ttop_dir = .\n"
            f'[engine "pg"]\n\tclient = {PSQL}\n',
        }
        for i, (n, s) in enumerate(migrations, 1):
            change = f"c{i:05d}_{n}"
            plan.append(f"{change} 2026-01-01T00:00:00Z Bench <bench@example.invalid> # {n}")
            # sqitch's convention: each deploy script holds its own transaction.
            files[f"deploy/{change}.sql"] = f"BEGIN;\n{s}\nCOMMIT;\n"
            files[f"revert/{change}.sql"] = "SELECT 1;\n"
        files["sqitch.plan"] = "\n".join(plan) + "\n"
        _write(d, files)

    def _cmd(self, d: Path, db: str, *args: str) -> Cmd:
        target = f"db:pg://{PG_USER}@{PG_HOST}:{PG_PORT}/{db}"
        return Cmd(
            ["sqitch", "--chdir", str(d), *args, target],
            env={"SQITCH_FULLNAME": "Bench", "SQITCH_EMAIL": "bench@example.invalid"},
        )

    def apply(self, d: Path, db: str) -> Cmd:
        return self._cmd(d, db, "deploy")

    def status(self, d: Path, db: str) -> Cmd:
        return self._cmd(d, db, "status", "--show-changes")


ALL: list[Tool] = [
    PsqlOneTx(),
    PsqlPerFile(),
    PythonFloor(),
    PythonFloorTx(),
    Persistor(),
    PersistorRef(),
    Dbmate(),
    NodePgMigrate(),
    Alembic(),
    Yoyo(),
    Pyway(),
    Sqitch(),
]
