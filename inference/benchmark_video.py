"""Benchmark a diffusers text-to-video pipeline (CogVideoX-2b / 5b, Wan 2.2 T2V-A14B / TI2V-5B) with torchao
quantization, torch.compile, CPU offload and VAE tiling/slicing. One configuration per run: load -> fuse -> quantize
-> offload -> compile -> warm up -> time -> record, through the same runner as the image benchmark.

    python inference/benchmark_video.py                                      # tiny-cogvideox on the CPU, offline
    python inference/benchmark_video.py --model_id THUDM/CogVideoX-5b --dtype int8wo \\
        --quantize_text_encoder --offload model --vae_tiling
    python inference/benchmark_video.py --model_id Wan-AI/Wan2.2-T2V-A14B-Diffusers --quantization fp8dqrow \\
        --regional_compile                               # both experts (transformer, transformer_2) quantized, compiled

`--dtype` takes the seed's vocabulary: fp16 or bf16 (the base precision), or a quantization name applied on the
model's base precision (fp16 for CogVideoX-2b, bf16 for 5b; --base_dtype overrides it).
"""

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's utils, not another installed copy

import utils.interrupt_hook  # noqa: F401  (first: a Ctrl-C while torch imports is one line)
from utils.benchmark import new_row, run_and_print
from utils.cli import given_flags, positive_int
from utils.config import add_benchmark_flags, unchecked_config, validate
from utils.files import atomic_path
from utils.logs import setup_logging
from utils.parser import Parser
from utils.presets import DTYPES
from utils.quant import QUANTIZATIONS


def build_parser() -> Parser:
    parser = Parser(prog="inference/benchmark_video.py", description=__doc__.split("\n\n")[0])
    add_benchmark_flags(parser, default_ckpt="tiny-cogvideox", sample_flag="save_video")
    group = parser.add_argument_group("video")
    group.add_argument("--num_frames", type=positive_int, default=None,
                       help="frames per video, 4k+1 (the video VAEs compress time 4x); default: the preset's")
    group.add_argument("--guidance_scale_2", type=float, default=None,
                       help="guidance scale of the low-noise expert (Wan2.2-T2V-A14B's transformer_2, the steps "
                            "below its boundary); --guidance_scale sets the high-noise expert's. Default: the "
                            "preset's (the model card's 3.0)")
    group.add_argument("--dtype", choices=[*DTYPES, *QUANTIZATIONS], default=None,
                       help="fp16/bf16: the base precision (as --base_dtype; --quantization still quantizes on it); "
                            "any other name: that --quantization on the model's base precision")
    group.add_argument("--base_dtype", choices=list(DTYPES), default=None,
                       help="base precision of the weights (default: the preset's: fp16 for CogVideoX-2b, bf16 "
                            "otherwise; Wan keeps its VAE in fp32 as its model cards do)")
    return parser


def dtype_overrides(parser: Parser, args, given: frozenset[str] = frozenset()) -> dict:
    """The seed's --dtype as --base_dtype or --quantization; `given`: the flags the command line set."""
    if args.num_frames is not None and (args.num_frames - 1) % 4:
        parser.error(f"--num_frames must be 4k+1 (the video VAEs compress time 4x), got {args.num_frames}")
    if args.dtype in DTYPES:
        if args.base_dtype not in (None, args.dtype):
            parser.error(f"--dtype {args.dtype} contradicts --base_dtype {args.base_dtype}")
        return {"base_dtype": args.dtype}
    if args.dtype is not None:
        if args.quantization != args.dtype and "quantization" in given:
            parser.error(f"--dtype {args.dtype} contradicts --quantization {args.quantization}")
        return {"quantization": args.dtype}
    return {}


def parse_config(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    given = given_flags(parser, argv)
    return validate(parser, args, argv, given, **dtype_overrides(parser, args, given))


def blank_row(argv: list[str]):
    """The row these flags would start from, unchecked (the sweep's row for a run that wrote none)."""
    parser = build_parser()
    return new_row(unchecked_config(parser, argv, **dtype_overrides(parser, parser.parse_args(argv))))


def save_video(frames, path: Path, fps: int = 8) -> None:
    from diffusers.utils import export_to_video

    with atomic_path(path) as partial:  # export_to_video wants floats in [0, 1]
        export_to_video([frame / 255.0 for frame in frames], str(partial), fps=fps)


def main(argv=None) -> int:
    setup_logging()
    config = parse_config(argv)
    fps = config.preset.fps if config.preset else 8
    return run_and_print(config, save_sample=functools.partial(save_video, fps=fps))


if __name__ == "__main__":
    sys.exit(main())
