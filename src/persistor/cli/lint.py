"""`persistor lint` (declared in cli/main.py): call persistor.lint, render text, JSON or GitHub."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from persistor.cli.options import state

if TYPE_CHECKING:
    from persistor.lint.findings import Finding, LintResult


def run(paths: tuple[Path, ...], strict: bool, format_: str | None) -> None:
    """Lint, print the findings in the chosen format, and raise LintError when it fails."""
    from persistor.errors import LintError
    from persistor.lint.linter import lint

    opts = state()
    result = lint(opts.settings(), paths, strict=strict)
    shown = format_ or ("json" if opts.json else "text")
    if shown == "json":
        import json

        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        opts.printed_json = True
    elif shown == "github":
        sys.stdout.write("".join(github_line(f) + "\n" for f in result.findings))
    elif not opts.quiet or result.failed:
        render_text(result)
    if result.failed:
        raise LintError(
            f"lint found {result.errors} error(s) and {result.warnings} warning(s)"
            f"{' (--strict fails on warnings too)' if strict else ''}; write each statement "
            "the safe way shown, or ignore a rule for one statement with a comment line "
            "'-- persistor:lint-ignore RULE' right above it, with the reason beside it"
        )


def render_text(result: LintResult) -> None:
    """Print each finding with its statement, why it hurts and the safe way, then a summary."""
    out = sys.stdout
    colour = out.isatty()
    for f in result.findings:
        head = f.headline()
        if colour:
            head = click.style(head, fg="red" if f.severity == "error" else "yellow", bold=True)
        out.write(f"{head}\n{_indent(f.statement)}\n    why: {f.why}\n    instead: {f.fix}\n\n")
    out.write(
        f"Linted {result.files} file(s), {result.statements} statement(s): "
        f"{result.errors} error(s), {result.warnings} warning(s).\n"
    )


def _indent(statement: str, limit: int = 6) -> str:
    lines = statement.splitlines() or [""]
    shown = lines[:limit] + (["…"] if len(lines) > limit else [])
    return "\n".join("    | " + line for line in shown)


def github_line(f: Finding) -> str:
    """Return the GitHub Actions workflow command that annotates the finding's line."""
    command = "error" if f.severity == "error" else "warning"
    props = f"file={_prop(f.file)},line={f.line},title={_prop(f'persistor lint {f.rule}')}"
    return f"::{command} {props}::{_data(f'{f.message}. {f.why}. Instead: {f.fix}')}"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
