"""Benchmark rows in the reports: one section per model, GPU, weights, batch size, output size and step count; in it,
one table whose speedups divide by the bf16 eager row of the row's own campaign, one "what to pick" line per
campaign, a plot, and the rows a step cache made differ from the model's in a section of their own. Rows with a
ladder step render as a cumulative ladder; memory measurements (--memory_only) as a memory table."""

from pathlib import Path

import pandas as pd

from utils.levers import compilation
from utils.levers.base import is_set
from utils.optimize import describe, output_changing_lever
from utils.pipelines import component_parameters, weight_bytes
from utils.plots import plot_group
from utils.presets import get_preset
from utils.report_campaigns import cache_state
from utils.report_tables import NO_RATIO, left_out_note, newest_runs, ratio_cells, time_ratio, to_markdown
from utils.results import Row, RunColumns, columns_of
from utils.timing import GiB

GROUP_COLUMNS = ["model", "gpu", "weights", "batch_size", "height", "width", "num_frames", "num_inference_steps",
                 "memory_only"]
SLOWER_ALLOWED = 1.05  # "lowest memory" may be at most this much slower than the fastest row
# What makes two benchmark rows the same configuration: what ran and the levers' labels (not the commands, which
# differ in output paths, run counts and flag spellings).
BENCHMARK_CONFIGURATION = ["gpu", *columns_of(RunColumns), "step", "configuration"]

LEGEND = """Columns: campaign = the run the row came from (the table at the top); median/min/max s = end-to-end
pipeline call (text encoders + denoising + VAE decode) over the timed runs; speedup = the median of the bf16 eager
row of the same campaign / this median (— where that campaign ran none); compile s = first call minus the median,
less plan s (compiled rows only); trace s / backend s = torch's own counters of dynamo's tracing and of AOT
autograd + inductor (code generation and the wait for the kernels its workers build), summed over every graph the
process compiled (planning's too), so they need not add up to compile s; cache = how the compile caches started:
cold (empty inductor and Triton caches),
warm (a saved compile cache loaded), shared (caches holding what earlier runs compiled), ? (not recorded); plan s =
autoquant's planning or the int8 autotuner's search, not part of compile s (rows written before the column: an
autoquant plan's quantize step, and the autotuner's search is inside compile s); model GiB = GPU memory allocated
after load + fuse + quantize (+ offload); peak GiB = peak allocated during the timed runs; PSNR dB and latent rel L2
compare the decoded images and final latents with the eager output in the row's base precision (bf16, or fp16 where
the configuration says so), same weights and inputs (inf / 0 = identical). Rows with weights=random use the real
architecture with random weights: timing and memory are real, images are noise. The CSV has every column,
including the exact command, git sha and package versions of each row."""


def is_baseline(row) -> bool:
    """bf16 eager, the speedup reference: a row whose every lever is off (no lever labels it)."""
    return row.status == "ok" and describe(row) == "bf16"


def compiles(row) -> bool:
    return compilation.compiles_anything(row)


def baselines(group: pd.DataFrame) -> dict[str, float]:
    """unit -> the median of the unit's newest bf16 eager row in `group` (every row, those left out of the table
    too: a campaign's own reference stands even where a newer campaign measured bf16 again)."""
    found = {}
    for _, row in group.sort_values("timestamp", kind="stable").iterrows():
        if is_baseline(row) and output_changing_lever(row) is None:
            found[row.unit] = row.time_median_s
    return found


def with_speedups(group: pd.DataFrame, references: dict[str, float]) -> pd.DataFrame:
    return group.assign(configuration=[describe(row) for _, row in group.iterrows()],
                        speedup=[time_ratio(references.get(unit, float("nan")), median)
                                 for unit, median in zip(group.unit, group.time_median_s)])


def in_campaign_order(group: pd.DataFrame, labels: dict[str, str], by: str = "time_median_s") -> pd.DataFrame:
    order = {unit: position for position, unit in enumerate(labels)}
    return group.assign(_order=group.unit.map(order)).sort_values(["_order", by], na_position="last",
                                                                   kind="stable").drop(columns="_order")


