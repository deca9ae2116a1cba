"""--cuda_graph: the denoiser's whole forward recorded once as one CUDA graph and replayed at every step, so the
GPU runs a step without waiting for Python to launch its few thousand kernels. Works over --regional_compile, where
torch.compile's own CUDA graphs (reduce-overhead) fail: each block's graph overwrote an output the next block still
read. Here the graph spans the whole forward, with static input buffers and outputs copied out after each replay."""

from dataclasses import dataclass

import torch

from utils.errors import UsageError
from utils.levers.base import is_set, same_named
from utils.pipelines import denoisers

WARMUP_CALLS = 2  # eager (or compiling) calls per input signature before recording: compilation must be done first


@dataclass(frozen=True, kw_only=True)
class Settings:
    cuda_graph: bool = False


@dataclass
class Columns:
    cuda_graph: bool = False


def add_flags(parser) -> None:
    group = parser.add_argument_group("CUDA graph")
    group.add_argument("--cuda_graph", action="store_true",
                       help="record the transformer's whole forward as one CUDA graph after two warm-up calls and "
                            "replay it at every step (CUDA only; combine with --regional_compile)")


def settings(flags, run) -> Settings:
    return Settings(cuda_graph=flags.cuda_graph)


def check(config) -> None:
    if not config.cuda_graph:
        return
    if torch.device(config.device).type != "cuda":
        raise UsageError("--cuda_graph records a CUDA graph: it needs a CUDA device")
    if config.compile and not config.regional_compile:
        raise UsageError("--cuda_graph wraps the transformer's forward, which whole-model --compile traces into; use "
                         "--regional_compile, or --compile_mode reduce-overhead for torch.compile's own CUDA graphs")
    conflicts = {"--offload": config.offload != "none", "--step_cache": config.step_cache != "none",
                 "--context_parallel": config.context_parallel != "none",
                 "--quantization autoquant": config.quantization == "autoquant"}
    named = [flag for flag, conflict in conflicts.items() if conflict]
    if named:
        raise UsageError(f"--cuda_graph cannot be combined with {', '.join(named)}: a replayed graph cannot move "
                         "weights, take a data-dependent branch, synchronize ranks or be timed layer by layer")


def columns(config) -> dict:
    return same_named(config, Columns)


def label(row) -> str | None:
    return "CUDA graph" if is_set(row.get("cuda_graph")) else None


def signature(args: tuple, kwargs: dict) -> tuple:
    """What a recorded graph is valid for: the shape, dtype and device of every tensor argument and the value of
    every other one (a graph replays fixed kernels on fixed buffers)."""
    def describe(value):
        if isinstance(value, torch.Tensor):
            return ("tensor", tuple(value.shape), value.dtype, value.device)
        if isinstance(value, (list, tuple)):
            return tuple(describe(item) for item in value)
        if isinstance(value, dict):
            return tuple(sorted((key, describe(item)) for key, item in value.items()))
        return value

    return describe(args), describe(kwargs)


def copy_into(static, value) -> None:
    """Copy the tensors of `value` into the matching tensors of `static` (same nesting)."""
    if isinstance(static, torch.Tensor):
        static.copy_(value)
    elif isinstance(static, (list, tuple)):
        for static_item, item in zip(static, value):
            copy_into(static_item, item)
    elif isinstance(static, dict):
        for key in static:
            copy_into(static[key], value[key])


def cloned(value):
    """`value` with every tensor cloned, same nesting: outputs copied out of the graph's memory (the next replay
    overwrites it), and the inputs' buffers the graph is recorded on."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(cloned(item) for item in value))
    if isinstance(value, (list, tuple)):
        return type(value)(cloned(item) for item in value)
    if isinstance(value, dict):
        return type(value)({key: cloned(item) for key, item in value.items()})
    return value


class GraphedForward:
    """Calls `forward` normally for the first WARMUP_CALLS calls of each input signature, then records one call as a
    CUDA graph and from then on replays it: the inputs are copied into the graph's own buffers first, the outputs
    copied out after."""

    def __init__(self, forward):
        self.forward = forward
        self.calls: dict[tuple, int] = {}
        self.graphs: dict[tuple, tuple] = {}

    def __call__(self, *args, **kwargs):
        key = signature(args, kwargs)
        if key in self.graphs:
            graph, static_args, static_kwargs, static_output = self.graphs[key]
            copy_into(static_args, args)
            copy_into(static_kwargs, kwargs)
            graph.replay()
            return cloned(static_output)
        self.calls[key] = self.calls.get(key, 0) + 1
        if self.calls[key] <= WARMUP_CALLS:
            return self.forward(*args, **kwargs)
        return self.record(key, args, kwargs)

    def record(self, key, args, kwargs):
        static_args, static_kwargs = cloned(args), cloned(kwargs)  # the graph's own input buffers
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # one call on a side stream first, as torch.cuda.graph's docs ask
            self.forward(*static_args, **static_kwargs)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_output = self.forward(*static_args, **static_kwargs)
        self.graphs[key] = (graph, static_args, static_kwargs, static_output)
        graph.replay()
        return cloned(static_output)


def apply(pipe, config) -> None:
    """Wrap the denoisers' forward (after compilation was set up: the warm-up calls compile)."""
    for model in denoisers(pipe):
        model.forward = GraphedForward(model.forward)
