"""Reliability harness for `persistor migrate`: kills, concurrency, CIC, PgBouncer.

`bash reliability/run.sh [--quick]` runs everything and writes docs/RELIABILITY.md;
tests/reliability/ runs the fast parts in the normal pytest suite.
"""
