"""Save a quantized transformer and load it back into its pipeline, compile it ahead of time (torch.export +
AOTInductor), and measure the ways of loading it.

    python inference/serialize.py save --ckpt_id tiny-flux --quantization int8wo --output ckpt/tiny-flux-int8wo
    python inference/serialize.py load --ckpt_id tiny-flux --path ckpt/tiny-flux-int8wo
    python inference/serialize.py aot --ckpt_id tiny-flux --quantization int8wo --output ckpt/tiny-flux-int8wo.pt2
    python inference/serialize.py measure --ckpt_id black-forest-labs/FLUX.1-dev --quantization int8wo \\
        --workdir /tmp/flux-serialization --aot

`save` writes safetensors whenever torchao can flatten every weight type into plain tensors (all the registry's
methods in torchao 0.18) and pickle otherwise; `--format` forces one. A checkpoint that cannot be used (missing or
truncated files, another model's weights) stops with one line naming the file, and exit code 2.
See inference/serialization_and_loading.md and inference/aot_serialization.md.
"""

import argparse
import logging
import shlex
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's utils, not another installed copy

import utils.interrupt_hook  # noqa: F401  (first: a Ctrl-C while torch imports is one line)

# isort: split
import torch

from utils.aot import aot_compile_transformer, capture_transformer_inputs, load_aot_transformer, run_transformer
from utils.benchmark import call_kwargs, make_call
from utils.cli import (
    add_generation_args,
    add_model_args,
    base_dtype_of,
    check_device,
    check_generation,
    check_memory,
    check_not_full_size_on_cpu,
    check_weights,
    given_flags,
    parse_checked,
)
from utils.errors import INTERRUPTED_EXIT_CODE, Stopped, UsageError, stop_signals_raise
from utils.fidelity import psnr_db, relative_l2
from utils.levers.base import off_as
from utils.levers.quantization import check_skip_pattern, check_something_left, few_rows_layers
from utils.load_measure import (
    measure_loading,
    path_matches,
    render_measurements,
)
from utils.logs import setup_logging
from utils.parser import Parser
from utils.path_checks import check_output_dir, check_output_file
from utils.pipelines import build_pipeline
from utils.presets import DTYPES, Preset, get_preset
from utils.quant import QUANTIZATIONS, apply_quantization, unsupported_reason
from utils.serialization import (
    FORMATS,
    CheckpointError,
    check_output_directory,
    expected_transformer,
    load_pipeline_with,
    load_transformer,
    quantization_of,
    read_checkpoint_config,
    save_transformer,
)
from utils.timing import allocated_GiB, peak_allocated_GiB, reset_peak_memory, synchronize, time_call_s

logger = logging.getLogger(__name__)
PROG = "inference/serialize.py"


@dataclass(frozen=True)
class SerializeConfig:
    """The flags of one serialize.py command, checked and resolved; a field a command has no flag for is None."""
    command: str  # save | load | aot | measure
    command_line: str
    ckpt_id: str
    preset: Preset | None
    weights: str  # pretrained | random
    dtype: torch.dtype  # the pipeline's base precision
    device: str
    seed: int
    prompt: str
    batch_size: int
    num_inference_steps: int | None
    height: int | None
    width: int | None
    guidance_scale: float | None
    max_sequence_length: int | None
    quantization: str | None = None
    quant_skip_pattern: str | None = None
    format: str | None = None
    output: Path | None = None
    overwrite: bool = False
    path: Path | None = None
    weights_on_disk: bool = False
    workdir: Path | None = None
    aot: bool = False
    json: Path | None = None


def add_common_args(parser: Parser) -> None:
    add_model_args(parser, default_ckpt="tiny-flux", takes=has_one_transformer)
    add_generation_args(parser)


def add_quantization_args(parser: Parser) -> None:
    choices = [name for name, method in QUANTIZATIONS.items() if not method.planned]
    parser.add_argument("--quantization", type=off_as("None"), choices=choices, default="int8wo",
                        help="registry method applied to the transformer (None: keep bf16); autoquant is not offered "
                             "here: its per-layer plan is made by the benchmarks")
    parser.add_argument("--quant_skip_pattern", default=None, help="regex on layer names to keep in bf16")


