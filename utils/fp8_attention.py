"""fp8 attention for FLUX: FlashAttention-3's fp8 (e4m3) forward.

q and k leave RMSNorm (+ RoPE), so no entry can exceed sqrt(head_dim) * max|norm weight| (`rms_norm_bound`): they are
scaled by that bound, known before the data arrives, and one pass does RMSNorm + RoPE + the cast
(`qk_norm_rope_fp8`: a Triton kernel on CUDA, the same math as PyTorch ops elsewhere). v has no such bound and gets
one scale per (image, head) from its amax.

FA3 is not in torch or diffusers; its forward comes from the PyPI wheel `fa3-fwd` (a third-party build of
FlashAttention-3's forward for Hopper, with no author or homepage in its metadata: pin it and review it before use).
It is imported only when the processor runs.
"""

import functools

import torch
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.transformer_flux import _get_qkv_projections

from utils.fp8_kernels import FP8, FP8_MAX, to_e4m3

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


def rms_norm_bound(*norms: torch.nn.Module) -> torch.Tensor:
    """The largest |entry| these RMSNorms (then RoPE) can output: an RMS-normalized vector of head_dim D entries has
    norm sqrt(D), the weight stretches it by at most max|weight|, and rotating entry pairs keeps each within that."""
    weights = [norm.weight.detach() for norm in norms]
    return torch.stack([weight.abs().amax().float() for weight in weights]).amax() * weights[0].numel() ** 0.5


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """diffusers' RMSNorm with a bf16/fp16 weight, rounding where it rounds."""
    variance = x.float().pow(2).mean(-1, keepdim=True)
    return (x * torch.rsqrt(variance + eps)).to(weight.dtype) * weight


