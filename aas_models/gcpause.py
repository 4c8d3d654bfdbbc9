"""Pause Python's cyclic garbage collector around big parses.

Parsing an environment allocates hundreds of thousands of dicts and lists; each allocation burst
triggers collections that walk every object already alive (in a server: every loaded model).
Parsed AAS trees hold no reference cycles, so reference counting alone frees them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
