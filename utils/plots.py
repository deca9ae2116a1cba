"""The PNG plots of the reports. A benchmark group: each row's median time with its min-max spread (speedup written
beside it, — where the row's campaign has no bf16 eager row), peak memory against time, compile time with how the
caches started (and planning apart), fidelity against time. Memory measurements: model and peak memory. Training:
loss curves. Every row is numbered as in the time panel; every axis of times and memory starts at zero."""

import textwrap
from pathlib import Path

import pandas as pd

from utils.files import atomic_path
from utils.levers.base import is_set, text

# One colour per quantization, the same in every plot; no quantization is named by its base precision.
QUANTIZATION_ORDER = ("bf16", "fp16", "int8wo", "int8dq", "int4wo", "int4dq", "fp8wo", "fp8dq", "fp8dqrow",
                      "autoquant")
CACHE_STYLE = {"cold": ("#1f4e79", ""), "warm": ("#9ecae1", ""), "shared": ("#6baed6", "//"), "?": ("#bdbdbd", "..")}
PLAN_COLOR = "#fd8d3c"
PSNR_CAP = 60.0  # identical outputs (inf) are drawn here
TITLE_WIDTH = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PNG_SOURCE = "utils.plots"  # the PNG text field "Source" of every plot written here: how a report knows its own


def save(figure, path: Path, dpi: int = 90) -> None:
    with atomic_path(path) as partial:
        # no version stamp: the PNG depends on the data only; "tight" keeps long row labels inside the image
        figure.savefig(partial, dpi=dpi, metadata={"Software": None, "Source": PNG_SOURCE}, bbox_inches="tight")
    _pyplot().close(figure)


def written_here(path: Path) -> bool:
    """Whether the PNG at `path` is a plot this module wrote (its Source text field)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return getattr(image, "text", {}).get("Source") == PNG_SOURCE
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return False


def quantization_name(row) -> str:
    """The quantization as the plots name it: the base precision when there is none."""
    name = text(row.get("quantization")) or "None"
    return (text(row.get("dtype")) or "bf16").replace("bfloat16", "bf16") if name == "None" else name


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#393b79", "#637939")  # no grey: grey is for the legend's shapes


def color_of(name: str) -> str:
    position = QUANTIZATION_ORDER.index(name) if name in QUANTIZATION_ORDER else len(QUANTIZATION_ORDER)
    return PALETTE[position % len(PALETTE)]


def marker_of(row) -> str:
    if not is_set(row.get("compile")):
        return "o"
    return "s" if is_set(row.get("fuse_attn_projections")) else "^"


def upper(*columns, margin: float = 1.15) -> float:
    """The top of an axis that starts at zero: the largest finite value times `margin` (1 when there is none)."""
    values = pd.concat([pd.to_numeric(column, errors="coerce") for column in columns])
    values = values[values.abs() < float("inf")].dropna()
    return float(values.max()) * margin if len(values) and values.max() > 0 else 1.0


def below(axis, **kwargs) -> None:
    """The legend under the axis, where it hides no point or bar."""
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.24), ncol=2, frameon=False, **kwargs)


def wrapped(title: str, width: int = TITLE_WIDTH) -> str:
    return "\n".join(textwrap.wrap(title, width))


def shared_parts(rows: pd.DataFrame) -> list[str]:
    """The parts of the configuration every row has (its labels are "part, part, ..."), in the first row's order."""
    parts = [name.split(", ") for name in rows.configuration]
    return [part for part in parts[0] if all(part in other for other in parts[1:])] if len(parts) > 1 else []


def number_labels(rows: pd.DataFrame, width: int = 66) -> list[str]:
    """"<n>. <campaign> · <configuration>", without the parts every row has (the panel's title names them)."""
    common = shared_parts(rows)
    labels = []
    for number, (campaign, name) in enumerate(zip(rows.campaign_label, rows.configuration), start=1):
        own = ", ".join(part for part in name.split(", ") if part not in common) or "(only those)"
        labels.append(f"{number}. {campaign} · {own if len(own) <= width else own[:width - 1] + '…'}")
    return labels


def common_title(rows: pd.DataFrame, title: str) -> str:
    common = shared_parts(rows)
    return title + (f"\nevery row: {', '.join(common)}" if common else "")


