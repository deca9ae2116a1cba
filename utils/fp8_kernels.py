"""One-pass row-wise fp8 activation quantization for the Linear layers that follow a GELU.

torchao's fp8dqrow quantizes each Linear's input in the layer itself: row amax, scale, cast. Where that input is a
GELU output (FLUX's feed-forward out-projections, and the single blocks' proj_out, whose input is the attention
output concatenated with the GELU of the MLP branch), inductor writes the GELU in bf16 and reads it back, twice, for
the amax and for the cast. `rows_to_fp8` does GELU (+ the concatenation) + row amax + cast in one kernel with the
row held on chip, and `Fp8RowLinear` hands the fp8 rows straight to `torch._scaled_mm`.

The quantization is torchao's fp8dqrow, unchanged: e4m3, one float32 scale per activation row and per weight row
(amax / 448). The Triton kernel runs on CUDA; elsewhere (and as the reference the kernel is checked against) the same
math runs as PyTorch ops. Triton is imported only when a CUDA tensor meets the kernel."""

import functools

import torch

FP8 = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8).max
MIN_AMAX = 1e-12  # an all-zero row gets a tiny scale instead of a division by zero


def to_e4m3(values: torch.Tensor, amax: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`values` scaled so that `amax` (broadcast against them) lands on e4m3's largest value, cast; and the float32
    scales (amax / 448) that multiply them back."""
    scale = amax.float().clamp(min=MIN_AMAX) / FP8_MAX
    return (values / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(x, approximate="tanh")


def reference_rows_to_fp8(plain: torch.Tensor | None, gelu_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[plain, gelu(gelu_input)] along the last dim, quantized row by row: (fp8 rows, float32 scales of shape (M, 1)).
    Both inputs are 2-D; the GELU output is rounded to the input's dtype first, as the unfused layers do."""
    rows = gelu_tanh(gelu_input)
    if plain is not None:
        rows = torch.cat([plain, rows], dim=-1)
    rows = rows.float()
    return to_e4m3(rows, rows.abs().amax(dim=-1, keepdim=True))


@functools.cache
def triton_kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def rows_to_fp8_kernel(plain_ptr, gelu_ptr, out_ptr, scale_ptr, n_plain, n_gelu, plain_stride, gelu_stride,
                           out_stride, BLOCK_PLAIN: tl.constexpr, BLOCK_GELU: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        gelu_cols = tl.arange(0, BLOCK_GELU)
        gelu_mask = gelu_cols < n_gelu
        x = tl.load(gelu_ptr + row * gelu_stride + gelu_cols, mask=gelu_mask, other=0.0).to(tl.float32)
        # gelu_tanh(x) = 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
        activated = x * tl.sigmoid(1.5957691216057308 * (x + 0.044715 * x * x * x))
        activated = activated.to(gelu_ptr.dtype.element_ty).to(tl.float32)
        amax = tl.max(tl.abs(activated), axis=0)
        out_row = out_ptr + row * out_stride
        if BLOCK_PLAIN > 0:
            plain_cols = tl.arange(0, BLOCK_PLAIN)
            plain_mask = plain_cols < n_plain
            plain = tl.load(plain_ptr + row * plain_stride + plain_cols, mask=plain_mask, other=0.0).to(tl.float32)
            scale = tl.maximum(tl.maximum(amax, tl.max(tl.abs(plain), axis=0)), 1e-12) / 448.0
            tl.store(out_row + plain_cols, tl.clamp(plain / scale, -448.0, 448.0).to(out_ptr.dtype.element_ty),
                     mask=plain_mask)
        else:
            scale = tl.maximum(amax, 1e-12) / 448.0
        tl.store(scale_ptr + row, scale)
        tl.store(out_row + n_plain + gelu_cols,
                 tl.clamp(activated / scale, -448.0, 448.0).to(out_ptr.dtype.element_ty), mask=gelu_mask)

    return triton, rows_to_fp8_kernel


def row_warps(block: int) -> int:
    """Warps per row, more for wider rows (picked by timing the kernel at FLUX's row widths: docs/performance.md)."""
    return 32 if block >= 16384 else 16 if block >= 8192 else 8


def triton_rows_to_fp8(plain: torch.Tensor | None, gelu_input: torch.Tensor,
                       out_dtype: torch.dtype = FP8) -> tuple[torch.Tensor, torch.Tensor]:
    """`out_dtype` float32 returns the scaled, clamped rows before the cast (what the CPU test checks under Triton's
    interpreter, whose e4m3 conversion is not the GPU's)."""
    triton, kernel = triton_kernel()
    gelu_input = gelu_input if gelu_input.stride(-1) == 1 else gelu_input.contiguous()
    n_rows, n_gelu = gelu_input.shape
    n_plain = 0 if plain is None else plain.shape[1]
    if plain is not None and plain.stride(-1) != 1:
        plain = plain.contiguous()
    out = torch.empty(n_rows, n_plain + n_gelu, dtype=out_dtype, device=gelu_input.device)
    scale = torch.empty(n_rows, 1, dtype=torch.float32, device=gelu_input.device)
    block_plain = triton.next_power_of_2(n_plain) if n_plain else 0
    block_gelu = triton.next_power_of_2(n_gelu)
    kernel[(n_rows,)](gelu_input if plain is None else plain, gelu_input, out, scale, n_plain, n_gelu,
                      0 if plain is None else plain.stride(0), gelu_input.stride(0), out.stride(0),
                      BLOCK_PLAIN=block_plain, BLOCK_GELU=block_gelu,
                      num_warps=row_warps(block_plain + block_gelu))
    return out, scale


@torch.library.custom_op("diffusion_bench::rows_to_fp8", mutates_args=())
def rows_to_fp8(plain: torch.Tensor | None, gelu_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[plain, gelu_tanh(gelu_input)] quantized row by row to e4m3: (fp8 rows (M, K), float32 scales (M, 1))."""
    if gelu_input.is_cuda:
        return triton_rows_to_fp8(plain, gelu_input)
    return reference_rows_to_fp8(plain, gelu_input)


@rows_to_fp8.register_fake
def _(plain, gelu_input):
    n_plain = 0 if plain is None else plain.shape[1]
    out = gelu_input.new_empty(gelu_input.shape[0], n_plain + gelu_input.shape[1], dtype=FP8)
    return out, gelu_input.new_empty(gelu_input.shape[0], 1, dtype=torch.float32)


def quantize_weight_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A Linear weight (N, K) as torchao's fp8dqrow stores it: e4m3 rows and one float32 scale per output row."""
    weight = weight.float()
    return to_e4m3(weight, weight.abs().amax(dim=1, keepdim=True))


class Fp8RowLinear(torch.nn.Module):
    """A Linear layer whose input is [plain, gelu(gelu_input)], in fp8 with row-wise scales on both sides. It is made
    from a bf16 nn.Linear (`from_linear`); its weight is quantized the way torchao's fp8dqrow quantizes weights."""

    def __init__(self, weight_fp8: torch.Tensor, weight_scale: torch.Tensor, bias: torch.Tensor | None, out_dtype):
        super().__init__()
        self.register_buffer("weight_fp8", weight_fp8)
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("bias", bias)
        self.out_dtype = out_dtype
        self.in_features, self.out_features = weight_fp8.shape[1], weight_fp8.shape[0]

    @classmethod
    def from_linear(cls, linear: torch.nn.Linear) -> "Fp8RowLinear":
        weight_fp8, weight_scale = quantize_weight_rows(linear.weight.detach())
        bias = None if linear.bias is None else linear.bias.detach()
        return cls(weight_fp8, weight_scale, bias, linear.weight.dtype)

    def forward(self, gelu_input: torch.Tensor, plain: torch.Tensor | None = None) -> torch.Tensor:
        leading = gelu_input.shape[:-1]
        rows, row_scale = rows_to_fp8(None if plain is None else plain.reshape(-1, plain.shape[-1]),
                                      gelu_input.reshape(-1, gelu_input.shape[-1]))
        out = torch._scaled_mm(rows, self.weight_fp8.t(), scale_a=row_scale, scale_b=self.weight_scale.t(),
                               bias=self.bias, out_dtype=self.out_dtype, use_fast_accum=True)
        return out.reshape(*leading, self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fp8 rows (one-pass GELU + quant)"