def reference_line(group: pd.DataFrame, references: dict[str, float], labels: dict[str, str], shown) -> str:
    """Which bf16 eager median each campaign's speedups divide by, and which campaigns have none."""
    units = [unit for unit in labels if unit in set(group.unit)]
    with_reference = [f"{labels[unit]} {references[unit]:.3f} s" + ("" if unit in shown else " (a row left out below)")
                      for unit in units if unit in references]
    without = [labels[unit] for unit in units if unit not in references]
    text = ("Speedup divides by the bf16 eager median of the row's own campaign: " + "; ".join(with_reference) + "."
            if with_reference else "")
    if without:
        text += (" " if text else "") + (f"No bf16 eager row in {', '.join(without)}: "
                                         f"{'its' if len(without) == 1 else 'their'} speedup is {NO_RATIO}.")
    return text


def weights_line(group: pd.DataFrame, labels: dict[str, str]) -> str:
    """The bf16 eager rows' model memory against what the preset's parameters take at their precisions, so that a
    wrong kept config (a layer count, a width) shows up as a gap; "" for checkpoints that are not presets."""
    preset = get_preset(str(group.model.iloc[0])) if len(group) else None
    if preset is None:
        return ""
    rows = group[group.apply(is_baseline, axis=1) & group.model_memory_GiB.notna()]
    if rows.empty:
        return ""
    try:
        counts = component_parameters(preset)
    except Exception:  # noqa: BLE001 - a config the installed packages cannot build: no check, not a broken report
        return ""
    weights_GiB = sum(weight_bytes(preset, "bf16").values()) / GiB
    models = ", ".join(f"{name} {count / 1e9:.2f}" for name, count in counts.items())
    measured = "; ".join(f"{labels[unit]} {memory:.2f} GiB" for unit, memory in zip(rows.unit, rows.model_memory_GiB))
    return (f"Model memory against the parameter count: {sum(counts.values()) / 1e9:.2f} billion parameters ({models})"
            f" take {weights_GiB:.2f} GiB at their precisions; the bf16 eager rows allocate {measured} once loaded.")


NOISY_SPREAD = 1.5  # slowest over fastest timed call of one row


def spread_line(table: pd.DataFrame, labels: dict[str, str]) -> str:
    """The rows whose timed calls differ so much (a busy machine, clocks changing) that their medians, and the ratios
    and picks made from them, may move on a rerun; "" when there are none."""
    finished = (table.status == "ok") & (table.time_min_s > 0)
    noisy = table[finished & (table.time_max_s > NOISY_SPREAD * table.time_min_s)]
    if noisy.empty:
        return ""
    rows = "; ".join(f"{row.configuration} in {labels[row.unit]} ({row.time_max_s / row.time_min_s:.1f}x)"
                     for _, row in noisy.iterrows())
    return (f"Noisy timing: the slowest timed call took over {NOISY_SPREAD}x the fastest for {rows}; rerun on an idle "
            "machine before trusting their medians and speedups.")


def pick_lines(table: pd.DataFrame, labels: dict[str, str]) -> tuple[list[str], set]:
    """One "what to pick" line per campaign with two finished rows or more in the table (never across campaigns);
    returns the lines and the index of each campaign's fastest row."""
    lines, fastest_rows = [], set()
    for unit, label in labels.items():
        ok = table[(table.unit == unit) & (table.status == "ok")].sort_values("time_median_s")
        if len(ok) < 2:
            continue
        fastest = ok.iloc[0]
        fastest_rows.add(fastest.name)
        if is_baseline(fastest):  # never "1.00x bf16 eager": a configuration is not compared with itself
            ratio = ", the bf16 eager baseline"
        elif fastest.speedup == fastest.speedup:
            ratio = f", {fastest.speedup:.2f}x {label}'s bf16 eager"
        else:
            ratio = f", no bf16 eager in {label}"
        picks = [f"fastest: {fastest.configuration} ({fastest.time_median_s:.3f} s{ratio})"]
        near = ok[ok.time_median_s <= fastest.time_median_s * SLOWER_ALLOWED]
        if near.inference_memory_GiB.notna().any():
            leanest = near.sort_values("inference_memory_GiB").iloc[0]
            picks.append(f"least peak memory within {SLOWER_ALLOWED - 1:.0%} of the fastest: {leanest.configuration} "
                         f"({leanest.inference_memory_GiB:.2f} GiB)")
        paying = ok[(ok.speedup > 1) & ok.psnr_db.notna() & ~ok.apply(is_baseline, axis=1)]
        if len(paying):
            faithful = paying.sort_values("psnr_db", ascending=False).iloc[0]
            picks.append(f"closest to bf16 among configurations faster than bf16 eager: {faithful.configuration} "
                         f"({faithful.psnr_db:.1f} dB)")
        lines.append(f"What to pick in {label} — " + "; ".join(picks) + ".")
    return lines, fastest_rows