def add_format_arg(parser: Parser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="auto",
                        help="auto: safetensors when torchao can flatten every weight type, else pickle")


def has_one_transformer(preset) -> bool:
    """What this script saves, loads and compiles: Wan2.2-T2V-A14B's two experts are refused."""
    return "transformer_2" not in preset.components


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    save = commands.add_parser("save", help="quantize the transformer, save it with save_pretrained and check "
                                            "that the reloaded copy gives the same output")
    add_common_args(save)
    add_quantization_args(save)
    save.add_argument("--output", type=Path, required=True, help="directory to write the transformer to")
    add_format_arg(save)
    save.add_argument("--overwrite", action="store_true", help="replace an existing saved model at --output")

    load = commands.add_parser("load", help="load a saved transformer into its pipeline and make one image")
    add_common_args(load)
    load.add_argument("--path", type=Path, required=True, help="directory written by `save`")

    aot = commands.add_parser("aot", help="torch.export + AOTInductor the (quantized) transformer at the call's "
                                          "shapes, load the package back and run the pipeline with it")
    add_common_args(aot)
    add_quantization_args(aot)
    aot.add_argument("--path", type=Path, default=None,
                     help="compile this saved transformer (from `save`) instead of quantizing the pipeline's own; "
                          "--quantization is then ignored")
    aot.add_argument("--output", type=Path, required=True, help=".pt2 package to write")
    aot.add_argument("--overwrite", action="store_true", help="replace an existing AOT package at --output")
    aot.add_argument("--weights_on_disk", action="store_true",
                     help="store the weights as one blob next to the shared library instead of inside it")

    measure = commands.add_parser("measure", help="load time, load memory (CUDA) and time to first image: "
                                                  "bf16 + quantize vs pre-quantized (with --aot: vs pre-quantized + "
                                                  "torch.compile vs AOT package)")
    add_common_args(measure)
    add_quantization_args(measure)
    add_format_arg(measure)
    measure.add_argument("--workdir", type=Path, required=True, help="where the checkpoints are written")
    measure.add_argument("--aot", action="store_true",
                         help="also build an AOT package and time it against the pre-quantized model with regional "
                              "torch.compile (first call = compile + run, second call = steady state)")
    measure.add_argument("--json", type=Path, default=None, help="also write the measurements here")
    return parser


def build_config(args, argv: list[str]) -> SerializeConfig:
    """Raises UsageError before any model is built."""
    check_device(args.device)
    quantization = getattr(args, "quantization", None)
    from_saved = getattr(args, "path", None) is not None  # load, aot --path: a transformer saved already quantized
    preset = get_preset(args.ckpt_id)
    if quantization not in (None, "None") and not from_saved:  # with --path it is ignored
        reason = unsupported_reason(quantization, args.device)
        if reason:
            raise UsageError(reason)
    if getattr(args, "quant_skip_pattern", None) is not None:
        check_skip_pattern(args.quant_skip_pattern)
        if preset is not None and quantization not in (None, "None") and not from_saved:
            check_something_left(preset, quantization, args.quant_skip_pattern)
    if preset is not None and not has_one_transformer(preset):
        raise UsageError(f"{args.ckpt_id} denoises with two transformers (transformer, transformer_2); this script "
                         "saves, loads and compiles one")
    check_generation(args, preset)
    check_paths(args)
    if getattr(args, "aot", False) and quantization == "int8wo" and torch.device(args.device).type == "cpu":
        raise UsageError("measure --aot times torch.compile of the int8wo model loaded from safetensors, which "
                         "crashes on the CPU (segfault in aten._weight_int8pack_mm): use another --quantization or "
                         "CUDA")
    check_not_full_size_on_cpu(preset, args.device, "device" in given_after_command(args.command, argv))
    weights = check_weights(args.ckpt_id, args.weights)
    # A saved transformer (load, aot --path) comes in at its quantized size, and a checkpoint's pipeline never reads
    # its own; a random-weight pipeline still builds (and then drops) a bf16 transformer beside it.
    others_only = from_saved and weights == "pretrained" and preset is not None
    check_memory(preset, base_dtype_of(preset), args.device,
                 components=tuple(name for name in preset.components if name != "transformer") if others_only else None)
    values = {name: value for name, value in vars(args).items() if name in SerializeConfig.__dataclass_fields__}
    return SerializeConfig(**{**values, "command_line": shlex.join(["python", PROG, *argv]), "preset": preset,
                              "weights": weights,
                              "dtype": DTYPES[base_dtype_of(preset)]})