def time_panel(axis, rows: pd.DataFrame) -> None:
    positions = range(len(rows))
    low, high = rows.time_min_s.fillna(rows.time_median_s), rows.time_max_s.fillna(rows.time_median_s)
    spread = [(rows.time_median_s - low).clip(lower=0), (high - rows.time_median_s).clip(lower=0)]
    axis.barh(positions, rows.time_median_s, xerr=spread, capsize=2, error_kw={"linewidth": 0.8},
              color=[color_of(quantization_name(row)) for _, row in rows.iterrows()],
              hatch=None, edgecolor="black", linewidth=0.3)
    for bar, (_, row) in zip(axis.patches, rows.iterrows()):
        if is_set(row.get("sparsify")):
            bar.set_hatch("//")
    for position, (_, row), end in zip(positions, rows.iterrows(), high):
        ratio = "no ref." if row.speedup != row.speedup else f"{row.speedup:.2f}×"
        axis.text(end, position, f"   {ratio}", va="center", fontsize=7)
    axis.set_yticks(list(positions), number_labels(rows), fontsize=7)
    axis.invert_yaxis()
    axis.set_xlim(0, upper(high, margin=1.22))
    axis.set(xlabel="median end-to-end time (s); whiskers: min–max of the timed runs",
             title=common_title(rows, "time; beside each bar: speedup vs the bf16 eager row of its campaign "
                                      "(no ref.: it has none)"))
    axis.title.set_fontsize(9)


def memory_panel(axis, rows: pd.DataFrame) -> None:
    for number, (_, row) in enumerate(rows.iterrows(), start=1):
        sparse = is_set(row.get("sparsify"))
        color = color_of(quantization_name(row))
        axis.scatter(row.inference_memory_GiB, row.time_median_s, marker=marker_of(row), s=55,
                     facecolors="none" if sparse else color, edgecolors=color, linewidths=1.5)
        axis.annotate(str(number), (row.inference_memory_GiB, row.time_median_s), textcoords="offset points",
                      xytext=(4, 3), fontsize=7)
    for name in dict.fromkeys(quantization_name(row) for _, row in rows.iterrows()):
        axis.scatter([], [], color=color_of(name), label=name)
    for marker, label in [("o", "eager"), ("^", "compiled"), ("s", "compiled + fused QKV")]:
        axis.scatter([], [], color="gray", marker=marker, label=label)
    if any(is_set(value) for value in rows.get("sparsify", [])):
        axis.scatter([], [], facecolors="none", edgecolors="gray", label="2:4 sparse (hollow)")
    axis.set_xlim(0, upper(rows.inference_memory_GiB))
    axis.set_ylim(0, upper(rows.time_median_s))
    axis.set(xlabel="peak GPU memory (GiB)", ylabel="median time (s)", title="time vs peak memory (numbers: rows)")
    axis.title.set_fontsize(9)
    below(axis)


def compile_panel(axis, rows: pd.DataFrame) -> None:
    compiled = rows[rows.compile_s.notna()]
    positions = range(len(compiled))
    numbers = [number for number, flag in enumerate(rows.compile_s.notna(), start=1) if flag]
    plan = compiled.plan_s.fillna(0.0) if "plan_s" in compiled else pd.Series(0.0, index=compiled.index)
    for position, (_, row), extra in zip(positions, compiled.iterrows(), plan):
        color, hatch = CACHE_STYLE.get(row.cache, CACHE_STYLE["?"])
        axis.barh(position, max(row.compile_s, 0.0), color=color, hatch=hatch, edgecolor="black", linewidth=0.3)
        if extra:
            axis.barh(position, extra, left=max(row.compile_s, 0.0), color=PLAN_COLOR, edgecolor="black",
                      linewidth=0.3)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=color, hatch=hatch, edgecolor="black", linewidth=0.3, label=f"caches {state} at start")
               for state, (color, hatch) in CACHE_STYLE.items() if state in set(compiled.cache)]
    if plan.any():
        handles.append(Patch(facecolor=PLAN_COLOR, edgecolor="black", linewidth=0.3,
                             label="plan s (planning, not compiling)"))
    axis.set_yticks(list(positions), [str(number) for number in numbers], fontsize=7)
    axis.invert_yaxis()
    axis.set_xlim(0, upper(compiled.compile_s.clip(lower=0) + plan, margin=1.1))
    axis.set(xlabel="compile s (first call − median − plan s)", ylabel="row", title="compile time and cache at start")
    axis.title.set_fontsize(9)
    below(axis, handles=handles)


