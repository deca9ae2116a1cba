"""The results schema, defined once for every kind of row: benchmark runs (`Row`; its lever columns come from the
levers' modules), training runs (`TrainRow`) and quantization-time runs (`QuantTimeRow`). Each kind has its own CSV
files; the `kind` column says which it is. Values stay numeric; units are in the column names (`_s`, `_GiB`, `_db`).
Reading, checking and appending CSVs lives here too: a damaged or foreign CSV is refused with one line (CsvError)
rather than appended to or misread."""

import csv
import fcntl
import io
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from utils.errors import UsageError, one_line
from utils.files import atomic_path
from utils.levers.compilation import compiles_anything
from utils.optimize import LEVERS, describe
from utils.path_checks import can_create_in, nearest_existing

logger = logging.getLogger(__name__)


@dataclass
class Provenance:
    """Where a row came from: the first columns of every kind."""
    timestamp: str = ""  # UTC, when the run began (a sweep's row for a process that wrote none: when it ended)
    git_sha: str = ""
    command: str = ""  # reproduces the row
    gpu: str = ""  # the device's name (a CPU is named with its thread count)
    gpu_index: str = ""  # the CUDA device's physical index (as CUDA_VISIBLE_DEVICES names it); empty on the CPU
    host: str = ""  # a stable id of the machine (utils.campaign.host_id); empty in rows written before it existed
    campaign: str = ""  # the sweep, ladder or job-script run that wrote the row: ratios are taken only within one
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
    guidance_scale_2: float | None = None  # the low-noise expert's (Wan2.2-T2V-A14B); the other models have none
    max_sequence_length: int = 0
    seed: int = 0
    prompt: str = ""
    world_size: int = 1


@dataclass
class Measurements:
    warmup: int = 0
    runs: int = 0
    memory_only: bool = False  # a memory measurement (--memory_only): its times are not latencies
    time_median_s: float | None = None
    time_min_s: float | None = None
    time_max_s: float | None = None
    first_call_s: float | None = None
    compile_s: float | None = None  # first call minus the median, less the planning inside it (plan_s)
    compile_start: str = ""  # cold | warm | shared: the compile caches at the start (utils.campaign); "" if none
    plan_s: float | None = None  # autoquant's planning, the int8 autotuner's config search (not in compile_s)
    load_s: float | None = None
    model_memory_GiB: float | None = None  # allocated after load + fuse + quantize
    inference_memory_GiB: float | None = None  # peak allocated during the timed runs
    host_peak_memory_GiB: float | None = None
    psnr_db: float | None = None  # decoded images vs the bf16 eager reference (inf = identical)
    latent_rel_l2: float | None = None  # final latents vs the bf16 eager reference
    # ok | error | oom | nan; the sweep adds timeout | crash | interrupted for processes that wrote no row
    # (interrupted: a stopped sweep's configuration, kept in the CSV and left out of the reports)
    status: str = "ok"
    error: str = ""
    step: int | None = None  # position in a cumulative ladder (sweep.py, ladder grid files)
    lever: str = ""  # what that ladder step adds to its base step
    base_step: int | None = None  # the ladder step this one builds on
    # Why this row no longer stands (written by hand: a changed grid, a combination the flags now refuse); the report
    # leaves it out of tables and plots and says why. Empty for every row a run writes.
    superseded_by: str = ""


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
    compile_start: str = ""  # cold | warm | shared (utils.campaign); "" when nothing is compiled
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
    superseded_by: str = ""  # why this row no longer stands (written by hand; the report leaves it out)


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


class CsvError(UsageError):
    """A results CSV that cannot be read or appended to as it is; the message is one line naming the file and
    the line."""


