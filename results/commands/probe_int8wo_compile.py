"""Why is int8wo + torch.compile slow on Flux? One int8 weight-only Linear at Flux's shape (4608 tokens x 3072 x
3072) on CUDA: eager, then compiled with inductor's mkldnn patterns on (unless --no-mkldnn) and off, printing the
kernels inductor generated for the first compile.

    python results/commands/probe_int8wo_compile.py [--no-mkldnn]
"""

import argparse
import re
import sys

import torch
from torch._inductor.utils import run_and_get_code
from torchao.quantization import Int8WeightOnlyConfig, quantize_

M, K, N = 4608, 3072, 3072
KERNEL_LINE = r"extern_kernels\.|async_compile\.triton\('|^def call|triton_\w+\.run\(|\.mm\(|_int_mm|tl\.dot"


def time_ms(function, calls: int = 5) -> float:
    for _ in range(2):
        function()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        function()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-mkldnn", action="store_true",
                        help="inductor's mkldnn patterns off in the first compile too (the second always has them off)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"{parser.prog}: error: this probe times a CUDA kernel: run it on a machine with a CUDA GPU",
              file=sys.stderr)
        return 2
    x = torch.randn(1, M, K, device="cuda", dtype=torch.bfloat16)
    linear = torch.nn.Linear(K, N, device="cuda", dtype=torch.bfloat16)
    quantize_(linear, Int8WeightOnlyConfig(set_inductor_config=False))
    print(f"eager int8wo {time_ms(lambda: linear(x)):.3f} ms", flush=True)
    torch.backends.mkldnn.enabled = not args.no_mkldnn
    _, code = run_and_get_code(torch.compile(linear, fullgraph=True), x)
    for line in code[0].splitlines():
        if re.search(KERNEL_LINE, line):
            print("   ", line.strip()[:160])
    for mkldnn in (torch.backends.mkldnn.enabled, False):
        torch._dynamo.reset()
        torch.backends.mkldnn.enabled = mkldnn
        compiled = torch.compile(linear, fullgraph=True)
        print(f"mkldnn={mkldnn}: compiled {time_ms(lambda: compiled(x)):.3f} ms", flush=True)  # noqa: B023
    return 0


if __name__ == "__main__":
    sys.exit(main())
