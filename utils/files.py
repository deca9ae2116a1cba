"""Output files appear whole or not at all, with the mode an ordinary write would give them."""

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read from /proc where it can be (setting it, even briefly, affects every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_umask_mode(path: Path) -> None:
    """Give a file, or a folder and everything under it, the modes an ordinary write gets (the umask's): safetensors
    creates its files 0600 and mkdtemp its folders 0700, which hides them from the other users of a shared folder."""
    umask = current_umask()
    for entry in (path, *path.rglob("*")) if path.is_dir() else (path,):
        entry.chmod((0o777 if entry.is_dir() else 0o666) & ~umask)


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path` (same suffix, so writers still pick the format from it) and move it
    into place only when the block succeeds; a failure leaves nothing behind. Each writer gets its own temporary
    name, so processes writing the same file at once (a sweep on several GPUs) do not collide. The result keeps
    the mode of the file it replaces, and a new file gets the umask's (mkstemp's own 0600 would hide results from
    the other users of a shared folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~current_umask()
        os.chmod(partial, mode)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
