"""Flags shared by every script (one vocabulary), and the checks that run before any model is built."""

import argparse
import shlex
import sys
from pathlib import Path

import torch

from utils.autoquant import DEFAULT_MAX_ERROR
from utils.optimizations import (AUTOTUNE_SEARCH_SPACES, CUDA_GRAPH_MODES, FIRST_BLOCK_CACHE_THRESHOLD,
                                 SPARSE_FP8_MIN_CAPABILITY, SPARSE_QUANTIZATIONS, STEP_CACHES, compiles_anything,
                                 enable_step_cache, int8_autotuner_unavailable_reason)
from utils.parallel import CONTEXT_PARALLEL_MODES, context_parallel_unsupported_reason, launched_world_size
from utils.pipelines import WEIGHTS_CHOICES, build_random_transformer, resolve_weights
from utils.presets import get_preset, preset_names
from utils.quant import QUANTIZATIONS, unsupported_reason

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
ATTENTION_BACKENDS = ("default", "native", "_native_cudnn", "_native_flash", "_native_efficient", "_native_math")


class Parser(argparse.ArgumentParser):
    """argparse that reports bad input in one line on stderr (no usage dump) and exits with code 2."""

    def __init__(self, **kwargs):
        super().__init__(formatter_class=argparse.ArgumentDefaultsHelpFormatter, **kwargs)

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def add_model_args(parser: Parser, default_ckpt: str) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--ckpt_id", "--model_id", dest="ckpt_id", default=default_ckpt,
                       help=f"hub id or local directory; presets with kept configs: {', '.join(preset_names())}")
    group.add_argument("--weights", choices=WEIGHTS_CHOICES, default="auto",
                       help="pretrained: from_pretrained(ckpt_id). random: the preset's real architecture with seeded "
                            "random weights (timing and memory are real, images are noise). auto: pretrained if the "
                            "checkpoint is a local directory, cached or downloadable, else random")
    group.add_argument("--device", default=default_device(), help="torch device to run on")
    group.add_argument("--seed", type=int, default=0, help="seed for the random weights and the initial noise")


def add_generation_args(parser: Parser) -> None:
    group = parser.add_argument_group("generation (defaults come from the model preset)")
    group.add_argument("--prompt", default="A photo of an astronaut riding a horse on the moon",
                       help="text prompt")
    group.add_argument("--batch_size", type=positive_int, default=1, help="images generated per call")
    group.add_argument("--num_inference_steps", type=positive_int, default=None, help="denoising steps")
    group.add_argument("--height", type=positive_int, default=None, help="output height in pixels, multiple of 16")
    group.add_argument("--width", type=positive_int, default=None, help="output width in pixels, multiple of 16")
    group.add_argument("--guidance_scale", type=float, default=None, help="guidance scale")
    group.add_argument("--max_sequence_length", type=positive_int, default=None, help="T5 prompt length in tokens")


