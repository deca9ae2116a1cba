"""LoRA adapters on the attention projections: add, save as diffusers' training examples do, and load back."""

from pathlib import Path

import torch

from utils.files import atomic_path, give_umask_mode
from utils.training import WEIGHT_DTYPE

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
LORA_FILE = "pytorch_lora_weights.safetensors"  # the name pipe.load_lora_weights(folder) looks for
FULL_FOLDER = "transformer"


def saved_rank(lora_file: Path) -> int | None:
    """The rank of the transformer's LoRA in a diffusers LoRA file, read from its header (no tensor is loaded); None
    when the file has no down-projection of the transformer under a name we know."""
    from safetensors import safe_open

    with safe_open(str(lora_file), framework="pt") as file:
        down = next((key for key in file.keys() if key.startswith("transformer.")
                     and any(name in key for name in ("lora_A", "lora_down", "lora.down"))), None)
        return file.get_slice(down).get_shape()[0] if down else None


def add_lora(transformer, rank: int, seed: int) -> None:
    """LoRA adapters on the attention projections. Added after the float8 conversion, so the adapters themselves
    stay plain bf16/fp32 Linear layers and only the frozen base layers run in float8."""
    from peft import LoraConfig

    torch.manual_seed(seed)  # the same LoRA initialization in both runs of --compare
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                       target_modules=LORA_TARGETS))


def load_lora_into(transformer, lora_dir: Path) -> None:
    """Load a LoRA saved by save_lora into a transformer that already has the (same-shaped) adapter: the resume path
    of diffusers' training examples."""
    from diffusers import FluxPipeline
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import set_peft_model_state_dict

    state_dict = FluxPipeline.lora_state_dict(lora_dir)
    state_dict = {key.removeprefix("transformer."): value for key, value in state_dict.items()
                  if key.startswith("transformer.")}
    result = set_peft_model_state_dict(transformer, convert_unet_state_dict_to_peft(state_dict), adapter_name="default")
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ValueError(f"{lora_dir} does not match this LoRA: unexpected keys {unexpected[:3]}")


def save_lora(transformer, output_dir: Path) -> Path:
    """The LoRA as diffusers' training examples save it, loadable with pipe.load_lora_weights(output_dir)."""
    from diffusers import FluxPipeline
    from peft.utils import get_peft_model_state_dict

    state_dict = {key: value.detach().to(WEIGHT_DTYPE) for key, value in get_peft_model_state_dict(transformer).items()}
    saved = output_dir / LORA_FILE
    with atomic_path(saved) as partial:  # a failed save leaves the earlier file, if any, whole
        FluxPipeline.save_lora_weights(partial.parent, transformer_lora_layers=state_dict, weight_name=partial.name,
                                       transformer_lora_adapter_metadata=transformer.peft_config["default"].to_dict())
        if not partial.stat().st_size:  # diffusers logs an error and returns when it cannot write, so look
            raise OSError(f"{saved}: not written")
    return saved


def save_full(transformer, output_dir: Path) -> Path:
    """The whole fine-tuned transformer in bf16 (Float8Linear keeps nn.Linear's state-dict names)."""
    transformer.to(WEIGHT_DTYPE).save_pretrained(output_dir / FULL_FOLDER)
    give_umask_mode(output_dir / FULL_FOLDER)
    return output_dir / FULL_FOLDER
