"""SIGINT / SIGTERM during training: finish the step, save, then stop (``Trainer.train`` raises
``TrainingInterrupted``). A second Ctrl-C aborts at once."""

from __future__ import annotations

import logging
import signal
import threading
import time

log = logging.getLogger("textok.training.trainer")  # the trainer's messages, under its name as before


class StopRequests:
    """While active, SIGINT / SIGTERM ask the loop to stop after the current step (it then saves);
    a second SIGINT aborts at once, unless it comes within ``REPEAT_WINDOW`` seconds of the first:
    that is one interrupt delivered twice (``timeout`` signals its child and then the child's whole
    process group; a terminal's Ctrl-C reaches every process of the group), not the user insisting.
    Only the main thread may set signal handlers."""

    #: seconds after the first signal within which a second SIGINT is the same interrupt
    REPEAT_WINDOW = 2.0

    def __init__(self):
        self.signum: int | None = None
        self._first: float | None = None
        self._old: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            if time.monotonic() - self._first < self.REPEAT_WINDOW:
                return  # the same interrupt again: keep going to the checkpoint
            raise KeyboardInterrupt  # the second Ctrl-C: the user does not want to wait
        if self.signum is None:
            self.signum, self._first = signum, time.monotonic()
            log.warning("%s: stopping after this step, saving a checkpoint and model/ (Ctrl-C again aborts)",
                        signal.Signals(signum).name)

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        self._old = {}


__all__ = ["StopRequests"]
