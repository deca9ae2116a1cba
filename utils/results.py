"""The results schema, defined once for every kind of row: benchmark runs (`Row`; its lever columns come from the
levers' modules), training runs (`TrainRow`) and quantization-time runs (`QuantTimeRow`). Each kind has its own CSV
files; the `kind` column says which it is. Values stay numeric; units are in the column names (`_s`, `_GiB`, `_db`).
Reading and appending CSVs lives here too."""

import csv
import fcntl
import io
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from utils.files import atomic_path
from utils.optimize import LEVERS


@dataclass
class Provenance:
    """Where a row came from: the first columns of every kind."""
    timestamp: str = ""
    git_sha: str = ""
    command: str = ""  # reproduces the row
    gpu: str = ""  # the device's name (a CPU is named with its thread count)
    torch_version: str = ""
    diffusers_version: str = ""
    torchao_version: str = ""
    transformers_version: str = ""
    accelerate_version: str = ""


@dataclass
class RunColumns:
    kind: str = "benchmark"
    model: str = ""
    weights: str = ""  # pretrained | random (random weights: timing and memory are real, images are noise)
    device: str = ""
    dtype: str = ""
    batch_size: int = 1
    height: int = 0
    width: int = 0
    num_frames: int | None = None
    num_inference_steps: int = 0
    guidance_scale: float = 0.0
    max_sequence_length: int = 0
    seed: int = 0
    prompt: str = ""
    world_size: int = 1


@dataclass
class Measurements:
    warmup: int = 0
    runs: int = 0
    time_median_s: float | None = None
    time_min_s: float | None = None
    time_max_s: float | None = None
    first_call_s: float | None = None
    compile_s: float | None = None  # first call minus the median
    load_s: float | None = None
    model_memory_GiB: float | None = None  # allocated after load + fuse + quantize
    inference_memory_GiB: float | None = None  # peak allocated during the timed runs
    host_peak_memory_GiB: float | None = None
    psnr_db: float | None = None  # decoded images vs the bf16 eager reference (inf = identical)
    latent_rel_l2: float | None = None  # final latents vs the bf16 eager reference
    status: str = "ok"  # ok | error | oom | nan; the sweep adds timeout | crash for processes that wrote no row
    error: str = ""
    step: int | None = None  # position in a cumulative ladder (sweep.py, ladder grid files)
    lever: str = ""  # what that ladder step adds to its base step
    base_step: int | None = None  # the ladder step this one builds on


# Field order is column order: the later a base is listed, the earlier its columns.
@dataclass
class Row(Measurements, *reversed([lever.Columns for lever in LEVERS]), RunColumns, Provenance):
    """One benchmark run: what ran, every lever's columns, what was measured."""


@dataclass
class TrainRow(Provenance):
    """One training run of training/train_fp8.py."""
    kind: str = "training"
    peft_version: str = ""
    # what ran
    model: str = ""
    weights: str = ""  # pretrained | random (random weights: timing and memory are real, the loss is not)
    device: str = ""
    method: str = ""  # lora | full
    rank: int | None = None
    fp8: str = "off"  # off | tensorwise | rowwise
    fp8_emulate: bool = False  # float8 emulated in high precision (no float8 matmul on this device)
    n_layers_fp8: int = 0
    n_trainable_params: int = 0
    gradient_checkpointing: bool = False
    compile: bool = False
    attention_backend: str = "default"
    optimizer: str = ""
    lr: float = 0.0
    guidance_scale: float = 1.0
    max_grad_norm: float = 0.0
    batch_size: int = 1
    resolution: str = ""  # WIDTHxHEIGHT
    transformer_blocks: str = ""  # double+single stream blocks trained (fewer than the model's with --num_layers)
    max_sequence_length: int = 0
    max_steps: int = 0
    warmup_steps: int = 0
    seed: int = 0
    dataset: str = ""  # synthetic | the dataset folder
    num_images: int = 0
    resume_lora: str = ""
    # measurements
    load_s: float | None = None  # build the pipeline (or the fresh transformer)
    cache_s: float | None = None  # text embeddings and VAE latents, once
    first_step_s: float | None = None
    compile_s: float | None = None  # first step minus the median
    step_median_s: float | None = None  # steps after warmup_steps
    step_min_s: float | None = None
    step_max_s: float | None = None
    images_per_s: float | None = None  # batch_size / step_median_s
    model_memory_GiB: float | None = None  # allocated before the first step (CUDA only)
    peak_memory_GiB: float | None = None  # peak allocated during the steps after warmup_steps (CUDA only)
    host_peak_memory_GiB: float | None = None
    loss_first: float | None = None
    loss_last: float | None = None
    losses: str = ""  # every step's loss, space-separated
    # --check_reload: the reloaded LoRA's transformer output vs the trained one (0 = exact; small with --compile)
    reload_max_abs_diff: float | None = None
    saved_to: str = ""
    status: str = "ok"  # ok | error | oom | nan
    error: str = ""


