"""Render results CSVs into markdown next to them, with plots under results/plots/:

    python -m utils.report results/flux-dev.csv [more.csv ...]     # writes results/flux-dev.md + plots
    python -m utils.report results/*.csv

One table per model, GPU, weights, batch size and output size, sorted by time, with the speedup against the
bf16-eager row of the same group, and a "what to pick" line computed from the rows. Rows with opt-in step caching
(`--step_cache`, which changes the output) get their own section under their group and stay out of the rest.
A CSV named `*-ladder.csv` is rendered as a cumulative ladder instead: rows in run order, each with the lever it adds.
"""

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from utils.files import atomic_path
from utils.results import read_rows

GROUP_COLUMNS = ["model", "gpu", "weights", "batch_size", "height", "width", "num_frames", "num_inference_steps"]
SLOWER_ALLOWED = 1.05  # "lowest memory" may be at most this much slower than the fastest row

LEGEND = """Columns: median/min/max s = end-to-end pipeline call (text encoders + denoising + VAE decode) over the timed
runs; speedup = the group's bf16 eager median / this median; compile s = first call minus the median (compiled
rows only); model GiB = GPU memory allocated after load + fuse + quantize (+ offload); peak GiB = peak allocated
during the timed runs; PSNR dB and latent rel L2 compare the decoded images and final latents with the eager output
in the base precision, same weights and inputs (inf / 0 = identical). Rows with weights=random use the real
architecture with random weights: timing and memory are real, images are noise. The CSV has every column,
including the exact command, git sha and package versions of each row."""


def is_set(value) -> bool:
    """A boolean column's value is True (CSVs written before the column existed leave it empty)."""
    return isinstance(value, (bool, np.bool_)) and bool(value)


def describe(row) -> str:
    """A short label for the levers of one row."""
    base = str(row["dtype"]).replace("bfloat16", "bf16")
    parts = [base if row.quantization == "None" else row.quantization + ("" if base == "bf16" else f" ({base} base)")]
    plan = row.get("autoquant")
    if row.quantization == "autoquant" and isinstance(plan, str) and plan:  # "planned: 172 fp8dqrow, ... (20 groups)"
        parts[0] += f" ({plan.split(' (')[0]})"
    if row.quantize_text_encoders:
        parts.append("+text enc")
    if row.quantize_vae:
        parts.append("+VAE")
    if row.sparsify:
        parts.append("2:4 sparse")
    if row.fuse_attn_projections:
        parts.append("fused QKV")
    if row.compile:
        mode = f" ({row.compile_mode})" if isinstance(row.compile_mode, str) and row.compile_mode else ""
        parts.append(f"{'regional ' if row.regional_compile else ''}compile{mode}")
    if row.compile_vae:
        parts.append("compiled VAE")
    if is_set(row.get("compile_text_encoders")):
        parts.append("compiled text enc")
    if isinstance(row.get("attention_backend"), str) and row.attention_backend not in ("", "default"):
        parts.append(f"{row.attention_backend.strip('_')} attention")
    if is_set(row.get("channels_last")):
        parts.append("channels_last VAE")
    if isinstance(row.get("int8_autotuner"), str) and row.int8_autotuner:
        parts.append(f"int8 autotuner ({row.int8_autotuner})")
    if row.get("compile_cache") == "cold":
        parts.append("cold start, compile cache written")
    if row.get("compile_cache") == "warm":
        parts.append("warm start from the compile cache")
    if row.offload not in ("none", None) and row.offload == row.offload:
        parts.append(f"{row.offload} offload")
    if row.vae_tiling:
        parts.append("VAE tiling")
    if row.vae_slicing:
        parts.append("VAE slicing")
    if uses_step_cache(row):
        threshold = row.get("step_cache_threshold")
        parts.append(f"{row.step_cache} step cache" + (f" (threshold {threshold:g})" if pd.notna(threshold) else ""))
    return ", ".join(parts)


def uses_step_cache(row) -> bool:
    """Opt-in step caching (changes the output); CSVs written before the column existed had none."""
    return isinstance(row.get("step_cache"), str) and row.get("step_cache") not in ("", "none")


