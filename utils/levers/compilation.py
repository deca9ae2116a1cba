"""torch.compile: the transformer (whole, or each repeated block on its own), the VAE decoder, the text encoders
layer by layer, and warm starts from a saved compile cache."""

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from utils.errors import UsageError
from utils.files import atomic_path
from utils.levers.base import is_set, same_named, text
from utils.path_checks import check_output_file
from utils.pipelines import TEXT_ENCODERS, denoisers

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # the modes that record CUDA graphs
# The inductor settings that matter for compile time and speed, recorded as the run had them (torchao may set them).
INDUCTOR_SETTINGS = ("coordinate_descent_tuning", "coordinate_descent_check_all_directions", "epilogue_fusion",
                     "conv_1x1_as_mm", "max_autotune")


@dataclass(frozen=True, kw_only=True)
class Settings:
    compile: bool = False
    compile_mode: str = "default"
    regional_compile: bool = False
    compile_vae: bool = False
    compile_text_encoders: bool = False
    compile_cache: Path | None = None


@dataclass
class Columns:
    compile: bool = False
    compile_mode: str = ""  # empty when nothing is compiled
    regional_compile: bool = False
    compile_vae: bool = False
    compile_text_encoders: bool = False
    compile_cache: str = ""  # cold (written after the run) | warm (loaded before the first call) | "" (unused)
    inductor_config: str = ""  # the inductor settings the run used
    # Where the compile time went (compile_phases), summed over every graph the process compiled:
    compile_trace_s: float | None = None  # dynamo tracing the bytecode
    compile_backend_s: float | None = None  # AOT autograd + inductor lowering and code generation, incl. the next
    compile_kernel_wait_s: float | None = None  # waiting for the Triton/C++ kernels built by the compile workers


def add_flags(parser) -> None:
    group = parser.add_argument_group("torch.compile")
    group.add_argument("--compile", action="store_true", help="torch.compile the transformer (fullgraph=True)")
    group.add_argument("--compile_mode", choices=COMPILE_MODES, default="default",
                       help="torch.compile mode for the transformer and the VAE decoder. max-autotune(-no-cudagraphs) "
                            "benchmarks many GEMM kernels for every shape (far longer compiles); reduce-overhead and "
                            "max-autotune record CUDA graphs (whole-model --compile only)")
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


def settings(flags, run) -> Settings:
    return Settings(compile=flags.compile or flags.regional_compile, compile_mode=flags.compile_mode,
                    regional_compile=flags.regional_compile, compile_vae=flags.compile_vae,
                    compile_text_encoders=flags.compile_text_encoders, compile_cache=flags.compile_cache)


def compiles_anything(source) -> bool:
    """Whether anything is compiled: the transformer, the VAE decoder or the text encoders. `source` is a run config
    or a results row."""
    return any(is_set(getattr(source, name, None)) for name in ("compile", "compile_vae", "compile_text_encoders"))


def check(config) -> None:
    if config.regional_compile and config.compile_mode in CUDA_GRAPH_MODES:
        raise UsageError(f"--compile_mode {config.compile_mode} records CUDA graphs, which fail with "
                         "--regional_compile: each block's graph overwrote an output a later block still read; use "
                         "--compile_mode default or max-autotune-no-cudagraphs, or --compile for the whole model")
    if config.compile_text_encoders and config.compile_mode in CUDA_GRAPH_MODES:
        raise UsageError(f"--compile_text_encoders compiles layer by layer, which fails with --compile_mode "
                         f"{config.compile_mode} (CUDA graphs) for the same reason as --regional_compile")
    if "compile_mode" in config.given_flags and not compiles_anything(config):
        raise UsageError(f"--compile_mode {config.compile_mode} needs something to compile: --compile, "
                         "--regional_compile, --compile_vae or --compile_text_encoders")
    if config.compile_cache and not compiles_anything(config):
        raise UsageError("--compile_cache needs --compile, --regional_compile, --compile_vae or "
                         "--compile_text_encoders")
    check_output_file("--compile_cache", config.compile_cache)
    if config.compile_cache is not None and config.compile_cache.exists():
        check_compile_cache(config.compile_cache)


def columns(config) -> dict:
    values = same_named(config, Columns)
    values["compile_cache"] = ""
    if not compiles_anything(config):
        values["compile_mode"] = ""
    return values


def label(row) -> str | None:
    words = []
    if is_set(row.compile):
        mode = f" ({row.compile_mode})" if text(row.compile_mode) else ""
        words.append(f"{'regional ' if is_set(row.regional_compile) else ''}compile{mode}")
    if is_set(row.compile_vae):
        words.append("compiled VAE")
    if is_set(row.get("compile_text_encoders")):
        words.append("compiled text enc")
    # the compile cache file (--compile_cache), not the caches' state at start (the row's compile_start)
    cache = {"cold": "compile cache file written", "warm": "compile cache file loaded"}
    if text(row.get("compile_cache")) in cache:
        words.append(cache[row.compile_cache])
    return ", ".join(words) or None


def disable_cpu_int8_weight_only_rewrite() -> None:
    """Stop inductor from rewriting int8 weight-only matmuls into aten._weight_int8pack_mm on CUDA. Inductor registers
    that rewrite with its mkldnn (CPU) patterns, but it also matches CUDA tensors, and the kernel is made for a few
    rows (docs/flux.md, compile pitfalls). The patterns are registered once, at the first compile, and only while
    mkldnn is enabled, so this must run before any compilation. It changes nothing on the GPU besides that rewrite."""
    torch.backends.mkldnn.enabled = False


# torch's own counters (torch._dynamo.utils.compile_times) behind the compile-phase columns
COMPILE_PHASES = {"compile_trace_s": "bytecode_tracing", "compile_backend_s": "OutputGraph.call_user_compiler",
                  "compile_kernel_wait_s": "async_compile.wait"}


