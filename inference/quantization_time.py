"""How long quantizing a transformer takes, and how much GPU memory it needs on the way, for three ways of getting a
bf16 model that sits on the CPU into quantized form on the GPU:

  cpu_then_move       quantize on the CPU, then move the quantized model to the GPU
  move_then_quantize  move the whole bf16 model to the GPU, then quantize it there
  per_layer           torchao's quantize_(model, config, device=...): each Linear is moved to the GPU just before it
                      is quantized, so at most one bf16 Linear (plus one block's small non-Linear parameters) is on the
                      GPU beside the layers already quantized

    python inference/quantization_time.py --ckpt_id black-forest-labs/FLUX.1-dev --quantization int8wo
    python inference/quantization_time.py --ckpt_id tiny-flux --device cpu      # the plumbing, on the CPU

Every way runs in its own process, so each starts with empty CUDA memory and a zeroed peak counter. The model is
built on the CPU (random weights from the kept configs, or the checkpoint's) before the clock starts; the clock covers
the quantize and move calls only, with CUDA synchronized before it is read, and CUDA is initialized before it starts.
Each way appends one row to a CSV (default results/quantization-time.csv); the markdown table next to it
(same name, .md) is rendered from the whole CSV, with the seed's published figures in their own column.

On the CPU (--device cpu) there is nothing to move: the three ways all quantize in host memory and differ only in
how quantize_ is called, and the peak-GPU-memory column stays empty. Those rows check the plumbing; they are not a
comparison.
"""

import logging
import re
import shlex
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from any directory

import torch  # noqa: E402

from utils.benchmark import one_line, provenance  # noqa: E402
from utils.cli import REPO_ROOT, Parser, add_model_args, check_device, check_weights, positive_int  # noqa: E402
from utils.files import atomic_path  # noqa: E402
from utils.pipelines import build_random_transformer  # noqa: E402
from utils.presets import get_preset, preset_names  # noqa: E402
from utils.quant import (QUANTIZATIONS, count_quantized_linears, effective_skip_pattern,  # noqa: E402
                         quantizable_linear, unsupported_reason)
from utils.results import Provenance, append_row, read_rows  # noqa: E402
from utils.timing import GiB, synchronize  # noqa: E402

logger = logging.getLogger(__name__)

PROG = "inference/quantization_time.py"
DEFAULT_CSV = REPO_ROOT / "results" / "quantization-time.csv"
TINY_CSV = REPO_ROOT / "results" / "tiny-quantization-time.csv"
METHODS = {
    "cpu_then_move": "(a) quantize on the CPU, then move to the GPU",
    "move_then_quantize": "(b) move to the GPU, then quantize there",
    "per_layer": "(c) quantize_(..., device=): one Linear at a time onto the GPU",
}
# The seed's figures (its README, "Reducing quantization time and peak memory"): int8 weight-only, its own GPU and
# torchao of the time. Shown beside our FLUX.1-dev int8wo rows only, never mixed into our columns.
SEED_FIGURES = {"cpu_then_move": (10.48, 6.99), "move_then_quantize": (1.96, 14.50), "per_layer": (1.94, 8.29)}
SEED_MODEL, SEED_QUANTIZATION = "black-forest-labs/FLUX.1-dev", "int8wo"


@dataclass
class QuantTimeRow(Provenance):
    # what ran
    model: str = ""
    weights: str = ""  # pretrained | random
    device: str = ""
    quantization: str = ""
    method: str = ""  # a key of METHODS
    # measurements
    build_s: float | None = None  # building the bf16 model on the CPU, outside the timed region
    seconds: float | None = None  # the quantize (+ move) step
    peak_GiB: float | None = None  # max GPU memory allocated during that step (empty on the CPU)
    allocated_GiB: float | None = None  # GPU memory the quantized model holds afterwards (empty on the CPU)
    n_layers_quantized: int = 0
    status: str = "ok"  # ok | error | oom | crash | timeout
    error: str = ""


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_model_args(parser, default_ckpt=SEED_MODEL)
    parser.add_argument("--quantization", choices=[name for name in QUANTIZATIONS if name != "None"],
                        default="int8wo", help="registry name of the quantization (see utils/quant.py)")
    parser.add_argument("--method", choices=["all", *METHODS], default="all",
                        help="all: each way in its own subprocess, one after the other; a single name: that way, "
                             "in this process. " + "; ".join(f"{name} = {text}" for name, text in METHODS.items()))
    parser.add_argument("--timeout_s", type=positive_int, default=1800,
                        help="with --method all: seconds each subprocess may take before it is killed and recorded "
                             "as a timeout row")
    parser.add_argument("--csv", type=Path, default=None,
                        help="CSV the rows are appended to; the markdown table is written next to it (.md). Default "
                             f"{DEFAULT_CSV.relative_to(REPO_ROOT)}, or {TINY_CSV.relative_to(REPO_ROOT)} (git-ignored, "
                             "like the other CPU smoke runs) for the tiny test presets")
    return parser


