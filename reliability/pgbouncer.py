"""A throw-away PgBouncer (Debian's package) on a loopback port, transaction pooling."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg


def ensure_installed() -> tuple[str | None, str]:
    """Return (path to pgbouncer, how it was found); install Debian's package if we can."""
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found:
        return found, "already installed"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "pgbouncer is not installed and apt-get cannot be run here (not root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "pgbouncer"]):
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"{' '.join(cmd)} failed: {exc}"
        if done.returncode != 0:
            return None, f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}"
    found = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(found).exists():
        return None, "apt-get install pgbouncer did not provide a pgbouncer binary"
    # the package's own service (if systemd runs one) is not ours; we start our own
    return found, "installed with apt-get"


def version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    return out.splitlines()[0].strip() if out else "?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgBouncer:
    binary: str
    dir: Path
    port: int
    proc: subprocess.Popen[bytes]

    def url_for(self, server_url: str) -> str:
        """The URL of the same database and user, through this PgBouncer."""
        parts = urlsplit(server_url)
        user = f"{parts.username}@" if parts.username else ""
        return parts._replace(netloc=f"{user}127.0.0.1:{self.port}").geturl()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start(
    binary: str,
    server_url: str,
    pool_mode: str = "transaction",
    pool_size: int = 5,
    extra: Mapping[str, str] | None = None,
) -> PgBouncer:
    """Start PgBouncer in front of the server at server_url (host, port, user from it).

    extra: more [pgbouncer] settings, e.g. {"server_lifetime": "1"}.
    """
    parts = urlsplit(server_url)
    host = parts.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the harness only sends traffic to 127.0.0.1")
    user = parts.username or "postgres"
    port = _free_port()
    d = Path(tempfile.mkdtemp(prefix="persistor-pgbouncer-"))
    (d / "userlist.txt").write_text(f'"{user}" ""\n')
    (d / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={host} port={parts.port or 5432}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        f"unix_socket_dir = {d}\n"
        "auth_type = trust\n"
        f"auth_file = {d / 'userlist.txt'}\n"
        f"pool_mode = {pool_mode}\n"
        f"default_pool_size = {pool_size}\n"
        "max_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {d / 'pgbouncer.log'}\n"
        f"pidfile = {d / 'pgbouncer.pid'}\n"
        "server_check_delay = 0\n" + "".join(f"{k} = {v}\n" for k, v in (extra or {}).items())
    )
    cmd = [binary, str(d / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: run it as the postgres user
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(d, pw.pw_uid, pw.pw_gid)
        for f in d.iterdir():
            os.chown(f, pw.pw_uid, pw.pw_gid)
        cmd = [binary, "-u", "postgres", str(d / "pgbouncer.ini")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bouncer = PgBouncer(binary, d, port, proc)
    deadline = time.monotonic() + 15
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = bouncer.log()
            bouncer.stop()
            raise RuntimeError(f"pgbouncer exited with {proc.returncode}: {log[-500:]}")
        try:
            with psycopg.connect(bouncer.url_for(server_url), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return bouncer
        except psycopg.Error as exc:
            last = str(exc)
            time.sleep(0.1)
    bouncer.stop()
    raise RuntimeError(f"pgbouncer did not accept connections: {last}")
