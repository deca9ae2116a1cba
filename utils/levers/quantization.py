"""Quantization with one torchao config for every Linear layer of the denoiser (and, on request, of the VAE and the
text encoders). The configs are the registry's (utils.quant)."""

import re
import time
from dataclasses import dataclass

import torch

from utils.errors import UsageError
from utils.levers.base import is_set, off_as, same_named, text
from utils.pipelines import DENOISERS, TEXT_ENCODERS, build_random_transformer, vae_linear_layers
from utils.presets import get_preset
from utils.quant import (
    QUANTIZATIONS,
    apply_quantization,
    bf16_layers_pattern,
    quantization_passes,
    unsupported_reason,
    weight_only_layers,
)
from utils.timing import synchronize


@dataclass(frozen=True, kw_only=True)
class Settings:
    quantization: str = "None"
    quantize_vae: bool = False
    quantize_text_encoders: bool = False
    quant_skip_pattern: str | None = None
    torchao_inductor_config: bool = False


@dataclass
class Columns:
    quantization: str = "None"
    quantize_vae: bool = False
    quantize_text_encoders: bool = False
    quant_skip_pattern: str = ""  # the layers kept in bf16: the flag's pattern plus what the method must skip
    weight_only_layers: str = ""  # the layers given the method's weight-only form (utils.quant.weight_only_layers)
    n_layers_quantized: int = 0
    quant_s: float | None = None


def add_flags(parser) -> None:
    group = parser.add_argument_group("quantization (torchao 0.18)")
    group.add_argument("--quantization", type=off_as("None"), choices=list(QUANTIZATIONS), default="None",
                       help="; ".join(f"{m.name}: {m.removed or m.summary}" for m in QUANTIZATIONS.values())
                            + " (none and off mean None)")
    group.add_argument("--quantize_vae", action="store_true",
                       help="also quantize the VAE's Linear layers (FLUX's VAEs have a few, in their attention; the "
                            "video and Qwen-Image VAEs are all convolutions and refuse the flag)")
    group.add_argument("--quantize_text_encoders", "--quantize_text_encoder", dest="quantize_text_encoders",
                       action="store_true", help="also quantize the text encoder(s)")
    group.add_argument("--quant_skip_pattern", default=None,
                       help="regex on layer names to keep in bf16 (e.g. 'norm.*linear|proj_out'); by default every "
                            "Linear whose dims are multiples of 16 is quantized")
    group.add_argument("--torchao_inductor_config", action="store_true",
                       help="let torchao set its recommended inductor flags: coordinate-descent tuning for the whole "
                            "process, which lengthens every compile; off by default")


def settings(flags, run) -> Settings:
    return Settings(quantization=flags.quantization, quantize_vae=flags.quantize_vae,
                    quantize_text_encoders=flags.quantize_text_encoders, quant_skip_pattern=flags.quant_skip_pattern,
                    torchao_inductor_config=flags.torchao_inductor_config)


def check(config) -> None:
    reason = unsupported_reason(config.quantization, config.device, config.base_dtype)
    if reason:
        raise UsageError(reason)
    if config.quant_skip_pattern is not None:
        check_skip_pattern(config.quant_skip_pattern)
        if config.quantization == "None":
            raise UsageError("--quant_skip_pattern keeps layers out of a quantization: it needs --quantization")
        if config.preset is not None:
            check_something_left(config.preset, config.quantization, config.quant_skip_pattern)
    if config.quantization == "None":
        given = [f"--{name}" for name in ("quantize_vae", "quantize_text_encoders", "torchao_inductor_config")
                 if getattr(config, name)]
        if given:
            one = len(given) == 1
            raise UsageError(f"{' and '.join(given)} {'applies' if one else 'apply'} only with --quantization: give "
                             f"one (e.g. --quantization int8wo) or drop {'it' if one else 'them'}")
    if config.quantize_vae and config.preset is not None and not vae_linear_layers(config.preset.name):
        raise UsageError(f"--quantize_vae: {config.preset.name}'s VAE has no Linear layers, the only layers torchao "
                         "quantizes (it is all convolutions): drop the flag")


