"""The two ways a run reports a problem: bad input before anything is built (one line, exit code 2), and a failed
measurement recorded in its row."""


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
