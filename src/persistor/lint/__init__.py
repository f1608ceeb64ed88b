"""Lint: hazards a migration would cause on a live PostgreSQL database, found before it runs.

The rules read the tree of the real PostgreSQL parser (pglast); nothing here
needs a database. Importing this package is cheap: the parser is imported
only when a script is linted.
"""
