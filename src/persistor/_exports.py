"""The public API of `persistor`, listed once: persistor/__init__.py serves these names lazily.

Each `from m import x as x` marks a re-export for mypy. No `from __future__ import
annotations` here: every public name in this module is an export.
"""

from persistor.api import baseline as baseline
from persistor.api import check_connection as check_connection
from persistor.api import clean as clean
from persistor.api import demo as demo
from persistor.api import drift as drift
from persistor.api import dump as dump
from persistor.api import migrate as migrate
from persistor.api import new_script as new_script
from persistor.api import repair as repair
from persistor.api import status as status
from persistor.api import stop_embedded as stop_embedded
from persistor.api import undo as undo
from persistor.api import validate as validate
from persistor.errors import ConnectError as ConnectError
from persistor.errors import LockError as LockError
from persistor.errors import LockTimeoutError as LockTimeoutError
from persistor.errors import MigrationError as MigrationError
from persistor.errors import PersistorError as PersistorError
from persistor.errors import PrivilegeError as PrivilegeError
from persistor.errors import Problem as Problem
from persistor.errors import UsageError as UsageError
from persistor.errors import ValidationError as ValidationError
from persistor.settings import Settings as Settings
from persistor.settings import load_settings as load_settings
