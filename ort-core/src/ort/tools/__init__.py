"""Command-line tools: the ``ort`` command (``ort.tools.cli``) and ``ort bench``."""
