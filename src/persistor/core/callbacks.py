"""Flyway's SQL callbacks: scripts named after a moment of migrate or validate, never recorded.

As in Flyway: beforeValidate/afterValidate around the checks (of `validate`
and of `migrate`), beforeMigrate/afterMigrate around a migrate run (afterMigrate
also when nothing was pending), each in a transaction of its own;
beforeEachMigrate/afterEachMigrate inside each script's own transaction, so
they commit or roll back with it; afterMigrateError, in its own transaction,
after a script failed. A callback holding only statements PostgreSQL refuses
in a transaction (VACUUM, …) runs statement by statement outside one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NamedTuple

from persistor.core import formats
from persistor.core.runner import PreparedScript, committing, execute_statements, prepare
from persistor.core.scripts import Discovery
from persistor.core.source import ExpandedScript
from persistor.engines.base import Engine
from persistor.errors import MigrationError, Problem, ValidationError

log = logging.getLogger(__name__)


class EachHooks(NamedTuple):
    """The callbacks that run inside each script's transaction, before and after it."""

    before: tuple[PreparedScript, ...] = ()
    after: tuple[PreparedScript, ...] = ()


class Callbacks:
    """The callbacks found in the locations, split and ready, by event."""

    def __init__(self, by_event: Mapping[str, tuple[PreparedScript, ...]]) -> None:
        self.by_event = by_event
        self.each = EachHooks(
            by_event.get("beforeEachMigrate", ()), by_event.get("afterEachMigrate", ())
        )

    @classmethod
    def load(
        cls, discovery: Discovery, sources: Mapping[str, ExpandedScript], dialect: str
    ) -> Callbacks:
        """Split every callback; ValidationError if one cannot run."""
        by_event: dict[str, list[PreparedScript]] = {}
        problems: list[Problem] = []
        for f in discovery.callbacks:
            src = sources[f.name]
            if src.problems:
                continue  # the planner reports them with every other script's
            prepared = prepare(f, src, dialect)
            if isinstance(prepared, Problem):
                problems.append(prepared)
                continue
            event = formats.callback_event(f.name.rsplit("/", 1)[-1])
            assert event is not None
            by_event.setdefault(event, []).append(prepared)
        if problems:
            raise ValidationError(problems)
        return cls({event: tuple(found) for event, found in by_event.items()})

    def run(self, engine: Engine, event: str) -> None:
        """Run the callbacks of one event, each in a transaction of its own."""
        for callback in self.by_event.get(event, ()):
            log.info("running callback %s", callback.file.name)
            if not callback.transactional:
                engine.reset_search_path()
                execute_statements(engine.execute, callback)
                continue
            with engine.transaction() as tx:
                tx.reset_search_path()
                execute_statements(tx.execute, callback)
                with committing(callback.file.name, lambda: "Nothing of this callback was kept"):
                    tx.commit()

    def after_error(self, engine: Engine) -> None:
        """Run afterMigrateError; its own failure is logged, the script's error is the one shown."""
        try:
            self.run(engine, "afterMigrateError")
        except MigrationError as exc:
            log.error("the afterMigrateError callback failed too: %s", exc)


NO_CALLBACKS = Callbacks({})