def add_optimization_args(parser: Parser) -> None:
    group = parser.add_argument_group("quantization (torchao 0.18)")
    group.add_argument("--quantization", choices=list(QUANTIZATIONS), default="None",
                       help="; ".join(f"{m.name}: {m.removed or m.summary}" for m in QUANTIZATIONS.values()))
    group.add_argument("--quantize_vae", action="store_true", help="also quantize the VAE's Linear layers")
    group.add_argument("--quantize_text_encoders", "--quantize_text_encoder", dest="quantize_text_encoders",
                       action="store_true", help="also quantize the text encoder(s)")
    group.add_argument("--quant_skip_pattern", default=None,
                       help="regex on layer names to keep in bf16 (e.g. 'norm.*linear|proj_out'); by default every "
                            "Linear whose dims are multiples of 16 is quantized")
    group.add_argument("--autoquant_max_error", type=float, default=DEFAULT_MAX_ERROR,
                       help="autoquant: the largest relative L2 error of a layer's output against bf16 (on its real "
                            "input) that a candidate may have")
    group.add_argument("--autoquant_plan", type=Path, default=None,
                       help="autoquant: JSON plan file, written after planning and reused (no timing) when it exists "
                            "and matches the model, device and --autoquant_max_error; default: plan every run")
    group.add_argument("--autotune", action="store_true",
                       help="int8dq on CUDA only: run its int8 matmuls through torchao's Triton kernel with a config "
                            "tuned per matmul shape (TORCHAO_AUTOTUNER_ENABLE in the seed). The first call with a new "
                            "shape benchmarks every config of --autotune_configs (counted in compile_s); the tuned "
                            "configs are kept in --autotune_cache. Not autoquant")
    group.add_argument("--autotune_configs", choices=AUTOTUNE_SEARCH_SPACES, default="baseline",
                       help="--autotune: the configs tried per matmul shape. baseline: the 11 int8 GEMM configs "
                            "PyTorch inductor used as its baseline; all: torchao's 960 (about 10 minutes per shape "
                            "on the H100, and FLUX has about 14 shapes)")
    group.add_argument("--autotune_cache", type=Path, default=None,
                       help="--autotune: pickle of the tuned configs, loaded when it exists and rewritten after each "
                            "newly tuned shape; default .cache/int8-autotuner/<GPU name>-<search space>.pkl")
    group.add_argument("--torchao_inductor_config", action="store_true",
                       help="let torchao set its recommended inductor flags (coordinate-descent tuning); off by "
                            "default because it makes full-size compiles take minutes")
    group.add_argument("--sparsify", action="store_true",
                       help="2:4 semi-structured sparsity (magnitude-pruned) on the transformer's Linear layers "
                            "(per-image layers stay dense); CUDA only. With --quantization None: torchao's bf16 2:4 "
                            "kernels; with fp8dqrow: float8 rowwise + 2:4 (CUTLASS, compute capability 9.0)")

    group = parser.add_argument_group("memory")
    group.add_argument("--offload", choices=("none", "model", "sequential"), default="none",
                       help="CPU offload (CUDA only): model = one whole model on the GPU at a time; sequential = one "
                            "layer at a time (least memory, slowest)")
    group.add_argument("--vae_tiling", action="store_true", help="decode in tiles (less memory)")
    group.add_argument("--vae_slicing", action="store_true", help="decode one sample of the batch at a time")

    group = parser.add_argument_group("multi-GPU (launch with torchrun --nproc_per_node N)")
    group.add_argument("--context_parallel", choices=CONTEXT_PARALLEL_MODES, default="none",
                       help="split the transformer's token sequence across the GPUs (diffusers context parallelism): "
                            "ulysses = all-to-all around attention, heads must divide by the degree; ring = K/V "
                            "chunks passed around (flash attention). CUDA only, FLUX presets (diffusers 0.42 has no "
                            "plan for CogVideoX)")
    group.add_argument("--cp_degree", type=positive_int, default=None,
                       help="GPUs the sequence is split across; unset means the world size (torchrun's "
                            "--nproc_per_node), the only value that works here")

    group = parser.add_argument_group("step caching (opt-in: skips computation, changes the output; reported apart)")
    group.add_argument("--step_cache", choices=STEP_CACHES, default="none",
                       help="diffusers cache hooks on the denoiser (transformer.enable_cache): first_block = when the "
                            "first block's output residual barely changed since the last step, reuse the cached "
                            "residual of all the other blocks; taylorseer = TaylorSeerCacheConfig's defaults (full "
                            "steps 0-2, then one in 5, the attention outputs in between extrapolated). Not with "
                            "--compile (its fullgraph compiles reject the hooks)")
    group.add_argument("--step_cache_threshold", type=float, default=None,
                       help="first_block only: the relative change of the first block's residual under which the other "
                            f"blocks are skipped; unset means {FIRST_BLOCK_CACHE_THRESHOLD}, FirstBlockCacheConfig's "
                            "default (higher: more steps skipped, larger output change)")

    group = parser.add_argument_group("torch.compile and fusion")
    group.add_argument("--fuse_attn_projections", "--fuse_qkv", dest="fuse_attn_projections", action="store_true",
                       help="fuse attention Q/K/V projections (transformer and VAE)")
    group.add_argument("--channels_last", action="store_true", help="VAE in channels_last memory format")
    group.add_argument("--compile", action="store_true", help="torch.compile the transformer (fullgraph=True)")
    group.add_argument("--compile_mode", choices=COMPILE_MODES, default="default",
                       help="torch.compile mode for the transformer and the VAE decoder. default compiles FLUX fp8 "
                            "in under 30 s on the H100; max-autotune(-no-cudagraphs) benchmarks many GEMM kernels per "
                            "shape (minutes); reduce-overhead and max-autotune record CUDA graphs (whole-model "
                            "--compile only)")
    group.add_argument("--regional_compile", action="store_true",
                       help="compile each repeated transformer block instead of the whole model "
                            "(diffusers compile_repeated_blocks; much faster to compile); implies --compile")
    group.add_argument("--compile_vae", action="store_true", help="torch.compile vae.decode (fullgraph=True)")
    group.add_argument("--compile_text_encoders", action="store_true",
                       help="torch.compile every layer of the text encoders (T5/CLIP) on its own; pays off with "
                            "--quantize_text_encoders, whose quantized layers cost Python dispatch per call in eager")
    group.add_argument("--compile_cache", type=Path, default=None,
                       help="torch.compile artifacts file: loaded before the first call when it exists (a warm "
                            "start), written after the timed calls; the row's compile_cache column says which")
    group.add_argument("--attention_backend", choices=ATTENTION_BACKENDS, default="default",
                       help="diffusers attention backend of the denoiser (set_attention_backend); default keeps "
                            "diffusers' choice (torch SDPA). _native_cudnn, _native_flash and _native_efficient "
                            "pick one SDPA kernel and need CUDA")


