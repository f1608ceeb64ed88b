"""PostgreSQL behind the engine interface, through psycopg 3.

engine.py is the `Engine`; the rest is what it is made of: transaction.py
(a script's transaction in two round trips), history.py (the history
table), lock.py (both lock modes and their fence), catalog.py (what exists
and who may use it), errors.py (server errors into persistor's), parse.py
(the offline parser check), journals.py (other tools' histories) and
search_path.py (the path scripts start from).
"""

from __future__ import annotations

from persistor.engines.postgres.engine import PostgresEngine

__all__ = ["PostgresEngine"]
