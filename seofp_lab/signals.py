"""Ctrl-C and ``kill``: one exception for both, so every command ends the same way.

``seofp`` turns SIGINT and SIGTERM into :class:`Interrupted` while a command runs. It is not a
``KeyboardInterrupt`` on purpose: Lightning catches that inside ``Trainer.fit`` and calls
``sys.exit(1)``, which would hide the signal. Whoever owns an MLflow run marks it ``KILLED`` on
the way out (``tracking.start_run``), worker pools are terminated (``evaluate.run``), and the CLI
prints one line and exits with ``128 + signal number`` (130 for Ctrl-C, 143 for ``kill``).
See docs/runs.md#signals.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A handled signal arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"{self.name} received")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


# what ends a run as KILLED rather than FAILED: our signals, a bare Ctrl-C outside the CLI, and
# the sys.exit(1) Lightning makes of a KeyboardInterrupt
INTERRUPTS = (Interrupted, KeyboardInterrupt, SystemExit)


# the last handled signal of this command: Python ignores an exception raised inside a weakref
# callback or a __del__ method (it prints "Exception ignored in ..."), so a signal that arrives
# while one runs would be lost; raise_pending() raises it again at the next safe point
_pending: int | None = None


def _raise(signum: int, _frame: FrameType | None) -> None:
    global _pending
    _pending = signum
    raise Interrupted(signum)


def raise_pending() -> None:
    """Raise :class:`Interrupted` if a handled signal arrived and its exception was swallowed
    (see ``_pending``); long loops call it at points where raising is safe (training: after
    every batch)."""
    if _pending is not None:
        raise Interrupted(_pending)


@contextlib.contextmanager
def interrupts_raised() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _pending
    before = {s: signal.getsignal(s) for s in HANDLED}
    _pending = None
    for s in HANDLED:
        signal.signal(s, _raise)
    try:
        yield
        raise_pending()  # a signal whose exception was swallowed still ends the command
    finally:
        _pending = None
        for s, h in before.items():
            signal.signal(s, h)


def ignore_in_worker() -> None:
    """For pool workers: the parent decides when they end (it terminates them on a signal), so
    a Ctrl-C sent to the whole process group does not print a traceback per worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
