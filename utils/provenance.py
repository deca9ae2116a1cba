"""Where a result came from: the commit, the campaign, the host and device and the package versions, recorded in every
row."""

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata

import torch

from utils.campaign import provenance_columns
from utils.paths import REPO_ROOT

VERSIONED_PACKAGES = ("diffusers", "torchao", "transformers", "accelerate")


def git_sha() -> str:
    """The commit the code came from; BENCH_GIT_SHA overrides it on machines that have the tree but no .git."""
    if os.environ.get("BENCH_GIT_SHA"):
        return os.environ["BENCH_GIT_SHA"]
    try:
        sha = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return sha + ("-dirty" if dirty else "")


def device_name(device) -> str:
    """The GPU's name, or the CPU's architecture and thread count."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device) if torch.cuda.is_available() else "cuda (not available here)"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def versions() -> dict[str, str]:
    """torch and the libraries whose behaviour a row depends on."""
    return {"torch": torch.__version__, **{name: package_version(name) for name in VERSIONED_PACKAGES}}


def provenance(command: str, device) -> dict:
    """The values of utils.results.Provenance for a row made now, by `command`, on `device`."""
    found = versions()
    return dict(timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"), git_sha=git_sha(),
                command=command, gpu=device_name(device), **provenance_columns(device), torch_version=found["torch"],
                **{f"{name}_version": found[name] for name in VERSIONED_PACKAGES})
