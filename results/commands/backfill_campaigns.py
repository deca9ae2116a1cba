"""Give the committed rows written before the campaign columns existed their campaign, compile_start, memory_only,
plan_s and superseded_by values, by the rules and from the records that docs/campaigns.md lists (each exception
below names its record). Every other value of every row stays as it was; a row that has a campaign already is left
alone, so running this again changes nothing.

    python results/commands/backfill_campaigns.py       # rewrites results/*.csv in place
"""

import csv
import io
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's utils and results, not another's

from utils.levers.base import is_set, text
from utils.paths import REPO_ROOT
from utils.report_campaigns import legacy_campaign_ids, output_stem
from utils.results import KINDS, _check, columns_of, read_rows

RESULTS = REPO_ROOT / "results"

# Runs the rule (one sha, GPU and output file, no gap over 10 minutes) would join or split wrongly, by the record
# that says so: (file, sha, output file or None for all, where new campaigns start: a list of start times, "each row"
# or "none").
CAMPAIGN_EXCEPTIONS = [
    # docs/performance.md, "One call on an H100 (2026-12-06)": one output file per configuration, one call.
    ("flux-step-levers.csv", "c25af7c-dirty", None, "none"),
    # README: batch 4 and batch 16 at 135c5fd were one call each (ONLY='^bs4-(autoquant|fp8dqrow)', ONLY='^bs16-').
    ("flux-autoquant.csv", "135c5fd", "autoquant", ["2026-11-26T00:46:22+00:00"]),
    # flux-autoquant.sh runs bs4 before bs16 and each bs16 dense row before its sparse one; on the H200 the sparse
    # rows came first, then the dense ones, then batch 4: three runs of the script.
    ("flux-autoquant.csv", "f2cf32b", "autoquant", ["2026-11-26T00:00:14+00:00", "2026-11-26T00:05:14+00:00"]),
    # README: the six batch-4 rows at 135c5fd came "from four later calls on two H100 machines", which the rows do
    # not tell apart: each is a campaign of its own.
    ("flux-dev.csv", "135c5fd", "sweep", "each row"),
    # The rowwise run began 26 s after the --compare run (bf16 + tensorwise), which took minutes: two runs side by
    # side, on two GPUs.
    ("train-flux-dev.csv", "1b4ae6a", "train", ["2026-11-25T19:42:04+00:00"]),
]

# Runs that started with empty inductor and Triton caches (cold); every other compiled row before the column existed
# ran with the machine's caches as earlier runs left them (shared), or loaded a compile cache file (warm).
COLD_RUNS = [
    # docs/performance.md: "each configuration in its own process with an empty inductor and Triton cache".
    ("flux-step-levers.csv", "c25af7c-dirty", None),
    # inference/sweep.py gives each configuration empty inductor and Triton caches since 0b3097b.
    ("flux-dev.csv", "135c5fd", "sweep"),
    # results/commands/lib.sh does the same since be9018b.
    ("flux-autoquant.csv", "135c5fd", "autoquant"),
    ("flux-autoquant.csv", "1e1781f", "autoquant"),
]
# int8-autotuner.sh (135c5fd) runs tune, plain and reuse in one fresh cache directory: only the first starts cold.
COLD_FIRST_OF = [("flux-autoquant.csv", "135c5fd", "autotune")]

# The 2-step rows of the CogVideoX-5b memory ladder (cogvideox-5b-memory.sh at 5dc991f and 3c7690d): memory runs.
MEMORY_RUNS = [("cogvideox-5b.csv", "5dc991f"), ("cogvideox-5b.csv", "3c7690d")]

