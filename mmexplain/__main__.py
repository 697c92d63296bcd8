"""``python -m mmexplain``: the same as the ``mmexplain`` command."""

import sys

from .cli import main

sys.exit(main())
