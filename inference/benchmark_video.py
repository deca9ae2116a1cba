"""Benchmark a diffusers text-to-video pipeline (CogVideoX-2b / 5b) with torchao quantization, torch.compile, CPU
offload and VAE tiling/slicing. One configuration per run: load -> fuse -> quantize -> offload -> compile -> warm up
-> time -> record, through the same runner as the image benchmark.

    python inference/benchmark_video.py                                      # tiny-cogvideox on the CPU, offline
    python inference/benchmark_video.py --model_id THUDM/CogVideoX-5b --dtype int8wo \\
        --quantize_text_encoder --quantize_vae --offload model --vae_tiling

`--dtype` takes the seed's vocabulary: fp16 or bf16 (no quantization), or a quantization name applied on the
model's base precision (fp16 for CogVideoX-2b, bf16 for 5b; --base_dtype overrides it).
"""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from any directory

from utils.benchmark import DTYPES, run_benchmark  # noqa: E402
from utils.cli import (Parser, add_generation_args, add_measurement_args, add_model_args,  # noqa: E402
                       add_optimization_args, positive_int, validate)
from utils.files import atomic_path  # noqa: E402
from utils.presets import get_preset  # noqa: E402
from utils.quant import QUANTIZATIONS  # noqa: E402


def build_parser() -> Parser:
    parser = Parser(prog="inference/benchmark_video.py", description=__doc__.split("\n\n")[0])
    add_model_args(parser, default_ckpt="tiny-cogvideox")
    add_generation_args(parser)
    group = parser.add_argument_group("video")
    group.add_argument("--num_frames", type=positive_int, default=None,
                       help="frames per video, 4k+1 (CogVideoX compresses time 4x); preset default 49")
    group.add_argument("--dtype", choices=[*DTYPES, *QUANTIZATIONS], default=None,
                       help="fp16/bf16: base precision, no quantization; any other name: that --quantization on the "
                            "model's base precision")
    group.add_argument("--base_dtype", choices=list(DTYPES), default=None,
                       help="base precision of the weights (default: the preset's: fp16 for 2b, bf16 otherwise)")
    add_optimization_args(parser)
    add_measurement_args(parser, sample_flag="save_video")
    return parser


def resolve_dtype(parser: Parser, args) -> None:
    """Map the seed's --dtype onto --base_dtype + --quantization."""
    if args.dtype in DTYPES:
        if args.base_dtype not in (None, args.dtype):
            parser.error(f"--dtype {args.dtype} contradicts --base_dtype {args.base_dtype}")
        args.base_dtype = args.dtype
    elif args.dtype is not None:
        if args.quantization not in ("None", args.dtype):
            parser.error(f"--dtype {args.dtype} contradicts --quantization {args.quantization}")
        args.quantization = args.dtype
    preset = get_preset(args.ckpt_id)
    args.base_dtype = args.base_dtype or (preset.base_dtype if preset else "bf16")
    if args.num_frames is not None and (args.num_frames - 1) % 4:
        parser.error(f"--num_frames must be 4k+1 (CogVideoX compresses time 4x), got {args.num_frames}")


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    resolve_dtype(parser, args)
    validate(parser, args, sys.argv[1:] if argv is None else argv)
    return args


def save_video(frames, path: Path, fps: int = 8) -> None:
    from diffusers.utils import export_to_video

    with atomic_path(path) as partial:  # export_to_video wants floats in [0, 1]
        export_to_video([frame / 255.0 for frame in frames], str(partial), fps=fps)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    return run_benchmark(args, frames_of=lambda result: result.frames, save_sample=save_video)


if __name__ == "__main__":
    sys.exit(main())
