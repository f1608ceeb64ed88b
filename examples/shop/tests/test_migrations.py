"""persistor's ready-made checks of the migrations themselves, enabled with one line."""

from persistor.pytest_plugin import MigrationChecks as TestMigrations  # noqa: F401
