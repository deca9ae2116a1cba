"""The one quantization registry every script uses: the seed's names mapped onto torchao 0.18 config classes,
plus the names torchao has removed, kept so that they fail with a clear message."""

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from utils.fp8_kernels import MIN_AMAX

FP8_MIN_CAPABILITY = (8, 9)  # torch._scaled_mm float8 kernels: Ada (8.9) and Hopper (9.0) or newer


@dataclass(frozen=True)
class QuantMethod:
    name: str
    summary: str
    make_config: Callable | None = None  # (set_inductor_config: bool) -> torchao AOBaseConfig
    cuda_only: bool = False
    min_capability: tuple[int, int] | None = None
    removed: str | None = None  # why the name no longer works
    always_skip: str | None = None  # regex of layer names this method cannot handle: kept in bf16, or given...
    always_skip_as: Callable | None = None  # ...this config instead (same signature as make_config)
    # The method's weight-only form, for the layers a model feeds too few rows for its activation quantization (see
    # Preset.few_rows_layers); None where the method quantizes them as it does every other layer.
    few_rows_as: Callable | None = None
    in_features_multiple: int = 16  # group size of grouped methods; 16 is what the int8/fp8 kernels need
    bf16_only: bool = False  # the config rejects other weight dtypes (fp16) when it quantizes
    planned: bool = False  # chosen per layer by utils.autoquant, not one config for every layer


# Layers fed one row per image (adaLN modulation, timestep/guidance/pooled-text embedders in Flux and CogVideoX, Wan's
# condition_embedder.time_proj, Qwen-Image's img_mod/txt_mod and FLUX.2's *_modulation* modulations): torch._int_mm,
# behind int8 dynamic quantization, needs more than 16 rows; float8 training keeps them bf16 too.
PER_IMAGE_LAYERS = r"norm\w*\.linear$|modulation\w*\.linear$|time_\w*embed|time_proj$|_mod\.1$"


def _int8wo(set_inductor_config):
    from torchao.quantization import Int8WeightOnlyConfig

    return Int8WeightOnlyConfig(set_inductor_config=set_inductor_config)


def _int8dq(set_inductor_config):
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig

    return Int8DynamicActivationInt8WeightConfig(set_inductor_config=set_inductor_config)


def _int4wo(set_inductor_config):
    from torchao.quantization import Int4WeightOnlyConfig

    # torch's own tinygemm layout: the default "plain" packing needs the separate mslk-cuda package.
    return Int4WeightOnlyConfig(int4_packing_format="tile_packed_to_4d", set_inductor_config=set_inductor_config)


def _int4dq(set_inductor_config):
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, PerGroup

    # No set_inductor_config argument on this config: it never touches inductor settings.
    return Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4, weight_granularity=PerGroup(32))


def _fp8wo(set_inductor_config):
    from torchao.quantization import Float8WeightOnlyConfig

    return Float8WeightOnlyConfig(set_inductor_config=set_inductor_config)


# torchao scales an activation by its amax / 448 with no floor: an all-zero row (Wan pads its text embeddings with
# zero rows) becomes 0 / 0 = NaN. activation_value_lb gives such a row the tiny scale our own fp8 kernels give it.
def _fp8dq(set_inductor_config):
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig

    return Float8DynamicActivationFloat8WeightConfig(activation_value_lb=MIN_AMAX,
                                                     set_inductor_config=set_inductor_config)


def _fp8dqrow(set_inductor_config):
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

    return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), activation_value_lb=MIN_AMAX,
                                                     set_inductor_config=set_inductor_config)


_FPX_REMOVED = "torchao removed the fpx (floatx) weight-only configs in 0.16; there is no replacement on Hopper"

