"""Ctrl-C and SIGTERM: holding an interrupt back while a step is applied, and delivering one.

``triage`` commands stop on SIGTERM as on Ctrl-C (``api.cli``); fine-tuning holds either back
while a step changes the weights (``uninterrupted``), so the checkpoint an interrupt saves is
never a half-applied step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["interrupt", "uninterrupted"]


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C back until the block ends, then deliver it.

    The weights, the optimiser, the schedule and the step count change together or not at all,
    so the checkpoint an interrupt saves is never a half-applied step.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield  # only the main thread receives signals; None: a handler Python cannot restore
        return
    pressed: list[int] = []
    signal.signal(signal.SIGINT, lambda number, frame: pressed.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        interrupt()  # to the handler that was there: KeyboardInterrupt


def interrupt() -> None:
    """Stop as Ctrl-C does: through the SIGINT handler in place (``uninterrupted`` holds it back
    while a step is applied), or, where the process ignores Ctrl-C (a job a script starts with
    ``&``), by raising KeyboardInterrupt itself: a SIGTERM passed on as an ignored SIGINT would
    do nothing at all."""
    if callable(signal.getsignal(signal.SIGINT)):
        signal.raise_signal(signal.SIGINT)
    else:
        raise KeyboardInterrupt
