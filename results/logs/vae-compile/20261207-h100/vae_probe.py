"""FLUX.1-dev VAE decode at 1024² (latents 1x16x128x128), random weights: one variant per process.
Prints a JSON line: variant, first-call s, median s of 7 calls, compile_s (first - median), rel err vs eager."""
import json, statistics, sys, time
import torch
from utils.presets import get_preset
from utils.pipelines import build_random_component

variant = sys.argv[1]
torch.manual_seed(0)
preset = get_preset("black-forest-labs/FLUX.1-dev")
vae = build_random_component("AutoencoderKL", preset.config("vae"), "cuda", torch.bfloat16, 0)
z = torch.randn(1, 16, 128, 128, device="cuda", dtype=torch.bfloat16)
with torch.inference_mode():
    reference = vae.decode(z, return_dict=False)[0].float()
if "_cl" in variant:
    vae.to(memory_format=torch.channels_last)
    z = z.contiguous(memory_format=torch.channels_last)
if "nolayout" in variant:
    torch._inductor.config.layout_optimization = False
if variant.startswith("full"):
    vae.decode = torch.compile(vae.decode, fullgraph=True)
elif variant.startswith("regional"):
    names = {"ResnetBlock2D", "Upsample2D", "Attention"}
    torch._dynamo.config.cache_size_limit = 64
    for module in vae.decoder.modules():
        if type(module).__name__ in names:
            module.compile()
elif variant.startswith("decoder"):
    vae.decoder.compile(fullgraph=True)

def call():
    torch.cuda.synchronize(); start = time.perf_counter()
    with torch.inference_mode():
        out = vae.decode(z, return_dict=False)[0]
    torch.cuda.synchronize(); return time.perf_counter() - start, out

first, out = call()
times = [call()[0] for _ in range(7)]
median = statistics.median(times)
err = ((out.float() - reference).norm() / reference.norm()).item()
print(json.dumps({"variant": variant, "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                  "first_s": round(first, 3), "median_ms": round(median * 1e3, 2), "min_ms": round(min(times) * 1e3, 2),
                  "compile_s": round(first - median, 2), "rel_err_vs_eager": err,
                  "peak_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2)}))
