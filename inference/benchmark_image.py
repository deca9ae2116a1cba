"""Benchmark a diffusers text-to-image pipeline (FLUX.1-dev / schnell) with torchao quantization and
torch.compile. One configuration per run: load -> fuse -> quantize -> compile -> warm up -> time -> record.

    python inference/benchmark_image.py                                       # tiny-flux on the CPU, offline
    python inference/benchmark_image.py --ckpt_id black-forest-labs/FLUX.1-dev \\
        --quantization fp8dqrow --fuse_attn_projections --compile --compile_vae

Each run appends one row to a CSV (default results/<model>.csv) and prints it as markdown; render a whole CSV
with `python -m utils.report results/<model>.csv`.
"""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from any directory

from utils.benchmark import run_benchmark  # noqa: E402
from utils.cli import (Parser, add_generation_args, add_measurement_args, add_model_args,  # noqa: E402
                       add_optimization_args, validate)
from utils.files import atomic_path  # noqa: E402


def build_parser() -> Parser:
    parser = Parser(prog="inference/benchmark_image.py", description=__doc__.split("\n\n")[0])
    add_model_args(parser, default_ckpt="tiny-flux")
    add_generation_args(parser)
    add_optimization_args(parser)
    add_measurement_args(parser, sample_flag="save_image")
    parser.set_defaults(base_dtype="bf16")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    validate(parser, args, sys.argv[1:] if argv is None else argv)
    return args


def save_image(image, path: Path) -> None:
    from PIL import Image

    with atomic_path(path) as partial:
        Image.fromarray(image).save(partial)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    return run_benchmark(args, frames_of=lambda result: result.images, save_sample=save_image)


if __name__ == "__main__":
    sys.exit(main())
