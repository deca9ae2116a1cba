"""fp8 attention for FLUX: FlashAttention-3's fp8 (e4m3) forward.

q and k leave RMSNorm (+ RoPE), so no entry can exceed sqrt(head_dim) * max|norm weight| (`rms_norm_bound`): they are
scaled by that bound, computed once from the norm weights when the processor is set (they do not change at
inference), and their cast fuses into the kernel that writes them. v has no such bound and gets one scale per
(image, head) from its amax.

FA3 is not in torch or diffusers; its forward comes from the PyPI wheel `fa3-fwd` (a third-party build of
FlashAttention-3's forward for Hopper, with no author or homepage in its metadata: pin it and review it before use).
It is imported only when the processor runs.
"""

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


def rms_norm_bound(*norms: torch.nn.RMSNorm) -> torch.Tensor:
    """The largest |entry| these RMSNorms (then RoPE) can output: an RMS-normalized vector of head_dim D entries has
    norm sqrt(D), the weight stretches it by at most max|weight| (1 without a weight), and rotating entry pairs keeps
    each entry within that."""
    largest = [norm.weight.detach().abs().amax().float() for norm in norms if norm.weight is not None]
    bound = torch.stack(largest).amax() if largest else torch.ones(())
    if len(largest) < len(norms):
        bound = bound.clamp(min=1.0)
    return bound * norms[0].normalized_shape[-1] ** 0.5


def to_fp8_bounded(x: torch.Tensor, bound: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S, H, D) -> e4m3 values scaled by a known bound on |x|, and its (B, H) float32 scales."""
    values, scale = to_e4m3(x, bound.to(x.device))
    return values, scale.expand(x.shape[0], x.shape[2]).contiguous()


def fp8_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  query_bound: torch.Tensor, key_bound: torch.Tensor) -> torch.Tensor:
    """Softmax attention of (B, S, H, D) bf16 tensors computed in fp8; returns (B, S, H, D) in the inputs' dtype.
    `query_bound` and `key_bound` bound |query| and |key| (`rms_norm_bound`)."""
    (q, q_scale), (k, k_scale) = to_fp8_bounded(query, query_bound), to_fp8_bounded(key, key_bound)
    v, v_scale = to_fp8_per_head(value)
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
        hidden_states = fp8_attention(query, key, value, attn.fp8_query_bound, attn.fp8_key_bound).flatten(2, 3)
        if encoder_hidden_states is None:
            return hidden_states
        text_length = encoder_hidden_states.shape[1]
        encoder_hidden_states, hidden_states = hidden_states[:, :text_length], hidden_states[:, text_length:]
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states.contiguous()))
        return hidden_states, attn.to_add_out(encoder_hidden_states.contiguous())


def set_fp8_attention(model: torch.nn.Module) -> int:
    """Give every FLUX attention layer of `model` the fp8 processor and the bounds of its q and k (buffers, so that
    one compiled block serves every layer); returns how many it changed. The bounds are read now: call it again after
    anything that changes the attention norms' weights (loading weights, a LoRA that replaces norms, a cast to a
    lower precision), or values above a stale bound saturate."""
    layers = [module for module in model.modules() if type(module).__name__ == "FluxAttention"]
    for layer in layers:
        joint = layer.added_kv_proj_dim is not None  # the text tokens' q and k come from norms of their own
        query_norms = [layer.norm_q, layer.norm_added_q] if joint else [layer.norm_q]
        key_norms = [layer.norm_k, layer.norm_added_k] if joint else [layer.norm_k]
        layer.register_buffer("fp8_query_bound", rms_norm_bound(*query_norms), persistent=False)
        layer.register_buffer("fp8_key_bound", rms_norm_bound(*key_norms), persistent=False)
        layer.set_processor(FluxFp8AttnProcessor())
    return len(layers)
