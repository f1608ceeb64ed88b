"""-v and -vv: the `persistor` loggers on stderr (imported only when asked for)."""

from __future__ import annotations

import logging
import sys

_FORMATS = {
    1: "[%(name)s] %(message)s",
    2: "%(asctime)s [%(name)s] %(levelname)s %(message)s",
}


class _CurrentStderr(logging.Handler):
    """Write to sys.stderr as it is now: in-process runs (tests) swap it between commands."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging must never break the command
            self.handleError(record)


def show_logs(verbose: int) -> None:
    """Show the `persistor` loggers on stderr: 1 info, 2 or more debug; 0 hides them again."""
    logger = logging.getLogger("persistor")
    for handler in [h for h in logger.handlers if isinstance(h, _CurrentStderr)]:
        logger.removeHandler(handler)
    # Our handler replaces the root's while shown, so a host's logging config sees no copies.
    logger.propagate = verbose <= 0
    if verbose <= 0:
        logger.setLevel(logging.NOTSET)
        return
    logger.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter(_FORMATS[min(verbose, 2)]))
    logger.addHandler(handler)


def log_traceback(exc: BaseException) -> None:
    """Log an error's traceback at debug level (shown with -vv)."""
    logging.getLogger("persistor.cli").debug("traceback:", exc_info=exc)
