"""The signals that end a run as Ctrl-C does: SIGINT, SIGTERM and SIGHUP.

``kill``, ``timeout``, ``docker stop`` and job schedulers (SLURM) send SIGTERM; a
closed terminal sends SIGHUP. A run that gets one keeps its rows, marks its JSON
"interrupted", saves its model and checkpoint, and the command exits with
128 + the signal's number (130, 143, 129).

The library replaces a handler only in the main thread and only where the
default one is in place (SIGINT's ``default_int_handler``, SIG_DFL for the
others), so that Jupyter, Dask and a program's own handlers keep theirs.
"""

import contextlib
import signal
import threading

#: The signals that stop a run; SIGHUP where the platform has it.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal; ``signum`` says which (SIGINT for Ctrl-C)."""

    def __init__(self, signum=signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def raise_interrupt(signum, frame):
    """A handler that stops what runs at once, as Python's for Ctrl-C does."""
    raise Interrupted(signum)


def signum_of(exc):
    """The signal a KeyboardInterrupt stands for (SIGINT unless it says otherwise)."""
    return getattr(exc, "signum", int(signal.SIGINT))


def exit_status(exc):
    """The exit status of a command stopped by ``exc``: 128 + the signal."""
    return 128 + signum_of(exc)


def describe(exc):
    """"Interrupted" for Ctrl-C, "Stopped by SIGTERM" for the others."""
    signum = signum_of(exc)
    return "Interrupted" if signum == signal.SIGINT else f"Stopped by {signal.Signals(signum).name}"


def replaceable(signum):
    """Whether the library may take over ``signum`` here: the main thread, and the default handler in place."""
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signum)
    if current is raise_interrupt:
        return True
    if signum == signal.SIGINT:
        return current is signal.default_int_handler
    return current == signal.SIG_DFL


@contextlib.contextmanager
def stop_handlers(signals=None):
    """While inside, SIGTERM and SIGHUP (or ``signals``) raise :class:`Interrupted` as Ctrl-C raises
    KeyboardInterrupt, where :func:`replaceable`; the old handlers come back on the way out."""
    old = {}
    for signum in (signals if signals is not None else STOP_SIGNALS[1:]):
        if replaceable(signum):
            old[signum] = signal.signal(signum, raise_interrupt)
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)
