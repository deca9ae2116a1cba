"""Where the time of one pipeline call goes: torch.profiler around one call, the kernels sorted into GEMM, attention
and the rest, written as a short markdown summary (the top kernels and each category's share).

On CUDA the summary counts the device time of the kernel events only (the CPU op that launched a kernel carries the
same time, so counting both would double it); on the CPU it counts the self CPU time of aten ops."""

import contextlib
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from utils.errors import UsageError
from utils.files import atomic_path
from utils.path_checks import check_output_file
from utils.timing import time_call_s

# The first line of the operator table written beside a --profile summary, and the summary's second line: an existing
# file without its line is not ours to replace
RAW_TABLE_HEADER = "torch.profiler operator table of one call (the raw table beside a --profile summary)"
SUMMARY_MARK = "<!-- written by --profile (utils/profiling.py); a later --profile run of this name replaces it -->"

OTHER = "elementwise / norms / other"
# First match wins. Kernel names are library-internal (cuBLAS: nvjet/sm90_xmma/cutlass, inductor: triton_*),
# so these are patterns over the names torch 2.11 on the H100 prints, plus the aten op names the CPU shows. Inductor
# names a fused kernel after the ops around it (`triton_per_fused__scaled_mm_...` quantizes a GEMM's input), so its
# pointwise and reduction kernels go to the norms/elementwise bucket first; its GEMM templates are `triton_tem_`.
CATEGORIES = [
    (OTHER, r"^triton_(poi|red|per)_"),
    ("convolution", r"conv|implicit_gemm|winograd"),
    ("attention", r"flash|fmha|attention|sdpa|_efficient_attention|mha"),
    ("gemm", r"gemm|xmma|nvjet|cutlass|cublas|_scaled_mm|_int_mm|\bmm\b|aten::mm|aten::addmm|aten::bmm|aten::linear"
             r"|aten::matmul|tinygemm|triton_tem_"),
    ("copy / memory", r"memcpy|memset|copy|aten::to\b|aten::_to_copy|aten::contiguous|aten::clone|cat"),
]


@dataclass
class KernelTime:
    name: str
    calls: int
    ms: float
    category: str


def category_of(name: str) -> str:
    lowered = name.lower()
    for category, pattern in CATEGORIES:
        if re.search(pattern, lowered):
            return category
    return OTHER


def kernel_times(profiler, device: str) -> list[KernelTime]:
    """Self time per kernel (CUDA) or per aten op (CPU), largest first."""
    on_cuda = torch.device(device).type == "cuda"
    times = []
    for event in profiler.key_averages():
        if on_cuda:
            micros = event.self_device_time_total if event.device_type == torch.autograd.DeviceType.CUDA else 0
        else:
            micros = event.self_cpu_time_total if event.key.startswith("aten::") else 0
        if micros <= 0:
            continue
        times.append(KernelTime(event.key, event.count, micros / 1e3, category_of(event.key)))
    return sorted(times, key=lambda kernel: -kernel.ms)


def profile_call(call: Callable[[], object], device: str):
    """The profiler of one call, and the call's wall time (measured inside the profiler, without its start/stop)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.device(device).type == "cuda" else [])
    with profile(activities=activities) as profiler:
        start = time.perf_counter()
        call()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
        wall_s = time.perf_counter() - start
    return profiler, wall_s


def render_profile(kernels: list[KernelTime], title: str, wall_s: float | None = None, top: int = 15) -> str:
    total_ms = sum(kernel.ms for kernel in kernels)
    by_category: dict[str, float] = {}
    for kernel in kernels:
        by_category[kernel.category] = by_category.get(kernel.category, 0.0) + kernel.ms
    lines = [f"# {title}", SUMMARY_MARK, ""]
    busy = f"{total_ms / 1e3:.3f} s of kernel time"
    if wall_s:
        busy += f" in a {wall_s:.3f} s call ({total_ms / 1e3 / wall_s:.0%} busy)"
    lines += [busy, "", "| category | ms | share |", "|---|---:|---:|"]
    for category, ms in sorted(by_category.items(), key=lambda item: -item[1]):
        lines.append(f"| {category} | {ms:.1f} | {ms / total_ms:.1%} |")
    lines += ["", f"Top {top} kernels by self time:", "", "| kernel | calls | ms | share | category |",
              "|---|---:|---:|---:|---|"]
    for kernel in kernels[:top]:
        name = kernel.name if len(kernel.name) <= 90 else kernel.name[:87] + "..."
        share = kernel.ms / total_ms
        lines.append(f"| `{name}` | {kernel.calls} | {kernel.ms:.1f} | {share:.1%} | {kernel.category} |")
    return "\n".join(lines) + "\n"


# pipeline component -> stage; the VAE's decode method is timed apart (it is not its forward)
STAGE_OF = {"text_encoder": "text encoders", "text_encoder_2": "text encoders", "text_encoder_3": "text encoders",
            "transformer": "denoiser", "transformer_2": "denoiser"}


def clock(device: str):
    """A point in time on the device's own stream (a recorded CUDA event), or the host clock on the CPU."""
    if torch.device(device).type != "cuda":
        return time.perf_counter()
    event = torch.cuda.Event(enable_timing=True)
    event.record()
    return event


