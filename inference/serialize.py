"""Save a quantized transformer and load it back into its pipeline, compile it ahead of time (torch.export +
AOTInductor), and carry torch.compile's caches from one process to the next.

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

import gc
import json
import logging
import shlex
import shutil
import sys
import time
import zipfile
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from any directory

import torch  # noqa: E402

from utils.benchmark import one_line  # noqa: E402
from utils.fidelity import relative_l2  # noqa: E402
from utils.compile_cache import load_compile_cache, save_compile_cache  # noqa: E402,F401 - part of this module's API
from utils.files import atomic_path  # noqa: E402

logger = logging.getLogger(__name__)

FORMATS = ("auto", "safetensors", "pickle")
SAFETENSORS_FILE = "diffusion_pytorch_model.safetensors"
PICKLE_FILE = "diffusion_pytorch_model.bin"
# Transformer-call arguments an AOT package cannot take: they carry LoRA scales and IP-adapter embeddings, which
# change the graph that was compiled.
ATTENTION_KWARGS = ("joint_attention_kwargs", "attention_kwargs")
AOT_METADATA_KEY = "diffusers_transformer"


class CheckpointError(ValueError):
    """A saved model or cache that cannot be used; the message names the file and what is wrong with it."""


def attach_quantization_config(model: torch.nn.Module, name: str) -> None:
    """Give a model quantized in place by `apply_quantization` what diffusers needs to save and reload it: a
    TorchAoConfig in its config, which lands in config.json and makes `from_pretrained` take the weights as already
    quantized, and the quantizer object `save_pretrained` consults (it flattens the torchao tensors for safetensors).
    Without them a safetensors save fails inside torch ("Attempted to access the data pointer on an invalid python
    storage"); a pickle save still reloads, but its config.json does not say that the weights are quantized."""
    from diffusers import TorchAoConfig
    from diffusers.quantizers.torchao import TorchAoHfQuantizer

    from utils.quant import QUANTIZATIONS

    config = TorchAoConfig(QUANTIZATIONS[name].make_config(False))
    model.register_to_config(quantization_config=config)
    model.hf_quantizer = TorchAoHfQuantizer(config, pre_quantized=True)
    model.hf_quantizer.validate_environment()  # sets the attributes that is_serializable reads


def torchao_weight_types(model: torch.nn.Module) -> set[str]:
    return {type(tensor).__name__ for tensor in model.state_dict().values()
            if type(tensor).__module__.startswith("torchao")}


def safetensors_unsupported(model: torch.nn.Module) -> str | None:
    """Why this model's weights cannot go into safetensors, or None. torchao stores each tensor subclass as its plain
    inner tensors plus JSON metadata, but only for the subclasses it lists."""
    from torchao.prototype.safetensors.safetensors_utils import ALLOWED_TENSORS_SUBCLASSES

    unsupported = sorted(torchao_weight_types(model) - set(ALLOWED_TENSORS_SUBCLASSES))
    if unsupported:
        return f"torchao's safetensors support does not cover {', '.join(unsupported)}"
    return None


def resolve_format(model: torch.nn.Module, requested: str, directory: Path) -> str:
    reason = safetensors_unsupported(model)
    if requested == "safetensors" and reason:
        raise CheckpointError(f"{directory}: cannot write safetensors: {reason}; use --format pickle")
    if requested != "auto":
        return requested
    if reason:
        logger.warning("%s; saving with pickle", reason)
        return "pickle"
    return "safetensors"


def directory_GiB(directory: Path) -> float:
    from utils.timing import GiB

    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file()) / GiB


def prepare_output_directory(directory: Path, overwrite: bool) -> None:
    """Refuse to replace anything that is not a model folder: the previous contents are deleted."""
    if not directory.exists() or not any(directory.iterdir()):
        return
    if not overwrite:
        raise CheckpointError(f"{directory}: already exists and is not empty; pass --overwrite to replace it")
    if not (directory / "config.json").is_file():
        raise CheckpointError(f"{directory}: not a saved model (no config.json), refusing to delete it")