def check_something_left(preset, quantization: str, skip_pattern: str) -> None:
    """A UsageError if the pattern keeps every layer of the preset's transformer out of every quantization pass
    (tried on a meta-device copy): such a run would be labelled quantized with nothing quantized."""
    if QUANTIZATIONS[quantization].make_config is None:  # autoquant: its plan decides, per layer
        return
    passes = quantization_passes(quantization, skip_pattern, preset.few_rows_layers or None)
    filters = [filter_fn for _, filter_fn in passes]
    model = build_random_transformer(preset, "meta", torch.bfloat16, seed=0)
    if not any(chosen(module, fqn) for fqn, module in model.named_modules() for chosen in filters):
        raise UsageError(f"--quant_skip_pattern {skip_pattern!r} leaves no Linear layer of {preset.name}'s transformer "
                         f"for {quantization}: narrow it")


def check_skip_pattern(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise UsageError(f"--quant_skip_pattern is not a valid regex: {error}") from None


def columns(config) -> dict:
    values = same_named(config, Columns)
    if config.quantization != "None":
        values["quant_skip_pattern"] = bf16_layers_pattern(config.quantization, config.quant_skip_pattern) or ""
        values["weight_only_layers"] = weight_only_layers(config.quantization, few_rows_layers(config)) or ""
    elif config.quant_skip_pattern is None:
        values["quant_skip_pattern"] = ""
    return values


def label(row) -> str:
    """The base of every label: the precision, or the quantization (with its base when that is not bf16)."""
    base = str(row["dtype"]).replace("bfloat16", "bf16")  # rows written before the video script spell it out
    if row.quantization == "None":
        return base
    words = row.quantization + ("" if base == "bf16" else f" ({base} base)")
    plan = text(row.get("autoquant"))
    if row.quantization == "autoquant" and plan:  # "planned: 172 fp8dqrow, ... (20 shape groups)"
        words += f" ({plan.split(' (')[0]})"
    if is_set(row.quantize_text_encoders):
        words += ", +text enc"
    if is_set(row.quantize_vae) and vae_was_quantized(row.model):
        words += ", +VAE"
    return words


def vae_was_quantized(model: str) -> bool:
    """Whether --quantize_vae had layers to act on: rows written before the flag was refused for VAEs without Linear
    layers (CogVideoX's) carry it set with nothing quantized."""
    preset = get_preset(model)
    return preset is None or vae_linear_layers(preset.name) > 0


def targets(pipe, config) -> dict:
    """The models to quantize: the denoiser(s) (Wan 2.2 A14B has two experts), then the VAE and the text encoders
    when asked for."""
    names = list(DENOISERS) + (["vae"] if config.quantize_vae else [])
    names += list(TEXT_ENCODERS) if config.quantize_text_encoders else []
    return {name: getattr(pipe, name) for name in names if getattr(pipe, name, None) is not None}


def few_rows_layers(config) -> str | None:
    """The preset's layers fed too few rows for activation quantization (None for other checkpoints)."""
    preset = getattr(config, "preset", None)
    return preset.few_rows_layers or None if preset else None


def apply(pipe, config) -> dict:
    """Quantize every target in place; the time includes waiting for the device."""
    start = time.perf_counter()
    few_rows = few_rows_layers(config)
    n_layers = sum(apply_quantization(model, config.quantization, skip_pattern=config.quant_skip_pattern,
                                      few_rows_pattern=few_rows if name in DENOISERS else None,
                                      set_inductor_config=config.torchao_inductor_config)
                   for name, model in targets(pipe, config).items())
    synchronize(pipe.device)
    return {"n_layers_quantized": n_layers, "quant_s": time.perf_counter() - start}
