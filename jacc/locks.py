"""Locks that a forked child gets anew.

A process that forks while another of its threads holds a lock gives the child that lock held,
by a thread the child does not have: the child's first call that takes it waits forever (a
``multiprocessing`` worker forked while a thread was tracing hung in its first Jacobian call).
:func:`lock` makes a lock whose holder object gets a fresh lock in the child
(``os.register_at_fork``), as CPython does for its own module locks. What the lost thread was
doing stays half done in the child: jacc's locks guard caches, which the child then fills again.

>>> with lock() as held:
...     held.locked()
True
"""

from __future__ import annotations

import os
import threading
import weakref


class ForkSafeLock:
    """A ``threading.Lock`` (or ``RLock``) used as a context manager, renewed in a forked child."""

    __slots__ = ("_lock", "_reentrant", "__weakref__")

    def __init__(self, reentrant: bool = False):
        self._reentrant = reentrant
        self._lock = threading.RLock() if reentrant else threading.Lock()
        _LOCKS.add(self)

    def __enter__(self) -> "ForkSafeLock":
        self._lock.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()

    def locked(self) -> bool:
        """Whether some thread holds it (a reentrant one: whether this thread does)."""
        return self._lock._is_owned() if self._reentrant else self._lock.locked()

    def _renew(self) -> None:
        self._lock = threading.RLock() if self._reentrant else threading.Lock()


_LOCKS: "weakref.WeakSet[ForkSafeLock]" = weakref.WeakSet()


def lock(reentrant: bool = False) -> ForkSafeLock:
    """A lock for ``with``, renewed in a forked child (see the module's text)."""
    return ForkSafeLock(reentrant)


def _after_fork_in_child() -> None:
    for held in list(_LOCKS):
        held._renew()


if hasattr(os, "register_at_fork"):  # (not on Windows, which does not fork)
    os.register_at_fork(after_in_child=_after_fork_in_child)
