"""Float8 training with torchao: which Linear layers become Float8Linear, with which recipe, emulated where the
device has no float8 matmul."""

import dataclasses
import re

import torch

from utils.quant import PER_IMAGE_LAYERS as PER_IMAGE_LAYER_PATTERN

RECIPES = ("off", "tensorwise", "rowwise")


def needs_fp8_emulation(device: str) -> bool:
    """Float8 matmuls (torch._scaled_mm) need a CUDA GPU of compute capability 8.9 (Ada, Hopper) or newer."""
    device = torch.device(device)
    return device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 9)


def fp8_config(recipe: str, device: str):
    from torchao.float8 import Float8LinearConfig

    config = Float8LinearConfig.from_recipe_name(recipe)
    return dataclasses.replace(config, emulate=True) if needs_fp8_emulation(device) else config


# float8 gains nothing on layers fed one row per image (utils.quant.PER_IMAGE_LAYERS), and rowwise float8's weight
# gradient fails on them in a full fine-tune ("self must be row_major" for norm1.linear).
PER_IMAGE_LAYERS = re.compile(PER_IMAGE_LAYER_PATTERN)


def fp8_module_filter(module: torch.nn.Module, fqn: str) -> bool:
    """Which Linear layers become Float8Linear: not the final output projection (the prediction itself is sensitive
    to float8 rounding), not the per-image layers above, and not layers the float8 matmul cannot take (both sizes
    must be multiples of 16)."""
    if fqn == "proj_out" or PER_IMAGE_LAYERS.search(fqn):
        return False
    if isinstance(module, torch.nn.Linear):
        return module.in_features % 16 == 0 and module.out_features % 16 == 0
    return True


def convert_to_fp8(transformer, recipe: str, device: str) -> int:
    """Swap the filtered Linear layers for Float8Linear; returns how many were swapped."""
    from torchao.float8 import convert_to_float8_training
    from torchao.float8.float8_linear import Float8Linear

    if recipe == "off":
        return 0
    convert_to_float8_training(transformer, module_filter_fn=fp8_module_filter, config=fp8_config(recipe, device))
    return sum(isinstance(module, Float8Linear) for module in transformer.modules())