def split_step_cached(group: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows without step caching, rows with it)."""
    cached = [uses_step_cache(row) for _, row in group.iterrows()]
    return group[[not flag for flag in cached]], group[cached]


def is_baseline(row) -> bool:
    # Rows written before the video script existed spell the dtype "bfloat16".
    return (row.status == "ok" and row.quantization == "None" and str(row["dtype"]) in ("bf16", "bfloat16")
            and not row.compile and not uses_step_cache(row)
            and not row.fuse_attn_projections and not row.sparsify and row.offload in ("none", None))


def compiles_something(row) -> bool:
    return bool(row.compile) or is_set(row.get("compile_vae")) or is_set(row.get("compile_text_encoders"))


def compile_seconds(row):
    """compile s is the first call minus the median; for an uncompiled row that is only warm-up noise."""
    return row.compile_s if compiles_something(row) else None


def baseline_median_s(group: pd.DataFrame) -> float:
    """The median time of the group's (last) bf16 eager row: the speedup reference."""
    times = [row.time_median_s for _, row in group.iterrows() if is_baseline(row)]
    return times[-1] if times else float("nan")


def group_title(key: tuple) -> str:
    model, gpu, weights, batch, height, width, frames, steps = key
    size = f"{int(height)}x{int(width)}" + (f", {int(frames)} frames" if frames == frames and frames else "")
    return f"{model} · batch {int(batch)} · {size} · {int(steps)} steps · {gpu} · {weights} weights"