def fidelity_panel(axis, rows: pd.DataFrame) -> None:
    measured = rows[rows.psnr_db.notna()]
    for number, (_, row) in enumerate(rows.iterrows(), start=1):
        if row.psnr_db != row.psnr_db:
            continue
        capped = min(row.psnr_db, PSNR_CAP)
        color = color_of(quantization_name(row))
        axis.scatter(row.time_median_s, capped, marker=marker_of(row), s=55, edgecolors=color, linewidths=1.5,
                     facecolors="none" if is_set(row.get("sparsify")) else color)
        axis.annotate(str(number), (row.time_median_s, capped), textcoords="offset points", xytext=(4, 3), fontsize=7)
    axis.axhline(PSNR_CAP, color="gray", linewidth=0.5, linestyle=":")
    axis.set_xlim(0, upper(measured.time_median_s))
    axis.set_ylim(0, PSNR_CAP + 4)
    axis.set(xlabel="median time (s)", title="fidelity vs time",
             ylabel=f"PSNR dB vs eager, same base precision (∞ at {PSNR_CAP:.0f})")
    axis.title.set_fontsize(9)


def plot_group(rows: pd.DataFrame, title: str, path: Path) -> None:
    """The finished rows of one table, in its order, with its printed columns (campaign_label, configuration, cache)
    and a numeric speedup (NaN where the campaign has no bf16 eager row)."""
    plt = _pyplot()
    panels = [time_panel]
    if rows.inference_memory_GiB.notna().any():  # GPU runs only
        panels.append(memory_panel)
    if rows.compile_s.notna().any():
        panels.append(compile_panel)
    if rows.psnr_db.notna().any():
        panels.append(fidelity_panel)
    height = max(4.2, 0.3 * len(rows) + 2.0)
    figure, axes = plt.subplots(1, len(panels), figsize=(7.5 + 4.6 * (len(panels) - 1), height), squeeze=False,
                                gridspec_kw={"width_ratios": [1.6] + [1] * (len(panels) - 1)})
    for panel, axis in zip(panels, axes[0]):
        panel(axis, rows)
    figure.suptitle(wrapped(title), fontsize=10)
    figure.tight_layout()
    save(figure, path)


def plot_memory(rows: pd.DataFrame, title: str, path: Path) -> None:
    """Memory measurements: model, peak and host peak memory per row (and the seed's peak where it has one)."""
    plt = _pyplot()
    positions = list(range(len(rows)))
    figure, axis = plt.subplots(figsize=(11, max(3.5, 0.55 * len(rows) + 1.6)))
    bars = [("model_memory_GiB", "model GiB (GPU)", "#9ecae1"), ("inference_memory_GiB", "peak GiB (GPU)", "#3182bd"),
            ("host_peak_memory_GiB", "host peak GiB", "#bdbdbd")]
    width = 0.8 / len(bars)
    for offset, (column, label, color) in enumerate(bars):
        axis.barh([position + (offset - 1) * width for position in positions], rows[column].fillna(0.0),
                  height=width, color=color, edgecolor="black", linewidth=0.3, label=label)
    if "seed_peak" in rows and rows.seed_peak.notna().any():
        axis.scatter(rows.seed_peak, [position for position in positions], marker="x", color="black", zorder=3,
                     label="seed's published peak GB")
    axis.set_yticks(positions, number_labels(rows, width=70), fontsize=7)
    axis.invert_yaxis()
    axis.set_xlim(0, upper(*(rows[column] for column, _, _ in bars), rows.get("seed_peak", pd.Series(dtype=float)),
                           margin=1.1))
    axis.set(xlabel="GiB", title=common_title(rows, "GPU and host memory of memory measurements (--memory_only)"))
    axis.title.set_fontsize(9)
    axis.legend(fontsize=7, loc="lower right")
    figure.suptitle(wrapped(title), fontsize=10)
    figure.tight_layout()
    save(figure, path)


def plot_losses(curves: dict[str, list[float]], title: str, path: Path, dpi: int = 90) -> None:
    """One loss curve per label (labels are unique: one per run), step on the x axis."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 4.6))
    for label, losses in curves.items():
        axis.plot(range(1, len(losses) + 1), losses, label=label, alpha=0.8)
    axis.set(xlabel="step", ylabel="flow-matching MSE loss")
    axis.set_title(wrapped(title, 80), fontsize=8)
    axis.legend(fontsize=7)
    figure.tight_layout()
    save(figure, path, dpi)