def save_transformer(model: torch.nn.Module, directory, quantization: str, fmt: str = "auto",
                     overwrite: bool = False) -> dict:
    """Write `model` (quantized in place with registry method `quantization`, or "None") with `save_pretrained`.
    The files go to a sibling folder first and replace `directory` only once complete."""
    directory = Path(directory)
    prepare_output_directory(directory, overwrite)
    fmt = resolve_format(model, fmt, directory)
    if quantization != "None":
        attach_quantization_config(model, quantization)
    elif torchao_weight_types(model) and getattr(model, "hf_quantizer", None) is None:
        raise CheckpointError(f"{directory}: the model has torchao weights ({', '.join(torchao_weight_types(model))}) "
                              "but quantization None was given; pass the method it was quantized with")
    partial = directory.with_name(f".{directory.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    start = time.perf_counter()
    model.save_pretrained(partial, safe_serialization=fmt == "safetensors")
    save_s = time.perf_counter() - start
    if directory.exists():
        shutil.rmtree(directory)
    partial.rename(directory)
    return {"path": str(directory), "format": fmt, "save_s": save_s, "size_GiB": directory_GiB(directory),
            "weight_types": sorted(torchao_weight_types(model)) or ["torch.Tensor"]}


# ---------------------------------------------------------------------------------------------------------------
# load


def read_checkpoint_config(directory: Path) -> dict:
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such directory")
    path = directory / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; {directory} is not a model saved with save_pretrained")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({one_line(error)})") from error
    if not isinstance(config, dict) or "_class_name" not in config:
        raise CheckpointError(f"{path}: has no _class_name; not a diffusers model config")
    return config


def check_safetensors_file(path: Path) -> None:
    """Compare the file's size with the size its header announces: a cut-off copy or download fails here, with
    the numbers, instead of deep inside diffusers."""
    size = path.stat().st_size
    with path.open("rb") as file:
        prefix = file.read(8)
        header_length = int.from_bytes(prefix, "little") if len(prefix) == 8 else None
        if header_length is None or 8 + header_length > size:
            raise CheckpointError(f"{path}: truncated or not a safetensors file ({size} bytes, header incomplete)")
        try:
            header = json.loads(file.read(header_length))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{path}: corrupt safetensors header ({one_line(error)})") from error
    data_end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    expected = 8 + header_length + data_end
    if size != expected:
        raise CheckpointError(f"{path}: truncated: {size} bytes, its header describes {expected}")


def check_pickle_file(path: Path) -> None:
    # torch.save writes a zip archive whose index sits at the end of the file, so a cut-off file is not a zip.
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: truncated or not a torch.save archive (no zip index at its end)")