def validate(parser: Parser, args, argv: list[str]) -> None:
    """One-line errors (exit 2) before any model is built or any file written. Fills args.weights_resolved and
    args.command."""
    args.command = shlex.join(["python", PROG, *argv])
    if get_preset(args.ckpt_id) is None:
        parser.error(f"unknown model {args.ckpt_id!r}: the transformer is built from a preset; presets: "
                     f"{', '.join(preset_names())}")
    device = check_device(parser, args.device)
    reason = unsupported_reason(args.quantization, str(device))
    if reason:
        parser.error(reason)
    if QUANTIZATIONS[args.quantization].make_config is None:  # autoquant: a config per layer, chosen by timing
        parser.error(f"--quantization {args.quantization} picks a config per layer from a recorded pipeline call; "
                     "this study times one config applied to every layer: pick a registry config")
    if args.csv is None:
        args.csv = TINY_CSV if get_preset(args.ckpt_id).hub_id is None else DEFAULT_CSV
    if args.csv.suffix != ".csv":
        parser.error(f"--csv must name a .csv file (the table goes beside it as .md), got {args.csv}")
    args.weights_resolved = check_weights(parser, args.ckpt_id, args.weights)


def build_transformer(ckpt_id: str, weights: str, seed: int) -> torch.nn.Module:
    """The preset's transformer in bf16 on the CPU: random weights from the kept config, or the checkpoint's."""
    preset = get_preset(ckpt_id)
    class_name = preset.components["transformer"]
    if weights == "pretrained":
        import diffusers

        model = getattr(diffusers, class_name).from_pretrained(preset.hub_id, subfolder="transformer",
                                                               torch_dtype=torch.bfloat16)
        return model.eval().requires_grad_(False)
    return build_random_transformer(preset, "cpu", torch.bfloat16, seed)


def quantize_linears(model: torch.nn.Module, quantization: str, device: str | None = None) -> None:
    """quantize_ with the registry's config and layer filter (the same in every way). With `device`, torchao 0.18
    moves each Linear that passes the filter to `device` right before quantizing it, and every other module once its
    children are done, so the whole model ends up there."""
    from torchao.quantization import quantize_

    method = QUANTIZATIONS[quantization]
    skip = effective_skip_pattern(quantization, None)
    pattern = re.compile(skip) if skip else None
    quantize_(model, method.make_config(False), device=device,
              filter_fn=lambda module, fqn: quantizable_linear(module, fqn, pattern, method.in_features_multiple))


def cpu_then_move(model, quantization: str, device: str) -> None:
    quantize_linears(model, quantization)
    model.to(device)


def move_then_quantize(model, quantization: str, device: str) -> None:
    model.to(device)
    quantize_linears(model, quantization)


def per_layer(model, quantization: str, device: str) -> None:
    quantize_linears(model, quantization, device=device)


WAYS = {"cpu_then_move": cpu_then_move, "move_then_quantize": move_then_quantize, "per_layer": per_layer}


def new_row(args, method: str) -> QuantTimeRow:
    return QuantTimeRow(**provenance(args.command, args.device), model=args.ckpt_id, weights=args.weights_resolved, device=args.device,
                        quantization=args.quantization, method=method)


def measure(args, method: str) -> QuantTimeRow:
    """Build on the CPU, then time one way of quantizing onto args.device. Failures become the row's status."""
    row = new_row(args, method)
    on_cuda = torch.device(args.device).type == "cuda"
    try:
        start = time.perf_counter()
        model = build_transformer(args.ckpt_id, args.weights_resolved, args.seed)
        row.build_s = time.perf_counter() - start
        if on_cuda:  # create the CUDA context outside the timed region; it is not part of any way's cost
            torch.zeros(1, device=args.device)
            synchronize(args.device)
            torch.cuda.reset_peak_memory_stats(args.device)
        start = time.perf_counter()
        WAYS[method](model, args.quantization, args.device)
        synchronize(args.device)
        row.seconds = time.perf_counter() - start
        if on_cuda:
            row.peak_GiB = torch.cuda.max_memory_allocated(args.device) / GiB
            row.allocated_GiB = torch.cuda.memory_allocated(args.device) / GiB
        row.n_layers_quantized = count_quantized_linears(model)
        devices = {tensor.device.type for tensor in [*model.parameters(), *model.buffers()]}
        if devices != {torch.device(args.device).type}:
            raise RuntimeError(f"the model ended up on {sorted(devices)}, not only on {args.device}")
        if row.n_layers_quantized == 0:
            raise RuntimeError("no Linear layer was quantized")
    except torch.OutOfMemoryError as error:
        row.status, row.error = "oom", one_line(error)
    except Exception as error:  # noqa: BLE001 - a failed way is recorded, not lost
        traceback.print_exc()
        row.status, row.error = "error", one_line(error)
    return row