def check_package_path(flag: str, path: Path, overwrite: bool) -> None:
    """An AOT package path: a .pt2 file, replaced only with `overwrite` and only if it is a package (a zip archive),
    never another file."""
    check_output_file(flag, path, (".pt2",))
    if path.exists() and not zipfile.is_zipfile(path):
        raise UsageError(f"{flag} {path}: exists and is not an AOT package; refusing to replace it")
    if path.exists() and not overwrite:
        raise UsageError(f"{flag} {path}: already exists; pass --overwrite to replace it")


def given_after_command(command: str, argv: list[str]) -> frozenset[str]:
    """The flags the command line set itself after its COMMAND word (given_flags of that command's parser)."""
    commands = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    return given_flags(commands.choices[command], argv[argv.index(command) + 1:])


def check_paths(args) -> None:
    """Every path the command reads or writes, before any model is built."""
    if args.command == "save":
        check_output_dir("--output", args.output)
        check_output_directory(args.output, args.overwrite)
    if args.command in ("load", "aot") and args.path is not None:
        read_checkpoint_config(args.path)
    if args.command == "aot":
        check_package_path("--output", args.output, args.overwrite)
    if args.command == "measure":
        check_output_dir("--workdir", args.workdir)
        for name in ("bf16", args.quantization):  # written there, replacing what an earlier measure wrote
            check_output_directory(args.workdir / name, overwrite=True)
        if args.aot:
            check_package_path("--workdir", args.workdir / f"{args.quantization}.pt2", overwrite=True)
        check_output_file("--json", args.json)


def parse_config(argv=None) -> SerializeConfig:
    return parse_checked(build_parser(), build_config, argv)


def pipeline_call(pipe, config: SerializeConfig):
    kwargs = call_kwargs(pipe, config)
    return kwargs, make_call(pipe, kwargs, config.seed, config.device)


def quantized_pipeline(config: SerializeConfig):
    pipe = build_pipeline(config.ckpt_id, config.weights, config.device, config.dtype, config.seed)
    n_layers = apply_quantization(pipe.transformer, config.quantization, skip_pattern=config.quant_skip_pattern,
                                  few_rows_pattern=few_rows_layers(config))
    return pipe, n_layers


def load_expected(config: SerializeConfig, path: Path) -> torch.nn.Module:
    """The saved transformer at `path`, checked against the architecture of the pipeline it goes into."""
    expected_class, expected_config = expected_transformer(config.ckpt_id, config.weights)
    return load_transformer(path, expected_class=expected_class, expected_config=expected_config,
                            device=config.device, dtype=config.dtype)


def command_save(config: SerializeConfig) -> int:
    pipe, n_layers = quantized_pipeline(config)
    model = pipe.transformer
    inputs = capture_transformer_inputs(pipe, call_kwargs(pipe, config), config.seed)
    reference = run_transformer(model, inputs)
    summary = save_transformer(model, config.output, config.quantization, config.format, config.overwrite)
    loaded = load_transformer(config.output, expected_class=type(model).__name__, expected_config=dict(model.config),
                              device=config.device, dtype=model.dtype)
    same = torch.equal(run_transformer(loaded, inputs), reference)
    print(f"saved {type(model).__name__} ({n_layers} Linear layers {config.quantization}, weights "
          f"{', '.join(summary['weight_types'])}) as {summary['format']} to {summary['path']}: "
          f"{summary['size_GiB']:.3g} GiB in {summary['save_s']:.2f} s")
    print("reloaded copy gives the same transformer output" if same else
          "ERROR: the reloaded copy gives a different transformer output")
    return 0 if same else 1


