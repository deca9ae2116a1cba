"""Which row counts M do torch._scaled_mm (fp8 e4m3, row-wise scales) and torch._int_mm accept at Qwen-Image's
Linear shapes? (session 4: fp8dqrow and int8dq rows of the Qwen-Image grid failed)"""
import json, sys
import torch

out = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(), "cuda": torch.version.cuda,
       "cublas": torch.backends.cuda.preferred_blas_library().name if hasattr(torch.backends.cuda, "preferred_blas_library") else "", "fp8": {}, "int8": {}}
shapes = [(3072, 12288), (12288, 3072), (3072, 3072), (3584, 3072), (3072, 18432)]
for M in [1, 2, 5, 6, 8, 15, 16, 17, 24, 31, 32, 33, 64, 100, 6889, 6896]:
    for K, N in shapes:
        a = torch.randn(M, K, device="cuda").to(torch.float8_e4m3fn)
        b = torch.randn(N, K, device="cuda").to(torch.float8_e4m3fn).t()
        sa = torch.rand(M, 1, device="cuda") + 0.5
        sb = torch.rand(1, N, device="cuda") + 0.5
        try:
            y = torch._scaled_mm(a, b, scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16, use_fast_accum=True)
            ref = (a.float() * sa) @ (b.float() * sb)
            err = ((y.float() - ref).norm() / ref.norm()).item()
            out["fp8"][f"{M}x{K}x{N}"] = f"ok {err:.1e}"
        except Exception as e:  # noqa: BLE001
            out["fp8"][f"{M}x{K}x{N}"] = type(e).__name__ + ": " + str(e).split("\n")[0][:60]
        torch.cuda.synchronize()
        ai = torch.randint(-127, 127, (M, K), device="cuda", dtype=torch.int8)
        bi = torch.randint(-127, 127, (N, K), device="cuda", dtype=torch.int8).t()
        try:
            torch._int_mm(ai, bi)
            out["int8"][f"{M}x{K}x{N}"] = "ok"
        except Exception as e:  # noqa: BLE001
            out["int8"][f"{M}x{K}x{N}"] = type(e).__name__ + ": " + str(e).split("\n")[0][:60]
json.dump(out, open(sys.argv[1], "w"), indent=1)
bad = {k: {m: v for m, v in d.items() if not v.startswith("ok")} for k, d in out.items() if isinstance(d, dict)}
print(json.dumps(bad, indent=1)[:3000])
