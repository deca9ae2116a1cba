"""Less GPU memory at some cost in time: CPU offload of the models, and VAE decoding in tiles or one sample at a
time."""

from dataclasses import dataclass

import torch

from utils.errors import UsageError
from utils.levers.base import is_set, off_as, same_named, text
from utils.levers.compilation import compiles_anything

OFFLOAD_MODES = ("none", "model", "sequential")


@dataclass(frozen=True, kw_only=True)
class Settings:
    offload: str = "none"
    vae_tiling: bool = False
    vae_slicing: bool = False


@dataclass
class Columns:
    offload: str = "none"
    vae_tiling: bool = False
    vae_slicing: bool = False


def add_flags(parser) -> None:
    group = parser.add_argument_group("memory")
    group.add_argument("--offload", type=off_as("none"), choices=OFFLOAD_MODES, default="none",
                       help="CPU offload (CUDA only): model = one whole model on the GPU at a time; sequential = one "
                            "layer at a time (least memory, slowest)")
    group.add_argument("--vae_tiling", action="store_true", help="decode in tiles (less memory)")
    group.add_argument("--vae_slicing", action="store_true", help="decode one sample of the batch at a time")


def settings(flags, run) -> Settings:
    return Settings(offload=flags.offload, vae_tiling=flags.vae_tiling, vae_slicing=flags.vae_slicing)


def check(config) -> None:
    if config.offload == "sequential" and compiles_anything(config):
        raise UsageError("--offload sequential cannot be combined with --compile/--compile_vae/"
                         "--compile_text_encoders: its per-layer hooks move weights inside the compiled graph")
    if config.offload != "none" and torch.device(config.device).type != "cuda":
        raise UsageError(f"--offload {config.offload} needs a CUDA device: it moves weights between the CPU and the "
                         "GPU")


def columns(config) -> dict:
    return same_named(config, Columns)


def label(row) -> str | None:
    offload = text(row.offload)
    words = [f"{offload} offload"] if offload not in ("", "none") else []
    words += ["VAE tiling"] if is_set(row.vae_tiling) else []
    words += ["VAE slicing"] if is_set(row.vae_slicing) else []
    return ", ".join(words) or None


def apply_vae_memory_savers(pipe, tiling: bool, slicing: bool) -> None:
    """Decode in overlapping tiles (tiling) and one sample at a time (slicing): lower peak memory, a bit slower."""
    if tiling:
        pipe.vae.enable_tiling()
    if slicing:
        pipe.vae.enable_slicing()


def apply_offload(pipe, mode: str, device: str) -> None:
    """Keep weights on the CPU: `model` moves one whole model at a time to the GPU, `sequential` one layer at a
    time (least memory, slowest). Both move the pipeline to the CPU first."""
    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)


def apply(pipe, config) -> None:
    apply_vae_memory_savers(pipe, config.vae_tiling, config.vae_slicing)
    apply_offload(pipe, config.offload, config.device)
