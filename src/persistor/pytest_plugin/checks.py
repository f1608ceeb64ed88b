"""Ready-made migration tests, enabled with one line in a test module:

    from persistor.pytest_plugin import MigrationChecks as TestMigrations

Each check works on databases of its own (never the template), on the
PostgreSQL test server, or on SQLite files when the project's URL is SQLite.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from persistor.pytest_plugin.databases import TestServer
    from persistor.settings import Settings


@contextlib.contextmanager
def _fresh_database(
    settings: Settings, request: pytest.FixtureRequest, folder: Path
) -> Iterator[str]:
    """Yield the URL of a new empty database of the project's engine, removed after."""
    if (settings.url or "").startswith("sqlite:"):
        yield f"sqlite:///{folder / (uuid.uuid4().hex[:8] + '.db')}"
        return
    server: TestServer = request.getfixturevalue("persistor_server")
    name = server.create("persistor_check")
    try:
        yield server.url_of(name)
    finally:
        server.drop(name)


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """Turn persistor's own errors into a plain test failure with its message (no traceback)."""
    from persistor.errors import PersistorError

    failure = None
    try:
        yield
    except PersistorError as exc:
        failure = str(exc)
    if failure is not None:  # raised out here, so the report does not chain persistor's error
        pytest.fail(failure, pytrace=False)


def _versioned_only(locations: tuple[Path, ...], folder: Path) -> tuple[Path, ...]:
    """Copy the locations without their repeatable scripts, which run after every version."""
    copies = []
    for n, location in enumerate(locations):
        copy = folder / f"location{n}"
        shutil.copytree(
            location,
            copy,
            ignore=shutil.ignore_patterns("R__*.sql", "R__*.py", "__pycache__"),
        )
        copies.append(copy)
    return tuple(copies)


class MigrationChecks:
    """Checks of the project's migrations; collected when imported under a `Test…` name."""

    def test_every_version_applies_to_an_empty_database(
        self,
        persistor_settings: Settings,
        request: pytest.FixtureRequest,
        tmp_path: Path,
    ) -> None:
        """Every script applies, in order, on an empty database, and all show as applied."""
        from persistor.api import migrate, status

        with _fresh_database(persistor_settings, request, tmp_path) as url, _reported():
            settings = replace(persistor_settings, url=url)
            migrate(settings)
            states = status(settings).migrations
        left = [f"{m.script}: {m.state.value}" for m in states if m.state.value != "applied"]
        assert not left, "not applied on an empty database:\n" + "\n".join(left)

    def test_every_undo_restores_the_schema(
        self,
        persistor_settings: Settings,
        request: pytest.FixtureRequest,
        tmp_path: Path,
    ) -> None:
        """Version by version, each U script leaves the schema exactly as it was before its V."""
        from persistor.api import migrate, undo
        from persistor.core.scripts import discover
        from persistor.pytest_plugin.catalog import differences, snapshot

        locations = _versioned_only(persistor_settings.locations, tmp_path)
        discovery = discover(list(locations))
        if not discovery.undo:
            pytest.skip("no undo scripts (U<version>__<description>.sql) in the locations")
        history = persistor_settings.history_table
        with _fresh_database(persistor_settings, request, tmp_path) as url, _reported():
            settings = replace(persistor_settings, url=url, locations=locations)
            for script in discovery.versioned:
                assert script.version is not None
                before = snapshot(url, history)
                migrate(settings, target=script.version.text)
                undo_file = discovery.undo.get(script.version)
                if undo_file is None:
                    continue
                undo(settings)
                diff = differences(before, snapshot(url, history))
                if diff:  # the next versions would start from the wrong schema: stop here
                    pytest.fail(
                        f"{undo_file.name} does not return the schema to what it was before "
                        f"{script.name}:\n" + "\n".join(diff),
                        pytrace=False,
                    )
                migrate(settings, target=script.version.text)

    def test_migrations_apply_on_top_of_the_dump(
        self,
        persistor_settings: Settings,
        persistor_dump: Path | None,
        request: pytest.FixtureRequest,
        tmp_path: Path,
    ) -> None:
        """The pending scripts apply on a copy of the given database dump (a pg_dump/psql file)."""
        from persistor.api import migrate
        from persistor.pytest_plugin.dumps import restore

        if persistor_dump is None:
            pytest.skip("no dump given: set --persistor-dump FILE or persistor_dump in the ini")
        if (persistor_settings.url or "").startswith("sqlite:"):
            pytest.skip("the dump check is for PostgreSQL")
        with _fresh_database(persistor_settings, request, tmp_path) as url:
            restore(persistor_dump, url)
            with _reported():
                migrate(replace(persistor_settings, url=url))
