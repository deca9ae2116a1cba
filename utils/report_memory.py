"""Memory measurements (--memory_only rows) in the reports: model and peak GPU memory and the host's peak, next to the
figures the seed README published for the same configuration where it has one. No speedup, pick or latency: these
runs may cut the denoising short (peak memory does not depend on the step count)."""

from pathlib import Path

import pandas as pd

from utils.levers.base import is_set, text
from utils.plots import plot_memory
from utils.report_tables import to_markdown

# The seed README's CogVideoX-5b memory ladder (its own runs, pretrained weights, its "GB"): (quantization, T5
# quantized too, offload, VAE tiling) -> (load GB, peak GB). Shown beside our rows, never mixed into our columns.
SEED_MEMORY = {
    "THUDM/CogVideoX-5b": {
        ("None", False, "none", False): (19.7, 31.7),
        ("int8wo", True, "none", False): (10.3, 22.2),
        ("int8wo", True, "model", False): (None, 12.4),
        ("int8wo", True, "model", True): (None, 7.9),
        ("None", False, "sequential", True): (None, 4.8),
        ("int8wo", True, "sequential", True): (None, 3.1),
    },
}
MEMORY_NOTE = """Memory measurements (`--memory_only`): the times are those of short calls (the steps in the title),
not latencies, so these rows get no speedup, pick or latency plot. model GiB = GPU memory allocated after load +
quantize (+ offload: the weights then live in host memory, so it is 0 and the host peak grows); peak GiB = peak
allocated during the timed call; host peak GiB = the process's peak resident memory. PSNR dB compares with the eager
output in the base precision."""
SEED_NOTE = """seed load / peak GB: the figures the seed README published for the same configuration (its own runs,
pretrained weights), copied for comparison; not measured here. The seed calls them GB, but its helper
(`bytes_to_giga_bytes`) divides bytes by 1024³, so they are in the GiB of our columns."""
MEMORY_TABLE = {"campaign_label": "campaign", "configuration": "configuration", "model_memory_GiB": "model GiB",
                "inference_memory_GiB": "peak GiB", "host_peak_memory_GiB": "host peak GiB",
                "seed_load": "seed load GB", "seed_peak": "seed peak GB", "time_median_s": "call s (not a latency)",
                "psnr_db": "PSNR dB", "status": "status", "error": "error"}


def seed_figures(row) -> tuple:
    figures = SEED_MEMORY.get(row.model, {})
    key = (text(row.quantization) or "None", is_set(row.quantize_text_encoders), text(row.offload) or "none",
           is_set(row.vae_tiling))
    if row.quantization != "None" and not is_set(row.quantize_text_encoders):
        return (None, None)  # the seed quantized T5 and the transformer together (its VAE flag found no Linear layer)
    return figures.get(key, (None, None))


def render_memory_group(group: pd.DataFrame, labels: dict[str, str], plot_path: Path, title: str) -> list[str]:
    order = {unit: position for position, unit in enumerate(labels)}
    table = group.assign(_order=group.unit.map(order)).sort_values(["_order", "timestamp"], kind="stable")
    seeds = [seed_figures(row) for _, row in table.iterrows()]
    table = table.assign(campaign_label=table.unit.map(labels), seed_load=[load for load, _ in seeds],
                         seed_peak=[peak for _, peak in seeds])
    columns = dict(MEMORY_TABLE)
    if table.seed_peak.isna().all():
        columns = {name: header for name, header in columns.items() if not name.startswith("seed_")}
    lines = ["", MEMORY_NOTE, *(["", SEED_NOTE] if "seed_peak" in columns else []), "",
             to_markdown(table, columns, text_columns=("campaign_label", "configuration", "status", "error"),
                         floatfmt=".2f")]
    ok = table[table.status == "ok"]
    if len(ok) >= 2:
        plot_memory(ok, title, plot_path)
        lines += ["", f"![{title}]({Path('plots') / plot_path.name})"]
    return lines
