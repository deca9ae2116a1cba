"""Several processes, one per GPU, launched by torchrun. A run without torchrun stays one process and touches none
of this."""

import atexit
import os

import torch


def launched_world_size() -> int:
    """The number of processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank_device(device: str, world_size: int) -> str:
    """Under torchrun each process drives its own GPU: cuda becomes cuda:LOCAL_RANK. Other devices stay."""
    if world_size > 1 and torch.device(device).type == "cuda":
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def init_distributed(device: str, world_size: int) -> int:
    """Join torchrun's process group once (NCCL on this process's GPU, gloo on the CPU); returns this rank (0 without
    torchrun)."""
    import torch.distributed as dist

    if world_size == 1:
        return 0
    on_cuda = torch.device(device).type == "cuda"
    if on_cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if on_cuda else "gloo", device_id=torch.device(device) if on_cuda else None)
        atexit.register(dist.destroy_process_group)
    return dist.get_rank()
