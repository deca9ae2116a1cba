"""Timing and memory: CUDA events around whole pipeline calls (perf_counter on the CPU), GiB everywhere."""

import gc
import logging
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

GiB = 1024**3
logger = logging.getLogger(__name__)


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_call_s(call: Callable, device) -> tuple[float, object]:
    """Seconds one call takes, measured on the device's own clock."""
    if torch.device(device).type != "cuda":
        start = time.perf_counter()
        output = call()
        return time.perf_counter() - start, output
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    output = call()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000, output


@dataclass
class CallTimes:
    warmup_s: list[float]
    run_s: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.run_s)

    @property
    def compile_s(self) -> float:
        """First call minus a steady-state call: compilation, autotuning, CUDA graph capture and lazy init."""
        first = self.warmup_s[0] if self.warmup_s else self.run_s[0]
        return first - self.median_s

    def summary(self) -> dict:
        return {"time_median_s": self.median_s, "time_min_s": min(self.run_s), "time_max_s": max(self.run_s),
                "compile_s": self.compile_s, "first_call_s": (self.warmup_s or self.run_s)[0]}


def time_calls(call: Callable, times: CallTimes, *, warmup: int, runs: int, device, label: str = "",
               show_progress: bool = True, after_each_call: Callable[[], None] = lambda: None) -> object:
    """Warm up, reset the peak-memory counter, then time `runs` calls, adding each call's seconds to `times` as it
    ends, then calling `after_each_call`. Returns the last output."""
    output = None
    with tqdm(total=warmup + runs, desc=label or "calls", unit="call", disable=not show_progress) as bar:
        for _ in range(warmup):
            seconds, output = time_call_s(call, device)
            times.warmup_s.append(seconds)
            bar.set_postfix(last_s=f"{seconds:.3f}", phase="warmup")
            bar.update()
            after_each_call()
        reset_peak_memory(device)
        for _ in range(runs):
            seconds, output = time_call_s(call, device)
            times.run_s.append(seconds)
            bar.set_postfix(last_s=f"{seconds:.3f}", phase="timed")
            bar.update()
            after_each_call()
    return output


def free_memory(device) -> None:
    """Collect garbage and hand cached GPU blocks back to the driver. A CUDA context broken by an earlier failure
    (which that failure's row records) is logged, not raised."""
    gc.collect()
    if torch.device(device).type == "cuda":
        try:
            torch.cuda.empty_cache()
        except torch.AcceleratorError:
            logger.exception("CUDA error while freeing memory")


def reset_peak_memory(device) -> None:
    free_memory(device)
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def allocated_GiB(device) -> float | None:
    if torch.device(device).type != "cuda":
        return None
    return torch.cuda.memory_allocated(device) / GiB


def peak_allocated_GiB(device) -> float | None:
    if torch.device(device).type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / GiB


def device_used_GiB(device) -> float | None:
    """GPU memory in use as the driver sees it: what PyTorch's allocator holds (cache included) plus what others
    allocate directly, such as an AOTInductor package's weights."""
    if torch.device(device).type != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    return (total - free) / GiB


def host_peak_GiB() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GiB
