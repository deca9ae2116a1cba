"""Training and quantization-time rows in the reports. Training: one table per model, method, size and batch, the
speedup of each float8 row against the bf16 row (fp8 off) of the same configuration and campaign, loss curves.
Quantization time: every configuration's newest run, with the seed's figures in their own columns."""

from pathlib import Path

import pandas as pd

from utils.levers.base import is_set, text
from utils.plots import plot_losses
from utils.quantization_time import METHODS, SEED_FIGURES, SEED_MODEL, SEED_QUANTIZATION
from utils.report_campaigns import cache_state
from utils.report_tables import left_out_note, newest_runs, ratio_cells, time_ratio, to_markdown
from utils.results import QuantTimeRow, TrainRow, columns_of

TRAIN_GROUP_COLUMNS = ["model", "gpu", "weights", "method", "rank", "transformer_blocks", "resolution", "batch_size",
                       "gradient_checkpointing"]
TRAIN_LEGEND = """Columns: campaign = the run the row came from (the table at the top); steps = optimizer steps run;
step median/min/max s = one optimizer step (forward, backward, optimizer) after the warm-up steps, timed with CUDA
events (the wall clock on a CPU); speedup = the bf16 row (fp8 off) of otherwise the same configuration (compile,
attention, steps, ...) and the same campaign / this row (— where that campaign has none); compile s = first step
minus the median (compiled runs only); cache = how the compile caches started (cold, warm, shared; ? not recorded);
peak GiB = peak allocated during the timed steps (transformer, LoRA or full weights, optimizer state, activations;
the text encoders and VAE are gone by then). Rows with weights=random train the real architecture from random
weights: step time and memory are real, the loss only shows that the optimization moves. The CSV has every column,
including each step's loss and the exact command."""
TRAIN_TABLE = {"campaign_label": "campaign", "fp8": "fp8", "compile": "compiled", "attention_backend": "attention",
               "max_steps": "steps", "step_median_s": "step median s", "step_min_s": "min s", "step_max_s": "max s",
               "speedup": "speedup", "images_per_s": "images/s", "compile_s": "compile s", "cache": "cache",
               "peak_memory_GiB": "peak GiB", "loss": "loss first → last",
               "reload_max_abs_diff": "LoRA reload max diff", "status": "status", "error": "error"}
TRAIN_TEXT = ("campaign_label", "fp8", "compile", "attention_backend", "cache", "loss", "status", "error")

# What was run (the columns between the kind and the measurements, less the layer and parameter counts the code
# derived, which change between versions): two rows with the same values are the same configuration; the
# speedup's reference is the row with the same values but fp8 off.
TRAIN_COLUMNS = columns_of(TrainRow)
WHAT_TRAINED = TRAIN_COLUMNS[TRAIN_COLUMNS.index("model"):TRAIN_COLUMNS.index("load_s")]
TRAIN_CONFIGURATION = ["gpu", *(name for name in WHAT_TRAINED if name not in ("n_layers_fp8", "n_trainable_params"))]
BUT_FP8 = [column for column in TRAIN_CONFIGURATION if column not in ("fp8", "fp8_emulate")]


def describe_training(row) -> str:
    return f"fp8 {row.fp8}, attention {row.attention_backend}, {int(row.max_steps)} steps"


