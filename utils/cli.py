"""The command-line vocabulary every script shares: one parser class, argument types, the model, generation and
measurement flags, and the checks of devices and weights. The levers' flags live in their modules (utils.levers)."""

import argparse
import contextlib
import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from utils.errors import UsageError
from utils.parser import Parser
from utils.paths import CACHE_DIR
from utils.pipelines import (
    WEIGHTS_CHOICES,
    checkpoint_available,
    resolve_weights,
    weight_bytes,
)
from utils.presets import Preset, get_preset, preset_names
from utils.timing import GiB


def parse_checked(parser: Parser, build_config, argv=None):
    """`build_config(parsed flags, argv)` for the command line (sys.argv when `argv` is None); a UsageError it raises
    becomes one line on stderr and exit code 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return build_config(parser.parse_args(argv), argv)
    except UsageError as error:
        parser.error(str(error))


def given_flags(parser: argparse.ArgumentParser, argv: list[str]) -> frozenset[str]:
    """The flags (by dest) the command line set itself, whatever their values: a check can then refuse a flag that
    has nothing to act on even when it repeats its default."""
    unset = object()
    dests = {action.dest for action in parser._actions}
    probe = argparse.Namespace(**dict.fromkeys(dests, unset))  # argparse fills in defaults only where nothing is set
    parser.parse_known_args(argv, namespace=probe)
    return frozenset(dest for dest in dests if getattr(probe, dest) is not unset)


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


SEED_LIMIT = 2**63 - 2**16  # torch seeds are 64-bit; the models' components take seed + their index


def seed(text: str) -> int:
    value = int(text)
    if not -SEED_LIMIT <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be within ±{SEED_LIMIT}, got {value}")
    return value


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def add_model_args(parser: Parser, default_ckpt: str, takes: Callable[[Preset], bool] = lambda preset: True) -> None:
    """The model flags; `takes` picks the presets the script runs, which --ckpt_id's help lists."""
    group = parser.add_argument_group("model")
    presets = [name for name in preset_names() if takes(get_preset(name))]
    group.add_argument("--ckpt_id", "--model_id", dest="ckpt_id", default=default_ckpt,
                       help=f"hub id or local directory; presets with kept configs: {', '.join(presets)}")
    group.add_argument("--weights", choices=WEIGHTS_CHOICES, default="auto",
                       help="pretrained: from_pretrained(ckpt_id). random: the preset's real architecture with seeded "
                            "random weights (timing and memory are real, images are noise). auto: pretrained if the "
                            "checkpoint is a local directory, cached or downloadable, else random")
    group.add_argument("--device", default=default_device(), help="torch device to run on")
    group.add_argument("--seed", type=seed, default=0, help="seed for the random weights and the initial noise")


def add_generation_args(parser: Parser) -> None:
    group = parser.add_argument_group("generation (defaults come from the model preset)")
    group.add_argument("--prompt", default="A photo of an astronaut riding a horse on the moon",
                       help="text prompt")
    group.add_argument("--batch_size", type=positive_int, default=1, help="images (or videos) generated per call")
    group.add_argument("--num_inference_steps", type=positive_int, default=None, help="denoising steps")
    group.add_argument("--height", type=positive_int, default=None,
                       help="output height in pixels, multiple of 16 (or of the model's own step)")
    group.add_argument("--width", type=positive_int, default=None,
                       help="output width in pixels, multiple of 16 (or of the model's own step)")
    group.add_argument("--guidance_scale", type=float, default=None,
                       help="guidance scale (for Qwen-Image its true CFG scale, true_cfg_scale)")
    group.add_argument("--max_sequence_length", type=positive_int, default=None,
                       help="prompt length in tokens of the text encoder (T5, UMT5, Qwen2.5-VL or Mistral)")


def add_measurement_args(parser: Parser, sample_flag: str) -> None:
    group = parser.add_argument_group("measurement and results")
    group.add_argument("--warmup", type=positive_int, default=2,
                       help="untimed calls first, at least 1: the first one's extra time is reported as compile_s")
    group.add_argument("--runs", type=positive_int, default=5, help="timed calls (median, min and max reported)")
    group.add_argument("--memory_only", action="store_true",
                       help="this run measures memory (e.g. with fewer denoising steps): the row says so and the "
                            "report shows its memory only, with no speedup, pick or latency plot")
    group.add_argument("--csv", type=Path, default=None, help="CSV to append the row to (default results/<model>.csv)")
    group.add_argument("--reference_dir", type=Path, default=CACHE_DIR / "references",
                       help="where the bf16 eager reference outputs for the fidelity columns are cached")
    group.add_argument("--no_fidelity", action="store_true",
                       help="skip the eager reference and the fidelity columns (for GPUs the unoptimized model does "
                            "not fit on)")
    group.add_argument(f"--{sample_flag}", dest="sample_path", type=Path, default=None,
                       help="write the first output to this path")
    group.add_argument("--profile", type=Path, default=None,
                       help="after the timed calls, run one more under torch.profiler and write where its time goes "
                            "(GEMM, attention, the rest; top kernels) to this markdown file (.md), the raw table next "
                            "to it (.txt); existing files are replaced only if an earlier --profile wrote them")
    group.add_argument("--ladder_step", type=positive_int, default=None,
                       help="this row's step in a cumulative ladder (inference/sweep.py sets it from a ladder grid "
                            "file); recorded in the step column")
    group.add_argument("--ladder_lever", default=None,
                       help="what this ladder step adds to its base step (sweep.py sets it); recorded in the lever "
                            "column")
    group.add_argument("--ladder_base", type=positive_int, default=None,
                       help="the ladder step this one builds on (sweep.py sets it); recorded in the base_step column")


