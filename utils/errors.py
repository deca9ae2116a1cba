"""The two ways a run reports a problem: bad input before anything is built (one line, exit code 2), and a failed
measurement recorded in its row."""

import contextlib
import signal
import threading
import traceback


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


# How a run is stopped: Ctrl-C (SIGINT) or SIGTERM, which a sweep also sends when it is stopped itself; SIGUSR1
# when the sweep's time for the configuration ran out (utils.sweep_processes; SIGKILL follows if the process has
# not exited). Each becomes the row's status.
STOP_SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "interrupted", signal.SIGUSR1: "timeout"}
STOP_REASONS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "stopped by its sweep, its parent script or by hand",
                signal.SIGUSR1: "the sweep ran out of time for it"}
INTERRUPTED_EXIT_CODE = 130  # what a shell reports for a process ended by Ctrl-C


def failure_fields(error: BaseException | None, signum: int | None = None) -> tuple[str, str]:
    """The status and error columns of a run that failed with `error`, or that stop signal `signum` ended (however
    the stop reached the handler: wrapped in another exception or not). A failure's traceback goes to stderr, unless
    it ran out of memory (the one line says all)."""
    if signum is not None:
        return STOP_SIGNALS[signum], one_line(Stopped(signum))
    if not is_out_of_memory(error):
        traceback.print_exception(error)
    return failure_status(error), one_line(error)


class Stopped(BaseException):
    """A run stopped by a signal (Ctrl-C, or its sweep), raised in the main thread so that the run still writes its
    row (with whatever it finished measuring) before it exits. A BaseException: the `except Exception` of a
    fallback or of torch.compile's backend wrapper must not swallow it or wrap it."""

    def __init__(self, signum: int):
        super().__init__(f"{signal.Signals(signum).name} ({STOP_SIGNALS[signum]}: {STOP_REASONS[signum]})")
        self.signum = signum


class StopSignals:
    """What stop_signals_raise yields: the stop signal received (None before one comes), disarm(), and
    raise_if_swallowed() for the places where a stop may have been lost (ran_on: it was, and the block ran to its
    end)."""

    def __init__(self):
        self.signum: int | None = None
        self.armed = True
        self.holding = False
        self.pending: int | None = None
        self.ran_on = False  # the stop's Stopped was swallowed and the block ran to its end
        self.raised_again = False

    def disarm(self) -> None:
        """From now on a stop signal changes nothing (the row is about to be written)."""
        self.armed = False

    def handler(self, signum, frame):
        if self.holding:
            self.pending = self.pending or signum
        elif self.armed:
            self.armed, self.signum = False, signum
            raise Stopped(signum)

    def raise_if_swallowed(self) -> None:
        """Raise the stop again if the handler's Stopped was lost: raised inside a weakref callback or a __del__,
        Python prints "Exception ignored" and goes on. Call it between units of work inside the block that the
        Stopped would have unwound (between timed calls or training steps): reaching such a point with a stop
        received means it was lost."""
        if self.signum is not None and not self.raised_again:
            self.raised_again = True
            raise Stopped(self.signum)

    @contextlib.contextmanager
    def unwrapped(self):
        """Within the block, an exception raised after a stop signal came leaves it as that Stopped: the stop may
        arrive wrapped in another exception (torch.compile's BackendCompilerFailed wraps what its backend raises)."""
        try:
            yield
        except Exception as error:
            if self.signum is not None:
                raise Stopped(self.signum) from error
            raise

    @contextlib.contextmanager
    def held(self):
        """Within the block a stop signal waits; it raises Stopped as the block ends. For writing a row, which must
        be written whole and once."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            if self.pending is not None:
                signum, self.pending = self.pending, None
                self.handler(signum, None)


@contextlib.contextmanager
def failure_recorded(row, stop: StopSignals):
    """Within stop_signals_raise: the block's failure, or the stop signal that ended it, becomes the row's status and
    error instead of propagating; `stop` is disarmed as the block ends, so the row is then written undisturbed."""
    try:
        try:
            yield
        finally:
            stop.disarm()
    except (Exception, Stopped) as error:  # noqa: BLE001 - a failed run is recorded, not lost
        # The Stopped may arrive wrapped (torch.compile's BackendCompilerFailed): stop.signum says it came.
        row.status, row.error = failure_fields(error, stop.signum)
    else:
        if stop.signum is not None:  # swallowed where Python ignores exceptions, and never raised again
            stop.ran_on = True
            status, error = failure_fields(None, stop.signum)
            note = " (it arrived where Python ignores exceptions, so the run went on to its end: every column is kept)"
            if row.status == "ok":
                row.status, row.error = status, error + note
            else:  # the run's own outcome (a NaN output, say) stays the status
                row.error = f"{row.error}; then {error}{note}"


@contextlib.contextmanager
def stop_signals_raise():
    """Within the block, the first stop signal raises Stopped in the main thread and is remembered (whatever wraps
    or catches the exception on its way up); later ones, and any after disarm(), change nothing. The previous
    handlers come back afterwards."""
    stop = StopSignals()
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield stop
        return
    previous = {number: signal.signal(number, stop.handler) for number in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for number, action in previous.items():
            signal.signal(number, action)
