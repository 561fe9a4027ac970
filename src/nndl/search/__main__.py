"""``python -m nndl.search``: the ``nndl search`` command on its own (also how workers start)."""

import sys

from .command import main

sys.exit(main())