def check_device(text: str) -> torch.device:
    """The torch device named by --device, or a UsageError if it is not one or is not there."""
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UsageError(f"--device {text!r} is not a torch device") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {text}: the suite runs on cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {text}: CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {text}: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


def check_weights(ckpt_id: str, requested: str) -> str:
    """--weights resolved to pretrained or random, or a UsageError if that cannot be built here."""
    local = Path(ckpt_id).exists()
    if local:
        from utils.serialization import check_pipeline_dir

        check_pipeline_dir(Path(ckpt_id))
    preset = get_preset(ckpt_id)
    if preset is None and requested == "auto" and not local:
        available, reason = checkpoint_available(ckpt_id)
        if not available:  # random weights need a preset's configs: nothing to fall back to
            raise UsageError(f"{ckpt_id}: {reason}, and no kept configs to build it with random weights; presets: "
                             f"{', '.join(preset_names())}")
        return "pretrained"  # what resolve_weights would say, without asking the hub a second time
    weights = resolve_weights(ckpt_id, requested)
    if weights == "pretrained" and requested == "pretrained" and (preset is None or preset.hub_id):
        available, reason = checkpoint_available(ckpt_id)
        if not available:
            fallback = "; --weights random builds its architecture with random weights" if preset else ""
            raise UsageError(f"{ckpt_id}: cannot load pretrained weights: {reason}{fallback}")
    if weights == "random" and preset is None:
        raise UsageError(f"no kept configs for {ckpt_id!r}, so random weights cannot be built; "
                         f"presets: {', '.join(preset_names())}")
    if weights == "pretrained" and preset is not None and preset.hub_id is None:
        raise UsageError(f"{ckpt_id} is a test-only preset with no checkpoint; use --weights random")
    if weights == "pretrained" and preset is not None:
        check_loader_packages(preset)
    return weights


# Packages a checkpoint's own tokenizer or processor class needs that the suite itself does not (random weights build
# their tokenizers without them): FLUX.2-dev's transformers PixtralProcessor imports torchvision.
LOADER_PACKAGES = {"PixtralProcessor": "torchvision"}


def check_loader_packages(preset: Preset) -> None:
    for class_name, _ in preset.tokenizers.values():
        package = LOADER_PACKAGES.get(class_name)
        if package and importlib.util.find_spec(package) is None:
            raise UsageError(f"{preset.name}'s checkpoint loads transformers' {class_name}, which needs {package} "
                             f"(pip install {package}); --weights random runs without it")


MAX_SIDE_PX = 8192
MAX_STEPS = 1000  # the schedulers' number of training timesteps
MAX_FRAMES = 1025
DEFAULT_TEXT_LENGTH_LIMIT = 512  # T5's limit in the Flux pipelines


def text_length_limit(preset: Preset | None) -> int:
    """The longest prompt in tokens the model takes: CogVideoX's transformer has a fixed text length."""
    if preset is None:
        return DEFAULT_TEXT_LENGTH_LIMIT
    return preset.config("transformer").get("max_text_seq_length", DEFAULT_TEXT_LENGTH_LIMIT)


def check_generation(flags, preset: Preset | None) -> None:
    """The pipeline-call flags, against limits beyond which a call cannot work (they would fail minutes later, deep
    inside the scheduler or the text encoder)."""
    multiple = preset.size_multiple if preset else 16
    for name in ("height", "width"):
        value = getattr(flags, name, None)
        if value is not None and value % multiple:
            raise UsageError(f"--{name} must be a multiple of {multiple} for this model, got {value}")
        if value is not None and value > MAX_SIDE_PX:
            raise UsageError(f"--{name} must be at most {MAX_SIDE_PX} pixels, got {value}")
    steps = getattr(flags, "num_inference_steps", None)
    if steps is not None and steps > MAX_STEPS:
        raise UsageError(f"--num_inference_steps must be at most {MAX_STEPS} (the schedulers' training timesteps), "
                         f"got {steps}")
    frames = getattr(flags, "num_frames", None)
    if frames is not None and frames > MAX_FRAMES:
        raise UsageError(f"--num_frames must be at most {MAX_FRAMES}, got {frames}")
    for name in ("guidance_scale", "guidance_scale_2"):
        guidance = getattr(flags, name, None)
        if guidance is not None and not (math.isfinite(guidance) and guidance >= 0):
            raise UsageError(f"--{name} must be a finite number >= 0, got {guidance}")
    second_expert = preset is None or "guidance_scale_2" in preset.call_defaults  # a checkpoint's pipeline decides
    if getattr(flags, "guidance_scale_2", None) is not None and not second_expert:
        raise UsageError(f"--guidance_scale_2 sets the low-noise expert's guidance of a two-expert model "
                         f"(Wan2.2-T2V-A14B); {preset.name} has one transformer: use --guidance_scale")
    length, limit = getattr(flags, "max_sequence_length", None), text_length_limit(preset)
    if length is not None and length > limit:
        raise UsageError(f"--max_sequence_length must be at most {limit} tokens for this model, got {length}")


