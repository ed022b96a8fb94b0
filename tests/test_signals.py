"""A handled signal whose exception Python swallowed still ends the command
(seofp_lab/signals.py, docs/runs.md#signals)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from seofp_lab import signals
from seofp_lab.signals import Interrupted, interrupts_raised, raise_pending

needs_main = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers exist only in the main thread")
# the swallowed exception is what these tests make happen
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class _SignalInFinalizer:
    """Sends SIGINT to this process from __del__ and waits there for the handler, whose
    exception Python then ignores ("Exception ignored in ...")."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while signals._pending is None and time.monotonic() < deadline:
            time.sleep(0.001)


@needs_main
def test_a_signal_swallowed_in_a_finalizer_is_raised_again() -> None:
    reached = False
    with pytest.raises(Interrupted) as caught, interrupts_raised():
        holder = _SignalInFinalizer()
        del holder  # the handler's Interrupted is lost inside __del__
        reached = True  # ... so the code after it still runs
        raise_pending()  # the next safe point raises it again
    assert reached and caught.value.exit_code == 130
    assert signals._pending is None  # cleared for the next command
    raise_pending()  # outside: nothing pending, nothing raised


@needs_main
def test_the_end_of_the_command_raises_a_swallowed_signal() -> None:
    with pytest.raises(Interrupted), interrupts_raised():
        holder = _SignalInFinalizer()
        del holder
    assert signal.getsignal(signal.SIGINT) is not signals._raise  # handlers restored
