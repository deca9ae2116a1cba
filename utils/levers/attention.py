"""The attention kernel of the denoiser: one of diffusers' attention backends (set_attention_backend)."""

from dataclasses import dataclass

import torch

from utils.errors import UsageError
from utils.levers.base import same_named, text
from utils.pipelines import denoisers

BACKENDS = ("default", "native", "_native_cudnn", "_native_flash", "_native_efficient", "_native_math")


@dataclass(frozen=True, kw_only=True)
class Settings:
    attention_backend: str = "default"


@dataclass
class Columns:
    attention_backend: str = "default"


def add_flags(parser) -> None:
    group = parser.add_argument_group("attention")
    group.add_argument("--attention_backend", choices=BACKENDS, default="default",
                       help="diffusers attention backend of the denoiser (set_attention_backend); default keeps "
                            "diffusers' choice (torch SDPA). _native_cudnn, _native_flash and _native_efficient "
                            "pick one SDPA kernel and need CUDA")


def settings(flags, run) -> Settings:
    return Settings(attention_backend=flags.attention_backend)


def check_backend(backend: str, device) -> None:
    """The CUDA-only backends need CUDA (shared with the training script)."""
    device = torch.device(device)
    if backend.startswith("_native_") and backend != "_native_math" and device.type != "cuda":
        raise UsageError(f"--attention_backend {backend} is a CUDA kernel; this run is on {device.type}")


def check(config) -> None:
    check_backend(config.attention_backend, config.device)


def columns(config) -> dict:
    return same_named(config, Columns)


def label(row) -> str | None:
    backend = text(row.get("attention_backend"))
    return f"{backend.strip('_')} attention" if backend not in ("", "default") else None


def apply(pipe, config) -> None:
    """Route the denoisers' attention through one backend (e.g. _native_cudnn: torch's cuDNN SDPA)."""
    for model in denoisers(pipe):
        model.set_attention_backend(config.attention_backend)
