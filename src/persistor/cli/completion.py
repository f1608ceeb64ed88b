"""`persistor completion bash|zsh|fish`: print the shell's completion script (click's own)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from persistor.cli.options import common_options

SHELLS = ("bash", "zsh", "fish")


@common_options  # accepted like on every command, though the script needs none of them
@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL; see the README for where to put it."""
    root = click.get_current_context().find_root()
    completer = get_completion_class(shell)
    assert completer is not None  # every name in SHELLS is one click ships
    # The variable `persistor` itself reads to answer the shell: _PERSISTOR_COMPLETE.
    script = completer(root.command, {}, "persistor", "_PERSISTOR_COMPLETE").source()
    click.echo(script)
