"""The training loop: the flow-matching loss on cached data, the optimizer, timed steps, and the row they fill."""

import logging
import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from utils.profiling import write_profile
from utils.results import TrainRow
from utils.timing import reset_peak_memory, time_call_s
from utils.training import WEIGHT_DTYPE
from utils.training.data import CachedData, batch_indices

logger = logging.getLogger(__name__)


def prepare_for_training(transformer, config) -> list[torch.nn.Parameter]:
    """Freeze what is not trained and keep trained weights in fp32 (bf16 autocast does the compute)."""
    transformer.requires_grad_(config.full_finetune)
    if not config.full_finetune:
        for name, param in transformer.named_parameters():
            param.requires_grad_("lora_" in name)
    for param in transformer.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    if config.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    return [param for param in transformer.parameters() if param.requires_grad]


def make_optimizer(params, lr: float, use_8bit_adam: bool) -> torch.optim.Optimizer:
    if use_8bit_adam:
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr)


def pack(latents: torch.Tensor) -> torch.Tensor:
    from diffusers import FluxPipeline

    batch, channels, height, width = latents.shape
    return FluxPipeline._pack_latents(latents, batch, channels, height, width)


def model_inputs(transformer, data: CachedData, indices: list[int], generator: torch.Generator,
                 guidance_scale: float = 1.0):
    """The flow-matching pair for one batch: the transformer's keyword arguments and the packed target. With t ~ U(0,
    1) and noise ~ N(0, I): noisy = (1 - t) x0 + t noise, and the transformer predicts the velocity noise - x0."""
    from diffusers import FluxPipeline

    x0 = data.latents[indices].float()
    batch, _, height, width = x0.shape
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    # rounded to bf16 first: the transformer sees a bf16 timestep (as FluxPipeline passes it), so the mix must use it
    t = torch.rand(batch, generator=generator, device=x0.device).to(WEIGHT_DTYPE).float()
    noisy = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * noise
    guidance = None
    if transformer.config.guidance_embeds:
        guidance = torch.full((batch,), guidance_scale, device=x0.device)
    kwargs = dict(
        hidden_states=pack(noisy).to(WEIGHT_DTYPE),
        timestep=t.to(WEIGHT_DTYPE),  # in [0, 1]: FluxPipeline passes timesteps / 1000
        guidance=guidance,
        pooled_projections=data.pooled_prompt_embeds[indices],
        encoder_hidden_states=data.prompt_embeds[indices],
        txt_ids=data.text_ids,
        img_ids=FluxPipeline._prepare_latent_image_ids(batch, height // 2, width // 2, x0.device, WEIGHT_DTYPE),
        return_dict=False,
    )
    return kwargs, pack(noise - x0)


def autocast(device: str):
    return torch.autocast(torch.device(device).type, dtype=WEIGHT_DTYPE)


def flow_matching_loss(transformer, data: CachedData, indices: list[int], generator: torch.Generator, device: str,
                       guidance_scale: float = 1.0):
    kwargs, target = model_inputs(transformer, data, indices, generator, guidance_scale)
    with autocast(device):
        prediction = transformer(**kwargs)[0]
    return torch.nn.functional.mse_loss(prediction.float(), target)


@torch.no_grad()
def predict(transformer, data: CachedData, indices: list[int], seed: int, device: str,
            guidance_scale: float = 1.0) -> torch.Tensor:
    """The transformer output on fixed inputs, computed exactly as in training."""
    generator = torch.Generator(device).manual_seed(seed)
    kwargs, _ = model_inputs(transformer, data, indices, generator, guidance_scale)
    with autocast(device):
        return transformer(**kwargs)[0].float()


@dataclass
class TrainResult:
    losses: list[float]
    step_s: list[float]
    output: torch.Tensor | None = None  # for --check_reload: the trained transformer's output on fixed inputs


def train(transformer, params, data: CachedData, config, result: TrainResult, label: str = "train",
          after_each_step: Callable[[], None] = lambda: None) -> None:
    """Run config.max_steps steps, adding each one's seconds and loss to `result` as it ends, then calling
    `after_each_step` (a stopped run keeps the steps it finished)."""
    from tqdm.auto import tqdm

    optimizer = make_optimizer(params, config.lr, config.use_8bit_adam)
    generator = torch.Generator(config.device).manual_seed(config.seed)  # same noise and t in every run of --compare

    def step(index: int) -> torch.Tensor:
        loss = flow_matching_loss(transformer, data, batch_indices(index, config.batch_size, len(data)), generator,
                                  config.device, config.guidance_scale)
        loss.backward()
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    with tqdm(range(config.max_steps), desc=label, unit="step") as bar:
        for index in bar:
            if index == config.warmup_steps:
                reset_peak_memory(config.device)  # steady-state peak, not the compile-time one
            seconds, loss = time_call_s(lambda: step(index), config.device)  # noqa: B023 - called right here
            result.step_s.append(seconds)
            result.losses.append(loss.item())
            bar.set_postfix(loss=f"{result.losses[-1]:.4f}", step_s=f"{seconds:.3f}")
            after_each_step()
    if config.profile:
        path = run_profile_path(config.profile, label, config.compare)
        title = f"One training step ({label}): {config.command}"
        write_profile(lambda: step(config.max_steps), config.device, path, title)
        logger.info("profile written to %s", path)


def record_training(row: TrainRow, result: TrainResult, batch_size: int, warmup_steps: int) -> None:
    timed_s = result.step_s[warmup_steps:]
    row.first_step_s = result.step_s[0]
    row.step_median_s = statistics.median(timed_s)
    row.step_min_s, row.step_max_s = min(timed_s), max(timed_s)
    row.compile_s = row.first_step_s - row.step_median_s
    row.images_per_s = batch_size / row.step_median_s
    row.loss_first, row.loss_last = result.losses[0], result.losses[-1]
    row.losses = " ".join(f"{loss:.6g}" for loss in result.losses)
    if not all(math.isfinite(loss) for loss in result.losses):
        row.status, row.error = "nan", "non-finite loss"


def run_label(fp8: str, emulate: bool) -> str:
    return "bf16" if fp8 == "off" else f"fp8 {fp8}" + (" (emulated)" if emulate else "")


def run_profile_path(profile: Path, label: str, compare: bool) -> Path:
    """Where a run's --profile goes: the path given, or with --compare one file per run, named after its label."""
    if not compare:
        return profile
    tag = re.sub(r"[^\w.]+", "-", label).strip("-")  # "fp8 rowwise (emulated)" -> "fp8-rowwise-emulated"
    return profile.with_name(f"{profile.stem}-{tag}{profile.suffix}")


def profile_paths(profile: Path | None, fp8: str, compare: bool) -> list[Path]:
    """Every path the runs' --profile may write (emulated or not is known only once the model is on its device)."""
    if profile is None:
        return []
    recipes = ["off", fp8] if compare else [fp8]
    labels = {run_label(recipe, emulate) for recipe in recipes for emulate in (False, True)}
    return sorted({run_profile_path(profile, label, compare) for label in labels})
