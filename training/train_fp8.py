"""Fine-tune the Flux transformer (DreamBooth-style LoRA, or all weights) with torchao float8 training, and measure
the step time, peak memory and loss against bf16. One process: parse -> validate -> build -> cache data -> convert to
float8 -> (compile) -> train -> record -> save.

    python training/train_fp8.py                                              # tiny-flux on the CPU, offline
    python training/train_fp8.py --ckpt_id black-forest-labs/FLUX.1-dev --fp8 rowwise --compare \\
        --gradient_checkpointing --compile --resolution 512 --max_steps 50 --plot results/loss.png

Each run appends one row to a CSV (default results/train-<model>.csv). Text embeddings and VAE latents are computed
once up front, so the step time measures the transformer (forward, backward, optimizer step) only.
"""

import argparse
import importlib.util
import logging
import math
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's utils, not another installed copy

import utils.interrupt_hook  # noqa: F401  (first: a Ctrl-C while torch imports is one line)
from utils.benchmark import configure_torch
from utils.cli import (
    add_model_args,
    check_device,
    check_generation,
    check_memory,
    check_not_full_size_on_cpu,
    check_output_memory,
    check_weights,
    given_flags,
    parse_checked,
    positive_int,
)
from utils.errors import INTERRUPTED_EXIT_CODE, Stopped, UsageError, stop_signals_raise
from utils.levers.attention import BACKENDS, check_backend
from utils.levers.base import off_as
from utils.logs import setup_logging
from utils.parser import Parser
from utils.path_checks import check_distinct_outputs, check_output_dir, check_output_file
from utils.paths import REPO_ROOT, default_csv
from utils.plots import plot_losses
from utils.presets import get_preset
from utils.profiling import check_profile_path, raw_table_path
from utils.provenance import provenance
from utils.results import TrainRow, append_row_or_save_aside, check_csv_target
from utils.serialization import check_safetensors_file
from utils.training.data import (
    IMAGE_SUFFIXES,
    check_images,
    image_files,
)
from utils.training.float8 import RECIPES
from utils.training.loop import profile_paths
from utils.training.lora import FULL_FOLDER, LORA_FILE, saved_rank
from utils.training.run import (
    TrainConfig,
    render_summary,
    train_recipes,
)

logger = logging.getLogger(__name__)


def resolution_type(text: str) -> tuple[int, int]:
    """N or WIDTHxHEIGHT -> (width, height)."""
    parts = text.lower().split("x")
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"expected N or WIDTHxHEIGHT in pixels, got {text!r}")
    return (sizes[0], sizes[-1])


def is_flux(preset) -> bool:
    """What this script trains: the FLUX.1 transformer."""
    return preset.pipeline_class == "FluxPipeline"


