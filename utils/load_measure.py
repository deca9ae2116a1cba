"""Timing the ways of getting a transformer into a pipeline (inference/serialize.py measure): bf16 then quantize,
pre-quantized, pre-quantized + torch.compile and an AOT package; load time, load memory and time to first image."""

import gc
import json
import logging
import math
import time

import numpy as np
import torch

from utils.aot import aot_compile_transformer, capture_transformer_inputs, load_aot_transformer
from utils.fidelity import psnr_db
from utils.files import atomic_path
from utils.levers.compilation import compile_model, disable_cpu_int8_weight_only_rewrite
from utils.levers.quantization import few_rows_layers
from utils.provenance import provenance
from utils.quant import apply_quantization
from utils.serialization import load_transformer, save_transformer
from utils.timing import allocated_GiB, device_used_GiB, peak_allocated_GiB, reset_peak_memory, synchronize, time_call_s

logger = logging.getLogger(__name__)


def load_bf16_then_quantize(source: tuple[str, str | None], quantization: str, device, dtype,
                            skip_pattern: str | None = None, few_rows_pattern: str | None = None) -> torch.nn.Module:
    """The usual way: read the bf16 transformer, move it to the device, quantize it there."""
    from diffusers import AutoModel

    directory, subfolder = source
    model = AutoModel.from_pretrained(directory, subfolder=subfolder, torch_dtype=dtype)
    model = model.to(device).eval().requires_grad_(False)
    apply_quantization(model, quantization, skip_pattern=skip_pattern, few_rows_pattern=few_rows_pattern)
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


def measure_loading(config, pipe, kwargs: dict, call) -> tuple[list[dict], dict]:
    """`serialize.py measure`: write the bf16 (random weights only) and the quantized transformer to config.workdir
    (and, with config.aot, an AOT package), then time each way of loading it back into `pipe` against the image the
    quantized model made before saving. The measurements go to config.json after every stage, so a run cut short
    keeps what it measured. Returns the rows and the quantized checkpoint's summary."""
    workdir, dtype = config.workdir, config.dtype
    if config.weights == "pretrained":
        bf16_source = (config.ckpt_id, "transformer")
    else:  # random weights exist only in memory: write them, so that both paths read from disk
        save_transformer(pipe.transformer, workdir / "bf16", "None", "safetensors", overwrite=True)
        bf16_source = (str(workdir / "bf16"), None)
    model = pipe.transformer
    apply_quantization(model, config.quantization, skip_pattern=config.quant_skip_pattern,
                       few_rows_pattern=few_rows_layers(config))
    saved = save_transformer(model, workdir / config.quantization, config.quantization, config.format, overwrite=True)
    reference = call()  # the quantized model before saving
    rows = []
    report = {**provenance(config.command_line, config.device), "ckpt_id": config.ckpt_id, "weights": config.weights,
              "quantization": config.quantization, "device": config.device, "format": saved["format"],
              "checkpoint_GiB": saved["size_GiB"], "aot": None, "rows": rows}

    def write_report() -> None:  # after every stage, so that a run cut short keeps what it measured
        if config.json:
            with atomic_path(config.json) as partial:
                partial.write_text(json.dumps(strict_json(report), indent=2, default=str, allow_nan=False))

    write_report()
    package = workdir / f"{config.quantization}.pt2"
    if config.aot:
        if torch.device(config.device).type == "cuda":  # before the process's first compile (the AOT build)
            disable_cpu_int8_weight_only_rewrite()
        report["aot"] = aot_compile_transformer(model, capture_transformer_inputs(pipe, kwargs, config.seed), package)
        logger.info("AOT package compiled in %.1f s", report["aot"]["aoti_compile_s"])
        write_report()
    expected = dict(class_name=type(model).__name__, config=dict(model.config))
    del model
    pre_quantized = f"pre-quantized {saved['format']}"
    loaders = {
        "bf16 + quantize": lambda: load_bf16_then_quantize(bf16_source, config.quantization, config.device, dtype,
                                                           config.quant_skip_pattern, few_rows_layers(config)),
        pre_quantized: lambda: load_transformer(
            workdir / config.quantization, expected_class=expected["class_name"], expected_config=expected["config"],
            device=config.device, dtype=dtype),
    }
    if config.aot:  # AOT against torch.compile in the same process
        loaders[f"{pre_quantized} + torch.compile"] = lambda: load_then_compile(loaders[pre_quantized])
        loaders["AOT package"] = lambda: load_aot_transformer(package)
    for label, load in loaders.items():
        result = measure_path(label, load, pipe, call, config.device)
        images, reference_images = result["output"].images_uint8(), reference.images_uint8()
        result["row"]["same_image"] = bool(np.array_equal(images, reference_images))
        result["row"]["psnr_db"] = psnr_db(images, reference_images)
        rows.append(result["row"])
        write_report()
        if compiled_path(label):
            torch._dynamo.reset()  # drop the compiled graphs and the model they hold before the next path
    return rows, saved


def strict_json(value):
    """`value` with every non-finite float spelled as a string ("inf" for the PSNR of an identical output): JSON has
    no Infinity or NaN, and strict parsers (JavaScript's, jq's) reject or mangle Python's spelling of them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value
