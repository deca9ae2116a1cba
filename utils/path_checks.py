"""Checks of the paths a run reads or writes, made before any model is built: a path that cannot work stops the run
with one line (UsageError) instead of failing after minutes of measurement."""

import os
import tempfile
from pathlib import Path

from utils.errors import UsageError


def nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_creatable_dir(flag: str, directory: Path) -> None:
    """`directory` exists as a writable folder, or can be made: its nearest existing ancestor is a writable folder."""
    existing = nearest_existing(directory)
    if not existing.is_dir():
        raise UsageError(f"{flag} {directory}: {existing} is a file, not a folder")
    if not can_create_in(existing):
        raise UsageError(f"{flag} {directory}: {existing} is not writable")


def can_create_in(folder: Path) -> bool:
    """Whether a file can be made in `folder`, tried with a nameless temporary file: access() says yes to root
    everywhere, also in /proc or on a read-only mount."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def check_output_file(flag: str, path: Path | None, suffixes: tuple[str, ...] = ()) -> None:
    """A file the run writes at its end (replacing it if it exists)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give a file path")
    if path.is_symlink() and not path.exists():
        raise UsageError(f"{flag} {path}: is a link to nothing")
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"{flag} {path}: unknown file type {path.suffix or '(none)'!r}; use {', '.join(suffixes)}")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: not writable")
    check_creatable_dir(flag, path.parent)


def check_output_dir(flag: str, path: Path | None) -> None:
    """A folder the run writes into (made if missing)."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file; give a folder")
    check_creatable_dir(flag, path)


def check_distinct_outputs(outputs: dict[str, Path | None]) -> None:
    """No two outputs of one run (flag -> path) name the same file: the one written last would replace the other,
    a CSV of earlier rows included."""
    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        key = Path(path).resolve()
        if key in seen:
            raise UsageError(f"{seen[key]} and {flag} name the same file {path}; give each its own")
        seen[key] = flag
