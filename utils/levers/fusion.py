"""QKV fusion and channels_last: changes of layout that save kernels or memory traffic without changing the math."""

from dataclasses import dataclass

import torch

from utils.errors import UsageError
from utils.levers.base import is_set, same_named
from utils.pipelines import build_random_transformer, denoisers, vae_is_3d


@dataclass(frozen=True, kw_only=True)
class Settings:
    fuse_attn_projections: bool = False
    channels_last: bool = False


@dataclass
class Columns:
    fuse_attn_projections: bool = False
    channels_last: bool = False


def add_flags(parser) -> None:
    group = parser.add_argument_group("fusion and memory format")
    group.add_argument("--fuse_attn_projections", "--fuse_qkv", dest="fuse_attn_projections", action="store_true",
                       help="fuse attention Q/K/V projections (transformer and VAE)")
    group.add_argument("--channels_last", action="store_true",
                       help="VAE in channels_last memory format (2-D VAEs only: FLUX's)")


def settings(flags, run) -> Settings:
    return Settings(fuse_attn_projections=flags.fuse_attn_projections, channels_last=flags.channels_last)


def check(config) -> None:
    """For presets (whose architecture is kept here): whether diffusers fuses anything in the transformer, tried on a
    meta-device copy. Some models take the call and fuse nothing (Qwen-Image's attention keeps separate
    projections), which would record a fused row that is not."""
    if config.channels_last and config.preset is not None and vae_is_3d(config.preset.name):
        raise UsageError(f"--channels_last: {config.preset.name}'s VAE convolves over time (5-D weights), which the "
                         "4-D channels_last layout does not take: drop the flag")
    if not config.fuse_attn_projections or config.preset is None:
        return
    model = build_random_transformer(config.preset, "meta", torch.bfloat16, seed=0)  # no memory, no weights
    if not fuse_model(model):
        import diffusers

        raise UsageError(f"--fuse_attn_projections: diffusers {diffusers.__version__} fuses no attention projection "
                         f"of {type(model).__name__} (its attention computes Q, K and V with separate layers)")


def columns(config) -> dict:
    return same_named(config, Columns)


def label(row) -> str | None:
    words = ["fused QKV"] if is_set(row.fuse_attn_projections) else []
    words += ["channels_last VAE"] if is_set(row.get("channels_last")) else []
    return ", ".join(words) or None


# Attention classes whose fused forward never reads the separate projections it fused (diffusers 0.42:
# transformer_flux.py, transformer_flux2.py and transformer_wan.py, _get_qkv_projections), so those can go once
# fused. Wan's cross-attention fuses K and V only and keeps reading to_q.
DROPS_UNFUSED = ("FluxAttention", "Flux2Attention", "WanAttention")
UNFUSED = {"to_qkv": ("to_q", "to_k", "to_v"), "to_added_qkv": ("add_q_proj", "add_k_proj", "add_v_proj"),
           "to_kv": ("to_k", "to_v"), "to_added_kv": ("add_k_proj", "add_v_proj")}


def fuse_model(model: torch.nn.Module) -> int:
    """Fuse one denoiser's attention projections; returns how many attention modules this fused (FLUX.2's
    single-stream attention is fused by design and counts as fused before and after)."""
    def fused() -> int:
        return sum(1 for module in model.modules() if getattr(module, "fused_projections", False) is True)

    before = fused()
    model.fuse_qkv_projections()
    drop_unfused_projections(model)
    return fused() - before


def fuse_qkv(pipe) -> None:
    """Fuse the attention Q/K/V projections into one GEMM (the transformer(s) and the VAE)."""
    for model in denoisers(pipe):
        fuse_model(model)
    if hasattr(pipe.vae, "fuse_qkv_projections"):
        pipe.vae.fuse_qkv_projections()


def drop_unfused_projections(model: torch.nn.Module) -> int:
    """diffusers' fusion keeps the separate Q/K/V projections beside the fused copy (so that it can unfuse): their
    weights would stay in memory, and be quantized, for nothing. Drop them where the fused forward does not read
    them; returns how many Linear layers went."""
    dropped = 0
    for module in model.modules():
        if type(module).__name__ in DROPS_UNFUSED and getattr(module, "fused_projections", False):
            for fused, separate in UNFUSED.items():
                if hasattr(module, fused):
                    for name in separate:
                        if hasattr(module, name):
                            delattr(module, name)
                            dropped += 1
    return dropped


def vae_channels_last(pipe) -> None:
    """channels_last helps the VAE's convolutions; the transformer is all Linear layers, so it is left alone."""
    pipe.vae.to(memory_format=torch.channels_last)