def add_measurement_args(parser: Parser, sample_flag: str) -> None:
    group = parser.add_argument_group("measurement and results")
    group.add_argument("--warmup", type=positive_int, default=2,
                       help="untimed calls first; the first one's extra time is reported as compile_s")
    group.add_argument("--runs", type=positive_int, default=5, help="timed calls (median, min and max reported)")
    group.add_argument("--csv", type=Path, default=None, help="CSV to append the row to (default results/<model>.csv)")
    group.add_argument("--reference_dir", type=Path, default=REPO_ROOT / ".cache" / "references",
                       help="where the bf16 eager reference outputs for the fidelity columns are cached")
    group.add_argument("--no_fidelity", action="store_true",
                       help="skip the eager reference and the fidelity columns (for GPUs the unoptimized model does "
                            "not fit on)")
    group.add_argument(f"--{sample_flag}", type=Path, default=None, help="write the first output to this path")
    group.add_argument("--profile", type=Path, default=None,
                       help="after the timed calls, run one more under torch.profiler and write where its time goes "
                            "(GEMM, attention, the rest; top kernels) to this markdown file, the raw table next to it")


def validate(parser: Parser, args, argv: list[str]) -> None:
    """Reject bad input in one line (exit 2) before any model is built. Fills args.weights_resolved,
    args.world_size (processes torchrun started, else 1), args.cp_degree and args.command (the command line that
    reproduces the run)."""
    args.world_size = launched_world_size()
    launcher = ["torchrun", "--nproc_per_node", str(args.world_size)] if args.world_size > 1 else ["python"]
    args.command = shlex.join([*launcher, parser.prog, *argv])
    if args.regional_compile:
        args.compile = True
    for name in ("height", "width"):
        value = getattr(args, name)
        if value is not None and value % 16:
            parser.error(f"--{name} must be a multiple of 16, got {value}")
    device = check_device(parser, args.device)
    _check_context_parallel(parser, args, device)
    reason = unsupported_reason(args.quantization, args.device, args.base_dtype)
    if reason:
        parser.error(reason)
    _check_autoquant(parser, args)
    _check_autotune(parser, args, device)
    if args.sparsify and args.quantization not in SPARSE_QUANTIZATIONS:
        parser.error("--sparsify works with --quantization None (bf16 2:4 kernels) or fp8dqrow (float8 + 2:4, "
                     "CUTLASS): torchao 0.17 removed int8 + 2:4 sparsity")
    if args.sparsify and device.type != "cuda":
        parser.error("--sparsify needs CUDA: the 2:4 semi-structured kernels have no CPU implementation")
    if (args.sparsify and args.quantization == "fp8dqrow"
            and torch.cuda.get_device_capability(device) < SPARSE_FP8_MIN_CAPABILITY):
        parser.error("--sparsify --quantization fp8dqrow needs compute capability >= 9.0 (CUTLASS's float8 2:4 "
                     f"kernels are built for Hopper); {torch.cuda.get_device_name(device)} has "
                     f"{'.'.join(map(str, torch.cuda.get_device_capability(device)))}")
    if args.regional_compile and args.compile_mode in CUDA_GRAPH_MODES:
        parser.error(f"--compile_mode {args.compile_mode} records CUDA graphs, which fail with --regional_compile: each "
                     "block's graph overwrote an output a later block still read (reduce-overhead, torch 2.11, H100); "
                     "use "
                     "--compile_mode default or max-autotune-no-cudagraphs, or --compile for the whole model")
    if args.compile_text_encoders and args.compile_mode in CUDA_GRAPH_MODES:
        parser.error(f"--compile_text_encoders compiles layer by layer, which fails with --compile_mode "
                     f"{args.compile_mode} (CUDA graphs) for the same reason as --regional_compile")
    if args.compile_cache and not compiles_anything(args):
        parser.error("--compile_cache needs --compile, --regional_compile, --compile_vae or --compile_text_encoders")
    check_attention_backend(parser, args.attention_backend, device)
    if args.profile and args.context_parallel != "none":
        parser.error("--profile makes one more call on rank 0 only; with --context_parallel the other ranks would "
                     "never join its collectives")
    if args.offload == "sequential" and compiles_anything(args):
        parser.error("--offload sequential cannot be combined with --compile/--compile_vae/--compile_text_encoders: "
                     "its per-layer hooks move weights inside the compiled graph")
    if args.offload != "none" and device.type != "cuda":
        parser.error(f"--offload {args.offload} needs a CUDA device: it moves weights between the CPU and the GPU")
    if args.quant_skip_pattern is not None:
        _check_regex(parser, args.quant_skip_pattern)
    args.weights_resolved = check_weights(parser, args.ckpt_id, args.weights)
    _check_step_cache(parser, args)


