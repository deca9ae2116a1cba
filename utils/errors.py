"""The two ways a run reports a problem: bad input before anything is built (one line, exit code 2), and a failed
measurement recorded in its row."""

import contextlib
import signal
import threading


class UsageError(ValueError):
    """Input that cannot work: the scripts print the message as one line and exit with code 2, before any model is
    built."""


def one_line(error: BaseException) -> str:
    """An exception as one line of at most 500 characters, for a row's error column."""
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


def is_out_of_memory(error: BaseException) -> bool:
    """A failed allocation, on the GPU (torch.OutOfMemoryError) or on the host, where torch raises a plain
    RuntimeError from its CPU allocator."""
    import torch

    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def failure_status(error: BaseException) -> str:
    """A failed run's status column: oom for a failed allocation, else error."""
    return "oom" if is_out_of_memory(error) else "error"


# How a sweep stops a configuration process: SIGTERM when the sweep itself is stopped, SIGUSR1 when the
# configuration ran out of its time (utils.sweep_processes); SIGKILL follows if the process has not exited.
STOP_SIGNALS = {signal.SIGTERM: "interrupted", signal.SIGUSR1: "timeout"}


class Stopped(Exception):
    """A configuration stopped by its sweep: raised in the main thread, so that the run still writes its row (with
    whatever it finished measuring) before it exits."""

    def __init__(self, signum: int):
        self.status = STOP_SIGNALS[signum]
        why = "the sweep ran out of time for it" if self.status == "timeout" else "the sweep was stopped"
        super().__init__(f"{signal.Signals(signum).name} ({self.status}: {why})")


@contextlib.contextmanager
def stop_signals_raise():
    """Within the block, the first stop signal raises Stopped in the main thread; later ones, and any after the
    block calls the `disarm` it is given (before it writes its row), change nothing. The previous handlers come
    back afterwards."""
    armed = [True]
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield lambda: None
        return

    def handler(signum, frame):
        if armed[0]:
            armed[0] = False
            raise Stopped(signum)

    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield lambda: armed.__setitem__(0, False)
    finally:
        for number, action in previous.items():
            signal.signal(number, action)
