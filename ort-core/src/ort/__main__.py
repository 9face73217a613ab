"""``python -m ort``: the same as the ``ort`` command."""

import sys

from .cli import main

sys.exit(main())
