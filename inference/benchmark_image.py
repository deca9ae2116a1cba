"""Benchmark a diffusers text-to-image pipeline (FLUX.1-dev / schnell, FLUX.2-dev, Qwen-Image) with torchao
quantization and torch.compile. One configuration per run: load -> fuse -> quantize -> compile -> warm up -> time ->
record.

    python inference/benchmark_image.py                                       # tiny-flux on the CPU, offline
    python inference/benchmark_image.py --ckpt_id black-forest-labs/FLUX.1-dev \\
        --quantization fp8dqrow --fuse_attn_projections --compile --compile_vae
    python inference/benchmark_image.py --ckpt_id black-forest-labs/FLUX.1-dev --recipe fastest

Each run appends one row to a CSV (default results/<model>.csv) and prints it as markdown; render a whole CSV
with `python -m utils.report results/<model>.csv`.
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's utils, not another installed copy

import utils.interrupt_hook  # noqa: F401  (first: a Ctrl-C while torch imports is one line)
from utils.benchmark import new_row, run_and_print
from utils.config import add_benchmark_flags, unchecked_config, validate
from utils.files import atomic_path
from utils.logs import setup_logging
from utils.parser import Parser

# Named combinations of flags for FLUX on a Hopper GPU; flags given beside --recipe add to or override them.
README_RECIPE = ["--quantization", "fp8dqrow", "--fuse_attn_projections", "--regional_compile", "--compile_vae"]
FASTEST_LOSSLESS = [*README_RECIPE, "--persistent_reductions_up_to", "16384", "--gelu_fp8_one_pass", "--cuda_graph"]
RECIPES = {
    "readme": README_RECIPE,
    "fastest-lossless": FASTEST_LOSSLESS,  # every lever that keeps bf16 attention
    "fastest": [*FASTEST_LOSSLESS, "--attention_backend", "fa3_fp8"],  # + fp8 attention (needs the fa3-fwd wheel)
}


def build_parser() -> Parser:
    parser = Parser(prog="inference/benchmark_image.py", description=__doc__.split("\n\n")[0])
    add_benchmark_flags(parser, default_ckpt="tiny-flux", sample_flag="save_image")
    parser.add_argument("--recipe", choices=list(RECIPES), default=None,
                        help="a named set of flags (a flag also given on the command line wins): "
                             + "; ".join(f"{name} = {' '.join(flags)}" for name, flags in RECIPES.items()))
    parser.set_defaults(base_dtype="bf16")
    return parser


def with_recipe(parser: Parser, argv: list[str]) -> list[str]:
    """argv with its --recipe's flags in front of the user's (which therefore win). An error about a flag that only
    the recipe gave names the recipe, since the user never typed that flag."""
    recipe = parser.parse_args(argv).recipe
    if not recipe:
        return argv
    added = [flag for flag in RECIPES[recipe] if flag.startswith("--") and flag not in argv]
    plain_error = parser.error

    def error(message):
        from_recipe = any(re.search(rf"{flag}(?![\w-])", message) for flag in added)
        plain_error(f"--recipe {recipe}: {message}" if from_recipe else message)

    parser.error = error
    return [*RECIPES[recipe], *argv]


def parse_config(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    return validate(parser, parser.parse_args(with_recipe(parser, argv)), argv)


def blank_row(argv: list[str]):
    """The row these flags would start from, unchecked (the sweep's row for a run that wrote none)."""
    parser = build_parser()
    return new_row(unchecked_config(parser, with_recipe(parser, argv)))


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
