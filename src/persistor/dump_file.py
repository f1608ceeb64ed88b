"""The `dump_file` setting: checked before migrate runs, rewritten after it succeeded."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from persistor.engines import Engine
from persistor.engines.snapshot import SchemaDump
from persistor.errors import PersistorError, UsageError

log = logging.getLogger(__name__)


def check_folder(path: Path, what: str) -> None:
    """Raise UsageError unless the file's folder exists (checked before anything runs)."""
    if not path.parent.is_dir():
        raise UsageError(
            f"{what} {path}: the folder {path.parent} does not exist; create it or choose "
            "another file. Nothing was run"
        )


def write_atomically(path: Path, text: str) -> None:
    """Replace the file's content at once: a reader never sees half a dump."""
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rewrite(engine: Engine, path: Path) -> SchemaDump:
    """Write the schema's dump to the dump_file after a successful migrate."""
    try:
        dumped = engine.dump_schema()
        write_atomically(path, dumped.sql)
    except (PersistorError, OSError) as exc:
        raise PersistorError(
            f"the migration succeeded, but rewriting dump_file {path} failed: {exc}; "
            "run `persistor dump --out` once the cause is fixed"
        ) from None
    log.info("wrote the schema to %s with %s", path, dumped.tool)
    return dumped