def command_load(config: SerializeConfig) -> int:
    reset_peak_memory(config.device)
    start = time.perf_counter()
    model = load_expected(config, config.path)
    synchronize(config.device)
    load_s = time.perf_counter() - start
    model_GiB, peak_GiB = allocated_GiB(config.device), peak_allocated_GiB(config.device)
    pipe = load_pipeline_with(config.ckpt_id, config.weights, model, config.device, model.dtype, config.seed)
    _, call = pipeline_call(pipe, config)
    call_s, output = time_call_s(call, config.device)
    saved = read_checkpoint_config(config.path)
    memory = "" if model_GiB is None else f", {model_GiB:.2f} GiB on the GPU (peak {peak_GiB:.2f} GiB while loading)"
    print(f"loaded {saved['_class_name']} ({quantization_of(saved)}) from {config.path} in {load_s:.2f} s{memory}; "
          f"first image {call_s:.2f} s later (time to first image {load_s + call_s:.2f} s)")
    return 0 if output.finite() else 1


def command_aot(config: SerializeConfig) -> int:
    if config.path:
        model = load_expected(config, config.path)
        pipe = load_pipeline_with(config.ckpt_id, config.weights, model, config.device, model.dtype, config.seed)
    else:
        pipe, _ = quantized_pipeline(config)
    kwargs, call = pipeline_call(pipe, config)
    inputs = capture_transformer_inputs(pipe, kwargs, config.seed)
    eager_sample, eager_output = run_transformer(pipe.transformer, inputs), call()
    summary = aot_compile_transformer(pipe.transformer, inputs, config.output, weights_on_disk=config.weights_on_disk)
    start = time.perf_counter()
    pipe.transformer = load_aot_transformer(config.output)
    load_s = time.perf_counter() - start
    error = relative_l2(run_transformer(pipe.transformer, inputs), eager_sample)
    call_s, output = time_call_s(call, config.device)
    print(f"exported in {summary['export_s']:.1f} s, AOTInductor compiled in {summary['aoti_compile_s']:.1f} s to "
          f"{summary['path']} ({summary['size_GiB']:.3g} GiB); loaded in {load_s:.2f} s")
    print(f"transformer output vs eager: relative L2 error {error:.4f}; first image {call_s:.2f} s, PSNR vs eager "
          f"{psnr_db(output.images_uint8(), eager_output.images_uint8()):.1f} dB")
    return 0 if output.finite() else 1


def command_measure(config: SerializeConfig) -> int:
    workdir, dtype = config.workdir, config.dtype
    workdir.mkdir(parents=True, exist_ok=True)
    pipe = build_pipeline(config.ckpt_id, config.weights, config.device, dtype, config.seed)
    kwargs, call = pipeline_call(pipe, config)
    rows, saved = measure_loading(config, pipe, kwargs, call)
    print(f"{config.ckpt_id} ({config.weights} weights), {config.quantization}, on {config.device}; checkpoint "
          f"{saved['size_GiB']:.3g} GiB")
    print(render_measurements(rows))
    return 0 if all(path_matches(row) for row in rows) else 1


COMMANDS = {"save": command_save, "load": command_load, "aot": command_aot, "measure": command_measure}


def main(argv=None) -> int:
    setup_logging()
    config = parse_config(argv)
    try:
        with stop_signals_raise() as stop:
            with stop.unwrapped():
                code = COMMANDS[config.command](config)
            stop.raise_if_swallowed()  # a stop lost in a weakref callback: the command ran on, but was stopped
            return code
    except CheckpointError as error:
        sys.stderr.write(f"{PROG}: error: {error}\n")
        return 2
    except Stopped as stopped:  # what it writes is moved into place whole, so nothing half-written is left
        sys.stderr.write(f"{PROG}: {stopped}; no output is left half-written\n")
        return INTERRUPTED_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