GROUP_TABLE = {"campaign_label": "campaign", "configuration": "configuration", "time_median_s": "median s",
               "time_min_s": "min s", "time_max_s": "max s", "speedup": "speedup", "compile_s": "compile s",
               "compile_trace_s": "trace s", "compile_backend_s": "backend s", "cache": "cache", "plan_s": "plan s",
               "model_memory_GiB": "model GiB",
               "inference_memory_GiB": "peak GiB", "psnr_db": "PSNR dB", "latent_rel_l2": "latent rel L2",
               "status": "status", "error": "error"}
TEXT_COLUMNS = ("campaign_label", "configuration", "cache", "status", "error", "lever")


def table_cells(table: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """The columns as the tables print them: campaign labels, compile time and cache state for compiled rows only,
    ratios as text."""
    rows = [row for _, row in table.iterrows()]
    compiled = [compiles(row) for row in rows]
    finished = list(table.status == "ok")
    return table.assign(campaign_label=table.unit.map(labels),
                        compile_s=[row.compile_s if flag else None for flag, row in zip(compiled, rows)],
                        cache=[cache_state(row, flag) for flag, row in zip(compiled, rows)],
                        speedup=ratio_cells(table.speedup, finished),
                        **({"gain": ratio_cells(table.gain, finished)} if "gain" in table else {}))


# left out of a table where every row has them blank
OPTIONAL = ("plan_s", "cache", "compile_s", "compile_trace_s", "compile_backend_s")


def render_rows(table: pd.DataFrame, labels: dict[str, str], columns: dict[str, str] = GROUP_TABLE) -> str:
    cells = table_cells(table, labels)
    columns = {name: header for name, header in columns.items()
               if name not in OPTIONAL or cells[name].notna().any()}
    return to_markdown(cells, columns, text_columns=TEXT_COLUMNS, error_width=80 if "step" in columns else 60)


def render_output_changing(cached: pd.DataFrame, references: dict[str, float], labels: dict[str, str]) -> list[str]:
    """A group's step-cached rows, apart from the others, with the same columns."""
    sections = []
    for lever in dict.fromkeys(output_changing_lever(row) for _, row in cached.iterrows()):
        rows = cached[[output_changing_lever(row) is lever for _, row in cached.iterrows()]]
        table = in_campaign_order(with_speedups(rows, references), labels)
        noisy = spread_line(table, labels)
        sections += ["", f"### {lever.SECTION_TITLE}", "", lever.SECTION_NOTE, *(["", noisy] if noisy else []), "",
                     render_rows(table, labels)]
    return sections


def split_output_changing(group: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows that compute the model's output, rows a lever such as a step cache made differ from it)."""
    changed = [output_changing_lever(row) is not None for _, row in group.iterrows()]
    return group[[not flag for flag in changed]], group[changed]


def group_title(key: tuple) -> str:
    model, gpu, weights, batch, height, width, frames, steps, memory_only = key
    size = f"{int(height)}x{int(width)}" + (f", {int(frames)} frames" if frames == frames and frames else "")
    what = " · memory measurements" if is_set(memory_only) else ""
    return f"{model} · batch {int(batch)} · {size} · {int(steps)} steps · {gpu} · {weights} weights{what}"


def groups(frame: pd.DataFrame):
    frame = frame.assign(memory_only=[is_set(value) for value in frame.memory_only])
    return enumerate(frame.groupby(GROUP_COLUMNS, dropna=False, sort=False))


def plot_rows(table: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """What the plots draw: the finished rows, in table order, with their printed values."""
    finished = table.status == "ok"
    ok = table_cells(table, labels)[finished]
    return ok.assign(speedup=table.speedup[finished],
                     configuration=[describe(row) for _, row in table[finished].iterrows()])


def render_table(model_rows: pd.DataFrame, group: pd.DataFrame, references: dict[str, float],
                 labels: dict[str, str], plot_path: Path, title: str) -> list[str]:
    """One group's table of model rows: which bf16 eager rows divide, the weights check, the picks, the rows, the
    plot."""
    table = in_campaign_order(with_speedups(model_rows, references), labels)
    shown = set(model_rows.unit[model_rows.apply(is_baseline, axis=1)])
    line = reference_line(group, references, labels, shown)
    picks, fastest = pick_lines(table, labels)
    noisy = spread_line(table, labels)
    table = table.assign(configuration=[f"**{name}** (fastest in {labels[unit]})" if position in fastest
                                        else name for position, name, unit in
                                        zip(table.index, table.configuration, table.unit)])
    weights = weights_line(model_rows, labels)
    sections = ["", line, *(["", weights] if weights else []), *(["", *picks] if picks else []),
                *(["", noisy] if noisy else []), "", render_rows(table, labels)]
    if (table.status == "ok").sum() >= 2:
        plot_group(plot_rows(table, labels), title, plot_path)
        sections += ["", f"![{title}]({Path('plots') / plot_path.name})"]
    return sections


def render_benchmark(frame: pd.DataFrame, csv_path: Path, plot_dir: Path, labels: dict[str, str]) -> list[str]:
    from utils.report_memory import render_memory_group

    sections = []
    frame = frame.assign(configuration=[describe(row) for _, row in frame.iterrows()])
    for index, (key, group) in groups(frame):
        title = group_title(key)
        sections += ["", f"## {title}"]
        references = baselines(group)
        kept, left_out = newest_runs(group, BENCHMARK_CONFIGURATION, Row)
        if is_set(key[-1]):
            sections += render_memory_group(kept, labels, plot_dir / f"{csv_path.stem}-{index}.png", title)
        else:
            model_rows, cached = split_output_changing(kept)  # the table, picks and plot never mix them in
            if len(model_rows):
                sections += render_table(model_rows, group, references, labels,
                                         plot_dir / f"{csv_path.stem}-{index}.png", title)
            if len(cached):
                sections += render_output_changing(cached, references, labels)
        sections += left_out_note(left_out, describe, labels, group)
    return sections + ["", LEGEND, ""]


LADDER_NOTE = """A cumulative ladder: each step adds one lever (the lever column) to its base step; gain = the base
step's median / this median, speedup = the bf16 eager step's median / this median, both only where the other row
is of the same campaign (— otherwise). Steps, levers and bases come from the ladder grid file the sweep ran
(inference/grids/)."""
LADDER_TABLE = {"step": "step", "lever": "lever", "base_step": "base", "campaign_label": "campaign",
                "configuration": "configuration", "time_median_s": "median s", "gain": "gain", "speedup": "speedup",
                "compile_s": "compile s", "compile_trace_s": "trace s", "compile_backend_s": "backend s",
                "cache": "cache", "inference_memory_GiB": "peak GiB", "psnr_db": "PSNR dB",
                "status": "status", "error": "error"}


def render_ladder(frame: pd.DataFrame, labels: dict[str, str]) -> list[str]:
    sections = []
    frame = frame.assign(configuration=[describe(row) for _, row in frame.iterrows()])
    for _, (key, group) in groups(frame):
        references = baselines(group)
        kept, left_out = newest_runs(group, BENCHMARK_CONFIGURATION, Row)  # a step run again: its newest run
        steps, cached = split_output_changing(kept)  # step-cached rows change the output: not a step of the ladder
        steps = with_speedups(steps.sort_values("step", kind="stable"), references)
        medians = {(step, unit): median for step, unit, median, status in
                   zip(steps.step, steps.unit, steps.time_median_s, steps.status) if status == "ok"}
        steps = steps.assign(gain=[time_ratio(medians.get((base, unit), float("nan")), median)
                                   for base, unit, median in zip(steps.base_step, steps.unit, steps.time_median_s)],
                             step=steps.step.astype("Int64"), base_step=steps.base_step.astype("Int64"))
        shown = set(steps.unit[steps.apply(is_baseline, axis=1)]) if len(steps) else set()
        noisy = spread_line(steps, labels)
        sections += ["", f"## {group_title(key)}", "", reference_line(group, references, labels, shown),
                     *(["", noisy] if noisy else []), "", render_rows(steps, labels, LADDER_TABLE)]
        if len(cached):
            sections += render_output_changing(cached, references, labels)
        sections += left_out_note(left_out, describe, labels, group)
    return sections + ["", LADDER_NOTE, "", LEGEND, ""]
