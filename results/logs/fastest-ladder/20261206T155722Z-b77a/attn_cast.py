"""Issue 19 probe (session 3): cost and error of the q/k/v fp8 cast for FA3 fp8 attention at FLUX.1-dev shapes.
per-head amax for q/k/v (b8e9de9) vs RMSNorm-weight bound for q/k + per-head v (now) vs a saturating cast at scale 1."""
import json, sys, torch
import torch.nn.functional as F
from diffusers.models.embeddings import apply_rotary_emb
from utils import fp8_attention

def gpu_ms(fn, iters=50):
    for _ in range(5): fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters): fn()
    end.record(); torch.cuda.synchronize()
    return start.elapsed_time(end) / iters

fp8_attention.load_kernel()
from fa3_fwd_interface import flash_attn_func
res = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
B, S, H, D = 1, 4608, 24, 128
torch.manual_seed(0)
q_in, k_in, v = (torch.randn(B, S, H, D, device="cuda", dtype=torch.bfloat16) * 3 for _ in range(3))
w_q, w_k = (torch.rand(D, device="cuda", dtype=torch.bfloat16) * 2 + 0.5 for _ in range(2))
angles = torch.rand(S, D // 2, device="cuda") * 6.283
cos, sin = angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1)

def prep(x, w):
    return apply_rotary_emb(F.rms_norm(x, (D,), w, eps=1e-6), (cos, sin), sequence_dim=1)

def unscaled(x):
    ones = torch.ones(x.shape[0], x.shape[2], device=x.device, dtype=torch.float32)
    return x.clamp(-448, 448).to(torch.float8_e4m3fn), ones

def make(cast):
    def run(q_in, k_in, v):
        return cast(prep(q_in, w_q)), cast(prep(k_in, w_k)), cast(v)
    return torch.compile(run)

def bounded(q_in, k_in, v):
    bq, bk = (w.abs().amax().float() * D ** 0.5 for w in (w_q, w_k))
    return (fp8_attention.to_fp8_bounded(prep(q_in, w_q), bq), fp8_attention.to_fp8_bounded(prep(k_in, w_k), bk),
            fp8_attention.to_fp8_per_head(v))

bf16_prep = torch.compile(lambda q_in, k_in, v: (prep(q_in, w_q), prep(k_in, w_k), v))
q, k, _ = bf16_prep(q_in, k_in, v)
ref = F.scaled_dot_product_attention(*(x.transpose(1, 2).float() for x in (q, k, v))).transpose(1, 2)
res["q absmax after norm+rope"] = q.abs().max().item()
res["bf16 rmsnorm+rope ms"] = gpu_ms(lambda: bf16_prep(q_in, k_in, v))
for name, fn in [("per-head amax q/k/v", make(fp8_attention.to_fp8_per_head)),
                 ("norm bound q/k, per-head v", torch.compile(bounded)), ("scale 1 saturating", make(unscaled))]:
    (q8, qs), (k8, ks), (v8, vs) = fn(q_in, k_in, v)
    out = flash_attn_func(q8, k8, v8, q_descale=qs, k_descale=ks, v_descale=vs)
    res[f"{name}: rel err vs fp32"] = ((out.float() - ref).norm() / ref.norm()).item()
    res[f"{name}: rmsnorm+rope+cast ms"] = gpu_ms(lambda: fn(q_in, k_in, v))
    res[f"{name}: attention ms"] = gpu_ms(lambda: flash_attn_func(q8, k8, v8, q_descale=qs, k_descale=ks, v_descale=vs))
sdpa = lambda: F.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (q, k, v))).transpose(1, 2)
res["sdpa bf16 rel err vs fp32"] = ((sdpa().float() - ref).norm() / ref.norm()).item()
with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.CUDNN_ATTENTION):
    res["sdpa cudnn bf16 ms"] = gpu_ms(sdpa)
print(json.dumps(res, indent=1))
json.dump(res, open(sys.argv[1], "w"), indent=1)