QUANTIZATIONS = {
    method.name: method
    for method in [
        QuantMethod("None", "no quantization: bf16 weights"),
        QuantMethod("int8wo", "int8 weights (per row), bf16 activations", _int8wo),
        QuantMethod("int8dq", "int8 weights and dynamically quantized int8 activations (per row); per-image "
                    "layers (adaLN, embedders) get int8 weights only", _int8dq, always_skip=PER_IMAGE_LAYERS,
                    always_skip_as=_int8wo, few_rows_as=_int8wo),
        QuantMethod("int4wo", "int4 weights (groups of 128, tinygemm layout), bf16 activations", _int4wo,
                    cuda_only=True, in_features_multiple=128),
        QuantMethod("int4dq", "int4 weights (groups of 32) and dynamically quantized int8 activations", _int4dq,
                    in_features_multiple=32),
        QuantMethod("fp8wo", "float8 e4m3 weights, bf16 activations", _fp8wo, min_capability=FP8_MIN_CAPABILITY),
        QuantMethod("fp8dq", "float8 weights and activations, one scale per tensor", _fp8dq, cuda_only=True,
                    min_capability=FP8_MIN_CAPABILITY, few_rows_as=_fp8wo),
        QuantMethod("fp8dqrow", "float8 weights and activations, one scale per row", _fp8dqrow, cuda_only=True,
                    min_capability=FP8_MIN_CAPABILITY, bf16_only=True, few_rows_as=_fp8wo),
        QuantMethod("fp6_e3m2", "removed upstream", removed=_FPX_REMOVED),
        QuantMethod("fp5_e2m2", "removed upstream", removed=_FPX_REMOVED),
        QuantMethod("fp4_e2m1", "removed upstream", removed=_FPX_REMOVED),
        QuantMethod("autoquant", "per shape group of Linear layers, the fastest of int8wo/int8dq/fp8wo/fp8dq/fp8dqrow "
                    "whose error stays under --autoquant_max_error, timed on the real shapes (ours: torchao removed "
                    "its autoquant in 0.17)", planned=True),
    ]
}


def unsupported_reason(name: str, device: str, base_dtype: str = "bf16") -> str | None:
    """Why quantization `name` cannot run on `device` with weights in `base_dtype` (checked before any model is
    built), or None."""
    method = QUANTIZATIONS[name]
    if method.removed:
        return f"--quantization {name}: {method.removed}"
    if method.bf16_only and base_dtype != "bf16":
        return (f"--quantization {name} needs bf16 weights (torchao's per-row float8 rejects {base_dtype}); "
                "use --base_dtype bf16 or fp8dq")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return "CUDA is not available on this machine"
        if method.min_capability and torch.cuda.get_device_capability(device) < method.min_capability:
            major, minor = torch.cuda.get_device_capability(device)
            needed = ".".join(map(str, method.min_capability))
            return (f"--quantization {name} needs a GPU with compute capability >= {needed}; "
                    f"{torch.cuda.get_device_name(device)} has {major}.{minor}")
        return None
    if method.cuda_only:
        needs = "an NVIDIA GPU" + (" with compute capability >= 8.9" if method.min_capability else "")
        return f"--quantization {name} runs only on CUDA (needs {needs}); this run is on {device}"
    return None


def quantizable_linear(module: torch.nn.Module, fqn: str, skip_pattern: re.Pattern | None = None,
                       in_features_multiple: int = 16) -> bool:
    """Linear layers whose shapes the kernels accept (out dim a multiple of 16, in dim a multiple of 16 or of the
    method's group size), minus any layer the user asked to keep in bf16 by name and any already quantized."""
    if not isinstance(module, torch.nn.Linear) or is_quantized(module.weight):
        return False
    if module.in_features % in_features_multiple or module.out_features % 16:
        return False
    return not (skip_pattern and skip_pattern.search(fqn))


def layer_filter(name: str, skip_pattern: str | None = None) -> Callable[[torch.nn.Module, str], bool]:
    """quantize_'s filter_fn for method `name`: quantizable_linear with the method's skips and group size. A bf16-only
    method also leaves alone the layers a model keeps in fp32 (diffusers loads Wan's time embedder so)."""
    method = QUANTIZATIONS[name]
    pattern = effective_skip_pattern(name, skip_pattern)
    compiled = re.compile(pattern) if pattern else None

    def chosen(module: torch.nn.Module, fqn: str) -> bool:
        if not quantizable_linear(module, fqn, compiled, method.in_features_multiple):
            return False
        return not method.bf16_only or module.weight.dtype == torch.bfloat16

    return chosen


