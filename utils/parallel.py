"""Several processes, one per GPU, launched by torchrun: the process group and which models diffusers can run
context-parallel. A run without torchrun stays a single process and touches none of this."""

import atexit
import os

import torch

CONTEXT_PARALLEL_MODES = ("none", "ulysses", "ring")


def launched_world_size() -> int:
    """The number of processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(args) -> tuple[int, int]:
    """Join torchrun's process group (once), NCCL with this process on its own GPU (`args.device` becomes
    cuda:LOCAL_RANK) or gloo on the CPU. Returns (rank, world_size); (0, 1) and no change without torchrun."""
    import torch.distributed as dist

    world_size = launched_world_size()
    if world_size == 1:
        return 0, 1
    on_cuda = torch.device(args.device).type == "cuda"
    if on_cuda:
        args.device = f"cuda:{os.environ['LOCAL_RANK']}"
        torch.cuda.set_device(args.device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if on_cuda else "gloo", device_id=torch.device(args.device) if on_cuda else None)
        atexit.register(dist.destroy_process_group)
    return dist.get_rank(), world_size


def context_parallel_unsupported_reason(ckpt_id: str) -> str | None:
    """Why diffusers cannot run this preset's transformer context-parallel, or None (also for non-presets, which
    are only known once loaded). diffusers needs the model's `_cp_plan` (where to split and gather the sequence)."""
    import diffusers
    from diffusers.utils import logging as diffusers_logging

    from utils.presets import get_preset

    preset = get_preset(ckpt_id)
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
