"""The run config of one benchmark run: its flags checked and resolved once, then frozen. validate() builds it
before any model is built; nothing after it reads the parsed flags. Its fields are the run's own (RunContext and
the ones below) plus every lever's Settings (utils.levers), so a new lever brings its fields with it."""

import argparse
import dataclasses
import shlex
from dataclasses import dataclass, fields
from pathlib import Path

from utils.cli import (
    add_generation_args,
    add_measurement_args,
    add_model_args,
    base_dtype_of,
    check_device,
    check_generation,
    check_memory,
    check_not_full_size_on_cpu,
    check_output_memory,
    check_weights,
    given_flags,
)
from utils.distributed import launched_world_size, rank_device
from utils.errors import UsageError
from utils.optimize import LEVERS
from utils.parser import Parser
from utils.path_checks import check_distinct_outputs, check_output_dir, check_output_file
from utils.paths import default_csv
from utils.presets import Preset, get_preset
from utils.profiling import check_profile_path, raw_table_path
from utils.results import Row, check_csv_target


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """What the levers' settings may depend on, resolved before them."""
    script: str  # the script's path as users type it, e.g. inference/benchmark_image.py
    command: str  # the command line that reproduces the run
    ckpt_id: str
    preset: Preset | None  # None for checkpoints that are not presets
    weights: str  # pretrained | random
    base_dtype: str  # bf16 | fp16: the precision of the weights before any quantization
    device: str  # under torchrun, this process's own GPU
    world_size: int  # processes torchrun started, else 1
    given_flags: frozenset[str] = frozenset()  # the flags the command line set (utils.cli.given_flags)


@dataclass(frozen=True, kw_only=True)
class RunConfig(*(lever.Settings for lever in reversed(LEVERS)), RunContext):  # fields: RunContext's first
    seed: int = 0
    # the pipeline call; None means the preset's default
    prompt: str = ""
    batch_size: int = 1
    num_inference_steps: int | None = None
    height: int | None = None
    width: int | None = None
    num_frames: int | None = None
    guidance_scale: float | None = None
    guidance_scale_2: float | None = None  # Wan2.2-T2V-A14B's low-noise expert (video script only)
    max_sequence_length: int | None = None
    # measurement
    warmup: int = 2
    runs: int = 5
    memory_only: bool = False
    csv: Path
    reference_dir: Path
    no_fidelity: bool = False
    sample_path: Path | None = None
    profile: Path | None = None
    ladder_step: int | None = None
    ladder_lever: str | None = None
    ladder_base: int | None = None


def _check_unique_fields() -> None:
    seen: dict[str, str] = {}
    for owner in (RunContext, *(lever.Settings for lever in LEVERS)):
        for field in fields(owner):
            if field.name in seen:
                raise TypeError(f"{owner.__module__} and {seen[field.name]} both define the setting {field.name}")
            seen[field.name] = owner.__module__


_check_unique_fields()
CALL_FIELDS = ("num_inference_steps", "height", "width", "num_frames", "guidance_scale", "guidance_scale_2",
               "max_sequence_length")
