"""Render results CSVs into markdown next to them, with plots under results/plots/:

    python -m utils.report results/flux-dev.csv [more.csv ...]     # writes results/flux-dev.md + plots
    python -m utils.report results/*.csv

The `kind` column picks the renderer. Benchmark rows: one table per model, GPU, weights, batch size and output size,
sorted by time, with the speedup against the bf16-eager row of the same group and a "what to pick" line; rows that
change the output (opt-in step caching) get their own section. Benchmark rows with a `step` (ladders run by
inference/sweep.py) are rendered as a cumulative ladder. Training and quantization-time rows have their own tables.
A configuration measured more than once shows its newest finished run (and any failure after it), so no table compares
a configuration with itself; rows of an interrupted sweep (status interrupted) stay in the CSV only. An empty,
malformed or foreign CSV is refused with one line and exit code 2, before anything is written.
"""

import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from utils.cli import Parser
from utils.errors import UsageError
from utils.files import atomic_path
from utils.levers import compilation
from utils.optimize import describe, output_changing_lever
from utils.paths import REPO_ROOT
from utils.plots import plot_group, plot_losses
from utils.quantization_time import METHODS, SEED_FIGURES, SEED_MODEL, SEED_QUANTIZATION
from utils.results import CsvError, QuantTimeRow, Row, RunColumns, TrainRow, columns_of, read_rows

GROUP_COLUMNS = ["model", "gpu", "weights", "batch_size", "height", "width", "num_frames", "num_inference_steps"]
SLOWER_ALLOWED = 1.05  # "lowest memory" may be at most this much slower than the fastest row

LEGEND = """Columns: median/min/max s = end-to-end pipeline call (text encoders + denoising + VAE decode) over the timed
runs; speedup = the group's bf16 eager median / this median; compile s = first call minus the median (compiled
rows only); model GiB = GPU memory allocated after load + fuse + quantize (+ offload); peak GiB = peak allocated
during the timed runs; PSNR dB and latent rel L2 compare the decoded images and final latents with the eager output
in the base precision, same weights and inputs (inf / 0 = identical). Rows with weights=random use the real
architecture with random weights: timing and memory are real, images are noise. The CSV has every column,
including the exact command, git sha and package versions of each row."""


def is_baseline(row) -> bool:
    """bf16 eager, the speedup reference: a row whose every lever is off (no lever labels it)."""
    return row.status == "ok" and describe(row) == "bf16"


OLDER_SPELLINGS = {"bfloat16": "bf16"}  # dtype as rows written before the video script spell it


def configuration_value(value, default) -> str:
    """A value as the configuration key compares it: a missing one (a column an older version did not write) as the
    schema's default, 1.0 as 1, older spellings as today's."""
    value = default if value != value else value
    value = int(value) if isinstance(value, float) and value.is_integer() else value
    return str(OLDER_SPELLINGS.get(value, value))


def newest_runs(group: pd.DataFrame, columns: list[str], row_class) -> tuple[pd.DataFrame, int]:
    """The group without the runs a newer finished run of the same configuration (same values in `columns`)
    supersedes: each configuration keeps its newest ok row and any failure after it. Newer = later timestamp, then
    later in the file. Returns the rows kept and how many were left out."""
    defaults = asdict(row_class())
    keys = ["|".join(configuration_value(value, defaults.get(column)) for column, value in zip(columns, values))
            for values in group[columns].itertuples(index=False)]
    moments = [(stamp if isinstance(stamp, str) else "", position) for position, stamp in enumerate(group.timestamp)]
    newest_ok = {}
    for key, moment, status in zip(keys, moments, group.status):
        if status == "ok":
            newest_ok[key] = max(newest_ok.get(key, moment), moment)
    keep = [moment >= newest_ok.get(key, moment) for key, moment in zip(keys, moments)]
    return group[keep], keep.count(False)


def left_out_note(count: int) -> list[str]:
    return ["", f"Left out: {count} older run{'s' if count > 1 else ''} of configurations measured again "
                "(the CSV has every run)."] if count else []


# What makes two benchmark rows the same configuration: what ran and the levers' labels (not the commands, which
# differ in output paths, run counts and flag spellings).
BENCHMARK_CONFIGURATION = ["gpu", *columns_of(RunColumns), "step", "configuration"]