def reference_qk_norm_rope_fp8(queries: list[torch.Tensor], keys: list[torch.Tensor], query_weights: list[torch.Tensor],
                               key_weights: list[torch.Tensor], cos: torch.Tensor, sin: torch.Tensor, eps: float,
                               query_scale: torch.Tensor, key_scale: torch.Tensor,
                               out_dtype: torch.dtype = FP8) -> tuple[torch.Tensor, torch.Tensor]:
    """What `qk_norm_rope_fp8` computes, as PyTorch ops (`out_dtype` float32: the values before the e4m3 cast)."""
    def one(segments, weights, scale):
        head_dim = weights[0].numel()
        normed = torch.cat([rms_norm(x.unflatten(-1, (-1, head_dim)), weight, eps)
                            for x, weight in zip(segments, weights)], dim=1)
        rotated = apply_rotary_emb(normed, (cos, sin), sequence_dim=1)
        return (rotated.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(out_dtype)

    return one(queries, query_weights, query_scale), one(keys, key_weights, key_scale)


@functools.cache
def triton_kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def norm_rope_fp8_kernel(x_ptr, weight_ptr, cos_ptr, sin_ptr, scale_ptr, out_ptr, n_tokens, first_row,
                             x_batch_stride, x_token_stride, out_batch_stride, out_token_stride, eps,
                             HEAD_DIM: tl.constexpr, BLOCK_TOKENS: tl.constexpr):
        # one head of BLOCK_TOKENS tokens; RoPE rotates the pairs (2i, 2i+1), so the row is read as its even and odd
        # entries. The casts to the input dtype round where diffusers' RMSNorm and apply_rotary_emb round.
        block, head, batch = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
        tokens = block * BLOCK_TOKENS + tl.arange(0, BLOCK_TOKENS)
        mask = (tokens < n_tokens)[:, None]
        even_cols = 2 * tl.arange(0, HEAD_DIM // 2)[None, :]
        dtype = x_ptr.dtype.element_ty
        x_row = x_ptr + batch * x_batch_stride + tokens.to(tl.int64)[:, None] * x_token_stride + head * HEAD_DIM
        even = tl.load(x_row + even_cols, mask=mask, other=0.0).to(tl.float32)
        odd = tl.load(x_row + even_cols + 1, mask=mask, other=0.0).to(tl.float32)
        rstd = tl.rsqrt((tl.sum(even * even, axis=1) + tl.sum(odd * odd, axis=1)) / HEAD_DIM + eps)[:, None]
        weight_even = tl.load(weight_ptr + even_cols).to(tl.float32)
        weight_odd = tl.load(weight_ptr + even_cols + 1).to(tl.float32)
        even = ((even * rstd).to(dtype).to(tl.float32) * weight_even).to(dtype).to(tl.float32)
        odd = ((odd * rstd).to(dtype).to(tl.float32) * weight_odd).to(dtype).to(tl.float32)
        rows = (first_row + tokens).to(tl.int64)[:, None]
        rope = rows * HEAD_DIM + even_cols
        cos_even, cos_odd = tl.load(cos_ptr + rope, mask=mask), tl.load(cos_ptr + rope + 1, mask=mask)
        sin_even, sin_odd = tl.load(sin_ptr + rope, mask=mask), tl.load(sin_ptr + rope + 1, mask=mask)
        rotated_even = (even * cos_even - odd * sin_even).to(dtype).to(tl.float32)
        rotated_odd = (odd * cos_odd + even * sin_odd).to(dtype).to(tl.float32)
        scale = tl.load(scale_ptr)
        out_row = out_ptr + batch * out_batch_stride + rows * out_token_stride + head * HEAD_DIM
        out_dtype = out_ptr.dtype.element_ty
        tl.store(out_row + even_cols, tl.clamp(rotated_even / scale, -448.0, 448.0).to(out_dtype), mask=mask)
        tl.store(out_row + even_cols + 1, tl.clamp(rotated_odd / scale, -448.0, 448.0).to(out_dtype), mask=mask)

    return triton, norm_rope_fp8_kernel


BLOCK_TOKENS = 32


def triton_qk_norm_rope_fp8(queries, keys, query_weights, key_weights, cos, sin, eps, query_scale, key_scale,
                            out_dtype=FP8):
    triton, kernel = triton_kernel()
    cos, sin = cos.float().contiguous(), sin.float().contiguous()
    outputs = []
    for segments, weights, scale in ((queries, query_weights, query_scale), (keys, key_weights, key_scale)):
        batch, head_dim = segments[0].shape[0], weights[0].numel()
        heads = segments[0].shape[-1] // head_dim
        out = torch.empty(batch, sum(x.shape[1] for x in segments), heads, head_dim, dtype=out_dtype,
                          device=segments[0].device)
        scale = scale.float().reshape(1)
        first_row = 0
        for x, weight in zip(segments, weights):
            x = x if x.stride(-1) == 1 else x.contiguous()
            grid = (triton.cdiv(x.shape[1], BLOCK_TOKENS), heads, batch)
            kernel[grid](x, weight, cos, sin, scale, out, x.shape[1], first_row, x.stride(0), x.stride(1),
                         out.stride(0), out.stride(1), eps, HEAD_DIM=head_dim, BLOCK_TOKENS=BLOCK_TOKENS)
            first_row += x.shape[1]
        outputs.append(out)
    return tuple(outputs)


@torch.library.custom_op("diffusion_bench::qk_norm_rope_fp8", mutates_args=())
def qk_norm_rope_fp8(queries: list[torch.Tensor], keys: list[torch.Tensor], query_weights: list[torch.Tensor],
                     key_weights: list[torch.Tensor], cos: torch.Tensor, sin: torch.Tensor, eps: float,
                     query_scale: torch.Tensor, key_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Segments of (B, S_i, H * D) projections (text first) -> RMSNorm per head with the segment's weight, joined along
    the sequence, RoPE (cos and sin of shape (sum S_i, D)), divided by the scale, e4m3: q and k, (B, sum S_i, H, D)."""
    if queries[0].is_cuda:
        return triton_qk_norm_rope_fp8(queries, keys, query_weights, key_weights, cos, sin, eps, query_scale, key_scale)
    return reference_qk_norm_rope_fp8(queries, keys, query_weights, key_weights, cos, sin, eps, query_scale, key_scale)


@qk_norm_rope_fp8.register_fake
def _(queries, keys, query_weights, key_weights, cos, sin, eps, query_scale, key_scale):
    head_dim, x = query_weights[0].numel(), queries[0]
    shape = (x.shape[0], sum(segment.shape[1] for segment in queries), x.shape[-1] // head_dim, head_dim)
    return x.new_empty(shape, dtype=FP8), x.new_empty(shape, dtype=FP8)


def fp8_attention(q: torch.Tensor, k: torch.Tensor, value: torch.Tensor, q_scale: torch.Tensor,
                  k_scale: torch.Tensor) -> torch.Tensor:
    """Softmax attention of e4m3 q and k (B, S, H, D) scaled by the scalars q_scale and k_scale, and bf16 v (cast here
    with a per-head scale); returns (B, S, H, D) in v's dtype."""
    batch, heads = q.shape[0], q.shape[2]
    v, v_scale = to_fp8_per_head(value)
    out = flash_attn_func(q, k, v, q_descale=q_scale.expand(batch, heads).contiguous(),
                          k_descale=k_scale.expand(batch, heads).contiguous(), v_descale=v_scale)
    return out.to(value.dtype)


class FluxFp8AttnProcessor:
    """diffusers' FluxAttnProcessor (0.42) with its attention call in fp8."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        if attention_mask is not None or image_rotary_emb is None:
            raise ValueError("fp8 attention takes no attention mask and needs FLUX's rotary embedding")
        query, key, value, encoder_query, encoder_key, encoder_value = _get_qkv_projections(
            attn, hidden_states, encoder_hidden_states)
        query_norms, key_norms, queries, keys = [attn.norm_q], [attn.norm_k], [query], [key]
        if attn.added_kv_proj_dim is not None:  # the text stream goes first
            query_norms.insert(0, attn.norm_added_q)
            key_norms.insert(0, attn.norm_added_k)
            queries.insert(0, encoder_query)
            keys.insert(0, encoder_key)
            value = torch.cat([encoder_value, value], dim=1)
        query_scale, key_scale = rms_norm_bound(*query_norms) / FP8_MAX, rms_norm_bound(*key_norms) / FP8_MAX
        q, k = qk_norm_rope_fp8(queries, keys, [norm.weight for norm in query_norms],
                                [norm.weight for norm in key_norms], *image_rotary_emb, attn.norm_q.eps,
                                query_scale, key_scale)
        hidden_states = fp8_attention(q, k, value.unflatten(-1, (-1, attn.head_dim)), query_scale,
                                      key_scale).flatten(2, 3)
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
