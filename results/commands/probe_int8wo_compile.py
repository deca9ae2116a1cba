# Why is int8wo + torch.compile slow on Flux? One Linear at Flux's shape (M=4608 tokens), compiled under inductor
# variants; prints the kernels inductor generated for the default one.
import re, time, torch
from torch._inductor.utils import run_and_get_code
from torchao.quantization import Int8WeightOnlyConfig, quantize_
import torch._inductor.config as ic
M, K, N = 4608, 3072, 3072
x = torch.randn(1, M, K, device="cuda", dtype=torch.bfloat16)
def bench(f, n=5):
    for _ in range(2): f()
    torch.cuda.synchronize(); s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n): f()
    e.record(); e.synchronize(); return s.elapsed_time(e) / n
lin = torch.nn.Linear(K, N, device="cuda", dtype=torch.bfloat16)
quantize_(lin, Int8WeightOnlyConfig(set_inductor_config=False))
print(f"eager int8wo {bench(lambda: lin(x)):.3f} ms", flush=True)
import sys
torch._dynamo.reset()
torch.backends.mkldnn.enabled = "--no-mkldnn" not in sys.argv
_, code = run_and_get_code(torch.compile(lin, fullgraph=True), x)
for line in code[0].splitlines():
    if re.search(r"extern_kernels\.|async_compile\.triton\('|^def call|triton_\w+\.run\(|\.mm\(|_int_mm|tl\.dot", line):
        print("   ", line.strip()[:160])
variants = []
torch.backends.mkldnn.enabled = False
for variant in variants:
    if any(not hasattr(ic, k) for k in variant):
        print("skip", variant); continue
    saved = {k: getattr(ic, k) for k in variant}
    for k, v in variant.items(): setattr(ic, k, v)
    torch._dynamo.reset()
    c = torch.compile(lin, fullgraph=True)
    t = time.perf_counter(); c(x); torch.cuda.synchronize(); comp = time.perf_counter() - t
    print(f"{variant}: compiled {bench(lambda: c(x)):.3f} ms (compile {comp:.1f} s)", flush=True)
    for k, v in saved.items(): setattr(ic, k, v)
c = torch.compile(lin, fullgraph=True)
print(f"mkldnn={torch.backends.mkldnn.enabled}: compiled {bench(lambda: c(x)):.3f} ms", flush=True)