def check_output_memory(batch_size: int, height: int, width: int, num_frames: int | None = None,
                        what: str = "the decoded output") -> None:
    """`what` alone (float32 frames, as the pipelines return them to the host) against the host's free memory: a
    batch or video that large cannot be held, whatever the GPU holds."""
    need_GiB = batch_size * (num_frames or 1) * height * width * 3 * 4 / GiB
    free_GiB = available_GiB(torch.device("cpu"))
    if free_GiB is not None and need_GiB > free_GiB:
        raise UsageError(f"{what} alone ({batch_size} x {num_frames or 1} frames of {height}x{width}) needs "
                         f"{need_GiB:.1f} GiB on the host; it has {free_GiB:.1f} GiB free")


def available_GiB(device: torch.device) -> float | None:
    """Free memory on `device`: the GPU's free memory, or the host's available memory for the CPU."""
    if device.type == "cuda":
        try:
            return torch.cuda.mem_get_info(device)[0] / GiB
        except (RuntimeError, AssertionError):  # no driver to ask: let the load itself find out
            return None
    if device.type == "cpu":
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / GiB
    return None


def with_headroom(weights_GiB: float) -> float:
    """What a run needs beyond its weights: activations, the framework itself and the allocator's slack. Without
    this margin a model whose weights just fit passes the check and is then killed by the OS (on the CPU) or
    fails with an out-of-memory error after loading."""
    return weights_GiB * 1.1 + 1.0


def check_memory(preset: Preset | None, base_dtype: str, device: str, offload: str | None = None,
                 components: tuple[str, ...] | None = None) -> None:
    """The preset's weights (of `components`, default all), in their base precision, against the device's free
    memory: a model that cannot be loaded stops here rather than after a minute of allocating (quantization happens
    after loading, so it does not lower this). With CPU offload the GPU holds one model at a time (sequential: one
    layer); `offload` None: the script has no --offload."""
    if preset is None:
        return
    sizes = {name: size for name, size in weight_bytes(preset, base_dtype).items() if name in (components or [name])}
    torch_device = torch.device(device)
    need_GiB = sum(sizes.values()) / GiB
    where = torch_device if offload in ("none", None) else torch.device("cpu")
    free_GiB = available_GiB(where)
    if free_GiB is not None and with_headroom(need_GiB) > free_GiB:
        hint = "; --offload model keeps the weights on the CPU" if where.type == "cuda" and offload else ""
        raise UsageError(f"{preset.name} needs about {need_GiB:.1f} GiB for its {base_dtype} weights alone, "
                         f"{with_headroom(need_GiB):.1f} GiB with room to run; {where} has {free_GiB:.1f} GiB "
                         f"free{hint}")
    if offload == "model" and torch_device.type == "cuda":
        largest_GiB, free_GiB = max(sizes.values()) / GiB, available_GiB(torch_device)
        if free_GiB is not None and largest_GiB > free_GiB:
            raise UsageError(f"{preset.name}'s largest model needs about {largest_GiB:.1f} GiB on the GPU; "
                             f"{torch_device} has {free_GiB:.1f} GiB free; try --offload sequential")


def check_not_full_size_on_cpu(preset: Preset | None, device: str, device_given: bool) -> None:
    """Without a CUDA GPU --device falls back to the CPU, where one call of a full-size model takes hours: refused
    unless --device cpu says so; a tiny preset of the same classes is the CPU's model."""
    if preset is None or preset.hub_id is None or device_given or torch.device(device).type != "cpu":
        return
    tiny = [name for name in preset_names() if get_preset(name).hub_id is None
            and get_preset(name).pipeline_class == preset.pipeline_class]
    raise UsageError(f"{preset.name} is a full-size model and this machine has no CUDA GPU: on the CPU it would run "
                     f"for hours; give --device cpu to run it there anyway, or try --ckpt_id {' or '.join(tiny)}")


def base_dtype_of(preset: Preset | None) -> str:
    """The precision a model is meant to run in: the preset's, bf16 for checkpoints that are not presets."""
    return preset.base_dtype if preset else "bf16"
