"""``python -m ort``: the same as the ``ort`` command."""

import sys

from .tools.cli import main

sys.exit(main())
