"""The PNG plots of the reports: a benchmark group's time, memory, speedup and fidelity, and training loss curves."""

from pathlib import Path

import pandas as pd

from utils.files import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, path: Path, dpi: int = 90) -> None:
    with atomic_path(path) as partial:
        figure.savefig(partial, dpi=dpi)
    _pyplot().close(figure)


def plot_group(group: pd.DataFrame, title: str, path: Path, labels: list[str]) -> None:
    """Three panels: latency vs peak memory (marker = compiled or not), speedup bars, fidelity vs speedup. `group`
    has a speedup column; `labels` name its rows."""
    plt = _pyplot()
    group = group.assign(label=labels)
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
    speedup_axis.set_yticks(range(len(ok)), [label[:60] for label in ok.label], fontsize=7)
    speedup_axis.axvline(1.0, color="black", linewidth=0.8)
    speedup_axis.invert_yaxis()
    speedup_axis.set(xlabel="speedup vs bf16 eager", title="speedup")
    fidelity_axis.set(xlabel="speedup vs bf16 eager", ylabel="PSNR vs bf16 eager (dB, identical shown as 60)",
                      title="fidelity vs speed")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save(figure, path)


def plot_losses(curves: dict[str, list[float]], title: str, path: Path, dpi: int = 90) -> None:
    """One loss curve per label, step on the x axis."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, losses in curves.items():
        axis.plot(range(1, len(losses) + 1), losses, label=label, alpha=0.8)
    axis.set(xlabel="step", ylabel="flow-matching MSE loss", title=title)
    axis.title.set_fontsize(8)
    axis.legend(fontsize=8)
    figure.tight_layout()
    save(figure, path, dpi)
