"""Benchmark a diffusers text-to-image pipeline (FLUX.1-dev / schnell, Qwen-Image) with torchao quantization and
torch.compile. One configuration per run: load -> fuse -> quantize -> compile -> warm up -> time -> record.

    python inference/benchmark_image.py                                       # tiny-flux on the CPU, offline
    python inference/benchmark_image.py --ckpt_id black-forest-labs/FLUX.1-dev \\
        --quantization fp8dqrow --fuse_attn_projections --compile --compile_vae

Each run appends one row to a CSV (default results/<model>.csv) and prints it as markdown; render a whole CSV
with `python -m utils.report results/<model>.csv`.
"""

import sys
from pathlib import Path

from utils.benchmark import new_row, run_and_print
from utils.cli import Parser
from utils.config import add_benchmark_flags, unchecked_config, validate
from utils.files import atomic_path
from utils.logs import setup_logging


def build_parser() -> Parser:
    parser = Parser(prog="inference/benchmark_image.py", description=__doc__.split("\n\n")[0])
    add_benchmark_flags(parser, default_ckpt="tiny-flux", sample_flag="save_image")
    parser.set_defaults(base_dtype="bf16")
    return parser


def parse_config(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    return validate(parser, parser.parse_args(argv), argv)


def blank_row(argv: list[str]):
    """The row these flags would start from, unchecked (the sweep's row for a run that wrote none)."""
    return new_row(unchecked_config(build_parser(), argv))


def save_image(image, path: Path) -> None:
    from PIL import Image

    with atomic_path(path) as partial:
        Image.fromarray(image).save(partial)


def main(argv=None) -> int:
    setup_logging()
    config = parse_config(argv)
    return run_and_print(config, save_sample=save_image)


if __name__ == "__main__":
    sys.exit(main())
