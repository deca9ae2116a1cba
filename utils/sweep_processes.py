"""The processes of a sweep: one lock per CSV, the configurations' temporary compile caches, and configuration
processes that die with the sweep and can all be stopped at once."""

import contextlib
import ctypes
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from utils.errors import UsageError

LOCK_MARK = "held by inference/sweep.py while it writes the CSV beside it\n"
LOCK_WAIT_S = 10  # a configuration process killed with its sweep takes a moment to exit
STOP_GRACE_S = 20.0  # how long a stopped configuration may take to write its own row before it is killed


def lock_path(csv: Path) -> Path:
    return csv.with_name(csv.name + ".sweep.lock")


def sweep_running_on(csv: Path) -> bool:
    """Whether a sweep on `csv` holds its lock now; creates nothing and keeps no lock."""
    try:
        file = open(lock_path(csv))
    except OSError:
        return False
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(file, fcntl.LOCK_UN)
    return False


@contextlib.contextmanager
def csv_lock(csv: Path):
    """Hold `<csv>.sweep.lock` for the sweep's lifetime; yields its file descriptor, which every configuration
    process inherits, so that the lock lasts while any of them lives. A second sweep on the CSV waits LOCK_WAIT_S
    for it, then is refused: it would run the same configurations beside these, and both would time them wrong."""
    path = lock_path(csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        with contextlib.suppress(FileExistsError):  # a new lock file gets our mark: only marked files are removed
            with open(path, "x") as new:
                new.write(LOCK_MARK)
        file = open(path, "a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            if time.monotonic() > deadline:
                raise UsageError(f"another sweep on {csv} is still running (it holds {path}): wait for it to end, "
                                 "or give another --csv") from None
            time.sleep(0.2)
            continue
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(file.fileno()).st_ino:
                break
        file.close()  # the sweep before us removed the file as we opened it: lock the new one
    try:
        yield file.fileno()
    finally:
        file.seek(0)
        if file.read() == LOCK_MARK:
            path.unlink(missing_ok=True)
        file.close()


CACHE_MARKER = ".created-by-inference-sweep"


@contextlib.contextmanager
def compile_cache_root(csv: Path):
    """A temporary folder, one per CSV, for the configurations' compile caches, removed at the end. A sweep killed
    with SIGKILL cannot remove it: the next sweep on the CSV (it holds the CSV's lock, so the owner is gone) does,
    if our marker is in it; a folder of that name without the marker is not ours and stays."""
    digest = hashlib.sha1(str(csv.resolve()).encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / f"sweep-compile-caches-{digest}"
    if (root / CACHE_MARKER).is_file():
        shutil.rmtree(root, ignore_errors=True)
    try:
        root.mkdir()
    except FileExistsError:
        root = Path(tempfile.mkdtemp(prefix=root.name + "-"))
    (root / CACHE_MARKER).touch()
    try:
        yield root
    finally:
        # A killed configuration's compile workers may still write into it: never let that end the sweep.
        shutil.rmtree(root, ignore_errors=True)


def die_with_parent():
    """A preexec_fn that has the kernel kill the child when the thread that started it dies (Linux), so a sweep
    killed with SIGKILL leaves no configuration running; None elsewhere, where the CSV lock the child inherits
    still keeps a second sweep off the CSV until it ends."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the forked child only calls it
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, int(signal.SIGKILL))


class Children:
    """The configuration processes running now. Each gets a process group of its own (a terminal's Ctrl-C reaches
    the sweep only; killing the group takes the compile workers too) and dies with the sweep; stop() kills them
    all and lets no new one start."""

    def __init__(self, inherited_fds: tuple[int, ...] = ()):
        self.inherited_fds = inherited_fds
        self.running: set[subprocess.Popen] = set()
        self.stopped = False
        self.lock = threading.Lock()

    def start(self, argv: list[str], **kwargs) -> subprocess.Popen | None:
        with self.lock:
            if self.stopped:
                return None
            process = subprocess.Popen(argv, start_new_session=True, preexec_fn=die_with_parent(),
                                       pass_fds=self.inherited_fds, **kwargs)
            self.running.add(process)
            return process

    def wait(self, process: subprocess.Popen, timeout_s: float) -> int | None:
        """The exit code, or None if it ran out of time (then it is stopped: it records a timeout row with what it
        finished measuring, or is killed after STOP_GRACE_S)."""
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            stop_groups([process], signal.SIGUSR1)
            process.wait()
            return None
        finally:
            with self.lock:
                self.running.discard(process)

    def stop(self) -> None:
        """Stop every running configuration (SIGTERM: each records an interrupted row) and start no new one."""
        with self.lock:
            self.stopped = True
            running = list(self.running)
        stop_groups(running, signal.SIGTERM)


def stop_groups(processes: list[subprocess.Popen], signum: int) -> None:
    """Send `signum` to each process's group (utils.errors.STOP_SIGNALS says what the benchmarks make of it), then
    SIGKILL those still running after STOP_GRACE_S (compile workers and all)."""
    for process in processes:
        signal_group(process, signum)
    deadline = time.monotonic() + STOP_GRACE_S
    while any(process.poll() is None for process in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in processes:
        signal_group(process, signal.SIGKILL)


def signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
