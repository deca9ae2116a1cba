"""Ahead-of-time compilation of a transformer: torch.export + AOTInductor into a .pt2 package at one call's shapes,
and a module that runs the package inside a diffusers pipeline."""

import json
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from utils.errors import one_line
from utils.files import atomic_path
from utils.pipelines import denoiser
from utils.serialization import CheckpointError, config_for_comparison

# Transformer-call arguments an AOT package cannot take: they carry LoRA scales and IP-adapter embeddings, which
# change the graph that was compiled.
ATTENTION_KWARGS = ("joint_attention_kwargs", "attention_kwargs")


AOT_METADATA_KEY = "diffusers_transformer"


class _Captured(Exception):
    pass


def capture_transformer_inputs(pipe, call_kwargs: dict, seed: int) -> dict:
    """The keyword arguments the pipeline passes to its transformer at the first denoising step: the exact shapes
    and dtypes (bf16 timestep, fp32 guidance, ...) it will use. The pipeline is stopped there."""
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