def summarize_group(group: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The group's table (sorted by time, speedup column, best row marked) and its "what to pick" line."""
    group = group.copy()
    group["configuration"] = [describe(row) for _, row in group.iterrows()]
    group["speedup"] = baseline_median_s(group) / group.time_median_s
    group = group.sort_values("time_median_s", na_position="last")
    ok = group[group.status == "ok"]
    if ok.empty:
        return group, "No configuration finished."
    fastest = ok.iloc[0]
    near = ok[ok.time_median_s <= fastest.time_median_s * SLOWER_ALLOWED]
    leanest = near.sort_values("inference_memory_GiB").iloc[0] if near.inference_memory_GiB.notna().any() else None
    paying = ok[(ok.speedup > 1) & ok.psnr_db.notna() & ~ok.apply(is_baseline, axis=1)]
    faithful = paying.sort_values("psnr_db", ascending=False).iloc[0] if len(paying) else None
    group.loc[group.index == fastest.name, "configuration"] = "**" + fastest.configuration + "** (fastest)"
    picks = [f"fastest: {fastest.configuration} ({fastest.time_median_s:.3f} s"
             + (f", {fastest.speedup:.2f}x bf16 eager)" if fastest.speedup == fastest.speedup else ")")]
    if leanest is not None:
        picks.append(f"least peak memory within {SLOWER_ALLOWED - 1:.0%} of the fastest: {leanest.configuration} "
                     f"({leanest.inference_memory_GiB:.2f} GiB)")
    if faithful is not None:
        picks.append(f"closest to bf16 among configurations faster than bf16 eager: {faithful.configuration} "
                     f"({faithful.psnr_db:.1f} dB)")
    return group, "What to pick — " + "; ".join(picks) + "."


STEP_CACHE_TITLE = "Step caching (opt-in, changes the output)"
STEP_CACHE_NOTE = """These rows skip computation in some denoising steps (diffusers cache hooks, `--step_cache`), so
their output differs from the model's: the PSNR and latent rel L2 columns say by how much. Speedup is against the
bf16 eager row above. They are never in the table, the picks or the plot above."""


def render_step_cache_section(cached: pd.DataFrame, baseline_s: float) -> list[str]:
    """A group's step-cached rows, apart from the others, with the same columns."""
    cached = cached.copy()
    cached["configuration"] = [describe(row) for _, row in cached.iterrows()]
    cached["speedup"] = baseline_s / cached.time_median_s
    table = render_group_table(cached.sort_values("time_median_s", na_position="last"))
    return ["", f"### {STEP_CACHE_TITLE}", "", STEP_CACHE_NOTE, "", table]


def render_group_table(group: pd.DataFrame) -> str:
    columns = {"configuration": "configuration", "time_median_s": "median s", "time_min_s": "min s",
               "time_max_s": "max s", "speedup": "speedup", "compile_s": "compile s",
               "model_memory_GiB": "model GiB", "inference_memory_GiB": "peak GiB", "psnr_db": "PSNR dB",
               "latent_rel_l2": "latent rel L2", "status": "status", "error": "error", "git_sha": "sha"}
    group = group.assign(compile_s=[compile_seconds(row) for _, row in group.iterrows()])
    table = group[list(columns)].copy()
    table["error"] = [text[:60] if isinstance(text, str) else None for text in table["error"]]
    text_columns = ("configuration", "status", "error", "git_sha")
    align = ["left" if name in text_columns else "right" for name in columns]  # an all-blank number column too
    table = table.astype(object).where(table.notna(), None).rename(columns=columns)
    return table.to_markdown(index=False, floatfmt=".3f", missingval="", colalign=align)


def plot_group(group: pd.DataFrame, title: str, path: Path) -> None:
    """Three panels: latency vs peak memory (marker = compiled or not), speedup bars, fidelity vs speedup."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = group[group.status == "ok"].sort_values("time_median_s")
    figure, (memory_axis, speedup_axis, fidelity_axis) = plt.subplots(1, 3, figsize=(17, 5))
    colors = {name: f"C{index}" for index, name in enumerate(sorted(ok.quantization.unique()))}
    for _, row in ok.iterrows():
        marker = "o" if not row.compile else ("s" if row.fuse_attn_projections else "^")
        memory_axis.scatter(row.inference_memory_GiB, row.time_median_s, color=colors[row.quantization],
                            marker=marker, s=60)
        fidelity_axis.scatter(row.speedup, min(row.psnr_db, 60), color=colors[row.quantization], marker=marker, s=60)
    for name, color in colors.items():
        memory_axis.scatter([], [], color=color, label=name)
    for marker, label in [("o", "eager"), ("^", "compiled"), ("s", "compiled + fused QKV")]:
        memory_axis.scatter([], [], color="gray", marker=marker, label=label)
    memory_axis.set(xlabel="peak GPU memory (GiB)", ylabel="median end-to-end time (s)", title="time vs memory")
    memory_axis.legend(fontsize=8)
    speedup_axis.barh(range(len(ok)), ok.speedup, color=[colors[q] for q in ok.quantization])
    speedup_axis.set_yticks(range(len(ok)), [describe(row)[:60] for _, row in ok.iterrows()], fontsize=7)
    speedup_axis.axvline(1.0, color="black", linewidth=0.8)
    speedup_axis.invert_yaxis()
    speedup_axis.set(xlabel="speedup vs bf16 eager", title="speedup")
    fidelity_axis.set(xlabel="speedup vs bf16 eager", ylabel="PSNR vs bf16 eager (dB, identical shown as 60)",
                      title="fidelity vs speed")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as partial:
        figure.savefig(partial, dpi=90)
    plt.close(figure)


TRAIN_GROUP_COLUMNS = ["model", "gpu", "weights", "method", "rank", "transformer_blocks", "resolution", "batch_size",
                       "gradient_checkpointing"]
TRAIN_LEGEND = """Columns: step median/min/max s = one optimizer step (forward, backward, optimizer) after the warm-up steps,
timed with CUDA events; speedup = the bf16 row (fp8 off) with the same compile and attention settings / this row;
compile s = first step minus the median; peak GiB = peak allocated during the timed steps (transformer, LoRA or
full weights, optimizer state, activations; the text encoders and VAE are gone by then). Rows with weights=random
train the real architecture from random weights: step time and memory are real, the loss only shows that the
optimization moves. The CSV has every column, including each step's loss and the exact command."""


def is_training_csv(frame: pd.DataFrame) -> bool:
    return {"method", "fp8", "step_median_s"} <= set(frame.columns)


def render_training_group(group: pd.DataFrame) -> str:
    group = group.copy()
    settings = ["compile", "attention_backend"]
    bf16 = group[(group.fp8 == "off") & (group.status == "ok")].groupby(settings).step_median_s.last()
    group["speedup"] = [bf16.get(tuple(row[settings]), float("nan")) / row.step_median_s for _, row in group.iterrows()]
    group["loss"] = [f"{row.loss_first:.3f} → {row.loss_last:.3f}" if row.loss_first == row.loss_first else None
                     for _, row in group.iterrows()]
    columns = {"fp8": "fp8", "compile": "compiled", "attention_backend": "attention", "step_median_s": "step median s",
               "step_min_s": "min s", "step_max_s": "max s", "speedup": "speedup", "images_per_s": "images/s",
               "compile_s": "compile s", "peak_memory_GiB": "peak GiB", "loss": "loss first → last",
               "reload_max_abs_diff": "LoRA reload max diff", "status": "status", "error": "error", "git_sha": "sha"}
    table = group.sort_values("step_median_s", na_position="last").reindex(columns=list(columns))
    table["error"] = [text[:60] if isinstance(text, str) else None for text in table["error"]]
    table = table.astype(object).where(table.notna(), None).rename(columns=columns)
    return table.to_markdown(index=False, floatfmt=".3f", missingval="")


def plot_losses(group: pd.DataFrame, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for _, row in group[group.status == "ok"].iterrows():
        losses = [float(value) for value in str(row.losses).split()]
        axis.plot(range(1, len(losses) + 1), losses, label=f"{row.fp8} · {row.attention_backend}", alpha=0.8)
    axis.set(xlabel="step", ylabel="loss", title=title)
    axis.title.set_fontsize(8)
    axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as partial:
        figure.savefig(partial, dpi=90)
    plt.close(figure)


def render_training(frame: pd.DataFrame, csv_path: Path, plot_dir: Path) -> list[str]:
    if "attention_backend" not in frame:
        frame["attention_backend"] = "default"
    frame["attention_backend"] = frame.attention_backend.fillna("default")
    sections = []
    for index, (key, group) in enumerate(frame.groupby(TRAIN_GROUP_COLUMNS, dropna=False, sort=False)):
        model, gpu, weights, method, rank, blocks, resolution, batch, checkpointing = key
        what = f"LoRA rank {int(rank)}" if method == "lora" else f"full fine-tune, {blocks} blocks"
        title = (f"{model} · {what} · {resolution} · batch {int(batch)}"
                 f"{' · gradient checkpointing' if checkpointing else ''} · {gpu} · {weights} weights")
        sections += ["", f"## {title}", "", render_training_group(group)]
        if (group.status == "ok").any() and group.losses.notna().any():
            plot_path = plot_dir / f"{csv_path.stem}-{index}.png"
            plot_losses(group, title, plot_path)
            sections += ["", f"![loss curves]({Path('plots') / plot_path.name})"]
    return sections + ["", TRAIN_LEGEND, ""]


def render_benchmark(frame: pd.DataFrame, csv_path: Path, plot_dir: Path) -> list[str]:
    sections = []
    for index, (key, group) in enumerate(frame.groupby(GROUP_COLUMNS, dropna=False, sort=False)):
        group, cached = split_step_cached(group)  # the headline table, picks and plot never mix them in
        title = group_title(key)
        sections += ["", f"## {title}"]
        if len(group):
            table, picks = summarize_group(group)
            sections += ["", picks, "", render_group_table(table)]
            if (table.status == "ok").sum() >= 2:
                plot_path = plot_dir / f"{csv_path.stem}-{index}.png"
                plot_group(table, title, plot_path)
                sections += ["", f"![{title}]({Path('plots') / plot_path.name})"]
        if len(cached):
            sections += render_step_cache_section(cached, baseline_median_s(group))
    return sections + ["", LEGEND, ""]


LADDER_UNCOUNTED_FLAGS = ("--csv", "--warmup", "--runs", "--profile")  # say how a row was measured, not what ran
LADDER_NOTE = """A cumulative ladder (a CSV named `*-ladder.csv`); steps are numbered in CSV row order. Each step is compared
with the earlier finished step it shares the most flags with (its base); lever = the flags it adds (+) or changes (→)
against that base; gain = base median / this median; speedup = the bf16 eager row's median / this median. A step
whose flags equal its base's reran it (e.g. under `--profile`)."""


def command_flags(command: str) -> dict[str, str]:
    """{flag: value} of a recorded command ("" for switches), without the flags that only say how it was measured."""
    if not isinstance(command, str):
        return {}
    words, flags, name = shlex.split(command)[2:], {}, None
    for word in words:
        if word.startswith("--"):
            name, _, value = word.partition("=")
            flags[name] = value
        elif name is not None:
            flags[name] = (flags[name] + " " + word).strip()
    return {flag: value for flag, value in flags.items() if flag not in LADDER_UNCOUNTED_FLAGS}


def lever(flags: dict[str, str], base: dict[str, str]) -> str:
    added = [f"+{flag} {value}".strip() for flag, value in flags.items() if flag not in base]
    changed = [f"{flag} {base[flag]} → {value}" for flag, value in flags.items() if flag in base and base[flag] != value]
    removed = [f"−{flag}" for flag in base if flag not in flags]
    return ", ".join(f"`{item}`" for item in added + changed + removed) or "(rerun of its base)"


def render_ladder(frame: pd.DataFrame) -> list[str]:
    sections = []
    for key, group in frame.groupby(GROUP_COLUMNS, dropna=False, sort=False):
        group, cached = split_step_cached(group)  # step-cached rows change the output: not a step of the ladder
        baseline_s = baseline_median_s(group)
        lines, finished = [], []  # finished: (step number, flags, median) of the ok steps so far
        for step, (_, row) in enumerate(group.iterrows(), start=1):
            flags = command_flags(row.command)
            base = max(finished, default=None, key=lambda done: (len(done[1].items() & flags.items()),
                                                                 -len(done[1].items() ^ flags.items()), done[0]))
            lines.append({"step": step, "lever": lever(flags, base[1]) if base else "(baseline)",
                          "base": str(base[0]) if base else None, "configuration": describe(row),
                          "median s": row.time_median_s,
                          "gain": base[2] / row.time_median_s if base else None,
                          "speedup": baseline_s / row.time_median_s, "compile s": compile_seconds(row),
                          "peak GiB": row.inference_memory_GiB, "PSNR dB": row.psnr_db, "status": row.status,
                          "error": row.error[:80] if isinstance(row.error, str) else None, "sha": row.git_sha})
            if row.status == "ok":
                finished.append((step, flags, row.time_median_s))
        table = pd.DataFrame(lines).astype(object)
        table = table.where(table.notna(), None)
        sections += ["", f"## {group_title(key)}", "", table.to_markdown(index=False, floatfmt=".3f", missingval="")]
        if len(cached):
            sections += render_step_cache_section(cached, baseline_s)
    return sections + ["", LADDER_NOTE, "", LEGEND, ""]


def render_file(csv_path: Path, plot_dir: Path | None = None) -> Path:
    """Write <csv>.md (and one PNG per group with at least two finished rows); returns the markdown path."""
    plot_dir = plot_dir or csv_path.parent / "plots"
    raw = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    if {"method", "seconds", "peak_GiB"} <= set(raw.columns):  # inference/quantization_time.py has its own table
        from inference.quantization_time import render_markdown

        text = render_markdown(csv_path)
    else:
        if is_training_csv(raw):
            body = render_training(raw, csv_path, plot_dir)
        elif csv_path.stem.endswith("-ladder"):
            body = render_ladder(read_rows(csv_path))
        else:
            body = render_benchmark(read_rows(csv_path), csv_path, plot_dir)
        header = [f"# {csv_path.stem}", "", f"<!-- generated by `python -m utils.report {csv_path.name}`; do not edit -->"]
        text = "\n".join(header + body)
    markdown_path = csv_path.with_suffix(".md")
    with atomic_path(markdown_path) as partial:
        partial.write_text(text)
    return markdown_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Render results CSVs into markdown tables and plots.")
    parser.add_argument("csv", nargs="+", type=Path, help="results CSV files")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.csv if not path.is_file()]
    if missing:
        print(f"report: error: no such CSV: {', '.join(missing)}", file=sys.stderr)
        return 2
    for path in args.csv:
        print(f"wrote {render_file(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