def compile_seconds(row):
    """compile s is the first call minus the median; for an uncompiled row that is only warm-up noise."""
    return row.compile_s if compilation.compiles_anything(row) else None


def baseline_median_s(group: pd.DataFrame) -> float:
    """The median time of the group's (last) bf16 eager row."""
    times = [row.time_median_s for _, row in group.iterrows() if is_baseline(row)]
    return times[-1] if times else float("nan")


def split_output_changing(group: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows that compute the model's output, rows a lever such as a step cache made differ from it)."""
    changed = [output_changing_lever(row) is not None for _, row in group.iterrows()]
    return group[[not flag for flag in changed]], group[changed]


def group_title(key: tuple) -> str:
    model, gpu, weights, batch, height, width, frames, steps = key
    size = f"{int(height)}x{int(width)}" + (f", {int(frames)} frames" if frames == frames and frames else "")
    return f"{model} · batch {int(batch)} · {size} · {int(steps)} steps · {gpu} · {weights} weights"


def with_labels(group: pd.DataFrame, baseline_s: float) -> pd.DataFrame:
    return group.assign(configuration=[describe(row) for _, row in group.iterrows()],
                        speedup=baseline_s / group.time_median_s)


def summarize_group(group: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The group's table (sorted by time, speedup column, best row marked) and its "what to pick" line."""
    group = with_labels(group, baseline_median_s(group)).sort_values("time_median_s", na_position="last")
    ok = group[group.status == "ok"]
    if ok.empty:
        return group, "No configuration finished."
    fastest = ok.iloc[0]
    near = ok[ok.time_median_s <= fastest.time_median_s * SLOWER_ALLOWED]
    leanest = near.sort_values("inference_memory_GiB").iloc[0] if near.inference_memory_GiB.notna().any() else None
    paying = ok[(ok.speedup > 1) & ok.psnr_db.notna() & ~ok.apply(is_baseline, axis=1)]
    faithful = paying.sort_values("psnr_db", ascending=False).iloc[0] if len(paying) else None
    group.loc[group.index == fastest.name, "configuration"] = "**" + fastest.configuration + "** (fastest)"
    if is_baseline(fastest):  # never "1.00x bf16 eager": a configuration is not compared with itself
        ratio = ", the bf16 eager baseline"
    else:
        ratio = f", {fastest.speedup:.2f}x bf16 eager" if fastest.speedup == fastest.speedup else ""
    picks = [f"fastest: {fastest.configuration} ({fastest.time_median_s:.3f} s{ratio})"]
    if leanest is not None:
        picks.append(f"least peak memory within {SLOWER_ALLOWED - 1:.0%} of the fastest: {leanest.configuration} "
                     f"({leanest.inference_memory_GiB:.2f} GiB)")
    if faithful is not None:
        picks.append(f"closest to bf16 among configurations faster than bf16 eager: {faithful.configuration} "
                     f"({faithful.psnr_db:.1f} dB)")
    return group, "What to pick — " + "; ".join(picks) + "."


def to_markdown(table: pd.DataFrame, columns: dict[str, str], text_columns=None, error_width: int = 60) -> str:
    """The columns of `table` under their headers, the error cut to `error_width`. With `text_columns`, those are
    left-aligned and the others right-aligned (also when blank); else tabulate aligns by content."""
    table = table.reindex(columns=list(columns))
    if "error" in table:
        table["error"] = [text[:error_width] if isinstance(text, str) else None for text in table["error"]]
    align = {} if text_columns is None else {"colalign": ["left" if name in text_columns else "right"
                                                         for name in columns]}
    table = table.astype(object).where(table.notna(), None).rename(columns=columns)
    return table.to_markdown(index=False, floatfmt=".3f", missingval="", **align)


GROUP_TABLE = {"configuration": "configuration", "time_median_s": "median s", "time_min_s": "min s",
               "time_max_s": "max s", "speedup": "speedup", "compile_s": "compile s", "model_memory_GiB": "model GiB",
               "inference_memory_GiB": "peak GiB", "psnr_db": "PSNR dB", "latent_rel_l2": "latent rel L2",
               "status": "status", "error": "error", "git_sha": "sha"}


def render_group_table(group: pd.DataFrame) -> str:
    group = group.assign(compile_s=[compile_seconds(row) for _, row in group.iterrows()])
    return to_markdown(group, GROUP_TABLE, text_columns=("configuration", "status", "error", "git_sha"))


def render_output_changing(cached: pd.DataFrame, baseline_s: float) -> list[str]:
    """A group's step-cached rows, apart from the others, with the same columns."""
    sections = []
    for lever in dict.fromkeys(output_changing_lever(row) for _, row in cached.iterrows()):
        rows = cached[[output_changing_lever(row) is lever for _, row in cached.iterrows()]]
        table = render_group_table(with_labels(rows, baseline_s).sort_values("time_median_s", na_position="last"))
        sections += ["", f"### {lever.SECTION_TITLE}", "", lever.SECTION_NOTE, "", table]
    return sections


def render_benchmark(frame: pd.DataFrame, csv_path: Path, plot_dir: Path) -> list[str]:
    sections = []
    frame = frame.assign(configuration=[describe(row) for _, row in frame.iterrows()])
    for index, (key, group) in enumerate(frame.groupby(GROUP_COLUMNS, dropna=False, sort=False)):
        group, left_out = newest_runs(group, BENCHMARK_CONFIGURATION, Row)
        group, cached = split_output_changing(group)  # the headline table, picks and plot never mix them in
        title = group_title(key)
        sections += ["", f"## {title}"]
        if len(group):
            table, picks = summarize_group(group)
            sections += ["", picks, "", render_group_table(table)]
            if (table.status == "ok").sum() >= 2:
                plot_path = plot_dir / f"{csv_path.stem}-{index}.png"
                plot_group(table, title, plot_path, [describe(row) for _, row in table.iterrows()])
                sections += ["", f"![{title}]({Path('plots') / plot_path.name})"]
        if len(cached):
            sections += render_output_changing(cached, baseline_median_s(group))
        sections += left_out_note(left_out)
    return sections + ["", LEGEND, ""]


LADDER_NOTE = """A cumulative ladder: each step adds one lever (the lever column) to its base step; gain = base median /
this median; speedup = the bf16 eager row's median / this median. Steps, levers and bases come from the ladder grid
file the sweep ran (inference/grids/)."""
LADDER_TABLE = {"step": "step", "lever": "lever", "base_step": "base", "configuration": "configuration",
                "time_median_s": "median s", "gain": "gain", "speedup": "speedup", "compile_s": "compile s",
                "inference_memory_GiB": "peak GiB", "psnr_db": "PSNR dB", "status": "status", "error": "error",
                "git_sha": "sha"}


def render_ladder(frame: pd.DataFrame) -> list[str]:
    sections = []
    frame = frame.assign(configuration=[describe(row) for _, row in frame.iterrows()])
    for key, group in frame.groupby(GROUP_COLUMNS, dropna=False, sort=False):
        group, left_out = newest_runs(group, BENCHMARK_CONFIGURATION, Row)  # a step run again: its newest run
        group, cached = split_output_changing(group)  # step-cached rows change the output: not a step of the ladder
        baseline_s = baseline_median_s(group)
        group = with_labels(group.sort_values("step", kind="stable"), baseline_s)
        medians = dict(zip(group.step, group.time_median_s.where(group.status == "ok")))
        group = group.assign(gain=[medians.get(base, float("nan")) / median
                                   for base, median in zip(group.base_step, group.time_median_s)],
                             compile_s=[compile_seconds(row) for _, row in group.iterrows()],
                             step=group.step.astype("Int64"), base_step=group.base_step.astype("Int64"))
        table = to_markdown(group, LADDER_TABLE, text_columns=("lever", "configuration", "status", "error", "git_sha"),
                            error_width=80)
        sections += ["", f"## {group_title(key)}", "", table, *left_out_note(left_out)]
        if len(cached):
            sections += render_output_changing(cached, baseline_s)
    return sections + ["", LADDER_NOTE, "", LEGEND, ""]


TRAIN_GROUP_COLUMNS = ["model", "gpu", "weights", "method", "rank", "transformer_blocks", "resolution", "batch_size",
                       "gradient_checkpointing"]
TRAIN_LEGEND = """Columns: steps = optimizer steps run; step median/min/max s = one optimizer step (forward, backward,
optimizer) after the warm-up steps, timed with CUDA events; speedup = the bf16 row (fp8 off) of otherwise the same
configuration (compile, attention, steps, ...) / this row;
compile s = first step minus the median; peak GiB = peak allocated during the timed steps (transformer, LoRA or
full weights, optimizer state, activations; the text encoders and VAE are gone by then). Rows with weights=random
train the real architecture from random weights: step time and memory are real, the loss only shows that the
optimization moves. The CSV has every column, including each step's loss and the exact command."""
TRAIN_TABLE = {"fp8": "fp8", "compile": "compiled", "attention_backend": "attention", "max_steps": "steps",
               "step_median_s": "step median s", "step_min_s": "min s", "step_max_s": "max s", "speedup": "speedup",
               "images_per_s": "images/s", "compile_s": "compile s", "peak_memory_GiB": "peak GiB",
               "loss": "loss first → last", "reload_max_abs_diff": "LoRA reload max diff", "status": "status",
               "error": "error", "git_sha": "sha"}


# What was run (the columns between the kind and the measurements, less the layer and parameter counts the code
# derived, which change between versions): two rows with the same values are the same configuration; the
# speedup's reference is the row with the same values but fp8 off.
TRAIN_COLUMNS = columns_of(TrainRow)
WHAT_TRAINED = TRAIN_COLUMNS[TRAIN_COLUMNS.index("model"):TRAIN_COLUMNS.index("load_s")]
TRAIN_CONFIGURATION = ["gpu", *(name for name in WHAT_TRAINED if name not in ("n_layers_fp8", "n_trainable_params"))]
BUT_FP8 = [column for column in TRAIN_CONFIGURATION if column not in ("fp8", "fp8_emulate")]


def render_training_group(group: pd.DataFrame) -> str:
    def same_but_fp8(row) -> str:
        return "|".join(str(row[column]) for column in BUT_FP8)

    bf16 = {same_but_fp8(row): row.step_median_s for _, row in group.iterrows()
            if row.fp8 == "off" and row.status == "ok"}
    group = group.assign(
        speedup=[bf16.get(same_but_fp8(row), float("nan")) / row.step_median_s for _, row in group.iterrows()],
        loss=[f"{row.loss_first:.3f} → {row.loss_last:.3f}" if row.loss_first == row.loss_first else None
              for _, row in group.iterrows()])
    return to_markdown(group.sort_values("step_median_s", na_position="last"), TRAIN_TABLE)


def loss_curves(group: pd.DataFrame) -> dict[str, list[float]]:
    return {f"{row.fp8} · {row.attention_backend}": [float(value) for value in str(row.losses).split()]
            for _, row in group[group.status == "ok"].iterrows()}


def render_training(frame: pd.DataFrame, csv_path: Path, plot_dir: Path) -> list[str]:
    frame = frame.assign(attention_backend=frame.attention_backend.fillna("default"))
    sections = []
    for index, (key, group) in enumerate(frame.groupby(TRAIN_GROUP_COLUMNS, dropna=False, sort=False)):
        model, gpu, weights, method, rank, blocks, resolution, batch, checkpointing = key
        what = f"LoRA rank {int(rank)}" if method == "lora" else f"full fine-tune, {blocks} blocks"
        title = (f"{model} · {what} · {resolution} · batch {int(batch)}"
                 f"{' · gradient checkpointing' if checkpointing else ''} · {gpu} · {weights} weights")
        group, left_out = newest_runs(group, TRAIN_CONFIGURATION, TrainRow)
        sections += ["", f"## {title}", "", render_training_group(group), *left_out_note(left_out)]
        if (group.status == "ok").any() and group.losses.notna().any():
            plot_path = plot_dir / f"{csv_path.stem}-{index}.png"
            plot_losses(loss_curves(group), title, plot_path)
            sections += ["", f"![loss curves]({Path('plots') / plot_path.name})"]
    return sections + ["", TRAIN_LEGEND, ""]


QUANTIZATION_TIME_NOTES = [
    "`seconds` is the quantize (+ move) step only: the bf16 model is built on the CPU first and CUDA is initialized "
    "before the clock starts. `peak GiB` is `torch.cuda.max_memory_allocated` during that step, `after GiB` what the "
    "quantized model holds. Each way ran in its own process. Rows on the CPU have no memory columns: there the three "
    "ways do the same work.",
    "The last two columns are **the seed's published figures** (its README, int8 weight-only, its GPU and torchao "
    "release), copied for comparison beside our FLUX.1-dev int8wo rows; they were not measured here. The seed does "
    "not say which model or how its peak was measured: FLUX.1-dev's transformer has 11.9 B parameters, 22.2 GiB in "
    "bf16 and half that in int8 (the `after GiB` column), more than the seed's 14.50 GiB (move, then quantize) and "
    "6.99 GiB (quantize on the CPU), so its figures cannot be the peak of this whole transformer on the GPU.",
]


QUANTIZATION_TIME_CONFIGURATION = ["gpu", "torchao_version", "model", "weights", "device", "quantization", "method"]


def render_quantization_time(frame: pd.DataFrame) -> list[str]:
    """Every configuration's newest run, with the seed's figures in their own columns (FLUX.1-dev int8wo only)."""
    frame, left_out = newest_runs(frame, QUANTIZATION_TIME_CONFIGURATION, QuantTimeRow)
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
    return ["", *(f"{note}\n" for note in QUANTIZATION_TIME_NOTES),
            table.to_markdown(index=False, floatfmt=".2f", missingval=""), *left_out_note(left_out), ""]


def regenerate_command(csv_path: Path) -> str:
    """The command that rewrites the CSV's markdown, run in the repository root: the CSV's path from there when it
    is inside the repository, else its absolute path."""
    path = csv_path.resolve()
    return f"python -m utils.report {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}"


def render_file(csv_path: Path, plot_dir: Path | None = None) -> Path:
    """Write <csv>.md (and one PNG per group with at least two finished rows); returns the markdown path."""
    plot_dir = plot_dir or csv_path.parent / "plots"
    frame = read_rows(csv_path)
    kind = frame.kind.iloc[0] if len(frame) else "benchmark"
    interrupted = frame.status == "interrupted"  # a stopped sweep's rows: in the CSV, never in a table or pick
    frame = frame[~interrupted]
    if kind == "training":
        body = render_training(frame, csv_path, plot_dir)
    elif kind == "quantization_time":
        body = render_quantization_time(frame)
    elif frame.step.notna().any():
        body = render_ladder(frame)
    else:
        body = render_benchmark(frame, csv_path, plot_dir)
    header = [f"# {csv_path.stem}", "",
              f"<!-- generated by `{regenerate_command(csv_path)}` in the repository root; do not edit -->"]
    if interrupted.any():
        header += ["", f"Left out: {interrupted.sum()} unfinished row(s) of an interrupted sweep (status interrupted; "
                       "the CSV has them)."]
    markdown_path = csv_path.with_suffix(".md")
    with atomic_path(markdown_path) as partial:
        partial.write_text("\n".join(header + body))
    return markdown_path


def main(argv=None) -> int:
    parser = Parser(prog="report", description="Render results CSVs into markdown tables and plots.")
    parser.add_argument("csv", nargs="+", type=Path, help="results CSV files (the tables go beside each, as .md)")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.csv if not path.is_file()]
    if missing:
        print(f"report: error: no such CSV: {', '.join(missing)}", file=sys.stderr)
        return 2
    not_csv = [str(path) for path in args.csv if path.suffix != ".csv"]
    if not_csv:  # its .md would be the file itself, or sit where a user does not expect it
        print(f"report: error: not a .csv file: {', '.join(not_csv)}", file=sys.stderr)
        return 2
    try:
        for path in args.csv:  # every file is checked before any is rendered
            if read_rows(path).empty:
                raise CsvError(f"{path} line 2: no rows to render")
        for path in args.csv:
            print(f"wrote {render_file(path)}")
    except (UsageError, OSError) as error:  # a bad CSV, an unreadable file or an unwritable folder
        print(f"report: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
