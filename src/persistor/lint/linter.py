"""Linting scripts: parse, check each statement, apply ignores and configuration.

`lint` is the `persistor lint` command; `lint_planned` is what `migrate`
and `validate` call on the scripts they are about to run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from persistor.core.scripts import ScriptFile, ScriptKind, discover, parse_name
from persistor.core.source import ExpandedScript, expand_script
from persistor.errors import Problem, UsageError, ValidationError
from persistor.lint.catalog import REPEATABLE_RULES, RULES
from persistor.lint.findings import Finding, LintResult
from persistor.lint.ignores import read_ignores
from persistor.lint.prefilter import cannot_be_flagged
from persistor.lint.rules import FileContext, check
from persistor.lint.tree import ParseFailure, parse
from persistor.results import Event

if TYPE_CHECKING:
    from persistor.core.planner import PlannedScript
    from persistor.settings import Settings


class LintOptions(NamedTuple):
    """The configuration's `lint.disable` and `lint.error`."""

    disabled: frozenset[str] = frozenset()
    raised: frozenset[str] = frozenset()  # warnings reported as errors

    @classmethod
    def of(cls, config: Mapping[str, Sequence[str]]) -> LintOptions:
        """Return the options of the `lint` setting (already checked by the settings loader)."""
        return cls(frozenset(config.get("disable", ())), frozenset(config.get("error", ())))


class ScriptLint(NamedTuple):
    """One script's findings, statement count, and what kept it from being linted."""

    findings: list[Finding]
    statements: int
    problems: list[Problem]


def lint_script(
    shown: str, source: ExpandedScript, repeatable: bool, options: LintOptions
) -> ScriptLint:
    """Lint one expanded script; shown is the path findings name."""
    name = source.path or shown
    try:
        statements = parse(source.text)
    except ParseFailure as exc:
        where = _where(source, shown, exc.line)
        message = f"{where}: cannot be parsed ({exc.message}); fix the SQL"
        return ScriptLint([], 0, [Problem("lint_syntax", name, message)])
    ignores = read_ignores(source.text, [s.line for s in statements])
    problems = [
        Problem("lint_ignore", name, f"{_where(source, shown, line)}: {message}")
        for line, message in ignores.problems
    ]
    ctx = FileContext()
    findings: list[Finding] = []
    for statement in statements:
        skipped = ignores.whole_file | ignores.by_line.get(statement.line, frozenset())
        for rule_id, message in check(statement, ctx):
            if rule_id in skipped or rule_id in options.disabled:
                continue
            if repeatable and rule_id not in REPEATABLE_RULES:
                continue
            rule = RULES[rule_id]
            severity = "error" if rule_id in options.raised else rule.severity
            loc = source.locate(statement.line)
            findings.append(
                Finding(
                    rule_id,
                    severity,
                    shown if loc.path == source.path else loc.path,
                    loc.line,
                    statement.text,
                    message,
                    rule.why,
                    rule.fix,
                )
            )
    return ScriptLint(findings, len(statements), problems)


def _where(source: ExpandedScript, shown: str, line: int) -> str:
    loc = source.locate(line)
    return f"{shown if loc.path == source.path else loc.path}:{loc.line}"


class PendingLint(NamedTuple):
    """Lint of the scripts a migrate or validate is about to run."""

    findings: tuple[Finding, ...]
    problems: tuple[Problem, ...]  # a bad ignore comment: blocks the run, like a bad directive
    unlinted: tuple[Problem, ...]  # the parser refused a script: the server will say more

    def warnings(self, unlinted: bool = True) -> list[str]:
        """Return one line per finding (and per script that could not be linted)."""
        lines = [f"lint: {f.headline()}; instead: {f.fix}" for f in self.findings]
        return lines + [f"lint: {p.message} (not linted)" for p in self.unlinted if unlinted]

    def as_problems(self) -> list[Problem]:
        """Return the findings as validation problems (validate --strict)."""
        return [
            Problem(
                f"lint:{f.rule}",
                f.file,
                f"line {f.line}: {f.severity} [{f.rule}] {f.message}; instead: {f.fix}",
            )
            for f in self.findings
        ]


def lint_planned(
    scripts: Iterable[PlannedScript],
    config: Mapping[str, Sequence[str]],
    on_event: Callable[[Event], None] | None = None,
    unlinted: bool = True,
) -> PendingLint:
    """Lint the scripts migrate is about to run; report findings to on_event as warnings.

    unlinted=False leaves out the scripts the parser refused (validate reports those itself).
    """
    options = LintOptions.of(config)
    findings: list[Finding] = []
    problems: list[Problem] = []
    cwd = os.getcwd()
    for item in scripts:
        if item.source.problems:
            continue  # the planner reports them
        if cannot_be_flagged(item.source.text):
            continue  # functions, views, data changes: no rule looks at them
        repeatable = item.file.kind is ScriptKind.REPEATABLE
        result = lint_script(_shown(item.file.path, cwd), item.source, repeatable, options)
        findings += result.findings
        problems += result.problems
    bad = tuple(p for p in problems if p.code != "lint_syntax")
    refused = tuple(p for p in problems if p.code == "lint_syntax")
    found = PendingLint(tuple(findings), bad, refused)
    if on_event is not None:
        for line in found.warnings(unlinted):
            on_event(Event("warning", line))
    return found


def lint(settings: Settings, paths: Sequence[Path] = (), *, strict: bool = False) -> LintResult:
    """Lint migration files (the configured locations when paths is empty); no database.

    Raises ValidationError when a file cannot be read, parsed, or names an
    unknown rule in an ignore comment; a failed result is not an error here.
    """
    options = LintOptions.of(settings.lint)
    scripts = _scripts(paths or settings.locations, settings)
    findings: list[Finding] = []
    problems: list[Problem] = []
    statements = 0
    cwd = os.getcwd()
    for f, source in scripts:
        problems += source.problems
        if source.problems:
            continue
        shown = _shown(f.path, cwd)
        result = lint_script(shown, source, f.kind is ScriptKind.REPEATABLE, options)
        findings += result.findings
        problems += result.problems
        statements += result.statements
    if problems:
        raise ValidationError(problems)
    return LintResult(len(scripts), statements, tuple(findings), strict)


def _scripts(paths: Sequence[Path], settings: Settings) -> list[tuple[ScriptFile, ExpandedScript]]:
    """Return each script to lint: the V and R scripts of folders, and files as given."""
    out: list[tuple[ScriptFile, ExpandedScript]] = []
    for given in paths:
        path = Path(given).resolve()
        if path.is_dir():
            found = discover([path])
            files = [*found.versioned, *found.repeatable]
            roots = [path]
        elif path.is_file():
            parsed = parse_name(str(path), path.name)
            files = [parsed if isinstance(parsed, ScriptFile) else _plain(path)]
            roots = [path.parent]
        else:
            raise UsageError(f"{given} is neither a file nor a folder; give migration files")
        for f in files:
            out.append((f, expand_script(f.path, f.name, roots, settings.placeholders)))
    return out


def _plain(path: Path) -> ScriptFile:
    """Return a file whose name follows no migration pattern, linted as a versioned script."""
    return ScriptFile(ScriptKind.VERSIONED, None, path.stem, str(path), path.name)


def _shown(path: str, cwd: str) -> str:
    """Return path relative to the working folder when it lies inside it (as CI annotates)."""
    # A prefix test, not os.path.relpath: that was half of lint's cost per W1 script.
    prefix = cwd.rstrip(os.sep) + os.sep
    return path[len(prefix) :] if path.startswith(prefix) else path
