"""Saving a (quantized) transformer with save_pretrained and loading it back, with every file checked before
diffusers reads it: a checkpoint that cannot be used stops with one line naming the file."""

import json
import logging
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import torch

from utils.errors import UsageError, one_line
from utils.files import give_umask_mode
from utils.pipelines import build_pipeline, transformer_class_name
from utils.presets import get_preset
from utils.quant import QUANTIZATIONS
from utils.timing import GiB

logger = logging.getLogger(__name__)

FORMATS = ("auto", "safetensors", "pickle")


SAFETENSORS_FILE = "diffusion_pytorch_model.safetensors"


PICKLE_FILE = "diffusion_pytorch_model.bin"
MANIFEST = ".diffusion-bench-files.json"  # the files a save wrote: the only ones an --overwrite may delete


class CheckpointError(UsageError):
    """A saved model or cache that cannot be used; the message names the file and what is wrong with it."""


def attach_quantization_config(model: torch.nn.Module, name: str) -> None:
    """Give a model quantized in place by `apply_quantization` what diffusers needs to save and reload it: a
    TorchAoConfig in its config, which lands in config.json and makes `from_pretrained` take the weights as already
    quantized, and the quantizer object `save_pretrained` consults (it flattens the torchao tensors for safetensors).
    Without them a safetensors save fails inside torch ("Attempted to access the data pointer on an invalid python
    storage"); a pickle save still reloads, but its config.json does not say that the weights are quantized."""
    from diffusers import TorchAoConfig
    from diffusers.quantizers.torchao import TorchAoHfQuantizer

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
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file()) / GiB


def files_in(directory: Path) -> list[str]:
    return sorted(path.relative_to(directory).as_posix() for path in directory.rglob("*") if not path.is_dir())


def check_output_directory(directory: Path, overwrite: bool) -> None:
    """Whether `save_transformer` may write `directory`: absent or empty, or, with `overwrite`, a folder it wrote
    itself that holds nothing else (its manifest lists every file). Replacing a folder deletes its contents, so
    anything we did not write stops the save."""
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory}: is a file, not a folder")
    if not directory.exists() or not any(directory.iterdir()):
        return
    if not overwrite:
        raise CheckpointError(f"{directory}: already exists and is not empty; pass --overwrite to replace it")
    try:
        written = json.loads((directory / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"{directory}: not written by this tool (no {MANIFEST}); refusing to replace "
                              "it") from None
    ours = {MANIFEST, *written, *(parent.as_posix() for name in written for parent in Path(name).parents)}
    everything = {path.relative_to(directory).as_posix() for path in directory.rglob("*")}
    foreign = sorted(everything - ours)  # files and folders: an empty folder of the user's would go too
    if foreign:
        raise CheckpointError(f"{directory}: holds files or folders this tool did not write "
                              f"({', '.join(foreign[:3])}); refusing to replace it")


def save_transformer(model: torch.nn.Module, directory, quantization: str, fmt: str = "auto",
                     overwrite: bool = False) -> dict:
    """Write `model` (quantized in place with registry method `quantization`, or "None") with `save_pretrained`.
    The files go to a new sibling folder first and replace `directory` only once complete; a manifest of them lets a
    later --overwrite replace exactly what this wrote."""
    directory = Path(directory)
    check_output_directory(directory, overwrite)
    fmt = resolve_format(model, fmt, directory)
    if quantization != "None":
        attach_quantization_config(model, quantization)
    elif torchao_weight_types(model) and getattr(model, "hf_quantizer", None) is None:
        raise CheckpointError(f"{directory}: the model has torchao weights ({', '.join(torchao_weight_types(model))}) "
                              "but quantization None was given; pass the method it was quantized with")
    directory.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.partial-"))
    try:
        start = time.perf_counter()
        model.save_pretrained(partial, safe_serialization=fmt == "safetensors")
        save_s = time.perf_counter() - start
        (partial / MANIFEST).write_text(json.dumps({"files": files_in(partial)}, indent=1))
        give_umask_mode(partial)
        replace_directory(directory, partial)
    finally:
        shutil.rmtree(partial, ignore_errors=True)  # ours: made by mkdtemp above; gone once renamed
    return {"path": str(directory), "format": fmt, "save_s": save_s, "size_GiB": directory_GiB(directory),
            "weight_types": sorted(torchao_weight_types(model)) or ["torch.Tensor"]}


def replace_directory(directory: Path, new: Path) -> None:
    """Put `new` at `directory`; an old `directory` (already checked to hold only our files) is moved aside first and
    deleted only once the new one is in place."""
    if not directory.exists():
        new.rename(directory)
        return
    old = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.old-"))
    old.rmdir()
    directory.rename(old)
    new.rename(directory)
    shutil.rmtree(old)


def read_checkpoint_config(directory: Path) -> dict:
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such directory")
    path = directory / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; {directory} is not a model saved with save_pretrained")
    return read_class_json(path, "a diffusers model config")


def read_class_json(path: Path, what: str) -> dict:
    """A diffusers JSON file that names its class (a model's config.json, a pipeline's model_index.json)."""
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({one_line(error)})") from error
    if not isinstance(content, dict) or "_class_name" not in content:
        raise CheckpointError(f"{path}: has no _class_name; not {what}")
    return content


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
    try:
        data_end = max((int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"),
                       default=0)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        raise CheckpointError(f"{path}: malformed safetensors header (no tensor table with data offsets)") from None
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
            try:
                shards = json.loads(index.read_text())["weight_map"].values()
                paths = [directory / shard for shard in sorted(set(shards))]
            except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
                raise CheckpointError(f"{index}: not a shard index (JSON with a weight_map)") from None
        else:
            continue
        for path in paths:
            if not path.is_file():
                raise CheckpointError(f"{path}: listed in {index.name} but missing")
            check(path)
        return paths
    raise CheckpointError(f"{directory}: no {SAFETENSORS_FILE} or {PICKLE_FILE} (nor a sharded index) in it")


def check_pipeline_dir(directory: Path) -> None:
    """A local pipeline folder `from_pretrained` can read: a model_index.json, and every safetensors file in it
    whole. Checked before anything is built, so that an empty folder or a cut-off download stops in one line."""
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: is a file, not a pipeline folder")
    index = directory / "model_index.json"
    if not index.is_file():
        raise CheckpointError(f"{directory}: no model_index.json; not a diffusers pipeline folder")
    read_class_json(index, "a diffusers pipeline index")
    for path in sorted(directory.rglob("*.safetensors")):
        check_safetensors_file(path)


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


def expected_transformer(ckpt_id: str, weights: str) -> tuple[str, dict]:
    """Class name and config of the transformer the pipeline of `ckpt_id` is built with."""
    import diffusers

    if weights == "random":
        preset = get_preset(ckpt_id)
        return preset.components["transformer"], preset.config("transformer")
    class_name = transformer_class_name(ckpt_id, None)
    return class_name, dict(getattr(diffusers, class_name).load_config(ckpt_id, subfolder="transformer"))


def load_pipeline_with(ckpt_id: str, weights: str, transformer: torch.nn.Module, device, dtype, seed: int):
    """The pipeline of `ckpt_id` around an already loaded transformer. Random-weight presets build their own
    transformer first and drop it; checkpoints never read theirs."""
    if weights == "random":
        pipe = build_pipeline(ckpt_id, weights, device, dtype, seed)
        pipe.transformer = transformer
        return pipe
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(ckpt_id, transformer=transformer, dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