# Rows that no longer stand, and why: (file, sha, start time) -> note.
SUPERSEDED = {
    ("flux-dev.csv", "5378428", "2026-11-25T17:14:23+00:00"):
        "the grid's compiled rows fuse QKV since f99fcd0 (bf16, fused QKV, regional compile)",
    ("flux-dev.csv", "5378428", "2026-11-25T17:21:34+00:00"):
        "the grid's compiled rows fuse QKV since f99fcd0 (fp8wo, fused QKV, regional compile at c8b680e)",
    ("flux-dev.csv", "92d72c0", "2026-11-25T17:24:31+00:00"):
        "the grid's compiled rows fuse QKV since f99fcd0 (int8dq, fused QKV, regional compile at c8b680e)",
    ("flux-dev.csv", "e2fee82", "2026-11-25T17:35:44+00:00"):
        "the grid's compiled rows fuse QKV since f99fcd0 (int8wo, fused QKV, regional compile)",
    ("flux-dev.csv", "e2fee82", "2026-11-25T17:37:07+00:00"):
        "the grid's compiled rows fuse QKV since f99fcd0 (fp8dq, fused QKV, regional compile at c8b680e)",
    ("flux-dev.csv", "92d72c0", "2026-11-25T17:26:13+00:00"):
        "the grid ran int8wo eager again at f99fcd0, beside its own bf16 eager row",
    ("cogvideox-2b.csv", "e973aa7", "2026-11-25T19:39:11+00:00"):
        "the flags refuse fp8dqrow on fp16 weights since 02adad0 (the grid runs it with --base_dtype bf16)",
}


def campaigns(name: str, frame: pd.DataFrame) -> pd.Series:
    ids = legacy_campaign_ids(frame)
    outputs = pd.Series([output_stem(command) for command in frame.command], index=frame.index)
    for file, sha, output, starts in CAMPAIGN_EXCEPTIONS:
        chosen = frame[(name == file) & (frame.git_sha == sha) & ((outputs == output) if output else True)]
        label = output or Path(file).stem
        current = None
        for index, stamp in chosen.timestamp.sort_values(kind="stable").items():
            if current is None or starts == "each row" or (isinstance(starts, list) and stamp in starts):
                current = f"{sha}:{label}:{pd.Timestamp(stamp):%m%dT%H%M}"
            ids[index] = current
    return ids


def compile_start(name: str, row, output: str, first_of_run: bool) -> str:
    from utils.levers.compilation import compiles_anything

    compiled = is_set(row.compile) if row.kind == "training" else compiles_anything(row)
    if not compiled:
        return ""
    if text(row.get("compile_cache")) == "warm":
        return "warm"
    if any(name == file and row.git_sha == sha and out in (None, output) for file, sha, out in COLD_RUNS):
        return "cold"
    if first_of_run and any(name == file and row.git_sha == sha and output == out for file, sha, out in COLD_FIRST_OF):
        return "cold"
    return "shared"


def backfill(path: Path) -> int:
    """Fill the new columns of the rows that have no campaign yet; returns how many rows changed."""
    data = path.read_bytes()
    header, records, kind = _check(path, data)
    frame = read_rows(path)
    missing = [index for index in frame.index if not text(frame.campaign[index])]
    if not missing:
        return 0
    ids = campaigns(path.name, frame)
    seen_runs = set()
    rows = []
    for (_, cells), (index, row) in zip(records, frame.iterrows()):
        values = {"kind": kind, **dict(zip(header, cells))}
        if index in missing:
            output = output_stem(row.command)
            values["campaign"] = ids[index]
            first_of_run = ids[index] not in seen_runs
            seen_runs.add(ids[index])
            values["compile_start"] = compile_start(path.name, row, output, first_of_run)
            if kind == "benchmark":
                values["memory_only"] = str((path.name, row.git_sha) in MEMORY_RUNS)
                planned = text(row.get("autoquant")).startswith("planned")
                values["plan_s"] = values.get("quant_s", "") if planned else ""
            values["superseded_by"] = SUPERSEDED.get((path.name, row.git_sha, row.timestamp), "")
        rows.append(values)
    buffer = io.StringIO()
    ending = "\r\n" if b"\r\n" in data else "\n"  # as the file had them
    columns = columns_of(KINDS[kind])
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator=ending)
    writer.writeheader()
    writer.writerows({name: value for name, value in values.items() if name in columns} for values in rows)
    path.write_bytes(buffer.getvalue().encode())
    return len(missing)


def main() -> int:
    for path in sorted(RESULTS.glob("*.csv")):
        print(f"{path.relative_to(REPO_ROOT)}: {backfill(path)} rows given their campaign")
    return 0


if __name__ == "__main__":
    sys.exit(main())