def render_training_group(group: pd.DataFrame, labels: dict[str, str]) -> str:
    def same_but_fp8(row) -> str:
        return "|".join(str(row[column]) for column in [*BUT_FP8, "unit"])

    bf16 = {same_but_fp8(row): row.step_median_s for _, row in group.iterrows()
            if row.fp8 == "off" and row.status == "ok"}
    order = {unit: position for position, unit in enumerate(labels)}
    group = group.assign(
        campaign_label=group.unit.map(labels), _order=group.unit.map(order),
        fp8=[f"{row.fp8} (emulated)" if is_set(row.fp8_emulate) else row.fp8 for _, row in group.iterrows()],
        speedup=ratio_cells([time_ratio(bf16.get(same_but_fp8(row), float("nan")), row.step_median_s)
                             for _, row in group.iterrows()], group.status == "ok"),
        cache=[cache_state(row, is_set(row.compile)) for _, row in group.iterrows()],
        compile_s=[row.compile_s if is_set(row.compile) else None for _, row in group.iterrows()],
        loss=[f"{row.loss_first:.3f} → {row.loss_last:.3f}" if row.loss_first == row.loss_first else None
              for _, row in group.iterrows()])
    table = group.sort_values(["_order", "step_median_s"], na_position="last", kind="stable")
    return to_markdown(table, TRAIN_TABLE, text_columns=TRAIN_TEXT)


def loss_curves(group: pd.DataFrame, labels: dict[str, str]) -> dict[str, list[float]]:
    """One curve per finished run, labelled so that no two runs share a label."""
    curves = {}
    for _, row in group[(group.status == "ok") & group.losses.notna()].iterrows():
        label = f"{labels[row.unit]} · fp8 {row.fp8} · {row.attention_backend} · {int(row.max_steps)} steps"
        while label in curves:
            label += " (again)"
        curves[label] = [float(value) for value in str(row.losses).split()]
    return curves


def render_training(frame: pd.DataFrame, csv_path: Path, plot_dir: Path, labels: dict[str, str]) -> list[str]:
    frame = frame.assign(attention_backend=frame.attention_backend.fillna("default"))
    sections = []
    for index, (key, group) in enumerate(frame.groupby(TRAIN_GROUP_COLUMNS, dropna=False, sort=False)):
        model, gpu, weights, method, rank, blocks, resolution, batch, checkpointing = key
        what = f"LoRA rank {int(rank)}" if method == "lora" else f"full fine-tune, {blocks} blocks"
        title = (f"{model} · {what} · {resolution} · batch {int(batch)}"
                 f"{' · gradient checkpointing' if checkpointing else ''} · {gpu} · {weights} weights")
        kept, left_out = newest_runs(group, TRAIN_CONFIGURATION, TrainRow)
        sections += ["", f"## {title}", "", render_training_group(kept, labels),
                     *left_out_note(left_out, describe_training, labels, group, "step_median_s")]
        curves = loss_curves(kept, labels)
        if curves:
            plot_path = plot_dir / f"{csv_path.stem}-{index}.png"
            plot_losses(curves, title, plot_path)
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


def render_quantization_time(frame: pd.DataFrame, labels: dict[str, str]) -> list[str]:
    """Every configuration's newest run, with the seed's figures in their own columns (FLUX.1-dev int8wo only)."""
    kept, left_out = newest_runs(frame, QUANTIZATION_TIME_CONFIGURATION, QuantTimeRow)
    seed = [SEED_FIGURES.get(row.method) if row.model == SEED_MODEL and row.quantization == SEED_QUANTIZATION
            else None for row in kept.itertuples()]
    table = pd.DataFrame({
        "campaign": kept.unit.map(labels), "model": kept.model, "weights": kept.weights, "gpu": kept.gpu,
        "torchao": kept.torchao_version, "quant": kept.quantization,
        "way": [METHODS.get(method, method) for method in kept.method], "seconds": kept.seconds,
        "peak GiB": kept.peak_GiB, "after GiB": kept.allocated_GiB, "layers": kept.n_layers_quantized,
        "status": kept.status, "error": [text(error)[:80] or None for error in kept.error],
        "seed's s": [figures[0] if figures else None for figures in seed],
        "seed's peak GiB": [figures[1] if figures else None for figures in seed],
    })
    table = table.astype(object).where(table.notna(), None)
    return ["", *(f"{note}\n" for note in QUANTIZATION_TIME_NOTES),
            table.to_markdown(index=False, floatfmt=".2f", missingval=""),
            *left_out_note(left_out, lambda row: f"{row.quantization} {row.method}", labels, frame, "seconds"), ""]