def _decode(path: Path, data: bytes) -> str:
    if b"\0" in data:
        line = data[:data.index(b"\0")].count(b"\n") + 1
        raise CsvError(f"{path} line {line}: not a CSV (binary data)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise CsvError(f"{path} line {line}: not UTF-8 text") from None


def _parse(path: Path, text: str) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """(header, [(line number, fields)]) of a CSV whose rows all have the header's fields; None for a blank file.
    A row cut short (a writer killed mid-row), a ragged row (rows glued together, a hand edit) or broken quoting
    raise CsvError."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header, records, start = None, [], 1
    try:
        for cells in reader:
            if cells and header is None:
                header = cells
            elif cells:
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as error:
        problem = "is cut short" if "unexpected end of data" in str(error) else f"is not valid CSV ({error})"
        raise CsvError(f"{path} line {start}: the row {problem}") from None
    for line, cells in records:
        if len(cells) != len(header):
            cut = line == records[-1][0] and len(cells) < len(header) and not text.endswith("\n")
            problem = "is cut short" if cut else "does not match the header"
            raise CsvError(f"{path} line {line}: the row {problem} ({len(cells)} fields, the header has "
                           f"{len(header)})")
    return header, records


ESSENTIAL_COLUMNS = ("timestamp", "git_sha", "command", "status")  # every version of ours wrote them


def check_ours(path: Path, header: list[str]) -> None:
    """Before a CSV is rewritten with today's columns: a header that lacks what every version of ours wrote belongs
    to someone else's file, even if its columns happen to be names we use too."""
    missing = [name for name in ESSENTIAL_COLUMNS if name not in header]
    if missing:
        raise CsvError(f"{path} line 1: no {', '.join(missing)} column: not one of our results CSVs, so it is not "
                       "rewritten")


def _kind(path: Path, header: list[str], records: list[tuple[int, list[str]]]) -> str:
    """The one kind of row a parsed CSV holds; a foreign CSV (or a newer version's) raises CsvError."""
    column = header.index("kind") if "kind" in header else None
    kinds = [(line, (cells[column] if column is not None else "") or legacy_kind(header))
             for line, cells in records]
    kind = kinds[0][1] if kinds else legacy_kind(header)
    for line, other in kinds:
        if other not in KINDS:
            raise CsvError(f"{path} line {line}: a row of unknown kind {other!r}")
        if other != kind:
            raise CsvError(f"{path} line {line}: a {other} row in a CSV of {kind} rows")
    unknown = [name for name in header if name not in columns_of(KINDS[kind])]
    if unknown:
        raise CsvError(f"{path} line 1: columns this version does not know for {kind} rows "
                       f"({', '.join(unknown[:5])}): not one of our results CSVs, or a newer version's")
    return kind


def _check(path: Path, data: bytes, row_class=None):
    """(header, records, kind) of a results CSV's bytes, of `row_class`'s kind if given; (None, [], None) when the
    file is blank."""
    header, records = _parse(path, _decode(path, data))
    if header is None:
        return None, [], None
    kind = _kind(path, header, records)
    if row_class is not None and kind != row_class.kind:
        raise CsvError(f"{path} line 1: holds {kind} rows, not {row_class.kind} rows")
    return header, records, kind


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, read under a shared lock: never half of a row being appended."""
    with open(path, "rb") as file:
        fcntl.flock(file, fcntl.LOCK_SH)
        return file.read()


def check_csv_target(path: Path, row_class) -> None:
    """Raise UsageError (one line) unless rows of `row_class` can be appended to `path`: not a directory, its folder
    exists or can be created, the file (if any) is writable and a well-formed results CSV of that kind (an older
    schema of it is fine: append_row migrates it). Creates nothing; the scripts call it before building a model."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"--csv {path} is a directory, not a file")
    if path.is_symlink() and not path.exists():
        raise UsageError(f"--csv {path} is a link to nothing ({os.readlink(path)})")
    folder = nearest_existing(path.parent)
    if not folder.is_dir():
        raise UsageError(f"--csv {path}: cannot create its folder, {folder} is not a directory")
    rewrite = True  # a new file, or a migration, writes in the folder
    if path.exists():
        if not path.is_file() or not os.access(path, os.R_OK | os.W_OK):
            raise UsageError(f"--csv {path} is not a regular file this user can read and write")
        try:
            header, _, _ = _check(path, _read_bytes(path), row_class)
        except CsvError as error:
            raise CsvError(f"--csv {error}; repair the file, move it aside or pass another --csv") from None
        rewrite = header is None or header != columns_of(row_class)
        if header is not None and rewrite:
            try:
                check_ours(path, header)
            except CsvError as error:
                raise CsvError(f"--csv {error}; pass another --csv") from None
    if rewrite and not can_create_in(folder):
        raise UsageError(f"--csv {path}: cannot write in {folder}")


def append_row(path: Path, row) -> None:
    """Append one row (of any kind) under an exclusive lock, in one write: concurrent writers and a killed process
    never leave a partial or interleaved line. The header is written only when the file is new or empty; a CSV of
    the same kind written by an older version with other columns is first rewritten (atomically) with today's; a
    last line without its newline gets one. A malformed or foreign file raises CsvError and is left as it is."""
    path = Path(path)
    columns = columns_of(type(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with open(path, "a+b") as file:  # the lock goes with the file when it closes
            fcntl.flock(file, fcntl.LOCK_EX)
            if os.stat(path).st_ino != os.fstat(file.fileno()).st_ino:
                continue  # another writer migrated the file while we waited: lock the new one
            file.seek(0)
            data = file.read()
            header, records, _ = _check(path, data, type(row))
            if header is not None and header != columns:
                check_ours(path, header)
                _migrate(path, header, records, type(row))
                added = [name for name in columns if name not in header]
                logger.warning("%s: rewritten with today's %d columns (%s)", path, len(columns),
                               f"{', '.join(added)} added, empty on its {len(records)} older rows" if added
                               else "the same columns in a new order")
                continue
            text = ("" if header else ",".join(columns) + "\n") + format_csv_line(row)
            try:
                file.write((("\n" if data and not data.endswith(b"\n") else "") + text).encode())
                file.flush()
                os.fsync(file.fileno())
            except OSError:  # a full disk: take back the part of the row that got written, the file stays whole
                file.truncate(len(data))
                raise
            return


def _migrate(path: Path, header: list[str], records: list[tuple[int, list[str]]], row_class) -> None:
    """Rewrite an older CSV with today's columns of its kind (new ones empty; a missing kind column gets the
    kind); called with the file locked."""
    with atomic_path(path) as partial, open(partial, "w", newline="") as target:
        writer = csv.DictWriter(target, fieldnames=columns_of(row_class), restval="")
        writer.writeheader()
        writer.writerows({"kind": row_class.kind, **dict(zip(header, cells))} for _, cells in records)


def append_row_or_save_aside(path: Path, row) -> Path:
    """Append the row to `path`, or, when that fails (a full disk, permissions, a file damaged during the run), write
    it to a new CSV `<stem>.unsaved-<time>-<pid>.csv` beside it (else in the current folder, else the temporary
    one) and log where: a finished measurement is never lost. Returns the file that holds the row."""
    path = Path(path)
    try:
        append_row(path, row)
        return path
    except (OSError, UsageError) as error:
        failure = one_line(error)
    name = f"{path.stem}.unsaved-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.csv"
    for folder in (path.parent, Path.cwd(), Path(tempfile.gettempdir())):
        try:
            with open(folder / name, "x", newline="") as file:
                try:
                    file.write(",".join(columns_of(type(row))) + "\n" + format_csv_line(row))
                    file.flush()
                except OSError:
                    Path(file.name).unlink()  # ours (opened with "x"): half a row helps nobody
                    raise
        except OSError:
            continue
        logger.warning("could not append the row to %s (%s); it is in %s", path, failure, folder / name)
        return folder / name
    raise OSError(f"could not append the row to {path} ({failure}) nor write it anywhere; the row: "
                  f"{format_csv_line(row).strip()}")


def check_numbers(path: Path, frame: pd.DataFrame, row_class) -> None:
    """Every number column of the kind holds numbers (or nothing): a hand-edited "fast" would break every ratio."""
    numeric = [field.name for field in fields(row_class) if field.type in (int, float, int | None, float | None)]
    for name in numeric:
        if name in frame and not pd.api.types.is_numeric_dtype(frame[name]):
            values = pd.to_numeric(frame[name], errors="coerce")
            bad = frame[name][values.isna() & frame[name].notna()]
            if len(bad):  # + 2: the header is line 1 and lines count from 1
                raise CsvError(f"{path} line {bad.index[0] + 2}: column {name} holds {bad.iloc[0]!r}, not a number")


def count_rows(path: Path) -> int:
    """How many rows a results CSV holds (0 for a missing or blank file), read under the writers' lock."""
    path = Path(path)
    return len(_check(path, _read_bytes(path))[1]) if path.exists() else 0


def read_rows(path: Path) -> pd.DataFrame:
    """Load a results CSV of any kind with all the columns of its kind (columns an older version did not write yet
    come back empty; a file written before the kind column existed gets its kind from its columns). An empty,
    malformed or foreign file raises CsvError."""
    path = Path(path)
    data = _read_bytes(path)
    header, _, kind = _check(path, data)
    if header is None:
        raise CsvError(f"{path} line 1: the file is empty (no header)")
    frame = pd.read_csv(io.StringIO(_decode(path, data)), keep_default_na=False, na_values=[""])
    frame["kind"] = kind
    check_numbers(path, frame, KINDS[kind])
    columns = columns_of(KINDS[kind])
    return frame.reindex(columns=[*columns, *(column for column in frame.columns if column not in columns)])


# Columns shown in a printed row, with short headers.
TABLE_COLUMNS = {
    "model": "model", "weights": "weights", "gpu": "gpu", "batch_size": "bs", "height": "h", "width": "w",
    "num_frames": "frames", "num_inference_steps": "steps", "configuration": "configuration",
    "time_median_s": "median s", "time_min_s": "min s", "time_max_s": "max s", "compile_s": "compile s",
    "model_memory_GiB": "model GiB", "inference_memory_GiB": "peak GiB", "psnr_db": "PSNR dB",
    "latent_rel_l2": "latent rel L2", "status": "status", "error": "error", "git_sha": "sha",
}


def render_markdown(frame: pd.DataFrame) -> str:
    """A markdown table of the key columns, numbers rounded to 3 decimals; compile s only where something was
    compiled (elsewhere the first call minus the median is noise), frames only for videos."""
    frame = frame.assign(configuration=[describe(row) for _, row in frame.iterrows()],  # every lever in words
                         compile_s=[row.compile_s if compiles_anything(row) else None for _, row in frame.iterrows()])
    columns = [column for column in TABLE_COLUMNS if column in frame.columns]
    if "num_frames" in frame and frame.num_frames.isna().all():
        columns.remove("num_frames")
    table = frame[columns].copy()
    if "error" in table:
        table["error"] = [text[:80] if isinstance(text, str) else None for text in table["error"]]
    table = table.astype(object).where(table.notna(), None).rename(columns=TABLE_COLUMNS)
    return table.to_markdown(index=False, floatfmt=".3f", missingval="")


def render_row(row: Row) -> str:
    return render_markdown(pd.DataFrame([asdict(row)]))