SAMPLE_SUFFIXES = {"save_image": (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tiff"), "save_video": (".mp4",)}
OWN_FIELDS = ("seed", "prompt", "batch_size", *CALL_FIELDS, "warmup", "runs", "memory_only", "reference_dir",
              "no_fidelity", "sample_path", "profile", "ladder_step", "ladder_lever", "ladder_base")


def add_benchmark_flags(parser: Parser, default_ckpt: str, sample_flag: str) -> None:
    """Every flag of a benchmark script: the model, the pipeline call, each lever's group, the measurement."""
    add_model_args(parser, default_ckpt, takes=lambda preset: preset.makes_video == (sample_flag == "save_video"))
    add_generation_args(parser)
    for lever in LEVERS:
        lever.add_flags(parser)
    add_measurement_args(parser, sample_flag)
    parser.set_defaults(sample_flag=sample_flag)


def build_config(script: str, flags: argparse.Namespace, argv: list[str], checked: bool = True,
                 given: frozenset[str] = frozenset()) -> RunConfig:
    """The checked, resolved config; raises UsageError for input that cannot work. `checked=False` skips the checks
    and leaves --weights as given: what the flags say, for the row of a run that never wrote its own."""
    world_size = launched_world_size()
    launcher = ["torchrun", "--nproc_per_node", str(world_size)] if world_size > 1 else ["python"]
    preset = get_preset(flags.ckpt_id)
    if checked:
        check_script_fits(flags.sample_flag, preset)
        check_generation(flags, preset)
        check_device(flags.device)
    context = RunContext(script=script, command=shlex.join([*launcher, script, *argv]), ckpt_id=flags.ckpt_id,
                         preset=preset, weights=flags.weights,
                         base_dtype=getattr(flags, "base_dtype", None) or base_dtype_of(preset),
                         device=rank_device(flags.device, world_size), world_size=world_size, given_flags=given)
    values = {field.name: getattr(context, field.name) for field in fields(RunContext)}
    for lever in LEVERS:
        values.update(dataclasses.asdict(lever.settings(flags, context)))
    values.update({name: getattr(flags, name, None) for name in OWN_FIELDS})
    values["csv"] = flags.csv or default_csv(flags.ckpt_id, preset.slug if preset else None)
    config = RunConfig(**values)
    if not checked:
        return config
    for lever in LEVERS:
        lever.check(config)
    check_measurement_flags(config)
    check_output_paths(config, f"--{flags.sample_flag}", SAMPLE_SUFFIXES[flags.sample_flag])
    check_not_full_size_on_cpu(preset, config.device, "device" in given)
    check_memory(preset, config.base_dtype, config.device, config.offload)
    defaults = preset.call_defaults if preset else {}
    size = {name: getattr(config, name) or defaults.get(name) for name in ("height", "width", "num_frames")}
    if size["height"] and size["width"]:
        check_output_memory(config.batch_size, size["height"], size["width"], size["num_frames"])
    # last: resolving --weights auto may ask the hub, which can take seconds
    return dataclasses.replace(config, weights=check_weights(flags.ckpt_id, flags.weights))


def check_script_fits(sample_flag: str, preset) -> None:
    """A video model through the image script (or the reverse) would run, but file its row beside the other kind's."""
    if preset is None or preset.makes_video == (sample_flag == "save_video"):
        return
    kind, script = ("a video", "benchmark_video.py") if preset.makes_video else ("an image", "benchmark_image.py")
    raise UsageError(f"{preset.name} is {kind} model: run it with inference/{script}")


def check_measurement_flags(config: RunConfig) -> None:
    """Measurement flags that would do nothing in this combination. (A folder flag beside the flag that skips its use,
    --reference_dir with --no_fidelity, is let through: wrappers pass the folder to every run.)"""
    if config.ladder_step is None and (config.ladder_lever is not None or config.ladder_base is not None):
        raise UsageError("--ladder_lever and --ladder_base describe a ladder step: give --ladder_step too")


def check_output_paths(config: RunConfig, sample_flag: str, sample_suffixes: tuple[str, ...]) -> None:
    """Everything the run writes, checked now: a path that cannot be written would otherwise fail after the run."""
    check_csv_target(config.csv, Row)
    if not config.no_fidelity:
        check_output_dir("--reference_dir", config.reference_dir)
    check_output_file(sample_flag, config.sample_path, sample_suffixes)
    check_profile_path("--profile", config.profile)
    check_distinct_outputs({"--csv": config.csv, sample_flag: config.sample_path, "--profile": config.profile,
                            "--profile (its operator table)": config.profile and raw_table_path(config.profile)})


def unchecked_config(parser: Parser, argv: list[str], **overrides) -> RunConfig:
    """The config the flags describe, unchecked (they must parse)."""
    args = parser.parse_args(argv)
    return build_config(parser.prog, argparse.Namespace(**{**vars(args), **overrides}), argv, checked=False)


def validate(parser: Parser, args: argparse.Namespace, argv: list[str], given: frozenset[str] | None = None,
             **overrides) -> RunConfig:
    """The run config, or one line on stderr and exit code 2. `given`: the flags the command line set, when the
    caller has them already (else worked out here). `overrides` replace parsed flags (the video script maps its
    --dtype onto --base_dtype and --quantization this way)."""
    try:
        return build_config(parser.prog, argparse.Namespace(**{**vars(args), **overrides}), argv,
                            given=given_flags(parser, argv) if given is None else given)
    except UsageError as error:
        parser.error(str(error))
