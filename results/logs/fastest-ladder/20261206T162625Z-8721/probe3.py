"""Issue 19 probe (session 3): the hand-written q/k RMSNorm + RoPE + e4m3 kernel against the compiled PyTorch reference
(what inductor made of the same ops before) at FLUX.1-dev shapes; rows_to_fp8's num_warps."""
import json, sys, torch
from utils import fp8_attention, fp8_kernels

def gpu_ms(fn, iters=50):
    for _ in range(5): fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(iters): fn()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / iters

res = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
H, D = 24, 128
angles = torch.rand(4608, D // 2, device="cuda") * 6.283
cos, sin = angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1)
compiled_reference = torch.compile(fp8_attention.reference_qk_norm_rope_fp8)
for name, lengths in [("single block", [4608]), ("double block", [512, 4096])]:
    torch.manual_seed(0)
    qkvs = [torch.randn(1, n, 3 * H * D, device="cuda", dtype=torch.bfloat16) * 3 for n in lengths]
    queries = [x[..., :H * D] for x in qkvs]
    keys = [x[..., H * D:2 * H * D] for x in qkvs]
    weights = [torch.rand(D, device="cuda", dtype=torch.bfloat16) * 2 + 0.5 for _ in lengths]
    scale = torch.stack([w.abs().amax().float() for w in weights]).amax() * D ** 0.5 / 448
    args = (queries, keys, weights, weights, cos, sin, 1e-6, scale, scale)
    got = fp8_attention.triton_qk_norm_rope_fp8(*args)
    eager = fp8_attention.reference_qk_norm_rope_fp8(*args)
    compiled = compiled_reference(*args)
    for label, ref in [("eager reference", eager), ("compiled reference", compiled)]:
        res[f"{name}: fp8 bytes differing from {label}"] = max(
            (a.view(torch.uint8) != b.view(torch.uint8)).float().mean().item() for a, b in zip(got, ref))
        res[f"{name}: max |diff| / max|ref| vs {label}"] = max(
            ((a.float() - b.float()).abs().max() / b.float().abs().max()).item() for a, b in zip(got, ref))
    res[f"{name}: triton ms"] = gpu_ms(lambda: fp8_attention.triton_qk_norm_rope_fp8(*args))
    res[f"{name}: compiled reference ms"] = gpu_ms(lambda: compiled_reference(*args))
    print(name, res, flush=True)

triton, kernel = fp8_kernels.triton_kernel()
for name, n_plain, n_gelu, rows in [("gelu single", 3072, 12288, 4608), ("gelu ff", 0, 12288, 4096)]:
    plain = torch.randn(rows, n_plain, device="cuda", dtype=torch.bfloat16) if n_plain else None
    gelu = torch.randn(rows, n_gelu, device="cuda", dtype=torch.bfloat16)
    out = torch.empty(rows, n_plain + n_gelu, dtype=torch.float8_e4m3fn, device="cuda")
    scale = torch.empty(rows, 1, dtype=torch.float32, device="cuda")
    bp = triton.next_power_of_2(n_plain) if n_plain else 0
    for warps in (4, 8, 16, 32):
        launch = lambda: kernel[(rows,)](gelu if plain is None else plain, gelu, out, scale, n_plain, n_gelu,
                                         0 if plain is None else plain.stride(0), gelu.stride(0), out.stride(0),
                                         BLOCK_PLAIN=bp, BLOCK_GELU=triton.next_power_of_2(n_gelu), num_warps=warps)
        try:
            res[f"{name} warps{warps} ms"] = gpu_ms(launch)
        except Exception as error:
            res[f"{name} warps{warps} ms"] = repr(error)[:200]
    src = torch.empty(rows * (n_plain + n_gelu) * 3 // 2, device="cuda", dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    res[f"{name} copy of the same bytes ms"] = gpu_ms(lambda: dst.copy_(src))
print(json.dumps(res, indent=1))
json.dump(res, open(sys.argv[1], "w"), indent=1)
