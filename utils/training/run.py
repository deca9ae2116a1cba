"""One training run of training/train_fp8.py: its frozen config, building and caching, float8 + LoRA + compile,
the loop, and the row it fills."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from utils.campaign import compile_start
from utils.errors import Stopped, StopSignals, failure_fields, stop_signals_raise
from utils.levers.compilation import compile_model
from utils.pipelines import build_pipeline, build_transformer
from utils.provenance import package_version, provenance
from utils.results import TrainRow
from utils.timing import allocated_GiB, free_memory, host_peak_GiB, peak_allocated_GiB
from utils.training import WEIGHT_DTYPE
from utils.training.data import CachedData, cache_data, load_image_folder, make_synthetic_dataset
from utils.training.float8 import convert_to_fp8, needs_fp8_emulation
from utils.training.loop import TrainResult, predict, prepare_for_training, record_training, run_label, train
from utils.training.lora import add_lora, load_lora_into, save_full, save_lora

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """The flags of one training run, checked and resolved (preset defaults filled in)."""
    command: str
    ckpt_id: str
    weights: str  # pretrained | random
    device: str
    seed: int
    full_finetune: bool
    rank: int
    resume_lora: Path | None
    num_layers: int | None
    num_single_layers: int | None
    fp8: str
    compare: bool
    max_steps: int
    warmup_steps: int
    lr: float
    guidance_scale: float
    max_grad_norm: float
    batch_size: int
    use_8bit_adam: bool
    gradient_checkpointing: bool
    attention_backend: str  # resolved: never auto
    compile: bool
    dataset_dir: Path | None
    instance_prompt: str
    num_images: int
    width: int
    height: int
    max_sequence_length: int
    output_dir: Path
    no_save: bool
    check_reload: bool
    csv: Path
    plot: Path | None
    profile: Path | None


def load_transformer(config: TrainConfig):
    """A fresh transformer with the same weights as the pipeline's (for the second run of --compare), or the
    shallower copy that --num_layers/--num_single_layers ask for."""
    depth = {name: getattr(config, name) for name in ("num_layers", "num_single_layers") if getattr(config, name)}
    return build_transformer(config.ckpt_id, config.weights, config.device, WEIGHT_DTYPE, config.seed, **depth)


def new_row(config: TrainConfig, fp8: str) -> TrainRow:
    return TrainRow(**provenance(config.command, config.device), peft_version=package_version("peft"),
                    model=config.ckpt_id, weights=config.weights, device=config.device,
                    method="full" if config.full_finetune else "lora",
                    rank=None if config.full_finetune else config.rank, fp8=fp8,
                    fp8_emulate=fp8 != "off" and needs_fp8_emulation(config.device),
                    gradient_checkpointing=config.gradient_checkpointing, compile=config.compile,
                    attention_backend=config.attention_backend,
                    optimizer="adamw8bit" if config.use_8bit_adam else "adamw", lr=config.lr,
                    guidance_scale=config.guidance_scale, max_grad_norm=config.max_grad_norm,
                    batch_size=config.batch_size, resolution=f"{config.width}x{config.height}",
                    max_sequence_length=config.max_sequence_length, max_steps=config.max_steps,
                    warmup_steps=config.warmup_steps, seed=config.seed,
                    dataset=str(config.dataset_dir) if config.dataset_dir else "synthetic",
                    resume_lora=str(config.resume_lora or ""))


def check_reload(config: TrainConfig, expected: torch.Tensor, data: CachedData, fp8: str) -> float:
    """Load the saved LoRA into a fresh inference pipeline, as a user would, and return the largest difference of its
    transformer output from the trained transformer's on the same inputs (0 when the round trip is exact)."""
    pipe = build_pipeline(config.ckpt_id, config.weights, config.device, WEIGHT_DTYPE, config.seed)
    convert_to_fp8(pipe.transformer, fp8, config.device)  # the same numerics as in training
    if config.attention_backend != "default":
        pipe.transformer.set_attention_backend(config.attention_backend)
    pipe.load_lora_weights(config.output_dir)
    actual = predict(pipe.transformer, data, [0], config.seed, config.device, config.guidance_scale)
    return (actual - expected).abs().max().item()


def run_once(config: TrainConfig, fp8: str, transformer, data: CachedData, row: TrainRow,
             result: TrainResult, stop: StopSignals | None = None) -> None:
    """Convert -> (LoRA) -> compile -> train -> record -> save, filling `row` and `result`. The transformer is
    consumed."""
    row.transformer_blocks = f"{transformer.config.num_layers}+{transformer.config.num_single_layers}"
    row.n_layers_fp8 = convert_to_fp8(transformer, fp8, config.device)
    if row.fp8_emulate:
        logger.warning("float8 is emulated on %s (no float8 matmul): the numerics are float8's, the speed is not",
                       row.gpu)
    if not config.full_finetune:
        add_lora(transformer, config.rank, config.seed)
        if config.resume_lora:
            load_lora_into(transformer, config.resume_lora)
    params = prepare_for_training(transformer, config)
    row.n_trainable_params = sum(param.numel() for param in params)
    if config.attention_backend != "default":
        transformer.set_attention_backend(config.attention_backend)
    if config.compile:
        compile_model(transformer, regional=True)  # each block on its own: a fraction of the whole model's compile
    row.model_memory_GiB = allocated_GiB(config.device)
    train(transformer, params, data, config, result, label=run_label(fp8, row.fp8_emulate),
          after_each_step=stop.raise_if_swallowed if stop else lambda: None)
    record_training(row, result, config.batch_size, config.warmup_steps)
    row.peak_memory_GiB = peak_allocated_GiB(config.device)
    if config.no_save or fp8 != config.fp8:  # with --compare only the run of the chosen recipe is saved
        return
    transformer.eval()
    if config.full_finetune:
        row.saved_to = str(save_full(transformer, config.output_dir))
        return
    row.saved_to = str(save_lora(transformer, config.output_dir))
    if config.check_reload:
        result.output = predict(transformer, data, [0], config.seed, config.device, config.guidance_scale)