def check_device(parser: Parser, text: str) -> torch.device:
    """The torch device named by --device, or a one-line error if it is not one or is not there."""
    try:
        device = torch.device(text)
    except RuntimeError:
        parser.error(f"--device {text!r} is not a torch device")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {text}: CUDA is not available on this machine")
    return device


def _check_autoquant(parser: Parser, args) -> None:
    if args.quantization != "autoquant":
        if args.autoquant_plan is not None:
            parser.error("--autoquant_plan needs --quantization autoquant")
        return
    if not (0 < args.autoquant_max_error < float("inf")):
        parser.error(f"--autoquant_max_error must be a positive number, got {args.autoquant_max_error}")
    if args.quantize_vae or args.quantize_text_encoders:
        parser.error("--quantization autoquant plans the transformer only; drop --quantize_vae/--quantize_text_encoders")
    if args.offload != "none" or args.context_parallel != "none":
        parser.error("--quantization autoquant cannot be combined with --offload or --context_parallel: its "
                     "recording pass stops the pipeline after one transformer forward")
    if args.autoquant_plan is not None and args.autoquant_plan.is_dir():
        parser.error(f"--autoquant_plan {args.autoquant_plan} is a directory; give a .json file path")


def _check_autotune(parser: Parser, args, device: torch.device) -> None:
    """--autotune: int8dq on CUDA, with a torchao that still has the autotuner. Fills args.autotune_cache."""
    if not args.autotune:
        if args.autotune_cache is not None:
            parser.error("--autotune_cache needs --autotune")
        if args.autotune_configs != "baseline":
            parser.error("--autotune_configs needs --autotune")
        return
    if args.quantization != "int8dq":
        parser.error(f"--autotune tunes torchao's int8 x int8 matmul, which only --quantization int8dq uses "
                     f"(got --quantization {args.quantization})")
    if device.type != "cuda":
        parser.error(f"--autotune needs CUDA: the tuned int8 matmul is a Triton GPU kernel; this run is on "
                     f"{device.type}")
    reason = int8_autotuner_unavailable_reason()
    if reason:
        parser.error(f"--autotune: {reason}")
    if args.autotune_cache is None:  # per GPU model: a config tuned on one GPU is not the best on another
        import re

        gpu = re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")
        args.autotune_cache = REPO_ROOT / ".cache" / "int8-autotuner" / f"{gpu}-{args.autotune_configs}.pkl"
    elif args.autotune_cache.is_dir():
        parser.error(f"--autotune_cache {args.autotune_cache} is a directory; give a file path")


