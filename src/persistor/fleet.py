"""Many targets: one command (migrate, status, validate) over many databases and schemas.

Each target is the single-target API call with the settings' url and schema
replaced, on a thread of its own: its own connection, lock and history, so
targets never wait for each other and a rerun does only what is not up to
date. The API is safe to call from threads: each call opens its own engine
(one psycopg connection; table lock mode adds its heartbeat's), logging is
thread-safe, the lazy imports inside the API are serialised by Python's
import lock, module state is constants only (plus functools caches, safe to
share), and the embedded server, the one process-wide thing, is started once
here before any thread runs.

    from persistor.fleet import migrate_all, targets_from_file
    result = migrate_all(settings, targets_from_file(Path("targets.txt")), parallel=8)
    result.exit_code, [t.state for t in result.targets]
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

from persistor import api
from persistor.errors import PersistorError, UsageError, worst_exit_code
from persistor.results import Event
from persistor.setting_values import Target
from persistor.settings import Settings
from persistor.urls import mask_url, url_problem

TargetState = Literal["done", "failed", "skipped"]
DEFAULT_PARALLEL = 4


class _Result(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class TargetEvent(NamedTuple):
    """Progress of one target: started, an event of its run (a script applied), or finished."""

    target: str
    kind: Literal["started", "event", "finished"]
    event: Event | None = None
    outcome: TargetResult | None = None


class TargetResult(NamedTuple):
    """What one target's run gave: its result object, or the error it stopped with."""

    name: str
    url: str  # without its password
    schema: str | None
    state: TargetState
    exit_code: int  # 0 when done or skipped
    seconds: float
    result: Any = None  # the command's result object (MigrateResult, StatusResult, ...)
    error: PersistorError | None = None

    def to_json(self) -> dict[str, Any]:
        """Return this target's entry of the `--json` document."""
        doc: dict[str, Any] = {
            "name": self.name,
            "url": self.url,
            "schema": self.schema,
            "state": self.state,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "result": self.result.to_json() if self.result is not None else None,
        }
        doc["error"] = self.error.to_json()["error"] if self.error is not None else None
        return doc


class FleetResult(NamedTuple):
    """Every target's outcome, in the order the targets were given."""

    command: str
    targets: tuple[TargetResult, ...]

    @property
    def exit_code(self) -> int:
        """Return the worst target's exit code (the order is errors.EXIT_CODE_SEVERITY)."""
        return worst_exit_code([t.exit_code for t in self.targets])

    @property
    def counts(self) -> dict[str, int]:
        """Return how many targets are done, failed and skipped."""
        counts = {"done": 0, "failed": 0, "skipped": 0}
        for t in self.targets:
            counts[t.state] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """Return the `--json` document: one entry per target, and the run's exit code."""
        return {
            "command": self.command,
            "exit_code": self.exit_code,
            "counts": self.counts,
            "targets": [t.to_json() for t in self.targets],
        }


Action = Callable[[Settings, Callable[[Event], None]], _Result]
ProgressCallback = Callable[[TargetEvent], None]


def targets_from_file(path: Path) -> tuple[Target, ...]:
    """Read a targets file: one `URL [name=NAME] [schema=SCHEMA]` a line; `#` comments, blanks.

    A target without a name is called by its hosts and database
    (`db1:5432/app`, no user, password or parameters), with `#schema`
    appended when it has one: two lines naming one database and schema are
    then refused as duplicates.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the targets file {path}: {exc}") from None
    targets: list[Target] = []
    for number, line in enumerate(lines, start=1):
        words = line.split("#", 1)[0].split() if not line.lstrip().startswith("#") else []
        if not words:
            continue
        url, fields = words[0], dict(w.partition("=")[::2] for w in words[1:])
        unknown = [w for w in words[1:] if w.partition("=")[0] not in ("name", "schema")]
        if unknown or not all(fields.values()):
            raise UsageError(
                f"{path}:{number}: {' '.join(unknown or words[1:])!r} is not name=NAME or "
                "schema=SCHEMA; write one target a line as URL [name=NAME] [schema=SCHEMA]"
            )
        schema = fields.get("schema")
        name = fields.get("name") or _default_name(url) + (f"#{schema}" if schema else "")
        targets.append(Target(name, url, schema))
    return check_targets(targets, where=str(path))


def _default_name(url: str) -> str:
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :].split("?", 1)[0]
    rest = url.split("://", 1)[-1].split("?", 1)[0]
    netloc, slash, path = rest.partition("/")
    return netloc.rpartition("@")[2] + slash + path


def check_targets(targets: Iterable[Target], where: str = "targets") -> tuple[Target, ...]:
    """Refuse duplicate names and malformed URLs before any target runs (UsageError, exit 2)."""
    seen: set[str] = set()
    out = tuple(targets)
    if not out:
        raise UsageError(f"{where} names no target; give at least one")
    for t in out:
        if t.name in seen:
            raise UsageError(
                f"{where}: target {t.name!r} is named twice; give each target a name of its own "
                "(two runs on one database and schema would only wait for each other's lock)"
            )
        seen.add(t.name)
        problem = url_problem(t.url) if t.url is not None else None
        if problem:
            raise UsageError(
                f"{where}: target {t.name!r} has a malformed URL {mask_url(t.url or '')}: "
                f"{problem}. Nothing was run on any target"
            )
    return out


def run_all(
    command: str,
    action: Action,
    settings: Settings,
    targets: Sequence[Target],
    *,
    parallel: int = DEFAULT_PARALLEL,
    canary: int = 0,
    keep_going: bool = False,
    on_progress: ProgressCallback | None = None,
) -> FleetResult:
    """Run `action` on every target, `parallel` at a time; see the module docstring.

    With canary K the first K targets run (and finish) first; if any failed,
    no other target starts. Otherwise no new target starts after the first
    failure unless keep_going; targets not started are reported as skipped.
    """
    if parallel < 1 or canary < 0:
        raise UsageError("--parallel must be at least 1 and --canary at least 0")
    targets = check_targets(targets)
    base = _with_default_url(settings, targets)
    progress = on_progress or (lambda e: None)
    outcomes: dict[str, TargetResult] = {}
    waves = [targets[:canary], targets[canary:]] if canary else [targets]
    for n, wave in enumerate(waves):
        stop_on_failure = not keep_going or (canary > 0 and n == 0)
        _run_wave(action, base, wave, parallel, stop_on_failure, progress, outcomes)
        if any(o.state == "failed" for o in outcomes.values()) and stop_on_failure:
            break
    return FleetResult(command, tuple(outcomes.get(t.name) or _skipped(base, t) for t in targets))


def _with_default_url(settings: Settings, targets: Sequence[Target]) -> Settings:
    """Resolve the shared url once, in this thread: it may start the embedded server."""
    if settings.url is not None or all(t.url is not None for t in targets):
        return settings
    from persistor.session import resolve_url

    return dataclasses.replace(settings, url=resolve_url(settings)[0])


def _run_wave(
    action: Action,
    settings: Settings,
    wave: Sequence[Target],
    parallel: int,
    stop_on_failure: bool,
    progress: ProgressCallback,
    outcomes: dict[str, TargetResult],
) -> None:
    """Run the wave's targets `parallel` at a time; stop starting new ones on a failure if told."""
    pending = list(reversed(wave))
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="persistor-target") as pool:
        running: set[Future[TargetResult]] = set()
        failed = False
        while pending or running:
            while pending and len(running) < parallel and not (failed and stop_on_failure):
                target = pending.pop()
                running.add(pool.submit(_run_one, action, settings, target, progress))
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                outcome = future.result()
                outcomes[outcome.name] = outcome
                failed = failed or outcome.state == "failed"


