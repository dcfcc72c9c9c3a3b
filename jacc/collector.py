"""Python's cyclic garbage collector, paused around jacc's own bulk work.

Tracing and planning a graph of 10⁵ scalar vertices allocate millions of small objects that all
stay alive until the plan is built. The collector's generational passes walk them again and
again and free nothing, since that work makes no reference cycles to speak of. Paused, tracing
RoeFlux over 1,000 interfaces at scalar level took 2.2 s instead of 3.7–4.7 s, and annealing
that graph 5.1–6.3 s instead of 6.1–7.7 s (2-core machine, 4 Dec 2026); small graphs see no
difference. Reference counting frees everything outside a cycle as before; a cycle made inside
the block waits for the first collection after it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic collector off, and leave it as it was (nesting is free).

    >>> import gc
    >>> with paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