def compile_phases() -> dict[str, float | None]:
    """Seconds this process spent so far in three phases of torch.compile, summed over every graph it compiled
    (autoquant's and the autotuner's candidates too); None for a counter this torch does not keep."""
    names, values = torch._dynamo.utils.compile_times(repr="csv", aggregate=True)
    seconds = {name: float(value) for name, value in zip(names, values)}
    return {column: seconds.get(counter) for column, counter in COMPILE_PHASES.items()}


def inductor_config() -> str:
    """The inductor settings that matter for compile time and speed, as the run really had them."""
    import torch._inductor.config as config

    settings = [f"{name}={int(bool(getattr(config, name)))}" for name in INDUCTOR_SETTINGS]
    return ",".join([*settings, f"mkldnn_patterns={int(torch.backends.mkldnn.enabled)}"])


def repeated_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The blocks of every `*blocks` ModuleList (Flux: transformer_blocks + single_transformer_blocks)."""
    return [block for name, child in model.named_children()
            if isinstance(child, torch.nn.ModuleList) and name.endswith("blocks") for block in child]


def compile_model(model: torch.nn.Module, mode: str = "default", regional: bool = True) -> None:
    """Compile in place with fullgraph=True: every repeated block on its own (regional, fast to compile since the
    blocks repeat) or the whole model at once."""
    if not regional:
        model.compile(fullgraph=True, mode=mode)
    elif getattr(model, "_repeated_blocks", None):
        model.compile_repeated_blocks(fullgraph=True, mode=mode)
    else:  # models that do not declare their repeated blocks to diffusers (CogVideoX in 0.42)
        blocks = repeated_blocks(model)
        if not blocks:
            raise ValueError(f"{type(model).__name__} has no repeated blocks to compile; use --compile alone")
        for block in blocks:
            block.compile(fullgraph=True, mode=mode)


def encoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The layers of every outermost ModuleList holding several modules of one class (T5: encoder.block, CLIP:
    encoder.layers); lists of mixed classes (inside a T5 block) and lists inside a layer are parts of a layer."""
    layers, prefixes = [], ()
    for name, module in model.named_modules():
        if name.startswith(prefixes) or not isinstance(module, torch.nn.ModuleList) or len(module) < 2:
            continue
        if len({type(child) for child in module}) == 1:
            layers += list(module)
            prefixes += (f"{name}.",)
    return layers


def compile_text_encoders(pipe, mode: str) -> None:
    """Compile each text encoder layer by layer: the layers share their code, so they compile once (plus T5's first
    block, which also computes the position bias). Not fullgraph: transformers' encoders may break the graph between
    layers, and the layers are what matters."""
    for name in TEXT_ENCODERS:
        model = getattr(pipe, name, None)
        if model is None:
            continue
        layers = encoder_layers(model)
        if not layers:
            raise ValueError(f"{name} ({type(model).__name__}) has no repeated layers to compile")
        for layer in layers:
            layer.compile(mode=mode)


def apply(pipe, config) -> None:
    """Compile what the config asks for; compilation itself happens in the first call."""
    if torch.device(config.device).type == "cuda":
        disable_cpu_int8_weight_only_rewrite()
    if config.compile:
        for model in denoisers(pipe):  # both experts of Wan 2.2 A14B
            compile_model(model, config.compile_mode, config.regional_compile)
    if config.compile_vae:
        pipe.vae.decode = torch.compile(pipe.vae.decode, fullgraph=True, mode=config.compile_mode)
    if config.compile_text_encoders:
        compile_text_encoders(pipe, config.compile_mode)


def save_compile_cache(path) -> dict | None:
    """Write the artifacts of every torch.compile this process has run so far (inductor graphs, AOTAutograd entries,
    autotuning results, Triton kernels on CUDA) to `path`. Call it after the compiled model has run. Returns the
    number of artifacts per kind, or None when nothing was compiled (no file is written then)."""
    result = torch.compiler.save_cache_artifacts()
    if result is None:
        return None
    data, info = result
    with atomic_path(Path(path)) as partial:
        partial.write_bytes(data)
    return {kind: len(keys) for kind, keys in info.artifacts.items()}


def check_compile_cache(path: Path) -> None:
    """A UsageError unless `path` holds artifacts this torch can read, checked without loading them."""
    from torch.compiler._cache import CacheArtifactManager

    logging.getLogger("torch.compiler._cache").disabled = True  # it logs a traceback before returning None
    try:
        readable = CacheArtifactManager.deserialize(path.read_bytes()) is not None
    finally:
        logging.getLogger("torch.compiler._cache").disabled = False
    if not readable:
        raise UsageError(f"--compile_cache {path}: not a torch.compile cache that this torch {torch.__version__} can "
                         "read (truncated, or not written by save_compile_cache)")


def load_compile_cache(path) -> dict:
    """Put the artifacts saved by `save_compile_cache` into this process's compile caches; call it before the first
    compiled call. A later compile of the same graph, with the same torch version and settings, is then a cache hit.
    Returns the number of artifacts per kind."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such compile cache file")
    info = torch.compiler.load_cache_artifacts(path.read_bytes())
    if info is None:  # torch logs the parse error as a warning and returns None
        raise ValueError(f"{path}: not a torch.compile cache that this torch {torch.__version__} can read "
                         "(truncated, or not written by save_compile_cache)")
    return {kind: len(keys) for kind, keys in info.artifacts.items()}


def start_from_cache(config) -> str:
    """--compile_cache before the first call: "warm" (loaded) when the file exists, else "cold"."""
    if not config.compile_cache.exists():
        return "cold"
    load_compile_cache(config.compile_cache)
    return "warm"
