"""`python -m persistor`: the command line."""

import sys

from persistor.cli.main import main

sys.exit(main())