def target_settings(settings: Settings, target: Target) -> Settings:
    """Return the settings of one target: its url and schema over the shared ones."""
    return dataclasses.replace(
        settings,
        url=target.url or settings.url,
        schema=target.schema or settings.schema,
        targets=(),
    )


def _run_one(
    action: Action, settings: Settings, target: Target, progress: ProgressCallback
) -> TargetResult:
    """Run one target; any error becomes its failed outcome rather than ending the run."""
    mine = target_settings(settings, target)
    progress(TargetEvent(target.name, "started"))
    started = time.monotonic()
    result: _Result | None = None
    error: PersistorError | None = None
    try:
        result = action(mine, lambda e: progress(TargetEvent(target.name, "event", e)))
    except PersistorError as exc:
        error = exc
    except Exception as exc:  # a bug on one target must not hide the others' outcomes
        error = PersistorError(f"unexpected error: {type(exc).__name__}: {exc}")
    outcome = TargetResult(
        target.name,
        mask_url(mine.url or ""),
        target.schema,
        "failed" if error else "done",
        error.exit_code if error else 0,
        time.monotonic() - started,
        result,
        error,
    )
    progress(TargetEvent(target.name, "finished", outcome=outcome))
    return outcome


def _skipped(settings: Settings, target: Target) -> TargetResult:
    url = mask_url(target.url or settings.url or "")
    return TargetResult(target.name, url, target.schema, "skipped", 0, 0.0)


def migrate_all(
    settings: Settings,
    targets: Sequence[Target],
    *,
    parallel: int = DEFAULT_PARALLEL,
    canary: int = 0,
    keep_going: bool = False,
    on_progress: ProgressCallback | None = None,
    **options: Any,
) -> FleetResult:
    """Migrate every target; `options` are api.migrate's (target, dry_run, ...)."""

    def action(s: Settings, on_event: Callable[[Event], None]) -> _Result:
        return api.migrate(s, on_event=on_event, **options)

    return run_all(
        "migrate", action, settings, targets, parallel=parallel, canary=canary,
        keep_going=keep_going, on_progress=on_progress,
    )  # fmt: skip


def status_all(settings: Settings, targets: Sequence[Target], **kwargs: Any) -> FleetResult:
    """Return every target's status; kwargs as run_all's (parallel, canary, keep_going, ...)."""
    return run_all("status", _plain(api.status), settings, targets, **kwargs)


def validate_all(settings: Settings, targets: Sequence[Target], **kwargs: Any) -> FleetResult:
    """Validate every target; kwargs as run_all's (parallel, canary, keep_going, ...)."""
    return run_all("validate", _plain(api.validate), settings, targets, **kwargs)


def _plain(command: Callable[..., _Result]) -> Action:
    """Return the action of an API command that takes only settings and on_event."""
    return lambda s, on_event: command(s, on_event=on_event)


# The commands the CLI runs over many targets; a new one (drift) is one line here.
COMMANDS: dict[str, Callable[..., FleetResult]] = {
    "migrate": migrate_all,
    "status": status_all,
    "validate": validate_all,
}
