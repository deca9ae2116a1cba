"""Context parallelism (launch with torchrun --nproc_per_node N): the denoiser's token sequence split across the
GPUs, through diffusers' ContextParallelConfig."""

from dataclasses import dataclass

import torch

from utils.cli import positive_int
from utils.errors import UsageError
from utils.levers.base import off_as, same_named
from utils.pipelines import denoisers

MODES = ("none", "ulysses", "ring")
# Ring attention merges the partial attentions of the K/V chunks by their log-sum-exp, which the default "native"
# backend (F.scaled_dot_product_attention) does not return. "_native_flash" calls torch's flash-attention op, which
# returns it: the kernel SDPA itself tries first for bf16 without a mask, so ring and single-GPU rows run the same
# attention kernel. Ulysses keeps the default backend.
ATTENTION = {"ulysses": None, "ring": "_native_flash"}


@dataclass(frozen=True, kw_only=True)
class Settings:
    context_parallel: str = "none"
    cp_degree: int | None = None


@dataclass
class Columns:
    context_parallel: str = "none"


def add_flags(parser) -> None:
    group = parser.add_argument_group("multi-GPU (launch with torchrun --nproc_per_node N)")
    group.add_argument("--context_parallel", type=off_as("none"), choices=MODES, default="none",
                       help="split the transformer's token sequence across the GPUs (diffusers context parallelism): "
                            "ulysses = all-to-all around attention, heads must divide by the degree; ring = K/V "
                            "chunks passed around (flash attention). CUDA only; FLUX, Wan 2.2 and Qwen-Image "
                            "(diffusers 0.42 has no plan for CogVideoX)")
    group.add_argument("--cp_degree", type=positive_int, default=None,
                       help="GPUs the sequence is split across; unset means the world size (torchrun's "
                            "--nproc_per_node), the only value that works here")


def settings(flags, run) -> Settings:
    degree = flags.cp_degree
    if flags.context_parallel != "none" and degree is None:
        degree = run.world_size
    return Settings(context_parallel=flags.context_parallel, cp_degree=degree)


def unsupported_reason(preset) -> str | None:
    """Why diffusers cannot run this preset's transformer context-parallel, or None (also for checkpoints that are
    not presets, which are only known once loaded). diffusers needs the model's `_cp_plan`."""
    import diffusers
    from diffusers.utils import logging as diffusers_logging

    if preset is None:
        return None
    class_name = preset.components["transformer"]
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # the first model import warns about torchao; errors stay one line
    try:
        model_class = getattr(diffusers, class_name)
    finally:
        diffusers_logging.set_verbosity(verbosity)
    if model_class._cp_plan is None:
        return (f"{class_name} has no context-parallel plan (_cp_plan) in diffusers {diffusers.__version__}, so "
                "diffusers cannot split its sequence across GPUs")
    return None


def check(config) -> None:
    """One process per GPU, all of them in the mesh."""
    if config.context_parallel == "none":
        if config.cp_degree is not None:
            raise UsageError("--cp_degree needs --context_parallel ulysses or ring")
        return
    if config.world_size == 1:
        raise UsageError(f"--context_parallel {config.context_parallel} needs one process per GPU: launch with "
                         f"torchrun --nproc_per_node N {config.script} --context_parallel {config.context_parallel} "
                         "...")
    if config.cp_degree != config.world_size:  # the mesh would hold the first cp_degree ranks, the rest fail to join
        raise UsageError(f"--cp_degree {config.cp_degree} must equal the world size {config.world_size} (torchrun "
                         "--nproc_per_node): diffusers 0.42 has no data parallelism for the ranks left over")
    if config.offload != "none":
        raise UsageError(f"--context_parallel cannot be combined with --offload {config.offload}: every rank keeps a "
                         "whole transformer on its GPU, offload moves it to and from the CPU in every call")
    reason = unsupported_reason(config.preset)
    if reason:
        raise UsageError(f"--context_parallel: {reason}")
    tokens = image_tokens(config)
    if tokens is not None and tokens % config.cp_degree:
        raise UsageError(f"--context_parallel: the transformer gets {tokens} image tokens at this size, which do not "
                         f"divide by {config.cp_degree} GPUs (diffusers splits them evenly); pick a height, width or "
                         "frame count that gives a multiple")
    if torch.device(config.device).type != "cuda":  # diffusers 0.42.1 puts rank r on accelerator r % device_count()
        raise UsageError(f"--context_parallel needs CUDA (one GPU per process), not --device {config.device}")
    if config.profile:
        raise UsageError("--profile makes one more call on rank 0 only; with --context_parallel the other ranks would "
                         "never join its collectives")


def image_tokens(config) -> int | None:
    """The image (video) tokens a preset's transformer gets at the run's size: one per size_multiple x size_multiple
    pixels (VAE downsampling x patch), times the latent frames of a video (the video VAEs compress time 4x)."""
    preset = config.preset
    if preset is None:
        return None
    size = {name: getattr(config, name) or preset.call_defaults.get(name) for name in ("height", "width", "num_frames")}
    if not (size["height"] and size["width"]):
        return None
    tokens = (size["height"] // preset.size_multiple) * (size["width"] // preset.size_multiple)
    return tokens * ((size["num_frames"] - 1) // 4 + 1) if size["num_frames"] else tokens


def columns(config) -> dict:
    return same_named(config, Columns)


def label(row) -> None:
    return None


def apply(pipe, config) -> None:
    """Split the denoiser's token sequence across `cp_degree` GPUs (the process group must exist). ulysses: an
    all-to-all before and after attention trades sequence shards for head shards, so the head count must divide by
    the degree. ring: every GPU keeps its queries and attends to the K/V chunks of all the others in turn. Both need
    the text and image token counts to divide by the degree. After quantization (it wraps the attention, not the
    weights), before compile."""
    from diffusers import ContextParallelConfig

    for model in denoisers(pipe):  # both experts of Wan 2.2 A14B
        if ATTENTION[config.context_parallel]:
            model.set_attention_backend(ATTENTION[config.context_parallel])
        degree = config.cp_degree
        parallel = (ContextParallelConfig(ulysses_degree=degree) if config.context_parallel == "ulysses"
                    else ContextParallelConfig(ring_degree=degree))
        model.enable_parallelism(config=parallel)
