"""fp8 attention for FLUX: FlashAttention-3's fp8 (e4m3) forward, with one scale per (image, head) for q, k and v.

FA3 is not in torch or diffusers; its forward comes from the PyPI wheel `fa3-fwd` (a third-party build of
FlashAttention-3's forward for Hopper, with no author or homepage in its metadata: pin it and review it before use).
It is imported only when the processor runs. The q/k/v scaling runs as torch ops inside the block, so that a compiled
block fuses it into the RoPE that writes q and k."""

import torch
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.transformer_flux import _get_qkv_projections

from utils.fp8_kernels import to_e4m3

PACKAGE = "fa3-fwd"
flash_attn_func = None  # fa3_fwd_interface.flash_attn_func once load_kernel() ran (an import is no op to trace)


def missing_reason() -> str | None:
    """Why the fp8 attention kernel cannot be loaded here, or None."""
    try:
        import fa3_fwd_interface  # noqa: F401
    except ImportError as error:
        return f"fp8 attention needs the {PACKAGE} wheel (pip install {PACKAGE}; Hopper GPUs only): {error}"
    return None


def load_kernel() -> None:
    global flash_attn_func
    from fa3_fwd_interface import flash_attn_func


def to_fp8_per_head(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S, H, D) -> e4m3 values and the float32 (B, H) scales FA3 takes as descales."""
    values, scale = to_e4m3(x, x.abs().amax(dim=(1, 3), keepdim=True))
    return values, scale[:, 0, :, 0]


def fp8_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Softmax attention of (B, S, H, D) bf16 tensors computed in fp8; returns (B, S, H, D) in the inputs' dtype."""
    (q, q_scale), (k, k_scale), (v, v_scale) = map(to_fp8_per_head, (query, key, value))
    out = flash_attn_func(q, k, v, q_descale=q_scale, k_descale=k_scale, v_descale=v_scale)
    return out.to(query.dtype)


class FluxFp8AttnProcessor:
    """diffusers' FluxAttnProcessor (0.42) with its attention call in fp8."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        if attention_mask is not None:
            raise ValueError("fp8 attention takes no attention mask")
        query, key, value, encoder_query, encoder_key, encoder_value = _get_qkv_projections(
            attn, hidden_states, encoder_hidden_states)
        query, key, value = (x.unflatten(-1, (-1, attn.head_dim)) for x in (query, key, value))
        query, key = attn.norm_q(query), attn.norm_k(key)
        if attn.added_kv_proj_dim is not None:
            encoder_query, encoder_key, encoder_value = (
                x.unflatten(-1, (-1, attn.head_dim)) for x in (encoder_query, encoder_key, encoder_value))
            query = torch.cat([attn.norm_added_q(encoder_query), query], dim=1)
            key = torch.cat([attn.norm_added_k(encoder_key), key], dim=1)
            value = torch.cat([encoder_value, value], dim=1)
        if image_rotary_emb is not None:
            query = apply_rotary_emb(query, image_rotary_emb, sequence_dim=1)
            key = apply_rotary_emb(key, image_rotary_emb, sequence_dim=1)
        hidden_states = fp8_attention(query, key, value).flatten(2, 3)
        if encoder_hidden_states is None:
            return hidden_states
        text_length = encoder_hidden_states.shape[1]
        encoder_hidden_states, hidden_states = hidden_states[:, :text_length], hidden_states[:, text_length:]
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states.contiguous()))
        return hidden_states, attn.to_add_out(encoder_hidden_states.contiguous())


def set_fp8_attention(model: torch.nn.Module) -> int:
    """Give every FLUX attention layer of `model` the fp8 processor; returns how many it changed."""
    layers = [module for module in model.modules() if type(module).__name__ == "FluxAttention"]
    for layer in layers:
        layer.set_processor(FluxFp8AttnProcessor())
    return len(layers)
