"""Issue 19 A/B: benchmark_image.py with fp8 attention's q/k left in diffusers' interleaved RoPE layout (the code
before deinterleave_query_key), for a step-6 row in the same campaign as the de-interleaved one."""
import runpy, sys
import utils.fp8_attention

utils.fp8_attention.deinterleave_query_key = lambda model: print("probe: q/k layout left interleaved", file=sys.stderr)
sys.argv = ["inference/benchmark_image.py", *sys.argv[1:]]
runpy.run_path("inference/benchmark_image.py", run_name="__main__")
