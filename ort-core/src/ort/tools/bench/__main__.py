"""``python -m ort.tools.bench``: the same as ``ort bench``."""

import sys

from .command import main

sys.exit(main())