def build_parser() -> Parser:
    parser = Parser(prog="training/train_fp8.py", description=__doc__.split("\n\n")[0])
    add_model_args(parser, default_ckpt="tiny-flux", takes=is_flux)

    group = parser.add_argument_group("what to train")
    group.add_argument("--full_finetune", action="store_true",
                       help="train every transformer weight (fp32 master weights) instead of a LoRA")
    group.add_argument("--rank", type=positive_int, default=16,
                       help="LoRA rank (lora_alpha = rank) on the attention to_q/to_k/to_v/to_out.0 projections")
    group.add_argument("--resume_lora", type=Path, default=None,
                       help="start the LoRA from one saved by this script (a folder with "
                            "pytorch_lora_weights.safetensors), at the rank it was saved with")
    group.add_argument("--num_layers", type=positive_int, default=None,
                       help="random weights only: train a shallower copy of the architecture with this many "
                            "double-stream blocks (FLUX.1-dev has 19), e.g. to fit --full_finetune on one GPU; "
                            "recorded in the row's transformer_blocks")
    group.add_argument("--num_single_layers", type=positive_int, default=None,
                       help="the same for the single-stream blocks (FLUX.1-dev has 38)")

    group = parser.add_argument_group("float8 (torchao.float8 training)")
    group.add_argument("--fp8", type=off_as("off"), choices=RECIPES, default="rowwise",
                       help="off (or none): bf16. tensorwise/rowwise: convert_to_float8_training with that recipe on "
                            "the transformer's Linear layers (not proj_out, not the per-image embedder and adaLN "
                            "layers, not layers with sizes that are not multiples of 16); emulated (correct but slow) "
                            "where the device has no float8 matmul")
    group.add_argument("--compare", action="store_true",
                       help="also run bf16 (--fp8 off) first, with the same seed and data, and write both rows")

    group = parser.add_argument_group("optimization")
    group.add_argument("--max_steps", type=positive_int, default=20, help="optimizer steps")
    group.add_argument("--warmup_steps", type=int, default=2,
                       help="the first steps are trained but left out of the step-time statistics (compilation, "
                            "allocator warm-up)")
    group.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (constant)")
    group.add_argument("--guidance_scale", type=float, default=1.0,
                       help="the guidance-embedding input during training (models with guidance_embeds, e.g. "
                            "FLUX.1-dev); diffusers' DreamBooth example uses 3.5")
    group.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping norm; 0 turns it off")
    group.add_argument("--batch_size", type=positive_int, default=1, help="images per step")
    group.add_argument("--use_8bit_adam", action="store_true", help="bitsandbytes AdamW8bit (must be installed)")
    group.add_argument("--gradient_checkpointing", action="store_true",
                       help="recompute block activations in the backward pass (less memory, more time)")
    group.add_argument("--attention_backend", choices=("auto", *BACKENDS), default="auto",
                       help="diffusers attention backend of the transformer (set_attention_backend). auto: "
                            "_native_flash on CUDA (torch's own pick for Flux, cuDNN attention, crashed in the "
                            "backward pass; training/README.md), default (torch's SDPA choice) elsewhere")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile each transformer block in place (regional: compiles in a fraction of "
                            "the whole model's time)")

    group = parser.add_argument_group("data")
    group.add_argument("--dataset_dir", type=Path, default=None,
                       help="a folder of images with same-name .txt captions; default: a synthetic dataset of "
                            "coloured shapes on gradients, made on the fly")
    group.add_argument("--instance_prompt", default="a photo of sks object",
                       help="the caption of dataset images that have no .txt file")
    group.add_argument("--num_images", type=positive_int, default=8, help="size of the synthetic dataset")
    group.add_argument("--resolution", type=resolution_type, default=None,
                       help="training resolution in pixels: N (square) or WIDTHxHEIGHT, multiples of 16; None: the "
                            "preset's height, square (1024 for FLUX.1-dev, 64 for tiny-flux)")
    group.add_argument("--max_sequence_length", type=positive_int, default=None,
                       help="T5 caption length in tokens; None: the preset's (512 for FLUX.1-dev)")

    group = parser.add_argument_group("outputs")
    group.add_argument("--output_dir", type=Path, default=REPO_ROOT / "outputs" / "train_fp8",
                       help="where the LoRA (pytorch_lora_weights.safetensors) or the full transformer is saved")
    group.add_argument("--no_save", action="store_true", help="do not save the trained weights")
    group.add_argument("--overwrite", action="store_true",
                       help="replace the LoRA file or transformer folder an earlier run left in --output_dir")
    group.add_argument("--check_reload", action="store_true",
                       help="after saving, load the LoRA into a fresh pipeline with pipe.load_lora_weights and "
                            "record the largest difference of its transformer output from the trained one's "
                            "(needs memory for a second pipeline)")
    group.add_argument("--csv", type=Path, default=None,
                       help="CSV to append the rows to; None: results/train-<model slug>.csv")
    group.add_argument("--plot", type=Path, default=None, help="write the loss curves to this PNG")
    group.add_argument("--profile", type=Path, default=None,
                       help="after the timed steps, train one more step under torch.profiler (not in the statistics or "
                            "the loss curve; it is in the saved weights) and write where its time goes to this "
                            "markdown file (.md; the raw table beside it as .txt; with --compare: one file per run, "
                            "the recipe added to the name; existing files are replaced only if an earlier --profile "
                            "wrote them)")
    return parser


