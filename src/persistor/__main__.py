"""`python -m persistor`: the command line."""

from persistor.cli import run

run()
