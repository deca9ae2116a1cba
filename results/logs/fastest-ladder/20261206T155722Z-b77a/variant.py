"""benchmark_image.py with FA3 fp8 attention's q/k cast at per-head amax scales (as at b8e9de9) instead of the
RMSNorm-weight bound."""
import runpy, sys
from utils import fp8_attention

fp8_attention.to_fp8_bounded = lambda x, bound: fp8_attention.to_fp8_per_head(x)
sys.argv = ["inference/benchmark_image.py", *sys.argv[1:]]
runpy.run_path("inference/benchmark_image.py", run_name="__main__")
