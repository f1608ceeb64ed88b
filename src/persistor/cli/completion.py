"""The script behind `persistor completion bash|zsh|fish`: click's own completion, for persistor."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


def completion_script(shell: str) -> str:
    """Return the shell's completion script for the running command line."""
    root = click.get_current_context().find_root()
    completer = get_completion_class(shell)
    if completer is None:  # click's Choice on the argument keeps other names out
        raise click.BadParameter(f"no completion for {shell!r}; use one of {', '.join(SHELLS)}")
    # _PERSISTOR_COMPLETE is the variable `persistor` itself reads to answer the shell.
    return str(completer(root.command, {}, "persistor", "_PERSISTOR_COMPLETE").source())