def build_and_cache(config: TrainConfig, rows: list[TrainRow]):
    """Build the pipeline, cache the dataset's embeddings and latents, and keep only the transformer."""
    start = time.perf_counter()
    pipe = build_pipeline(config.ckpt_id, config.weights, config.device, WEIGHT_DTYPE, config.seed)
    rows[0].load_s = time.perf_counter() - start
    start = time.perf_counter()
    size = (config.width, config.height)
    examples = (load_image_folder(config.dataset_dir, size, config.instance_prompt) if config.dataset_dir
                else make_synthetic_dataset(config.num_images, size, config.seed))
    data = cache_data(pipe, examples, config.device, config.max_sequence_length)
    for row in rows:
        row.cache_s, row.num_images = time.perf_counter() - start, len(data)
    if config.num_layers or config.num_single_layers:
        del pipe
        free_memory(config.device)
        return None, data  # main() builds the shallower transformer
    return pipe.transformer, data  # the text encoders and the VAE go with the pipeline


def record_failure(rows: list[TrainRow], error: Exception) -> None:
    status, message = failure_fields(error)
    for row in rows:
        row.status, row.error = status, message


def render_summary(row: TrainRow) -> str:
    label = run_label(row.fp8, row.fp8_emulate)
    if row.status != "ok" and row.step_median_s is None:
        return f"{label}: {row.status} {row.error}"
    memory = f", peak {row.peak_memory_GiB:.2f} GiB" if row.peak_memory_GiB is not None else ""
    text = (f"{label}: {row.status}, step median {row.step_median_s:.4f} s (min {row.step_min_s:.4f}, max "
            f"{row.step_max_s:.4f}), {row.images_per_s:.2f} images/s{memory}, loss {row.loss_first:.4f} -> "
            f"{row.loss_last:.4f}")
    if row.saved_to:
        text += f", saved to {row.saved_to}"
    if row.reload_max_abs_diff is not None:
        text += f", reload max abs diff {row.reload_max_abs_diff:.3g}"
    return text


def train_recipes(config: TrainConfig, record: Callable[[TrainRow], None]) -> tuple[list[TrainRow], dict, bool]:
    """Train with config.fp8 (with --compare: bf16 first, then config.fp8, from the same starting weights), each run
    recorded by `record(row)` when it ends, failed or not. Ctrl-C (or a sweep's stop) ends the run in progress as
    `interrupted`, its finished steps kept, and starts no other. Returns the rows written, the loss curves by run
    label, and whether a stop ended the training."""
    recipes = ["off", config.fp8] if config.compare else [config.fp8]
    rows = [new_row(config, fp8) for fp8 in recipes]
    for index, row in enumerate(rows):  # the second run of --compare compiles after the first, in this process
        row.compile_start = compile_start(config.compile, first_in_process=index == 0)
    transformer, data, curves, done = None, None, {}, []
    current, result = rows[0], TrainResult([], [])  # the run a stop interrupts (None between runs)
    with stop_signals_raise() as stop:
        try:
            try:
                with stop.unwrapped():
                    transformer, data = build_and_cache(config, rows)
            except Exception as error:  # noqa: BLE001 - a failed run is recorded, not lost
                record_failure(rows, error)
            for fp8, row in zip(recipes, rows):
                stop.raise_if_swallowed()
                current, result = row, TrainResult([], [])
                if data is not None:
                    try:
                        with stop.unwrapped():
                            if transformer is None:  # the second run of --compare starts from the same weights
                                start = time.perf_counter()
                                transformer = load_transformer(config)
                                row.load_s = (row.load_s or 0.0) + time.perf_counter() - start  # plus the pipeline's
                            run_once(config, fp8, transformer, data, row, result, stop)
                            curves[run_label(fp8, row.fp8_emulate)] = result.losses
                            transformer = None
                            free_memory(config.device)  # before --check_reload builds a second pipeline
                            if result.output is not None:
                                row.reload_max_abs_diff = check_reload(config, result.output, data, fp8)
                    except Exception as error:  # noqa: BLE001 - a failed run is recorded, not lost
                        record_failure([row], error)
                    transformer = None
                    free_memory(config.device)
                with stop.held():  # a stop waits until the row is written, then finds no run going
                    finish(row, record, done)
                    current = None
        except Stopped:
            stop.disarm()
            if current is not None:
                record_stopped(current, result, config, stop.signum)
                with stop.held():
                    finish(current, record, done)
    return done, curves, stop.signum is not None


def record_stopped(row: TrainRow, result: TrainResult, config: TrainConfig, signum: int) -> None:
    """A run a stop signal ended: its finished steps' times and losses are kept (if past the warm-up)."""
    if row.step_median_s is None and len(result.step_s) > config.warmup_steps:
        record_training(row, result, config.batch_size, config.warmup_steps)
    row.status, row.error = failure_fields(None, signum)
    if result.step_s:
        saved = f"the weights were saved to {row.saved_to}" if row.saved_to else "nothing was saved"
        row.error += (f" (after {len(result.step_s)} of {config.max_steps} steps: their times and losses are kept; "
                      f"{saved})")


def finish(row: TrainRow, record: Callable[[TrainRow], None], done: list[TrainRow]) -> None:
    row.host_peak_memory_GiB = host_peak_GiB()
    record(row)
    done.append(row)