def check_attention_backend(parser: Parser, backend: str, device: torch.device) -> None:
    if backend.startswith("_native_") and backend != "_native_math" and device.type != "cuda":
        parser.error(f"--attention_backend {backend} is a CUDA kernel; this run is on {device.type}")


def check_weights(parser: Parser, ckpt_id: str, requested: str) -> str:
    """--weights resolved to pretrained or random, or a one-line error if that cannot be built here."""
    weights = resolve_weights(ckpt_id, requested)
    preset = get_preset(ckpt_id)
    if weights == "random" and preset is None:
        parser.error(f"no kept configs for {ckpt_id!r}, so random weights cannot be built; "
                     f"presets: {', '.join(preset_names())}")
    if weights == "pretrained" and preset is not None and preset.hub_id is None:
        parser.error(f"{ckpt_id} is a test-only preset with no checkpoint; use --weights random")
    return weights


def _check_context_parallel(parser: Parser, args, device: torch.device) -> None:
    """Context parallelism needs one process per GPU, all of them in the mesh. Fills args.cp_degree."""
    if args.context_parallel == "none":
        if args.cp_degree is not None:
            parser.error("--cp_degree needs --context_parallel ulysses or ring")
        return
    if args.world_size == 1:
        parser.error(f"--context_parallel {args.context_parallel} needs one process per GPU: launch with "
                     f"torchrun --nproc_per_node N {parser.prog} --context_parallel {args.context_parallel} ...")
    args.cp_degree = args.cp_degree or args.world_size
    if args.cp_degree != args.world_size:  # the mesh would hold the first cp_degree ranks; the rest fail to build it
        parser.error(f"--cp_degree {args.cp_degree} must equal the world size {args.world_size} (torchrun "
                     "--nproc_per_node): diffusers 0.42 has no data parallelism for the ranks left over")
    if args.offload != "none":
        parser.error(f"--context_parallel cannot be combined with --offload {args.offload}: every rank keeps a "
                     "whole transformer on its GPU, offload moves it to and from the CPU in every call")
    reason = context_parallel_unsupported_reason(args.ckpt_id)
    if reason:
        parser.error(f"--context_parallel: {reason}")
    if device.type != "cuda":  # diffusers 0.42.1 places rank r on accelerator r % device_count(): 0 on the CPU
        parser.error(f"--context_parallel needs CUDA (one GPU per process), not --device {args.device}")


def _check_step_cache(parser: Parser, args) -> None:
    """Step caching: first_block's threshold, the combinations that cannot work, and (for presets, whose
    architecture is kept here) whether diffusers can hook the denoiser at all, tried on a meta-device copy.
    Fills args.step_cache_threshold for first_block. Checkpoints that are not presets are checked after loading."""
    if args.step_cache != "first_block" and args.step_cache_threshold is not None:
        parser.error("--step_cache_threshold needs --step_cache first_block")
    if args.step_cache == "none":
        return
    if args.step_cache == "first_block":
        if args.step_cache_threshold is None:
            args.step_cache_threshold = FIRST_BLOCK_CACHE_THRESHOLD
        if not 0 <= args.step_cache_threshold < float("inf"):
            parser.error(f"--step_cache_threshold must be a number >= 0, got {args.step_cache_threshold}")
    if args.compile:  # measured on the CPU with tiny-flux: both caches fail in the first call under fullgraph=True
        parser.error(f"--step_cache {args.step_cache} cannot be combined with --compile/--regional_compile: diffusers' "
                     "cache hooks call torch.compiler.disable'd functions, which fullgraph=True compiles reject")
    if args.context_parallel != "none":
        parser.error("--step_cache cannot be combined with --context_parallel: first_block decides to skip from each "
                     "rank's own shard, so ranks can disagree and hang in a collective; neither was run on GPUs")
    preset = get_preset(args.ckpt_id)
    if preset is None:
        return
    model = build_random_transformer(preset, "meta", torch.bfloat16, seed=0)  # no memory, no weights
    try:
        enable_step_cache(model, args.step_cache, args.step_cache_threshold)
    except ValueError as error:
        parser.error(str(error))


def _check_regex(parser: Parser, pattern: str) -> None:
    import re

    try:
        re.compile(pattern)
    except re.error as error:
        parser.error(f"--quant_skip_pattern is not a valid regex: {error}")
