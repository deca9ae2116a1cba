"""Campaigns: one sweep, ladder or job-script run is one campaign. Every row it writes records the campaign's id,
the host (a stable machine id), the GPU index and how the compile caches started, so that the report divides only
rows of one campaign by each other (docs/campaigns.md has the rules, and how rows written before these columns got
theirs).

A sweep (inference/sweep.py) or a job script (results/commands/lib.sh) makes one id and passes it to every process it
starts in BENCH_CAMPAIGN; a run started on its own makes a fresh id. Nothing here touches CUDA."""

import functools
import hashlib
import os
import secrets
import socket
import time
from pathlib import Path

CAMPAIGN_ENV = "BENCH_CAMPAIGN"
HOST_ENV = "BENCH_HOST"  # overrides the machine id (a machine whose id files change, or a name you prefer)
# How the compile caches started: cold (inductor's and Triton's on-disk caches empty), warm (a saved compile cache
# was loaded, --compile_cache), shared (the on-disk caches held what earlier runs compiled).
COMPILE_STARTS = ("cold", "warm", "shared")
MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


def new_campaign_id(now: float | None = None) -> str:
    """UTC start time and 4 random hex digits, e.g. 20261206T105304Z-3fa1 (results/commands/lib.sh spells it the
    same way)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + secrets.token_hex(2)


@functools.cache
def _own_campaign() -> str:
    return new_campaign_id()


def campaign_id() -> str:
    """This process's campaign: BENCH_CAMPAIGN when a sweep or job script set it, else one made for this run."""
    return os.environ.get(CAMPAIGN_ENV) or _own_campaign()


@functools.cache
def host_id() -> str:
    """8 hex digits that stay the same on one machine: a hash of its machine id and host name (a container's machine
    id can be the image's, its host name tells containers apart); BENCH_HOST overrides it."""
    if os.environ.get(HOST_ENV):
        return os.environ[HOST_ENV]
    machine = ""
    for path in MACHINE_ID_FILES:
        try:
            machine = path.read_text().strip()
        except OSError:
            continue
        if machine:
            break
    return hashlib.sha1(f"{machine}\n{socket.gethostname()}".encode()).hexdigest()[:8]


def gpu_index(device) -> str:
    """The physical index of the CUDA device a run uses (its position in CUDA_VISIBLE_DEVICES, which may also name
    GPUs by UUID), "" on the CPU."""
    text = str(device)
    if not text.startswith("cuda"):
        return ""
    index = int(text.split(":", 1)[1]) if ":" in text else 0
    visible = [name.strip() for name in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if name.strip()]
    return visible[index] if index < len(visible) else str(index)


def compile_cache_dirs() -> list[Path]:
    """The on-disk caches a compile reads: inductor's (FX graphs, AOTAutograd, autotuning) and Triton's kernels.
    Inductor keeps its own Triton kernels under its directory when TRITON_CACHE_DIR is unset, but kernels compiled
    outside inductor (torchao's, Triton's autotuners) go to Triton's default directory, so both are looked at."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    inductor = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or default_cache_dir()
    triton_home = os.environ.get("TRITON_HOME") or str(Path.home())
    triton = os.environ.get("TRITON_CACHE_DIR") or os.path.join(triton_home, ".triton", "cache")
    return [Path(inductor), Path(triton)]


def is_empty(path: Path) -> bool:
    try:
        return not any(path.iterdir())
    except FileNotFoundError:
        return True
    except NotADirectoryError:
        return False


@functools.cache
def caches_at_launch() -> str:
    """cold or shared: the compile caches as this process found them. Cached, so call it before anything compiles
    (the runners call it first)."""
    return "cold" if all(is_empty(path) for path in compile_cache_dirs()) else "shared"


def compile_start(compiles: bool, *, loaded_cache: bool = False, first_in_process: bool = True) -> str:
    """The row's compile_start: "" when nothing is compiled; warm when a saved compile cache was loaded; shared for a
    run after another compiled in the same process; else how the caches were at launch."""
    if not compiles:
        return ""
    if loaded_cache:
        return "warm"
    return caches_at_launch() if first_in_process else "shared"


def provenance_columns(device) -> dict:
    return {"campaign": campaign_id(), "host": host_id(), "gpu_index": gpu_index(device)}
