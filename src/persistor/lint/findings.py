"""What lint found: one Finding per hazard, and the result of a lint run."""

from __future__ import annotations

from typing import Any, NamedTuple

from persistor.lint.catalog import Severity


class Finding(NamedTuple):
    """One hazard: the rule, where, the statement, why it hurts and the safe way."""

    rule: str
    severity: Severity
    file: str
    line: int
    statement: str
    message: str  # what was found, e.g. "index ix on existing table t is not CONCURRENTLY"
    why: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        """Return the finding as a JSON object."""
        return self._asdict()

    def headline(self) -> str:
        """Return `file:line: severity [rule] message`."""
        return f"{self.file}:{self.line}: {self.severity} [{self.rule}] {self.message}"


class LintResult(NamedTuple):
    """A lint run: how much was read, what was found, and whether that fails it."""

    files: int
    statements: int
    findings: tuple[Finding, ...]
    strict: bool = False

    @property
    def errors(self) -> int:
        """Return the number of error-severity findings."""
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        """Return the number of warning-severity findings."""
        return len(self.findings) - self.errors

    @property
    def failed(self) -> bool:
        """Return whether the run fails: an error remains, or a warning with --strict."""
        return self.errors > 0 or (self.strict and self.warnings > 0)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `lint --format json`."""
        return {
            "files": self.files,
            "statements": self.statements,
            "errors": self.errors,
            "warnings": self.warnings,
            "strict": self.strict,
            "passed": not self.failed,
            "findings": [f.to_json() for f in self.findings],
        }
