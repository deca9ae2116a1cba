"""The results schema, defined once: the `Row` dataclass drives the CSV header, the markdown tables and the tests.
Values stay numeric; units are in the column names (`_s`, `_GiB`, `_db`)."""

import csv
import fcntl
import io
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from utils.files import atomic_path


@dataclass
class Provenance:
    """Where a row came from: the first columns of every results CSV (benchmarks, training, quantization time)."""
    timestamp: str = ""
    git_sha: str = ""
    command: str = ""  # reproduces the row
    gpu: str = ""  # the device's name (a CPU is named with its thread count)
    torch_version: str = ""
    diffusers_version: str = ""
    torchao_version: str = ""


@dataclass
class Row(Provenance):
    # what ran
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
    # levers
    quantization: str = "None"
    quantize_vae: bool = False
    quantize_text_encoders: bool = False
    quant_skip_pattern: str = ""
    n_layers_quantized: int = 0
    sparsify: bool = False
    n_layers_sparsified: int = 0
    fuse_attn_projections: bool = False
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = ""
    regional_compile: bool = False
    compile_vae: bool = False
    inductor_config: str = ""  # the inductor settings the run used (torchao may change them)
    offload: str = "none"
    vae_tiling: bool = False
    vae_slicing: bool = False
    warmup: int = 0
    runs: int = 0
    # measurements
    time_median_s: float | None = None
    time_min_s: float | None = None
    time_max_s: float | None = None
    first_call_s: float | None = None
    compile_s: float | None = None  # first call minus the median
    load_s: float | None = None
    quant_s: float | None = None
    model_memory_GiB: float | None = None  # allocated after load + fuse + quantize
    inference_memory_GiB: float | None = None  # peak allocated during the timed runs
    host_peak_memory_GiB: float | None = None
    psnr_db: float | None = None  # decoded images vs the bf16 eager reference (inf = identical)
    latent_rel_l2: float | None = None  # final latents vs the bf16 eager reference
    status: str = "ok"  # ok | error | oom | nan; the sweep adds timeout | crash for processes that wrote no row
    error: str = ""
    # multi-GPU (torchrun); at the end so that older CSVs only gain empty columns
    world_size: int = 1
    context_parallel: str = "none"  # none | ulysses | ring
    attention_backend: str = "default"
    compile_cache: str = ""  # cold (written after the run) | warm (loaded before the first call) | "" (unused)
    autoquant: str = ""  # planned|reused: how many layers got which config (--quantization autoquant)
    # opt-in step caching (diffusers cache hooks): changes the output, so the report shows these rows apart
    step_cache: str = "none"  # none | first_block | taylorseer
    step_cache_threshold: float | None = None  # first_block only
    int8_autotuner: str = ""  # --autotune: cold (tuned in the first call, in compile_s) | warm (cache file loaded), and
    # how many configs per shape
    compile_text_encoders: bool = False


COLUMNS = [field.name for field in fields(Row)]

# Columns shown in markdown tables, with short headers.
TABLE_COLUMNS = {
    "model": "model", "weights": "weights", "gpu": "gpu", "batch_size": "bs", "height": "h", "width": "w",
    "num_inference_steps": "steps", "quantization": "quant", "fuse_attn_projections": "fuse", "compile": "compile",
    "compile_mode": "mode", "regional_compile": "regional", "compile_vae": "compile_vae", "step_cache": "step cache",
    "time_median_s": "median s", "time_min_s": "min s", "time_max_s": "max s", "compile_s": "compile s",
    "model_memory_GiB": "model GiB", "inference_memory_GiB": "peak GiB", "psnr_db": "PSNR dB",
    "latent_rel_l2": "latent rel L2", "status": "status", "error": "error", "git_sha": "sha",
}


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
    """Append one row (a `Row`, or any flat dataclass with its own schema) under an exclusive lock, in one write:
    concurrent writers and a killed process never leave a partial or interleaved line. The header is written only
    when the file is new or empty; a CSV written by an older version with fewer columns is first rewritten
    (atomically) with today's columns."""
    columns = [field.name for field in fields(row)]
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
                    _migrate(path, existing_header, columns)
                    continue
                text = ("" if existing_header else ",".join(columns) + "\n") + format_csv_line(row)
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
                return
            finally:
                fcntl.flock(file, fcntl.LOCK_UN)


def _migrate(path: Path, header: list[str], columns: list[str]) -> None:
    """Rewrite an older CSV with today's columns (new ones empty); called with the file locked."""
    unknown = [column for column in header if column not in columns]
    if unknown:
        raise ValueError(f"{path} has columns this version does not know ({', '.join(unknown[:5])}); "
                         "pass another --csv or move the old file aside")
    with open(path, newline="") as source:
        rows = list(csv.DictReader(source))
    with atomic_path(path) as partial, open(partial, "w", newline="") as target:
        writer = csv.DictWriter(target, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _read_header(path: Path) -> list[str] | None:
    with open(path, newline="") as file:
        first = file.readline()
    return next(csv.reader([first])) if first.strip() else None


def read_rows(path: Path) -> pd.DataFrame:
    """Load a results CSV; columns an older version did not write yet come back empty."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return frame.reindex(columns=[*COLUMNS, *(column for column in frame.columns if column not in COLUMNS)])


def render_markdown(frame: pd.DataFrame) -> str:
    """A markdown table of the key columns, numbers rounded to 3 decimals."""
    table = frame[[column for column in TABLE_COLUMNS if column in frame.columns]].copy()
    if "error" in table:
        table["error"] = [text[:80] if isinstance(text, str) else None for text in table["error"]]
    table = table.astype(object).where(table.notna(), None).rename(columns=TABLE_COLUMNS)
    return table.to_markdown(index=False, floatfmt=".3f", missingval="")


def render_row(row: Row) -> str:
    return render_markdown(pd.DataFrame([asdict(row)]))