def run_all(args, argv: list[str]) -> list[str]:
    """Each way in a fresh subprocess (fresh CUDA memory statistics). A subprocess that dies without writing its row
    (killed, segfault, timeout) gets a crash or timeout row written here. Returns the statuses."""
    statuses = []
    for method in METHODS:
        command = [sys.executable, str(Path(__file__).resolve()), *argv, "--method", method,
                   "--weights", args.weights_resolved]  # argparse keeps the last value of a repeated flag
        print(f"=== {method}: {METHODS[method]}", flush=True)
        try:
            returncode = subprocess.run(command, timeout=args.timeout_s).returncode
        except subprocess.TimeoutExpired:
            returncode = None
        if returncode in (0, 1):  # the subprocess wrote its own row (ok, or its recorded failure)
            statuses.append("ok" if returncode == 0 else "failed")
            continue
        row = new_row(args, method)
        row.command = shlex.join(["python", PROG, *command[2:]])
        row.status = "timeout" if returncode is None else "crash"
        row.error = (f"killed after --timeout_s {args.timeout_s}" if returncode is None
                     else f"the subprocess exited with code {returncode} without writing its row")
        append_row(args.csv, row)
        statuses.append(row.status)
    return statuses


def render_markdown(csv_path: Path) -> str:
    """The table of every row in the CSV, with the seed's figures in their own columns (FLUX.1-dev int8wo only)."""
    import pandas as pd

    frame = read_rows_of(csv_path)
    seed = [SEED_FIGURES.get(row.method) if row.model == SEED_MODEL and row.quantization == SEED_QUANTIZATION
            else None for row in frame.itertuples()]
    table = pd.DataFrame({
        "model": frame.model, "weights": frame.weights, "gpu": frame.gpu, "torchao": frame.torchao_version,
        "quant": frame.quantization, "way": [METHODS.get(method, method) for method in frame.method],
        "seconds": frame.seconds, "peak GiB": frame.peak_GiB, "after GiB": frame.allocated_GiB,
        "layers": frame.n_layers_quantized, "status": frame.status,
        "error": [text[:80] if isinstance(text, str) else None for text in frame.error],
        "seed's s": [figures[0] if figures else None for figures in seed],
        "seed's peak GiB": [figures[1] if figures else None for figures in seed],
    })
    table = table.astype(object).where(table.notna(), None)
    notes = [
        f"# Quantization time and peak GPU memory\n\nGenerated by `{PROG}` from `{csv_path.name}`; do not edit.",
        "`seconds` is the quantize (+ move) step only: the bf16 model is built on the CPU first and CUDA is "
        "initialized before the clock starts. `peak GiB` is `torch.cuda.max_memory_allocated` during that step, "
        "`after GiB` what the quantized model holds. Each way ran in its own process. Rows on the CPU have no "
        "memory columns: there the three ways do the same work.",
        "The last two columns are **the seed's published figures** (its README, int8 weight-only, its GPU and "
        "torchao release), copied for comparison beside our FLUX.1-dev int8wo rows; they were not measured here. "
        "The seed does not say which model or how its peak was measured: FLUX.1-dev's transformer holds 22.2 GiB in "
        "bf16 and about 11.1 GiB in int8, more than the seed's 14.50 GiB (move, then quantize) and 6.99 GiB "
        "(quantize on the CPU), so its figures cannot be the peak of this whole transformer on the GPU.",
    ]
    return "\n\n".join([*notes, table.to_markdown(index=False, floatfmt=".2f", missingval="")]) + "\n"


def read_rows_of(csv_path: Path):
    """The rows of a quantization-time CSV, empty cells as missing values (read_rows adds the benchmark schema's
    columns, so only ours are kept)."""
    from dataclasses import fields

    return read_rows(csv_path)[[field.name for field in fields(QuantTimeRow)]]


def write_markdown(csv_path: Path) -> Path:
    md_path = csv_path.with_suffix(".md")
    with atomic_path(md_path) as partial:
        partial.write_text(render_markdown(csv_path))
    return md_path


def parse_args(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    validate(parser, args, argv)
    return args, argv


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, argv = parse_args(argv)
    if args.method == "all":
        ok = all(status == "ok" for status in run_all(args, argv))
    else:
        row = measure(args, args.method)
        append_row(args.csv, row)
        ok = row.status == "ok"
        print(f"{args.method}: {row.status}, {row.seconds if row.seconds is None else round(row.seconds, 3)} s, "
              f"peak {row.peak_GiB if row.peak_GiB is None else round(row.peak_GiB, 2)} GiB, "
              f"{row.n_layers_quantized} layers quantized {row.error}".rstrip())
    md_path = write_markdown(args.csv)
    if args.method == "all":
        print(md_path.read_text())
    print(f"rows appended to {args.csv}; table written to {md_path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
