"""fp8 attention for FLUX: FlashAttention-3's fp8 (e4m3) forward.

q and k leave RMSNorm (+ RoPE), so no entry can exceed sqrt(head_dim) * max|norm weight| (`rms_norm_bound`): they are
scaled by that bound, computed once from the norm weights when the processor is set (they do not change at
inference), and their cast fuses into the kernel that writes them. v has no such bound and gets one scale per
(image, head) from its amax.

FA3 is not in torch or diffusers; its forward comes from the PyPI wheel `fa3-fwd` (a third-party build of
FlashAttention-3's forward for Hopper, with no author or homepage in its metadata: pin it and review it before use).
It is imported only when the processor runs.

`deinterleave_query_key` (optional, before fusion and quantization) reorders each head's q/k dimensions so that RoPE's
pairs become the two halves of the head (the layout diffusers' `apply_rotary_emb(use_real_unbind_dim=-2)` reads),
instead of neighbours: q.k^T is unchanged when q and k get the same order, and inductor's q/k kernel then reads
contiguous halves instead of stride-2 pairs.
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


def flux_attention_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [module for module in model.modules() if type(module).__name__ == "FluxAttention"]


def pairs_to_halves(head_dim: int) -> torch.Tensor:
    """The order of one head's dimensions that puts RoPE's pairs (2i, 2i+1) at (i, head_dim/2 + i)."""
    return torch.arange(head_dim).view(-1, 2).t().flatten()


def deinterleave_query_key(model: torch.nn.Module) -> int:
    """Reorder the q and k dimensions of every FLUX attention head of `model` (its q/k projections' output rows and
    their RMSNorm weights) for RoPE in halves; the fp8 processor then applies RoPE in that layout. Call it before
    fusing or quantizing (it needs the separate nn.Linear projections). The weights stop being diffusers' layout:
    only the fp8 processor computes the model's attention with them. Returns how many layers it changed."""
    layers = flux_attention_layers(model)
    for layer in layers:
        if getattr(layer, "qk_in_halves", False):
            raise ValueError("deinterleave_query_key already reordered this model's q/k dimensions")
        order = pairs_to_halves(layer.head_dim)
        projections = ["to_q", "to_k"] + (["add_q_proj", "add_k_proj"] if layer.added_kv_proj_dim is not None else [])
        with torch.no_grad():
            for name in projections:
                linear = getattr(layer, name, None)
                if type(linear) is not torch.nn.Linear:
                    raise ValueError(f"deinterleave_query_key needs unfused, unquantized projections; {name} is "
                                     f"{type(linear).__name__}")
                rows = torch.arange(linear.out_features).view(-1, layer.head_dim)[:, order].flatten()
                linear.weight.copy_(linear.weight[rows.to(linear.weight.device)])
                if linear.bias is not None:
                    linear.bias.copy_(linear.bias[rows.to(linear.bias.device)])
            for name in ("norm_q", "norm_k", "norm_added_q", "norm_added_k"):
                if (norm := getattr(layer, name, None)) is not None and norm.weight is not None:
                    norm.weight.copy_(norm.weight[order.to(norm.weight.device)])
        layer.qk_in_halves = True
    return len(layers)


def rope_in_halves(rotary_emb: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """FLUX's (cos, sin) tables, each (S, D) with every angle twice in a row, in the halves layout."""
    return tuple(table.unflatten(-1, (-1, 2)).transpose(-1, -2).flatten(-2) for table in rotary_emb)


class FluxFp8AttnProcessor:
    """diffusers' FluxAttnProcessor (0.42) with its attention call in fp8, and RoPE in halves on layers whose q/k
    dimensions deinterleave_query_key reordered (`qk_in_halves`)."""

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
            halves = getattr(attn, "qk_in_halves", False)
            rope = dict(freqs_cis=rope_in_halves(image_rotary_emb) if halves else image_rotary_emb, sequence_dim=1,
                        use_real_unbind_dim=-2 if halves else -1)
            query, key = apply_rotary_emb(query, **rope), apply_rotary_emb(key, **rope)
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
    layers = flux_attention_layers(model)
    for layer in layers:
        joint = layer.added_kv_proj_dim is not None  # the text tokens' q and k come from norms of their own
        query_norms = [layer.norm_q, layer.norm_added_q] if joint else [layer.norm_q]
        key_norms = [layer.norm_k, layer.norm_added_k] if joint else [layer.norm_k]
        layer.register_buffer("fp8_query_bound", rms_norm_bound(*query_norms), persistent=False)
        layer.register_buffer("fp8_key_bound", rms_norm_bound(*key_norms), persistent=False)
        layer.set_processor(FluxFp8AttnProcessor())
    return len(layers)
