"""ecliptix_purge belongs to a maintenance role, never to the application role:
``SELECT * FROM ecliptix_grant_app_role('app_user', 'maintenance')`` gives the
maintenance role EXECUTE on ecliptix_purge (and USAGE on the schema) and
nothing else; the grant survives re-runs of the repeatable scripts and can be
revoked; roles that would let the application purge are refused."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.conftest import url_as
from tests.ecliptix.deploy import MIGRATIONS, script_text
from tests.security.conftest import RoleMaker
from tests.security.test_privileges import CONTRACT, executable

pytestmark = pytest.mark.postgres
Conn = psycopg.Connection[Any]


def grant(db: Conn, role: str | None, maintenance: str | None) -> list[tuple[str, ...]]:
    rows = db.execute(
        "SELECT * FROM ecliptix_grant_app_role(%s, %s)", (role, maintenance)
    ).fetchall()
    return [tuple(str(v) for v in r) for r in rows]


def test_maintenance_role_runs_the_purge_and_nothing_else(
    db: Conn, ecliptix_url: str, make_role: RoleMaker
) -> None:
    app, maint = make_role(ecliptix_url), make_role(ecliptix_url)
    granted = grant(db, app, maint)
    assert granted[-2:] == [
        ("USAGE", "schema", "public"),
        ("EXECUTE", "function", "ecliptix_purge(integer)"),
    ]
    assert executable(db, app) == set(CONTRACT)
    assert executable(db, maint) == {"ecliptix_purge"}
    with psycopg.connect(url_as(ecliptix_url, maint), autocommit=True) as conn:
        assert conn.execute("SELECT * FROM ecliptix_purge(100)").fetchall() == []
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM login_membership('+15550100')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM event_log")
    with (
        psycopg.connect(url_as(ecliptix_url, app), autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT * FROM ecliptix_purge()")

    # re-running the scripts keeps it; a re-created purge is granted again
    db.execute("DROP FUNCTION ecliptix_purge(integer)")
    for path in sorted(MIGRATIONS.glob("R__*.sql")):
        db.execute(script_text(path))
    assert executable(db, maint) == {"ecliptix_purge"}
    assert executable(db, app) == set(CONTRACT)

    revoked = db.execute("SELECT * FROM ecliptix_revoke_app_role(NULL, %s)", (maint,)).fetchall()
    assert [r[0] for r in revoked] == ["EXECUTE", "USAGE"]
    assert executable(db, maint) == set()
    assert executable(db, app) == set(CONTRACT)
    assert db.execute("SELECT count(*) FROM ecliptix_maintenance_roles").fetchone() == (0,)


def test_only_maintenance_can_be_registered_alone(
    db: Conn, ecliptix_url: str, make_role: RoleMaker
) -> None:
    maint = make_role(ecliptix_url)
    assert [g[0] for g in grant(db, None, maint)] == ["USAGE", "EXECUTE"]
    assert db.execute("SELECT count(*) FROM ecliptix_app_roles").fetchone() == (0,)
    with pytest.raises(psycopg.Error) as info:
        grant(db, None, None)
    assert info.value.sqlstate == "22004" and "p_role" in str(info.value)


def test_roles_that_would_let_the_application_purge_are_refused(
    db: Conn, ecliptix_url: str, make_role: RoleMaker
) -> None:
    app, maint, other = (make_role(ecliptix_url) for _ in range(3))

    def refused(role: str | None, maintenance: str | None) -> psycopg.Error:
        with pytest.raises(psycopg.Error) as info:
            grant(db, role, maintenance)
        return info.value

    err = refused(app, app)
    assert err.sqlstate == "22023" and "p_maintenance_role" in str(err)
    # the application role is a member of the maintenance role
    db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(maint), sql.Identifier(app)))
    assert refused(app, maint).sqlstate == "22023"
    db.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(maint), sql.Identifier(app)))
    grant(db, app, maint)
    # later: a registered maintenance role as the application role, or the
    # registered application role as a maintenance role
    assert refused(maint, None).sqlstate == "22023"
    assert refused(None, app).sqlstate == "22023"
    err = refused(None, "no_such_role_x")
    assert err.sqlstate == "42704" and "p_maintenance_role" in str(err)
    assert refused(None, "public").sqlstate == "22023"
    owner = db.execute("SELECT current_user").fetchone()
    assert owner is not None
    assert refused(None, owner[0]).sqlstate == "22023"
    # a maintenance role that may create objects in the schema is refused too
    db.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(other)))
    assert refused(None, other).sqlstate == "42501"