def is_quantized(weight: torch.Tensor) -> bool:
    """A torchao tensor subclass (what quantize_ and sparsify_ put in place of a weight)."""
    return type(weight).__module__.startswith("torchao")


def count_quantized_linears(model: torch.nn.Module) -> int:
    """Linear layers whose weight is now a torchao tensor subclass (what quantize_ really replaced)."""
    return sum(1 for module in model.modules() if isinstance(module, torch.nn.Linear) and is_quantized(module.weight))


def any_of(*patterns: str | None) -> str | None:
    """One regex matching what any of the given ones matches (None ones left out); None if none is given."""
    return "|".join(f"(?:{pattern})" for pattern in patterns if pattern) or None


def effective_skip_pattern(name: str, skip_pattern: str | None) -> str | None:
    """The user's --quant_skip_pattern combined with what the method itself must skip."""
    return any_of(skip_pattern, QUANTIZATIONS[name].always_skip)


def bf16_layers_pattern(name: str, skip_pattern: str | None) -> str | None:
    """The layers a quantization leaves in bf16: the skipped ones, less those the method quantizes another way."""
    return skip_pattern if QUANTIZATIONS[name].always_skip_as else effective_skip_pattern(name, skip_pattern)


def weight_only_layers(name: str, few_rows_pattern: str | None) -> str | None:
    """The layers quantization `name` gives its weight-only form: those it always skips (int8dq's per-image layers)
    and those the model feeds too few rows (`few_rows_pattern`, the preset's few_rows_layers)."""
    method = QUANTIZATIONS[name]
    return any_of(method.always_skip if method.always_skip_as else None,
                  few_rows_pattern if method.few_rows_as else None)


def apply_quantization(model: torch.nn.Module, name: str, *, skip_pattern: str | None = None,
                       few_rows_pattern: str | None = None, set_inductor_config: bool = False,
                       device: str | None = None) -> int:
    """Quantize the Linear layers of `model` in place with the registry's config; return how many were replaced.
    The layers the method always skips, and those matching `few_rows_pattern` (fed too few rows for the method's
    activation quantization), get the method's weight-only form where it has one.

    `set_inductor_config=False` by default: torchao's True turns on inductor coordinate-descent tuning for the
    whole process, which lengthens every compile (docs/flux.md, compile pitfalls). With `device`, torchao moves each
    Linear there right before quantizing it, and every other module once its children are done."""
    from torchao.quantization import quantize_

    method = QUANTIZATIONS[name]
    if method.planned:
        raise ValueError(f"{name} chooses a config per layer: use utils.autoquant.autoquant, not apply_quantization")
    for make_config, filter_fn in quantization_passes(name, skip_pattern, few_rows_pattern):
        quantize_(model, make_config(set_inductor_config), filter_fn=filter_fn, device=device)
    return count_quantized_linears(model)


def quantization_passes(name: str, skip_pattern: str | None = None, few_rows_pattern: str | None = None) -> list:
    """apply_quantization's quantize_ calls, as (config maker, filter_fn): the method's config on the layers it can
    take, then its fallback (weight-only) config on the layers it always skips or that get too few rows; the user's
    skip pattern keeps its layers out of every pass."""
    method = QUANTIZATIONS[name]
    if method.make_config is None:
        return []
    few_rows = few_rows_pattern if method.few_rows_as else None
    passes = [(method.make_config, layer_filter(name, any_of(skip_pattern, few_rows)))]
    for pattern, fallback in ((method.always_skip, method.always_skip_as), (few_rows, method.few_rows_as)):
        if pattern and fallback:
            passes.append((fallback, _only(pattern, skip_pattern)))
    return passes


def _only(pattern: str, skip_pattern: str | None) -> Callable[[torch.nn.Module, str], bool]:
    """quantize_'s filter_fn for a fallback pass: the quantizable layers `pattern` names, less the user's skips."""
    own, user = re.compile(pattern), re.compile(skip_pattern) if skip_pattern else None
    return lambda module, fqn: bool(own.search(fqn)) and quantizable_linear(module, fqn, user)
