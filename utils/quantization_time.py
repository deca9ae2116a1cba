"""The quantization-time study: three ways of getting a bf16 transformer that sits on the CPU into quantized form on
the GPU, each timed with the GPU memory it needs on the way (inference/quantization_time.py runs them)."""

import time

import torch

from utils.errors import failure_recorded, stop_signals_raise
from utils.pipelines import build_transformer
from utils.provenance import provenance
from utils.quant import apply_quantization, count_quantized_linears
from utils.results import QuantTimeRow
from utils.timing import GiB, synchronize

METHODS = {
    "cpu_then_move": "(a) quantize on the CPU, then move to the GPU",
    "move_then_quantize": "(b) move to the GPU, then quantize there",
    "per_layer": "(c) quantize_(..., device=): one Linear at a time onto the GPU",
}
# The seed's figures (its README, "Reducing quantization time and peak memory"): int8 weight-only, its own GPU and
# torchao of the time. Shown beside our FLUX.1-dev int8wo rows only, never mixed into our columns.
SEED_FIGURES = {"cpu_then_move": (10.48, 6.99), "move_then_quantize": (1.96, 14.50), "per_layer": (1.94, 8.29)}
SEED_MODEL, SEED_QUANTIZATION = "black-forest-labs/FLUX.1-dev", "int8wo"


# Each way quantizes as the benchmarks do (apply_quantization).
def cpu_then_move(model, quantization: str, device: str) -> None:
    apply_quantization(model, quantization)
    model.to(device)


def move_then_quantize(model, quantization: str, device: str) -> None:
    model.to(device)
    apply_quantization(model, quantization)


def per_layer(model, quantization: str, device: str) -> None:
    apply_quantization(model, quantization, device=device)


WAYS = {"cpu_then_move": cpu_then_move, "move_then_quantize": move_then_quantize, "per_layer": per_layer}


def new_row(config, method: str) -> QuantTimeRow:
    return QuantTimeRow(**provenance(config.command, config.device), model=config.ckpt_id, weights=config.weights,
                        device=config.device, quantization=config.quantization, method=method)


def measure(config, method: str) -> QuantTimeRow:
    """Build on the CPU, then time one way of quantizing onto config.device. Failures, and a stop signal (Ctrl-C,
    or one from the parent process or a sweep), become the row's status."""
    row = new_row(config, method)
    with stop_signals_raise() as stop, failure_recorded(row, stop):
        measure_into(row, config, method)
    return row


def measure_into(row: QuantTimeRow, config, method: str) -> None:
    """Fill `row` column by column; raise on failure."""
    on_cuda = torch.device(config.device).type == "cuda"
    start = time.perf_counter()
    model = build_transformer(config.ckpt_id, config.weights, "cpu", torch.bfloat16, config.seed)
    row.build_s = time.perf_counter() - start
    if on_cuda:  # create the CUDA context outside the timed region; it is not part of any way's cost
        torch.zeros(1, device=config.device)
        synchronize(config.device)
        torch.cuda.reset_peak_memory_stats(config.device)
    start = time.perf_counter()
    WAYS[method](model, config.quantization, config.device)
    synchronize(config.device)
    row.seconds = time.perf_counter() - start
    if on_cuda:
        row.peak_GiB = torch.cuda.max_memory_allocated(config.device) / GiB
        row.allocated_GiB = torch.cuda.memory_allocated(config.device) / GiB
    row.n_layers_quantized = count_quantized_linears(model)
    devices = {tensor.device.type for tensor in [*model.parameters(), *model.buffers()]}
    if devices != {torch.device(config.device).type}:
        raise RuntimeError(f"the model ended up on {sorted(devices)}, not only on {config.device}")
    if row.n_layers_quantized == 0:
        raise RuntimeError("no Linear layer was quantized")
