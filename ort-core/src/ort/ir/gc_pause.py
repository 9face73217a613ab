"""Pause Python's cyclic garbage collector while a session builds its big object graphs.

Optimizing and compiling a model allocates a few dozen Python objects per node, nearly all of
them kept for the session's life. Each full collection walks every live object, and CPython
runs one each time the long-lived objects grow by a quarter, so for a 100,000-node model a
third of session creation went into collections that found nothing to free, and the cost per
node grew with the model. :func:`paused_gc` switches automatic collection off around that work
and back on afterwards (reference counting still frees everything acyclic at once).

Pauses nest and may overlap between threads: the collector is switched back on when the last
pause that found it on ends, and a collector the caller had switched off stays off.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]

_lock = threading.Lock()
_holders = 0  # pauses in progress that switched (or found switched) the collector off by us


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the body with automatic garbage collection off (see the module docstring)."""
    global _holders
    with _lock:
        if _holders == 0 and not gc.isenabled():
            owner = False  # the caller switched it off: leave it so
        else:
            owner = True
            _holders += 1
            gc.disable()
    try:
        yield
    finally:
        if owner:
            with _lock:
                _holders -= 1
                if _holders == 0:
                    gc.enable()
