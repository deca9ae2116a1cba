"""Warm starts for torch.compile: save the artifacts of this process's compiles to a file, load them in the next."""

from pathlib import Path

import torch

from utils.files import atomic_path


def save_compile_cache(path) -> dict | None:
    """Write the artifacts of every torch.compile this process has run so far (inductor graphs, AOTAutograd
    entries, autotuning results, Triton kernels on CUDA) to `path`. Call it after the compiled model has run.
    Returns the number of artifacts per kind, or None when nothing was compiled (no file is written then)."""
    result = torch.compiler.save_cache_artifacts()
    if result is None:
        return None
    data, info = result
    with atomic_path(Path(path)) as partial:
        partial.write_bytes(data)
    return {kind: len(keys) for kind, keys in info.artifacts.items()}


def load_compile_cache(path) -> dict:
    """Put the artifacts saved by `save_compile_cache` into this process's compile caches; call it before the
    first compiled call. A later compile of the same graph, with the same torch version and settings, is then a
    cache hit. Returns the number of artifacts per kind."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such compile cache file")
    info = torch.compiler.load_cache_artifacts(path.read_bytes())
    if info is None:  # torch logs the parse error as a warning and returns None
        raise ValueError(f"{path}: not a torch.compile cache that this torch {torch.__version__} can read "
                         "(truncated, or not written by save_compile_cache)")
    return {kind: len(keys) for kind, keys in info.artifacts.items()}
