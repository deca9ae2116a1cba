"""--quantization autoquant: a quantization per shape group of Linear layers, chosen by timing the candidates on the
layers' real inputs (the planner is utils.autoquant; torchao removed its own autoquant in 0.17)."""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from utils.autoquant import DEFAULT_MAX_ERROR, apply_plan, autoquant, load_plan
from utils.errors import UsageError
from utils.levers.compilation import disable_cpu_int8_weight_only_rewrite
from utils.levers.quantization import few_rows_layers
from utils.path_checks import check_output_file
from utils.pipelines import denoisers
from utils.quant import count_quantized_linears
from utils.timing import synchronize

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Settings:
    autoquant_max_error: float = DEFAULT_MAX_ERROR
    autoquant_plan: Path | None = None


@dataclass
class Columns:
    autoquant: str = ""  # planned|reused: how many layers got which config


def add_flags(parser) -> None:
    group = parser.add_argument_group("autoquant (--quantization autoquant)")
    group.add_argument("--autoquant_max_error", type=float, default=DEFAULT_MAX_ERROR,
                       help="the largest relative L2 error of a layer's output against bf16 (on its real input) that a "
                            "candidate may have")
    group.add_argument("--autoquant_plan", type=Path, default=None,
                       help="JSON plan file, written after planning and reused (no timing) when it exists and matches "
                            "the model, device and --autoquant_max_error; default: plan every run")


def settings(flags, run) -> Settings:
    return Settings(autoquant_max_error=flags.autoquant_max_error, autoquant_plan=flags.autoquant_plan)


def check(config) -> None:
    if config.quantization != "autoquant":
        if config.autoquant_plan is not None:
            raise UsageError("--autoquant_plan needs --quantization autoquant")
        if "autoquant_max_error" in config.given_flags:
            raise UsageError("--autoquant_max_error needs --quantization autoquant")
        return
    if not (0 < config.autoquant_max_error < float("inf")):
        raise UsageError(f"--autoquant_max_error must be a positive number, got {config.autoquant_max_error}")
    if config.quantize_vae or config.quantize_text_encoders:
        raise UsageError("--quantization autoquant plans the transformer only; drop "
                         "--quantize_vae/--quantize_text_encoders")
    if config.offload != "none" or config.context_parallel != "none":
        raise UsageError("--quantization autoquant cannot be combined with --offload or --context_parallel: its "
                         "recording pass stops the pipeline after one transformer forward")
    plan = config.autoquant_plan
    check_output_file("--autoquant_plan", plan, (".json",))
    if plan is not None and plan.exists():
        try:
            saved = load_plan(plan)
        except ValueError as error:
            raise UsageError(f"--autoquant_plan {error}") from None
        # what can be told before the model is built; the plan's fingerprint checks the rest after
        model = config.preset.components.get("transformer") if config.preset else None
        if saved.max_error != config.autoquant_max_error or model not in (None, saved.model):
            raise UsageError(f"--autoquant_plan {plan} was planned for {saved.model} with max error {saved.max_error}, "
                             f"not {model or 'this model'} with {config.autoquant_max_error}: pass another "
                             "--autoquant_plan or move that file aside")


def columns(config) -> dict:
    return {}


def label(row) -> None:
    return None  # the plan's summary is part of the quantization's label


def apply(pipe, config, sample_call) -> dict:
    """Plan a quantization per layer group of the denoiser from one real forward pass of `sample_call` (or reuse
    --autoquant_plan), then apply it."""
    if sample_call is None:
        raise ValueError("autoquant needs a sample pipeline call to record the inputs of the Linear layers")
    start = time.perf_counter()
    if torch.device(config.device).type == "cuda":
        disable_cpu_int8_weight_only_rewrite()  # the candidates are compiled: the first compiles of the process
    first, *others = denoisers(pipe)
    plan, reused = autoquant(first, sample_call, device=config.device, plan_path=config.autoquant_plan,
                             base_dtype=config.base_dtype, max_error=config.autoquant_max_error,
                             skip_pattern=config.quant_skip_pattern, few_rows_pattern=few_rows_layers(config),
                             compile_mode=config.compile_mode if config.compile else None,
                             set_inductor_config=config.torchao_inductor_config)
    for model in others:  # Wan 2.2 A14B's second expert: the first's architecture, so its plan (layers by name)
        apply_plan(model, plan, config.torchao_inductor_config)
    synchronize(pipe.device)
    summary = f"{'reused' if reused else 'planned'}: {plan.summary()}"
    logger.info("autoquant %s%s", summary, f" (plan {config.autoquant_plan})" if config.autoquant_plan else "")
    seconds = time.perf_counter() - start
    return {"n_layers_quantized": sum(count_quantized_linears(model) for model in denoisers(pipe)),
            "quant_s": seconds, "plan_s": None if reused else seconds, "autoquant": summary}
