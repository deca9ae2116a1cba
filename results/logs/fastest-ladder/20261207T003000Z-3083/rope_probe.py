"""Issue 19 probe: the single block's q/k kernel (RMSNorm + RoPE + bounded fp8 cast) at FLUX.1-dev shapes, as
inductor compiles it, against variants: no RoPE (the floor of norm + cast), RoPE on a de-interleaved head_dim
(rotate-half: q.k is unchanged by one permutation of head_dim applied to q and k), and RoPE written on pairs."""
import json, sys, torch
import torch.nn.functional as F
from diffusers.models.embeddings import apply_rotary_emb

def gpu_ms(fn, iters=50):
    for _ in range(5): fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters): fn()
    end.record(); torch.cuda.synchronize()
    return start.elapsed_time(end) / iters

S, H, D, WIDTH = 4608, 24, 128, 21504   # single block: fused [q | k | v | mlp] projection output
torch.manual_seed(0)
proj = torch.randn(1, S, WIDTH, device="cuda", dtype=torch.bfloat16)
w_q, w_k = (torch.rand(D, device="cuda", dtype=torch.bfloat16) + 0.5 for _ in range(2))
bound = torch.tensor(20.0, device="cuda")
angles = torch.rand(S, D // 2, device="cuda") * 6.283
cos, sin = angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1)   # diffusers' layout
cos_half, sin_half = angles.cos().repeat(1, 2), angles.sin().repeat(1, 2)                 # rotate-half layout
perm = torch.cat([torch.arange(0, D, 2), torch.arange(1, D, 2)]).cuda()

def cast(x):
    scale = bound / 448
    return (x / scale).clamp(-448, 448).to(torch.float8_e4m3fn)

def qk(proj):
    q, k = proj[..., :3072].unflatten(-1, (H, D)), proj[..., 3072:6144].unflatten(-1, (H, D))
    return q, k

def current(proj):
    q, k = qk(proj)
    q, k = F.rms_norm(q, (D,), w_q, 1e-6), F.rms_norm(k, (D,), w_k, 1e-6)
    return cast(apply_rotary_emb(q, (cos, sin), sequence_dim=1)), cast(apply_rotary_emb(k, (cos, sin), sequence_dim=1))

def no_rope(proj):
    q, k = qk(proj)
    return cast(F.rms_norm(q, (D,), w_q, 1e-6)), cast(F.rms_norm(k, (D,), w_k, 1e-6))

def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)

def half(proj):   # proj's q/k columns already de-interleaved per head (weights permuted once at load)
    q, k = qk(proj)
    q, k = F.rms_norm(q, (D,), w_q[perm], 1e-6).float(), F.rms_norm(k, (D,), w_k[perm], 1e-6).float()
    c, s = cos_half[None, :, None], sin_half[None, :, None]
    return cast(q * c + rotate_half(q) * s), cast(k * c + rotate_half(k) * s)

def pairs(proj):
    q, k = qk(proj)
    q, k = F.rms_norm(q, (D,), w_q, 1e-6).float(), F.rms_norm(k, (D,), w_k, 1e-6).float()
    c, s = angles.cos()[None, :, None], angles.sin()[None, :, None]
    def rope(x):
        x = x.unflatten(-1, (-1, 2)); even, odd = x[..., 0], x[..., 1]
        return torch.stack([even * c - odd * s, odd * c + even * s], -1).flatten(-2)
    return cast(rope(q)), cast(rope(k))

res = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
ref_q, ref_k = current(proj)
proj_half = proj.clone()
for start in (0, 3072):   # the same data with each head's q/k columns de-interleaved
    block = proj_half[..., start:start + 3072].unflatten(-1, (H, D))
    block.copy_(block[..., perm])
for name, fn, data in [("current", current, proj), ("no rope", no_rope, proj), ("rotate-half", half, proj_half),
                       ("pairs", pairs, proj)]:
    compiled = torch.compile(fn)
    q8, k8 = compiled(data)
    if name == "rotate-half":
        q8, k8 = q8.float()[..., perm.argsort()], k8.float()[..., perm.argsort()]
    if name != "no rope":
        res[f"{name}: rel L1 vs eager reference (q, k)"] = tuple(
            ((a.float() - b.float()).abs().mean() / b.float().abs().mean()).item() for a, b in ((q8, ref_q), (k8, ref_k)))
    res[f"{name}: ms"] = gpu_ms(lambda: compiled(data))
print(json.dumps(res, indent=1))
json.dump(res, open(sys.argv[1], "w"), indent=1)
