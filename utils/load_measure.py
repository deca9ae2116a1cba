"""Timing the ways of getting a transformer into a pipeline (inference/serialize.py measure): bf16 then quantize,
pre-quantized, pre-quantized + torch.compile and an AOT package; load time, load memory and time to first image."""

import gc
import time

import torch

from utils.levers.compilation import compile_model
from utils.quant import apply_quantization
from utils.timing import allocated_GiB, device_used_GiB, peak_allocated_GiB, reset_peak_memory, synchronize, time_call_s


def load_bf16_then_quantize(source: tuple[str, str | None], quantization: str, device, dtype,
                            skip_pattern: str | None = None) -> torch.nn.Module:
    """The usual way: read the bf16 transformer, move it to the device, quantize it there."""
    from diffusers import AutoModel

    directory, subfolder = source
    model = AutoModel.from_pretrained(directory, subfolder=subfolder, torch_dtype=dtype)
    model = model.to(device).eval().requires_grad_(False)
    apply_quantization(model, quantization, skip_pattern=skip_pattern)
    return model


def measure_path(label: str, load, pipe, call, device) -> dict:
    """Load a transformer with `load()`, put it into the pipeline and make two images. Load time, the GPU memory
    the load needed at its peak and what stays allocated (PyTorch's allocator; CUDA only), what the driver reports in
    use after the load (which also sees memory allocated outside PyTorch, e.g. by an AOT package), the first call
    (time to first image = load + first call; includes compiling, if the path compiles) and a second call (steady
    state)."""
    pipe.transformer = None
    gc.collect()
    if torch.device(device).type == "cuda":  # else the previous path's cached blocks hide part of this load
        torch.cuda.empty_cache()
    reset_peak_memory(device)
    before_GiB, device_before_GiB = allocated_GiB(device), device_used_GiB(device)
    start = time.perf_counter()
    model = load()
    synchronize(device)
    load_s = time.perf_counter() - start
    row = {"path": label, "load_s": load_s, "load_peak_GiB": None, "model_GiB": None, "device_GiB": None}
    if before_GiB is not None:
        row["load_peak_GiB"] = peak_allocated_GiB(device) - before_GiB
        row["model_GiB"] = allocated_GiB(device) - before_GiB
        torch.cuda.empty_cache()  # what the model holds, not what the load left cached
        row["device_GiB"] = device_used_GiB(device) - device_before_GiB
    pipe.transformer = model
    call_s, output = time_call_s(call, device)
    row.update(first_call_s=call_s, time_to_first_image_s=load_s + call_s, second_call_s=time_call_s(call, device)[0])
    return {"row": row, "output": output}


def load_then_compile(load) -> torch.nn.Module:
    """`load()`, then regional torch.compile (mode default): the path an AOT package replaces. The compiling itself
    happens in the first call."""
    model = load()
    compile_model(model, "default", regional=True)
    return model


def render_measurements(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else str(value))
                 for value in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


MIN_COMPILED_PSNR_DB = 25.0  # compiled kernels round differently; their image must still be close to eager's


def compiled_path(label: str) -> bool:
    return label == "AOT package" or label.endswith("torch.compile")


def path_matches(row: dict) -> bool:
    """Eager paths must give the image made before saving bit for bit, compiled ones a close image."""
    return row["psnr_db"] >= MIN_COMPILED_PSNR_DB if compiled_path(row["path"]) else row["same_image"]
