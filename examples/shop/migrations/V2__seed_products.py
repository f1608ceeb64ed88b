"""Seed the catalogue: data that is easier to write as code than as SQL.

persistor calls migrate(conn) inside this script's transaction, with the
engine's own connection (psycopg on PostgreSQL, sqlite3 on SQLite); the
script and its history row commit together.
"""

import sqlite3

PRODUCTS = [("tea", 450), ("coffee", 390), ("cocoa", 420)]


def migrate(conn):
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    insert = f"INSERT INTO products (id, name, price_cents) VALUES ({mark}, {mark}, {mark})"
    for number, (name, price) in enumerate(PRODUCTS, start=1):
        conn.execute(insert, (number, name, price))