@dataclass
class QuantTimeRow(Provenance):
    """One way of quantizing a transformer onto the GPU, timed by inference/quantization_time.py."""
    kind: str = "quantization_time"
    # what ran
    model: str = ""
    weights: str = ""  # pretrained | random
    device: str = ""
    quantization: str = ""
    method: str = ""  # cpu_then_move | move_then_quantize | per_layer
    # measurements
    build_s: float | None = None  # building the bf16 model on the CPU, outside the timed region
    seconds: float | None = None  # the quantize (+ move) step
    peak_GiB: float | None = None  # max GPU memory allocated during that step (empty on the CPU)
    allocated_GiB: float | None = None  # GPU memory the quantized model holds afterwards (empty on the CPU)
    n_layers_quantized: int = 0
    status: str = "ok"  # ok | error | oom | crash | timeout
    error: str = ""


KINDS = {row_class.kind: row_class for row_class in (Row, TrainRow, QuantTimeRow)}
COLUMNS = [field.name for field in fields(Row)]


def _check_unique_columns() -> None:
    seen: dict[str, str] = {}
    for owner in (Provenance, RunColumns, *(lever.Columns for lever in LEVERS), Measurements):
        for field in fields(owner):
            if field.name in seen:
                raise TypeError(f"{owner.__module__} and {seen[field.name]} both define the column {field.name}")
            seen[field.name] = owner.__module__


_check_unique_columns()


def columns_of(row_class) -> list[str]:
    return [field.name for field in fields(row_class)]


def legacy_kind(header: list[str]) -> str:
    """The kind of a CSV written before the kind column existed, told by the columns only that kind has."""
    if {"method", "fp8", "step_median_s"} <= set(header):
        return "training"
    if {"method", "seconds", "peak_GiB"} <= set(header):
        return "quantization_time"
    return "benchmark"


def _csv_value(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def format_csv_line(row) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_csv_value(value) for value in asdict(row).values()])
    return buffer.getvalue()


def append_row(path: Path, row) -> None:
    """Append one row (of any kind) under an exclusive lock, in one write: concurrent writers and a killed process
    never leave a partial or interleaved line. The header is written only when the file is new or empty; a CSV of
    the same kind written by an older version with other columns is first rewritten (atomically) with today's."""
    columns = columns_of(type(row))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with open(path, "a", newline="") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            try:
                if os.stat(path).st_ino != os.fstat(file.fileno()).st_ino:
                    continue  # another writer migrated the file while we waited: lock the new one
                existing_header = _read_header(path)
                if existing_header and existing_header != columns:
                    _migrate(path, existing_header, type(row))
                    continue
                text = ("" if existing_header else ",".join(columns) + "\n") + format_csv_line(row)
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
                return
            finally:
                fcntl.flock(file, fcntl.LOCK_UN)


def _migrate(path: Path, header: list[str], row_class) -> None:
    """Rewrite an older CSV with today's columns of its kind (new ones empty; a missing kind column gets the
    kind); called with the file locked."""
    columns = columns_of(row_class)
    unknown = [column for column in header if column not in columns]
    if unknown:
        raise ValueError(f"{path} has columns this version does not know for {row_class.kind} rows "
                         f"({', '.join(unknown[:5])}); pass another --csv or move the old file aside")
    with open(path, newline="") as source:
        rows = list(csv.DictReader(source))
    for row in rows:
        row.setdefault("kind", row_class.kind)
    with atomic_path(path) as partial, open(partial, "w", newline="") as target:
        writer = csv.DictWriter(target, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _read_header(path: Path) -> list[str] | None:
    with open(path, newline="") as file:
        first = file.readline()
    return next(csv.reader([first])) if first.strip() else None


def read_rows(path: Path) -> pd.DataFrame:
    """Load a results CSV of any kind with all the columns of its kind (columns an older version did not write yet
    come back empty; a file written before the kind column existed gets its kind from its columns)."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    if "kind" not in frame.columns:
        frame["kind"] = legacy_kind(list(frame.columns))
    kind = frame.kind.iloc[0] if len(frame) else legacy_kind(list(frame.columns))
    columns = columns_of(KINDS.get(kind, Row))
    return frame.reindex(columns=[*columns, *(column for column in frame.columns if column not in columns)])


# Columns shown in a printed row, with short headers.
TABLE_COLUMNS = {
    "model": "model", "weights": "weights", "gpu": "gpu", "batch_size": "bs", "height": "h", "width": "w",
    "num_inference_steps": "steps", "quantization": "quant", "fuse_attn_projections": "fuse", "compile": "compile",
    "compile_mode": "mode", "regional_compile": "regional", "compile_vae": "compile_vae", "step_cache": "step cache",
    "time_median_s": "median s", "time_min_s": "min s", "time_max_s": "max s", "compile_s": "compile s",
    "model_memory_GiB": "model GiB", "inference_memory_GiB": "peak GiB", "psnr_db": "PSNR dB",
    "latent_rel_l2": "latent rel L2", "status": "status", "error": "error", "git_sha": "sha",
}


def render_markdown(frame: pd.DataFrame) -> str:
    """A markdown table of the key columns, numbers rounded to 3 decimals."""
    table = frame[[column for column in TABLE_COLUMNS if column in frame.columns]].copy()
    if "error" in table:
        table["error"] = [text[:80] if isinstance(text, str) else None for text in table["error"]]
    table = table.astype(object).where(table.notna(), None).rename(columns=TABLE_COLUMNS)
    return table.to_markdown(index=False, floatfmt=".3f", missingval="")


def render_row(row: Row) -> str:
    return render_markdown(pd.DataFrame([asdict(row)]))
