"""Signals that stop training cleanly: SIGINT/SIGTERM flags, the Interrupted exception."""

import logging
import signal
import threading

# The Ctrl-C warning has always come from this logger, for both models.
_interrupt_logger = logging.getLogger("sparsemlp.trainer")


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal (after its checkpoint); the exit code is 128 + ``signum``.

    Parameters
    ----------
    signum : int, default=signal.SIGINT
        The signal received.
    """

    def __init__(self, signum=signal.SIGINT):
        self.signum = int(signum)
        super().__init__(signal.Signals(self.signum).name)


def _interrupted(flag):
    """The exception that ends training after ``flag`` was set (SIGINT if it does not say)."""
    return Interrupted(getattr(flag, "signum", None) or signal.SIGINT)


#: Signals that stop training cleanly: the current step finishes and a checkpoint is saved.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _InterruptFlag:
    """SIGINT/SIGTERM handler that sets a flag (checked between steps); a second signal aborts.

    ``signals`` are the signals it takes over (the trainer keeps only SIGINT when it has no
    run directory to save a checkpoint to: SIGTERM then keeps its default action).
    """

    def __init__(self):
        self.set = False
        self.signum = None
        self.signals = STOP_SIGNALS
        self._old = {}

    def _handler(self, signum, frame):
        if self.set:
            raise Interrupted(signum)
        self.set, self.signum = True, signum
        again = "press Ctrl-C again" if signum == signal.SIGINT else "send it again"
        _interrupt_logger.warning("%s received: finishing the current step and saving a "
                                  "checkpoint (%s to abort without saving)",
                                  signal.Signals(signum).name, again)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
        self._old = {}


class signals_raise:
    """Context manager: SIGTERM raises :class:`Interrupted` (as SIGINT raises KeyboardInterrupt).

    So a command-line tool ends with exit code 143 and its cleanup runs when it is
    terminated outside the training loop (which saves a checkpoint first).
    """

    def _handler(self, signum, frame):
        raise Interrupted(signum)

    def __enter__(self):
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
