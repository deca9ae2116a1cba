"""The attention kernel of the denoiser: one of diffusers' attention backends (set_attention_backend), or FLUX's
attention in fp8 through FlashAttention-3 (utils/fp8_attention.py)."""

from dataclasses import dataclass

import torch

from utils.errors import UsageError
from utils.levers.base import same_named, text
from utils.pipelines import denoiser, denoisers

BACKENDS = ("default", "native", "_native_cudnn", "_native_flash", "_native_efficient", "_native_math")
FP8 = "fa3_fp8"  # ours, not a diffusers backend: the benchmarks' denoiser only


@dataclass(frozen=True, kw_only=True)
class Settings:
    attention_backend: str = "default"


@dataclass
class Columns:
    attention_backend: str = "default"


def add_flags(parser) -> None:
    group = parser.add_argument_group("attention")
    group.add_argument("--attention_backend", choices=(*BACKENDS, FP8), default="default",
                       help="diffusers attention backend of the denoiser (set_attention_backend); default keeps "
                            "diffusers' choice (torch SDPA). _native_cudnn, _native_flash and _native_efficient "
                            f"pick one SDPA kernel and need CUDA. {FP8}: FLUX attention in fp8 (e4m3; q and k "
                            "scaled by the bound of their RMSNorm, v per head) with FlashAttention-3's forward from "
                            "the fa3-fwd wheel, Hopper only; it changes "
                            "the numbers more than fp8 linears do, and random weights (near-uniform attention) hide "
                            "it from the fidelity columns: check it on real weights")


def settings(flags, run) -> Settings:
    return Settings(attention_backend=flags.attention_backend)


def check_backend(backend: str, device) -> None:
    """The CUDA-only backends need CUDA (shared with the training script)."""
    device = torch.device(device)
    if backend.startswith("_native_") and backend != "_native_math" and device.type != "cuda":
        raise UsageError(f"--attention_backend {backend} is a CUDA kernel; this run is on {device.type}")


def check(config) -> None:
    if config.attention_backend != FP8:
        check_backend(config.attention_backend, config.device)
        return
    if torch.device(config.device).type != "cuda":
        raise UsageError(f"--attention_backend {FP8} is a Hopper GPU kernel; this run is on {config.device}")
    if config.preset is not None and config.preset.pipeline_class != "FluxPipeline":
        raise UsageError(f"--attention_backend {FP8} replaces FLUX's attention processor; "
                         f"{config.preset.name} is not a FLUX model")
    if config.context_parallel != "none":  # the processor attends over the tokens it is given, one rank's share
        raise UsageError(f"--attention_backend {FP8} cannot be combined with --context_parallel")
    if config.offload == "sequential":  # the q/k bounds are read from the norm weights, which it keeps off the GPU
        raise UsageError(f"--attention_backend {FP8} cannot be combined with --offload sequential "
                         "(--offload model can)")
    from utils.fp8_attention import missing_reason

    if reason := missing_reason():
        raise UsageError(reason)


def columns(config) -> dict:
    return same_named(config, Columns)


def label(row) -> str | None:
    backend = text(row.get("attention_backend"))
    return f"{backend.strip('_')} attention" if backend not in ("", "default") else None


def apply_fp8(pipe) -> None:
    """fa3_fp8, before anything calls the model (autoquant's sample call must see the processor that runs)."""
    from utils.fp8_attention import load_kernel, set_fp8_attention

    load_kernel()
    if not sum(set_fp8_attention(model) for model in denoisers(pipe)):
        raise UsageError(f"--attention_backend {FP8} found no FLUX attention layer in {type(denoiser(pipe)).__name__}")


def apply(pipe, config) -> None:
    """Route the denoisers' attention through one of diffusers' backends (e.g. _native_cudnn: torch's cuDNN SDPA)."""
    for model in denoisers(pipe):
        model.set_attention_backend(config.attention_backend)