def weight_files(directory: Path) -> list[Path]:
    """The weight files `from_pretrained` will read, checked to be complete. Sharded checkpoints list their
    shards in an index file."""
    for name, check in ((SAFETENSORS_FILE, check_safetensors_file), (PICKLE_FILE, check_pickle_file)):
        single, index = directory / name, directory / f"{name}.index.json"
        if single.is_file():
            paths = [single]
        elif index.is_file():
            paths = [directory / shard for shard in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
        else:
            continue
        for path in paths:
            if not path.is_file():
                raise CheckpointError(f"{path}: listed in {index.name} but missing")
            check(path)
        return paths
    raise CheckpointError(f"{directory}: no {SAFETENSORS_FILE} or {PICKLE_FILE} (nor a sharded index) in it")


def config_for_comparison(config) -> dict:
    """Architecture keys only, as JSON would write them (tuples become lists)."""
    return {key: value for key, value in json.loads(json.dumps(dict(config), default=str)).items()
            if not key.startswith("_") and key != "quantization_config"}


def check_compatible(config: dict, path: Path, expected_class: str | None, expected_config: dict | None) -> None:
    if expected_class and config["_class_name"] != expected_class:
        raise CheckpointError(f"{path}: holds a {config['_class_name']} checkpoint, but the pipeline needs a "
                              f"{expected_class}")
    if expected_config:
        saved, expected = config_for_comparison(config), config_for_comparison(expected_config)
        differing = [f"{key}={saved[key]!r} (pipeline: {expected[key]!r})"
                     for key in sorted(saved.keys() & expected.keys()) if saved[key] != expected[key]]
        if differing:
            raise CheckpointError(f"{path}: architecture differs from the pipeline's transformer: "
                                  f"{', '.join(differing[:4])}")


def quantization_of(config: dict) -> str:
    """The torchao config class a checkpoint was quantized with, or "None"."""
    quant = config.get("quantization_config") or {}
    return quant.get("quant_type", {}).get("default", {}).get("_type", "None")


def load_transformer(directory, *, expected_class: str | None = None, expected_config: dict | None = None,
                     device="cpu", dtype=torch.bfloat16) -> torch.nn.Module:
    """Load a model written by `save_transformer` (or any diffusers model folder), after checking that it is
    complete and is the architecture the caller expects. Every problem is a CheckpointError naming the file."""
    import diffusers

    directory = Path(directory)
    config = read_checkpoint_config(directory)
    check_compatible(config, directory / "config.json", expected_class, expected_config)
    files = weight_files(directory)
    cls = getattr(diffusers, config["_class_name"], None)
    if cls is None or not hasattr(cls, "from_pretrained"):
        raise CheckpointError(f"{directory / 'config.json'}: {config['_class_name']} is not a diffusers model class")
    try:
        model, info = cls.from_pretrained(str(directory), torch_dtype=dtype, output_loading_info=True)
    except Exception as error:  # noqa: BLE001 - diffusers raises many types; the caller needs one
        raise CheckpointError(f"{files[0]}: diffusers could not load it ({one_line(error)})") from error
    missing, unexpected = info["missing_keys"], info["unexpected_keys"]
    if missing or unexpected or info["mismatched_keys"]:
        # diffusers only warns here and leaves missing weights randomly initialized.
        hint = " (a torchao safetensors file needs the quantization_config in config.json)" if unexpected else ""
        raise CheckpointError(f"{files[0]}: does not match {config['_class_name']}: {len(missing)} weights missing "
                              f"{missing[:2]}, {len(unexpected)} unexpected {unexpected[:2]}{hint}")
    return model.to(device).eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------------------------
# pipelines


def pipeline_dtype(ckpt_id: str) -> torch.dtype:
    from utils.benchmark import DTYPES
    from utils.presets import get_preset

    preset = get_preset(ckpt_id)
    return DTYPES[preset.base_dtype if preset else "bf16"]


def expected_transformer(ckpt_id: str, weights: str) -> tuple[str, dict]:
    """Class name and config of the transformer the pipeline of `ckpt_id` is built with."""
    import diffusers

    from utils.presets import get_preset

    if weights == "random":
        preset = get_preset(ckpt_id)
        return preset.components["transformer"], preset.config("transformer")
    class_name = diffusers.DiffusionPipeline.load_config(ckpt_id)["transformer"][1]
    return class_name, dict(getattr(diffusers, class_name).load_config(ckpt_id, subfolder="transformer"))


def load_pipeline_with(ckpt_id: str, weights: str, transformer: torch.nn.Module, device, dtype, seed: int):
    """The pipeline of `ckpt_id` around an already loaded transformer. Random-weight presets build their own
    transformer first and drop it; checkpoints never read theirs."""
    from utils.pipelines import build_pipeline

    if weights == "random":
        pipe = build_pipeline(ckpt_id, weights, device, dtype, seed)
        pipe.transformer = transformer
        return pipe
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(ckpt_id, transformer=transformer, dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def frames_of(result):
    """Images (Flux) or video frames (CogVideoX) of a pipeline result."""
    images = getattr(result, "images", None)
    return images if images is not None else result.frames


class _Captured(Exception):
    pass


def capture_transformer_inputs(pipe, call_kwargs: dict, seed: int) -> dict:
    """The keyword arguments the pipeline passes to its transformer at the first denoising step: the exact shapes
    and dtypes (bf16 timestep, fp32 guidance, ...) it will use. The pipeline is stopped there."""
    from utils.optimizations import denoiser

    captured = {}

    def stop(_module, _args, kwargs):
        captured.update(kwargs)
        raise _Captured

    model = denoiser(pipe)
    handle = model.register_forward_pre_hook(stop, with_kwargs=True)
    generator = torch.Generator(pipe._execution_device).manual_seed(seed)
    try:
        pipe(**call_kwargs, generator=generator, output_type="latent")
    except _Captured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"{type(pipe).__name__} never called its transformer")
    return captured


def run_transformer(model, inputs: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(**{**inputs, "return_dict": False})[0]


def call_kwargs_for(pipe, ckpt_id: str, **overrides) -> dict:
    """The pipeline-call arguments the benchmark scripts would use for `ckpt_id` (preset defaults + overrides)."""
    from argparse import Namespace

    from utils.benchmark import call_kwargs

    args = Namespace(ckpt_id=ckpt_id, prompt=overrides.pop("prompt", "A photo of an astronaut riding a horse"),
                     batch_size=overrides.pop("batch_size", 1), **overrides)
    return call_kwargs(pipe, args)


# ---------------------------------------------------------------------------------------------------------------
# ahead-of-time compilation


def describe(value):
    """Shape and dtype of a tensor input (recursively for the tuples CogVideoX passes), for the static-shape check."""
    if isinstance(value, torch.Tensor):
        return [list(value.shape), str(value.dtype).removeprefix("torch.")]
    if isinstance(value, (tuple, list)):
        return [describe(item) for item in value]
    return None if value is None else repr(value)


def without_attention_kwargs(inputs: dict) -> dict:
    for name in ATTENTION_KWARGS:
        if inputs.get(name):
            raise ValueError(f"{name}={inputs[name]!r}: an AOT package compiles one fixed graph; LoRA scales and "
                             "IP-adapter inputs cannot be passed to it")
    return {name: value for name, value in inputs.items() if name not in ATTENTION_KWARGS}


def aot_compile_transformer(model: torch.nn.Module, inputs: dict, package_path, *,
                            weights_on_disk: bool = False) -> dict:
    """torch.export the transformer at the shapes of `inputs` (static: one resolution, batch size and prompt
    length) and compile it with AOTInductor into a .pt2 package. The weights, quantized ones included (torchao
    subclasses become their inner tensors), go into the package; the model config and the input signature go into
    its metadata so that `load_aot_transformer` needs nothing else."""
    package_path = Path(package_path)
    kwargs = {**without_attention_kwargs(inputs), "return_dict": False}
    start = time.perf_counter()
    program = torch.export.export(model, args=(), kwargs=kwargs, strict=False)
    export_s = time.perf_counter() - start
    metadata = {"class_name": type(model).__name__, "config": config_for_comparison(model.config),
                "dtype": str(model.dtype).removeprefix("torch."), "device": str(model.device),
                "inputs": {name: describe(value) for name, value in kwargs.items() if name != "return_dict"}}
    configs = {"aot_inductor.metadata": {AOT_METADATA_KEY: json.dumps(metadata)}}
    if weights_on_disk:  # one weights blob next to the .so instead of inside it
        configs.update({"aot_inductor.package_constants_in_so": False,
                        "aot_inductor.package_constants_on_disk_format": "binary_blob"})
    start = time.perf_counter()
    with atomic_path(package_path) as partial:
        torch._inductor.aoti_compile_and_package(program, package_path=str(partial), inductor_configs=configs)
    compile_s = time.perf_counter() - start
    return {"path": str(package_path), "export_s": export_s, "aoti_compile_s": compile_s,
            "size_GiB": package_path.stat().st_size / 1024**3}


class AOTTransformer(torch.nn.Module):
    """Stands in for the transformer inside a pipeline: takes the keyword arguments the pipeline passes, runs the
    AOTInductor package and returns `(sample,)` or an object with `.sample`. It also answers what the pipelines read
    from their transformer: `config`, `dtype`, `device` and `cache_context`. It holds no parameters, so
    `pipe.to()`, CPU offload, LoRA loading and QKV fusion have nothing to act on."""

    def __init__(self, compiled, metadata: dict):
        from diffusers.configuration_utils import FrozenDict

        super().__init__()
        self.compiled = compiled  # not an nn.Module: invisible to .to(), .parameters()
        self.config = FrozenDict(metadata["config"])
        self.input_signature = metadata["inputs"]
        self._dtype = getattr(torch, metadata["dtype"])
        self._device = torch.device(metadata["device"])

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    @property
    def device(self) -> torch.device:
        return self._device

    def cache_context(self, name: str, **kwargs):
        return nullcontext()

    def check_inputs(self, inputs: dict) -> None:
        if set(inputs) != set(self.input_signature):
            raise ValueError(f"AOT package was exported with inputs {sorted(self.input_signature)}, called with "
                             f"{sorted(inputs)}")
        for name, value in inputs.items():
            if describe(value) != self.input_signature[name]:
                raise ValueError(f"AOT package was compiled for {name} {self.input_signature[name]}, got "
                                 f"{describe(value)}: its shapes are static, export it again for this resolution, "
                                 "batch size or prompt length")

    def forward(self, return_dict: bool = True, **inputs):
        inputs = without_attention_kwargs(inputs)
        self.check_inputs(inputs)
        sample = self.compiled(**inputs, return_dict=False)[0]
        if not return_dict:
            return (sample,)
        from diffusers.models.modeling_outputs import Transformer2DModelOutput

        return Transformer2DModelOutput(sample=sample)


def load_aot_transformer(package_path) -> AOTTransformer:
    package_path = Path(package_path)
    if not package_path.is_file():
        raise CheckpointError(f"{package_path}: no such AOT package")
    try:
        compiled = torch._inductor.aoti_load_package(str(package_path))
        metadata = compiled.get_metadata()
    except Exception as error:  # noqa: BLE001 - the loader raises RuntimeError for any bad archive
        raise CheckpointError(f"{package_path}: not a loadable AOTInductor package ({one_line(error)})") from error
    if AOT_METADATA_KEY not in metadata:
        raise CheckpointError(f"{package_path}: not written by aot_compile_transformer (no {AOT_METADATA_KEY} "
                              "metadata)")
    return AOTTransformer(compiled, json.loads(metadata[AOT_METADATA_KEY]))


# ---------------------------------------------------------------------------------------------------------------
# torch.compile warm starts


# ---------------------------------------------------------------------------------------------------------------
# measurements


def load_bf16_then_quantize(source: tuple[str, str | None], quantization: str, device, dtype,
                            skip_pattern: str | None = None) -> torch.nn.Module:
    """The usual way: read the bf16 transformer, move it to the device, quantize it there."""
    from diffusers import AutoModel

    from utils.quant import apply_quantization

    directory, subfolder = source
    model = AutoModel.from_pretrained(directory, subfolder=subfolder, torch_dtype=dtype)
    model = model.to(device).eval().requires_grad_(False)
    apply_quantization(model, quantization, skip_pattern=skip_pattern)
    return model


def measure_path(label: str, load, pipe, call, device) -> dict:
    """Load a transformer with `load()`, put it into the pipeline and make two images. Load time, the GPU memory
    the load needed at its peak and what stays allocated (PyTorch's allocator; CUDA only), what the driver reports in
    use after the load (which also sees memory allocated outside PyTorch, e.g. by an AOT package), the first call
    (time to first image = load + first call; includes compiling, if the path compiles) and a second call (steady
    state)."""
    from utils.timing import (allocated_GiB, device_used_GiB, peak_allocated_GiB, reset_peak_memory, synchronize,
                              time_call_s)

    pipe.transformer = None
    gc.collect()
    if torch.device(device).type == "cuda":  # else the previous path's cached blocks hide part of this load
        torch.cuda.empty_cache()
    reset_peak_memory(device)
    before_GiB, device_before_GiB = allocated_GiB(device), device_used_GiB(device)
    start = time.perf_counter()
    model = load()
    synchronize(device)
    load_s = time.perf_counter() - start
    row = {"path": label, "load_s": load_s, "load_peak_GiB": None, "model_GiB": None, "device_GiB": None}
    if before_GiB is not None:
        row["load_peak_GiB"] = peak_allocated_GiB(device) - before_GiB
        row["model_GiB"] = allocated_GiB(device) - before_GiB
        torch.cuda.empty_cache()  # what the model holds, not what the load left cached
        row["device_GiB"] = device_used_GiB(device) - device_before_GiB
    pipe.transformer = model
    call_s, output = time_call_s(call, device)
    row.update(first_call_s=call_s, time_to_first_image_s=load_s + call_s, second_call_s=time_call_s(call, device)[0])
    return {"row": row, "output": output}


def load_then_compile(load) -> torch.nn.Module:
    """`load()`, then regional torch.compile (mode default): the path an AOT package replaces. The compiling itself
    happens in the first call."""
    from utils.optimizations import compile_model

    model = load()
    compile_model(model, "default", regional=True)
    return model


def render_measurements(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else str(value))
                 for value in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# command line


def add_common_args(parser) -> None:
    from utils.cli import add_generation_args, add_model_args

    add_model_args(parser, default_ckpt="tiny-flux")
    add_generation_args(parser)


def add_quantization_args(parser) -> None:
    from utils.quant import QUANTIZATIONS

    parser.add_argument("--quantization", choices=[name for name, method in QUANTIZATIONS.items() if not method.planned],
                        default="int8wo", help="registry method applied to the transformer (None: keep bf16); "
                        "autoquant is not offered here: its per-layer plan is made by the benchmarks")
    parser.add_argument("--quant_skip_pattern", default=None, help="regex on layer names to keep in bf16")


def add_format_arg(parser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="auto",
                        help="auto: safetensors when torchao can flatten every weight type, else pickle")


def build_parser():
    from utils.cli import Parser

    parser = Parser(prog="inference/serialize.py", description=__doc__.split("\n\n")[0])
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


def validate(parser, args) -> None:
    from utils.cli import check_device, check_weights
    from utils.quant import unsupported_reason

    check_device(parser, args.device)
    if getattr(args, "quantization", "None") != "None":
        reason = unsupported_reason(args.quantization, args.device)
        if reason:
            parser.error(reason)
    for name in ("height", "width"):
        value = getattr(args, name)
        if value is not None and value % 16:
            parser.error(f"--{name} must be a multiple of 16, got {value}")
    if (getattr(args, "aot", False) and args.quantization == "int8wo"
            and torch.device(args.device).type == "cpu"):
        parser.error("measure --aot times torch.compile of the int8wo model loaded from safetensors, which crashes on "
                     "the CPU (segfault in aten._weight_int8pack_mm; torch 2.11, torchao 0.18): use another "
                     "--quantization or CUDA")
    args.weights_resolved = check_weights(parser, args.ckpt_id, args.weights)


def quantized_pipeline(args):
    from utils.pipelines import build_pipeline
    from utils.quant import apply_quantization

    pipe = build_pipeline(args.ckpt_id, args.weights_resolved, args.device, pipeline_dtype(args.ckpt_id), args.seed)
    n_layers = apply_quantization(pipe.transformer, args.quantization, skip_pattern=args.quant_skip_pattern)
    return pipe, n_layers


def command_save(args) -> int:
    from utils.benchmark import call_kwargs

    pipe, n_layers = quantized_pipeline(args)
    model = pipe.transformer
    inputs = capture_transformer_inputs(pipe, call_kwargs(pipe, args), args.seed)
    reference = run_transformer(model, inputs)
    summary = save_transformer(model, args.output, args.quantization, args.format, args.overwrite)
    loaded = load_transformer(args.output, expected_class=type(model).__name__, expected_config=dict(model.config),
                              device=args.device, dtype=model.dtype)
    same = torch.equal(run_transformer(loaded, inputs), reference)
    print(f"saved {type(model).__name__} ({n_layers} Linear layers {args.quantization}, weights "
          f"{', '.join(summary['weight_types'])}) as {summary['format']} to {summary['path']}: "
          f"{summary['size_GiB']:.3g} GiB in {summary['save_s']:.2f} s")
    print("reloaded copy gives the same transformer output" if same else
          "ERROR: the reloaded copy gives a different transformer output")
    return 0 if same else 1


def command_load(args) -> int:
    from utils.benchmark import call_kwargs, make_call
    from utils.timing import allocated_GiB, peak_allocated_GiB, reset_peak_memory, synchronize, time_call_s

    expected_class, expected_config = expected_transformer(args.ckpt_id, args.weights_resolved)
    reset_peak_memory(args.device)
    start = time.perf_counter()
    model = load_transformer(args.path, expected_class=expected_class, expected_config=expected_config,
                             device=args.device, dtype=pipeline_dtype(args.ckpt_id))
    synchronize(args.device)
    load_s = time.perf_counter() - start
    model_GiB, peak_GiB = allocated_GiB(args.device), peak_allocated_GiB(args.device)
    pipe = load_pipeline_with(args.ckpt_id, args.weights_resolved, model, args.device, model.dtype, args.seed)
    call = make_call(pipe, call_kwargs(pipe, args), args.seed, args.device, frames_of)
    call_s, output = time_call_s(call, args.device)
    config = read_checkpoint_config(Path(args.path))
    memory = "" if model_GiB is None else f", {model_GiB:.2f} GiB on the GPU (peak {peak_GiB:.2f} GiB while loading)"
    print(f"loaded {config['_class_name']} ({quantization_of(config)}) from {args.path} in {load_s:.2f} s{memory}; "
          f"first image {call_s:.2f} s later (time to first image {load_s + call_s:.2f} s)")
    return 0 if output.finite() else 1


def command_aot(args) -> int:
    from utils.benchmark import call_kwargs, make_call
    from utils.fidelity import psnr_db
    from utils.timing import time_call_s

    if args.path:
        expected_class, expected_config = expected_transformer(args.ckpt_id, args.weights_resolved)
        model = load_transformer(args.path, expected_class=expected_class, expected_config=expected_config,
                                 device=args.device, dtype=pipeline_dtype(args.ckpt_id))
        pipe = load_pipeline_with(args.ckpt_id, args.weights_resolved, model, args.device, model.dtype, args.seed)
    else:
        pipe, _ = quantized_pipeline(args)
    kwargs = call_kwargs(pipe, args)
    call = make_call(pipe, kwargs, args.seed, args.device, frames_of)
    inputs = capture_transformer_inputs(pipe, kwargs, args.seed)
    eager_sample, eager_output = run_transformer(pipe.transformer, inputs), call()
    summary = aot_compile_transformer(pipe.transformer, inputs, args.output, weights_on_disk=args.weights_on_disk)
    start = time.perf_counter()
    pipe.transformer = load_aot_transformer(args.output)
    load_s = time.perf_counter() - start
    error = relative_l2(run_transformer(pipe.transformer, inputs), eager_sample)
    call_s, output = time_call_s(call, args.device)
    print(f"exported in {summary['export_s']:.1f} s, AOTInductor compiled in {summary['aoti_compile_s']:.1f} s to "
          f"{summary['path']} ({summary['size_GiB']:.3g} GiB); loaded in {load_s:.2f} s")
    print(f"transformer output vs eager: relative L2 error {error:.4f}; first image {call_s:.2f} s, PSNR vs eager "
          f"{psnr_db(output.images_uint8(), eager_output.images_uint8()):.1f} dB")
    return 0 if output.finite() else 1


def command_measure(args) -> int:
    import numpy as np

    from utils.benchmark import call_kwargs, make_call, provenance
    from utils.fidelity import psnr_db
    from utils.pipelines import build_pipeline
    from utils.quant import apply_quantization

    workdir, dtype = args.workdir, pipeline_dtype(args.ckpt_id)
    workdir.mkdir(parents=True, exist_ok=True)
    pipe = build_pipeline(args.ckpt_id, args.weights_resolved, args.device, dtype, args.seed)
    kwargs = call_kwargs(pipe, args)
    call = make_call(pipe, kwargs, args.seed, args.device, frames_of)
    if args.weights_resolved == "pretrained":
        bf16_source = (args.ckpt_id, "transformer")
    else:  # random weights exist only in memory: write them, so that both paths read from disk
        save_transformer(pipe.transformer, workdir / "bf16", "None", "safetensors", overwrite=True)
        bf16_source = (str(workdir / "bf16"), None)
    model = pipe.transformer
    apply_quantization(model, args.quantization, skip_pattern=args.quant_skip_pattern)
    saved = save_transformer(model, workdir / args.quantization, args.quantization, args.format, overwrite=True)
    reference = call()  # the quantized model before saving
    rows = []
    report = {**provenance(args.command_line, args.device), "ckpt_id": args.ckpt_id,
              "weights": args.weights_resolved, "quantization": args.quantization, "device": args.device,
              "format": saved["format"], "checkpoint_GiB": saved["size_GiB"], "aot": None, "rows": rows}

    def write_report() -> None:  # after every stage, so that a run cut short keeps what it measured
        if args.json:
            with atomic_path(args.json) as partial:
                partial.write_text(json.dumps(report, indent=2, default=str))

    write_report()
    package = workdir / f"{args.quantization}.pt2"
    if args.aot:
        if torch.device(args.device).type == "cuda":  # before the process's first compile (the AOT build)
            from utils.optimizations import disable_cpu_int8_weight_only_rewrite

            disable_cpu_int8_weight_only_rewrite()
        report["aot"] = aot_compile_transformer(model, capture_transformer_inputs(pipe, kwargs, args.seed), package)
        logger.info("AOT package compiled in %.1f s", report["aot"]["aoti_compile_s"])
        write_report()
    expected = dict(class_name=type(model).__name__, config=dict(model.config))
    del model
    loaders = {
        "bf16 + quantize": lambda: load_bf16_then_quantize(bf16_source, args.quantization, args.device, dtype,
                                                           args.quant_skip_pattern),
        f"pre-quantized {saved['format']}": lambda: load_transformer(
            workdir / args.quantization, expected_class=expected["class_name"], expected_config=expected["config"],
            device=args.device, dtype=dtype),
    }
    if args.aot:  # AOT against torch.compile in the same process
        loaders[f"pre-quantized {saved['format']} + torch.compile"] = lambda: load_then_compile(
            loaders[f"pre-quantized {saved['format']}"])
        loaders["AOT package"] = lambda: load_aot_transformer(package)
    for label, load in loaders.items():
        result = measure_path(label, load, pipe, call, args.device)
        images, reference_images = result["output"].images_uint8(), reference.images_uint8()
        result["row"]["same_image"] = bool(np.array_equal(images, reference_images))
        result["row"]["psnr_db"] = psnr_db(images, reference_images)
        rows.append(result["row"])
        write_report()
        if compiled_path(label):
            torch._dynamo.reset()  # drop the compiled graphs and the model they hold before the next path
    print(f"{args.ckpt_id} ({args.weights_resolved} weights), {args.quantization}, on {args.device}; checkpoint "
          f"{saved['size_GiB']:.3g} GiB")
    print(render_measurements(rows))
    return 0 if all(path_matches(row) for row in rows) else 1


MIN_COMPILED_PSNR_DB = 25.0  # compiled kernels round differently; their image must still be close to eager's


def compiled_path(label: str) -> bool:
    return label == "AOT package" or label.endswith("torch.compile")


def path_matches(row: dict) -> bool:
    """Eager paths must give the image made before saving bit for bit, compiled ones a close image."""
    return row["psnr_db"] >= MIN_COMPILED_PSNR_DB if compiled_path(row["path"]) else row["same_image"]


COMMANDS = {"save": command_save, "load": command_load, "aot": command_aot, "measure": command_measure}


def parse_args(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    validate(parser, args)
    args.command_line = shlex.join(["python", parser.prog, *argv])
    return parser, args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser, args = parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CheckpointError as error:
        sys.stderr.write(f"{parser.prog}: error: {error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
