"""The shop's own tests: each gets a fresh copy of the migrated database."""

import psycopg
import pytest


def test_catalogue_is_seeded_by_the_python_migration(persistor_db):
    rows = persistor_db.conn.execute("SELECT name FROM products ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["tea", "coffee", "cocoa"]


@pytest.mark.parametrize("attempt", [1, 2])
def test_each_test_starts_from_the_migrated_state(persistor_db, attempt):
    conn = persistor_db.conn
    assert conn.execute("SELECT count(*) FROM orders").fetchone() == (0,)
    conn.execute("INSERT INTO orders (id, product_id, quantity) VALUES (1, 2, 3)")
    conn.commit()  # committed, yet the next test sees none of it
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("INSERT INTO orders (id, product_id, quantity) VALUES (2, 99, 1)")


def test_the_same_migrations_on_sqlite(persistor_sqlite_db):
    rows = persistor_sqlite_db.conn.execute("SELECT count(*) FROM products").fetchall()
    assert rows == [(3,)]