def build_config(args, argv: list[str]) -> TrainConfig:
    """Raises UsageError before any model is built."""
    given = given_flags(build_parser(), argv)  # what the command line set itself, default values included
    preset = get_preset(args.ckpt_id)
    if preset is not None and not is_flux(preset):
        raise UsageError(f"{args.ckpt_id} is not a FLUX.1 model; this script trains the FLUX.1 transformer")
    defaults = preset.call_defaults if preset else {}
    side = defaults.get("height", 512)
    width, height = args.resolution or (side, side)
    if width % 16 or height % 16:
        raise UsageError(f"--resolution must be multiples of 16, got {width}x{height}")
    check_generation(argparse.Namespace(height=height, width=width, guidance_scale=args.guidance_scale,
                                        max_sequence_length=args.max_sequence_length), preset)
    for flag, value, limit in (("--num_layers", args.num_layers, "num_layers"),
                               ("--num_single_layers", args.num_single_layers, "num_single_layers")):
        most = preset.config("transformer").get(limit) if preset else None
        if value is not None and most is not None and value > most:
            raise UsageError(f"{flag} makes a shallower copy: at most {most} for {args.ckpt_id}, got {value}")
    check_output_memory(max(args.num_images, args.batch_size), height, width, what="the training images")
    if not 0 <= args.warmup_steps < args.max_steps:
        default = "" if "warmup_steps" in given else " (its default)"
        raise UsageError(f"--warmup_steps must be >= 0 and below --max_steps ({args.max_steps}), got "
                         f"{args.warmup_steps}{default}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    if not (math.isfinite(args.max_grad_norm) and args.max_grad_norm >= 0):
        raise UsageError(f"--max_grad_norm must be >= 0, got {args.max_grad_norm}")
    device = check_device(args.device)
    attention_backend = args.attention_backend
    if attention_backend == "auto":
        attention_backend = "_native_flash" if device.type == "cuda" else "default"
    check_backend(attention_backend, device)
    if args.compare and args.fp8 == "off":
        raise UsageError("--compare runs bf16 against a float8 recipe: pick --fp8 tensorwise or rowwise")
    if args.use_8bit_adam and importlib.util.find_spec("bitsandbytes") is None:
        raise UsageError("--use_8bit_adam needs bitsandbytes, which is not installed")
    if args.full_finetune and (args.resume_lora or args.check_reload):
        raise UsageError("--resume_lora and --check_reload are for LoRA training, not --full_finetune")
    rank_given = "rank" in given
    if args.full_finetune and rank_given:
        raise UsageError("--rank is the LoRA's rank: --full_finetune trains every weight and has none")
    if args.no_save and args.check_reload:
        raise UsageError("--check_reload reloads the saved LoRA: not with --no_save")
    rank = args.rank
    if args.resume_lora is not None:
        lora_file = args.resume_lora / LORA_FILE
        if not lora_file.is_file():
            raise UsageError(f"--resume_lora {args.resume_lora}: no {LORA_FILE} there")
        check_safetensors_file(lora_file)
        rank = saved_rank(lora_file) or rank
        if rank != args.rank and rank_given:
            raise UsageError(f"--resume_lora {args.resume_lora} holds a rank-{rank} LoRA, not --rank {args.rank}: "
                             "leave --rank out to take the file's")
    if args.dataset_dir is not None:
        if not args.dataset_dir.is_dir():
            raise UsageError(f"--dataset_dir {args.dataset_dir} is not a directory")
        if not image_files(args.dataset_dir):
            raise UsageError(f"--dataset_dir {args.dataset_dir} has no images ({', '.join(IMAGE_SUFFIXES)})")
        check_images(args.dataset_dir)
    csv = args.csv or default_csv(args.ckpt_id, preset.slug if preset else None, prefix="train-")
    check_csv_target(csv, TrainRow)
    check_output_file("--plot", args.plot, (".png", ".pdf", ".svg"))
    profiles = profile_paths(args.profile, args.fp8, args.compare)
    for path in profiles:
        check_profile_path("--profile", path)
    check_distinct_outputs({"--csv": csv, "--plot": args.plot,
                            **{f"--profile ({path.name})": path for path in profiles},
                            **{f"--profile (its operator table {raw_table_path(path).name})": raw_table_path(path)
                               for path in profiles}})
    if args.overwrite and args.no_save:
        raise UsageError("--overwrite replaces weights an earlier run saved: not with --no_save")
    if not args.no_save:
        check_output_dir("--output_dir", args.output_dir)
        saved = args.output_dir / (FULL_FOLDER if args.full_finetune else LORA_FILE)
        if saved.exists() and not args.overwrite:
            raise UsageError(f"--output_dir {args.output_dir}: already holds {saved.name}; pass --overwrite to replace "
                             "it, or give another folder")
    shallower = args.num_layers or args.num_single_layers
    if not shallower:
        check_not_full_size_on_cpu(preset, args.device, "device" in given)
    weights = check_weights(args.ckpt_id, args.weights)
    if shallower and weights != "random":
        raise UsageError("--num_layers/--num_single_layers change the architecture: they need --weights random")
    if not shallower:
        check_memory(preset, "bf16", args.device)
    if shallower and args.check_reload:
        raise UsageError("--check_reload loads the LoRA into the full-depth pipeline: not with "
                         "--num_layers/--num_single_layers")
    return TrainConfig(
        command=shlex.join(["python", "training/train_fp8.py", *argv]), ckpt_id=args.ckpt_id, weights=weights,
        device=args.device, seed=args.seed, full_finetune=args.full_finetune, rank=rank,
        resume_lora=args.resume_lora, num_layers=args.num_layers, num_single_layers=args.num_single_layers,
        fp8=args.fp8, compare=args.compare, max_steps=args.max_steps, warmup_steps=args.warmup_steps, lr=args.lr,
        guidance_scale=args.guidance_scale, max_grad_norm=args.max_grad_norm, batch_size=args.batch_size,
        use_8bit_adam=args.use_8bit_adam, gradient_checkpointing=args.gradient_checkpointing,
        attention_backend=attention_backend, compile=args.compile, dataset_dir=args.dataset_dir,
        instance_prompt=args.instance_prompt, num_images=args.num_images, width=width, height=height,
        max_sequence_length=args.max_sequence_length or defaults.get("max_sequence_length", 512),
        output_dir=args.output_dir, no_save=args.no_save, check_reload=args.check_reload,
        csv=csv,
        plot=args.plot, profile=args.profile)


def parse_config(argv=None) -> TrainConfig:
    return parse_checked(build_parser(), build_config, argv)


def blank_row(argv: list[str]) -> TrainRow:
    """The row these flags describe (the sweep's row for a run that wrote none)."""
    args = build_parser().parse_args(argv)
    return TrainRow(**provenance(shlex.join(["python", "training/train_fp8.py", *argv]), args.device),
                    model=args.ckpt_id, weights=args.weights, device=args.device, fp8=args.fp8)


def main(argv=None) -> int:
    setup_logging()
    config = parse_config(argv)
    configure_torch()

    def record(row: TrainRow) -> None:  # each row as soon as its run is over: a later failure cannot lose it
        saved = append_row_or_save_aside(config.csv, row)
        print(render_summary(row))
        print(f"row appended to {saved}")

    rows, curves, stopped = train_recipes(config, record)
    if config.plot and curves:
        try:
            with stop_signals_raise():
                plot_losses(curves, f"{config.ckpt_id} {rows[0].method}, {config.weights} weights", config.plot,
                            dpi=120)
        except Stopped as stop:  # the rows are written; the plot appears whole or not at all
            sys.stderr.write(f"training/train_fp8.py: {stop} while plotting; {config.plot} was not written\n")
            return INTERRUPTED_EXIT_CODE
        print(f"loss curves written to {config.plot}")
    if stopped:
        return INTERRUPTED_EXIT_CODE
    return 0 if all(row.status == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
