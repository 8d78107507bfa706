"""``python -m skkd``: the same as the ``skkd`` command."""

import sys

from .cli import main

sys.exit(main())