def elapsed_ms(start, end) -> float:
    return start.elapsed_time(end) if isinstance(start, torch.cuda.Event) else (end - start) * 1e3


@contextlib.contextmanager
def stage_clocks(pipe, device: str):
    """While open, every forward of the text encoders and the denoiser and every VAE decode of `pipe` records a
    (start, end) pair in the yielded dict, under its stage."""
    spans = defaultdict(list)
    handles = []
    for component, stage in STAGE_OF.items():
        module = getattr(pipe, component, None)
        if isinstance(module, torch.nn.Module):
            handles += [
                module.register_forward_pre_hook(lambda *_, stage=stage: spans[stage].append([clock(device)])),
                module.register_forward_hook(lambda *_, stage=stage: spans[stage][-1].append(clock(device)))]
    vae = getattr(pipe, "vae", None)
    decode = getattr(vae, "decode", None)
    own_decode = vars(vae).get("decode") if vae is not None else None  # e.g. --compile_vae's compiled decode
    if decode is not None:
        def timed_decode(*args, **kwargs):
            spans["VAE decode"].append([clock(device)])
            output = decode(*args, **kwargs)
            spans["VAE decode"][-1].append(clock(device))
            return output

        vae.decode = timed_decode
    try:
        yield spans
    finally:
        for handle in handles:
            handle.remove()
        if own_decode is not None:
            vae.decode = own_decode
        elif decode is not None:
            del vae.decode  # the class's method again


def time_stages(pipe, call: Callable[[], object], device: str) -> tuple[dict[str, tuple[int, float]], float]:
    """One call split into stages: {stage: (calls, ms)} and the whole call's ms; what no stage covers (prompt and
    latent preparation, the scheduler, image post-processing) is the call minus their sum."""
    with stage_clocks(pipe, device) as spans:
        call_s, _ = time_call_s(call, device)  # it waits for the call's last kernel: every span has ended too
    stages = {stage: (len(pairs), sum(elapsed_ms(*pair) for pair in pairs)) for stage, pairs in spans.items()}
    return stages, call_s * 1e3


def render_stages(stages: dict[str, tuple[int, float]], call_ms: float) -> str:
    lines = ["Stages of one call (CUDA events around each component's calls, outside the profiler):", "",
             "| stage | calls | ms | share |", "|---|---:|---:|---:|"]
    for stage, (calls, ms) in stages.items():
        lines.append(f"| {stage} | {calls} | {ms:.1f} | {ms / call_ms:.1%} |")
    rest = call_ms - sum(ms for _, ms in stages.values())
    lines += [f"| everything else | | {rest:.1f} | {rest / call_ms:.1%} |", f"| the whole call | | {call_ms:.1f} | |"]
    return "\n".join(lines) + "\n"


def raw_table_path(summary: Path) -> Path:
    return Path(summary).with_suffix(".txt")


def check_profile_path(flag: str, summary: Path | None) -> None:
    """The --profile summary (.md) and its raw table beside it (.txt): each replaces only a file an earlier --profile
    wrote (it carries SUMMARY_MARK or RAW_TABLE_HEADER), never a README or a report."""
    if summary is None:
        return
    check_output_file(flag, summary, (".md",))
    raw = raw_table_path(summary)
    check_output_file(f"{flag} (its operator table)", raw)
    written_by_profile = ((summary, 1, SUMMARY_MARK, "it"), (raw, 0, RAW_TABLE_HEADER, f"its operator table, {raw},"))
    for path, line, mark, what in written_by_profile:
        if path.is_file() and not has_line(path, line, mark):
            raise UsageError(f"{flag} {summary}: {what} exists and was not written by --profile; refusing to replace "
                             "it")


def has_line(path: Path, number: int, text: str) -> bool:
    """Whether line `number` (from 0) of the file at `path` reads `text`."""
    with open(path, errors="replace") as file:
        lines = [file.readline().rstrip("\n") for _ in range(number + 1)]
    return lines[number] == text


def write_profile(call: Callable[[], object], device: str, path: Path, title: str, pipe=None) -> Path:
    """Profile one call and write the markdown summary to `path` (and the raw table next to it as .txt); with `pipe`,
    one more call is split into its stages first."""
    stages = render_stages(*time_stages(pipe, call, device)) if pipe is not None else ""
    profiler, wall_s = profile_call(call, device)
    kernels = kernel_times(profiler, device)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:
        partial.write_text(render_profile(kernels, title, wall_s) + ("\n" + stages if stages else ""))
    sort_by = "self_cuda_time_total" if torch.device(device).type == "cuda" else "self_cpu_time_total"
    with atomic_path(raw_table_path(path)) as partial:
        partial.write_text(f"{RAW_TABLE_HEADER}\n\n{profiler.key_averages().table(sort_by=sort_by, row_limit=60)}")
    return path
