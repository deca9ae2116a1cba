"""autoquant, rebuilt on torchao 0.18 (torchao removed its own in 0.17): pick a quantization per Linear layer.

1. One real forward pass of the denoiser records the input of every Linear layer. Layers are grouped by weight
   shape and activation rows (Flux has a dozen such groups for its ~500 layers).
2. For each group, each candidate is applied to a copy of the group's first layer and timed on that layer's real
   input (compiled on CUDA as the benchmark will be, GPU time per call from a replayed CUDA graph); its output is
   compared with bf16's.
3. The group gets the fastest candidate whose relative L2 error stays under `max_error`, unless it is not at
   least MIN_GAIN faster than bf16: layers too small to gain stay bf16. Near ties (within NEAR_TIE) are settled
   once for the whole model (see TIE_ORDER), since a layer timed alone cannot show fusion with its neighbours.
   Groups with at most PER_IMAGE_ROWS activation rows (one row per image: adaLN, embedders) stay bf16 without
   timing: a few microseconds a step to win, each candidate costs a compile, and torch._int_mm (int8dq) needs more
   than 16 rows anyway.
4. The plan (a JSON file) is applied with torchao's FqnToConfig; a saved plan that matches the model, the device
   and the settings is reused without timing anything.
"""

import copy
import hashlib
import json
import logging
import statistics
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from utils.fidelity import relative_l2
from utils.files import atomic_path
from utils.levers.compilation import CUDA_GRAPH_MODES
from utils.provenance import device_name
from utils.quant import QUANTIZATIONS, count_quantized_linears, quantizable_linear, unsupported_reason
from utils.timing import time_call_s

logger = logging.getLogger(__name__)

CANDIDATES = ("int8wo", "int8dq", "fp8wo", "fp8dq", "fp8dqrow")
DEFAULT_MAX_ERROR = 0.05  # relative L2 of one layer's output against bf16 on its real input
MIN_GAIN = 1.05  # a candidate must beat bf16 by this factor, or the group stays bf16
PER_IMAGE_ROWS = 16  # groups fed at most this many activation rows (adaLN, embedders) stay bf16 untimed
WEIGHT_ONLY = ("int8wo", "fp8wo")  # the only candidates of layers a preset feeds too few rows (few_rows_layers)
# A layer timed alone cannot show how its kernels fuse with its neighbours': per-layer timings of fp8dq and fp8dqrow
# tie within noise, yet the whole model runs faster with one of them everywhere than with a plan split between the
# two (docs/autoquant.md has the measurements). So the plan settles near ties (within NEAR_TIE) model-wide: first the
# candidate for the whole model, the first in TIE_ORDER among those whose summed per-layer time is within NEAR_TIE of
# the least; then each group takes it when it is within NEAR_TIE of the group's own fastest.
NEAR_TIE = 1.05
# The single configs from fastest to slowest over the whole compiled FLUX.1-dev (docs/autoquant.md).
TIE_ORDER = ("fp8dqrow", "fp8dq", "int8wo", "fp8wo", "int8dq")
PLAN_VERSION = 3  # 3: near ties go to the model-wide fastest; 2: each group's fastest; 1: timed with launch overhead
CALLS_PER_GRAPH = 20


@dataclass
class LayerGroup:
    out_features: int
    in_features: int
    rows: int  # activation rows seen in the recorded forward (tokens x batch)
    layers: list[str]  # fully qualified names, in model order
    bf16_ms: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # candidate -> why it was not timed
    choice: str = "None"


@dataclass
class Plan:
    fingerprint: str
    model: str
    device: str
    max_error: float
    candidates: list[str]
    groups: list[LayerGroup]
    model_wide_fastest: str = "None"  # the candidate that near ties go to (see NEAR_TIE)
    version: int = PLAN_VERSION

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for group in self.groups:
            counts[group.choice] = counts.get(group.choice, 0) + len(group.layers)
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def summary(self) -> str:
        parts = [f"{count} {'bf16' if name == 'None' else name}" for name, count in self.counts().items()]
        return f"{', '.join(parts)} ({len(self.groups)} shape groups)"


class _RecordedOneForward(Exception):
    """Raised by the hook after the denoiser's first forward: the rest of the pipeline call is not needed."""


def fingerprint(model: torch.nn.Module, device: str, settings: dict) -> str:
    """What a plan is valid for: the model's Linear layers (names and shapes), the device, the torch and torchao
    versions and the planning settings (error bound, candidates, base dtype, skip pattern, compile mode)."""
    import torchao

    layers = [(name, module.out_features, module.in_features) for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear)]
    text = json.dumps([type(model).__name__, layers, device_name(device), torch.__version__, torchao.__version__,
                       sorted(settings.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_linear_inputs(model: torch.nn.Module, run: Callable[[], object],
                         skip_pattern=None) -> tuple[list[LayerGroup], dict[tuple, torch.Tensor]]:
    """Run `run` (which calls `model`) until the model's first forward returns; group the Linear layers by
    (out_features, in_features, rows) and keep the first input of each group."""
    groups: dict[tuple, LayerGroup] = {}
    inputs: dict[tuple, torch.Tensor] = {}
    seen: set[str] = set()

    def record(name):
        def hook(_module, args):
            if name in seen:
                return
            seen.add(name)
            x = args[0]
            key = (_module.out_features, _module.in_features, x.numel() // x.shape[-1])
            if key not in groups:
                groups[key] = LayerGroup(*key, layers=[])
                inputs[key] = x.detach().clone()
            groups[key].layers.append(name)
        return hook

    def stop(*_):
        raise _RecordedOneForward

    handles = [module.register_forward_pre_hook(record(name)) for name, module in model.named_modules()
               if quantizable_linear(module, name, skip_pattern)]
    handles.append(model.register_forward_hook(stop))
    try:
        run()
    except _RecordedOneForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if not groups:
        raise ValueError(f"autoquant recorded no Linear inputs in {type(model).__name__}'s forward pass")
    return list(groups.values()), inputs


def median_ms(fn: Callable[[], torch.Tensor], device: str, kernels_only: bool, warmup: int = 3,
              repeats: int = 10) -> float:
    """Milliseconds per call. `kernels_only` (CUDA): the GPU's own time, without the host's launch overhead (see
    gpu_ms); otherwise one call at a time, host overhead included."""
    for _ in range(warmup):
        fn()
    if kernels_only:
        return gpu_ms(fn, repeats)
    return statistics.median(time_call_s(fn, device)[0] for _ in range(repeats)) * 1e3


def gpu_ms(fn: Callable[[], torch.Tensor], repeats: int, calls: int = CALLS_PER_GRAPH) -> float:
    """Replay `calls` calls captured in one CUDA graph and divide. Inside a compiled model the host runs ahead of
    the GPU, so a layer costs its kernels' time; one layer timed alone is mostly launch overhead, which favours bf16
    (one kernel) over dynamic quantization (three): plan version 1, timed that way, kept most FLUX layers in bf16
    (docs/autoquant.md). A call that cannot be captured raises (its candidate is then skipped), so that every timing
    of a plan is taken the same way."""
    stream = torch.cuda.Stream()  # capture on a stream the calls already ran on (cuBLAS sets up per stream)
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        for _ in range(calls):
            fn()
    graph.replay()
    milliseconds = statistics.median(time_call_s(graph.replay, "cuda")[0] for _ in range(repeats)) * 1e3 / calls
    del graph
    return milliseconds


def times_kernels_only(device: str, compile_mode: str | None) -> bool:
    """Whether to time candidates as GPU time (gpu_ms): on CUDA when the benchmark compiles without CUDA graphs. In
    eager the host's per-call dispatch is part of the cost (torchao's quantized tensors add to it), and the
    CUDA-graph modes record their own graphs, which cannot be captured inside another."""
    return torch.device(device).type == "cuda" and compile_mode is not None and compile_mode not in CUDA_GRAPH_MODES


def layer_runner(layer: torch.nn.Module, x: torch.Tensor, device: str,
                 compile_mode: str | None) -> Callable[[], torch.Tensor]:
    """The layer as the benchmark will run it: compiled with the benchmark's mode on CUDA when it compiles, eager
    otherwise (and always on the CPU, where compiling every candidate would cost more than it tells)."""
    if compile_mode is None or torch.device(device).type != "cuda":
        return lambda: layer(x)
    torch._dynamo.reset()  # every candidate is a new module: do not let dynamo's cache limit fall back to eager
    compiled = torch.compile(layer, fullgraph=True, mode=compile_mode)
    return lambda: compiled(x)


@torch.no_grad()
def measure_group(model: torch.nn.Module, group: LayerGroup, x: torch.Tensor, candidates: list[str], device: str,
                  base_dtype: str, compile_mode: str | None, set_inductor_config: bool) -> None:
    from torchao.quantization import quantize_

    layer = model.get_submodule(group.layers[0])
    reference = layer(x)
    kernels_only = times_kernels_only(device, compile_mode)
    bf16_before = median_ms(layer_runner(layer, x, device, compile_mode), device, kernels_only)
    for name in candidates:
        reason = unsupported_reason(name, device, base_dtype)
        if reason:
            group.skipped[name] = reason
            continue
        candidate = torch.nn.Sequential(copy.deepcopy(layer))
        try:
            quantize_(candidate, QUANTIZATIONS[name].make_config(set_inductor_config))
            run = layer_runner(candidate, x, device, compile_mode)
            group.errors[name] = relative_l2(run(), reference)
            group.timings_ms[name] = median_ms(run, device, kernels_only)
        except Exception as error:  # noqa: BLE001 - a kernel that rejects these shapes is a skipped candidate
            group.skipped[name] = f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
        del candidate
    # timed again after the candidates, keeping the faster: a cold first measurement must not favour quantizing
    group.bf16_ms = min(bf16_before, median_ms(layer_runner(layer, x, device, compile_mode), device, kernels_only))


def eligible_ms(group: LayerGroup, max_error: float) -> dict[str, float]:
    return {name: ms for name, ms in group.timings_ms.items() if group.errors[name] <= max_error}


def model_wide_fastest(groups: list[LayerGroup], max_error: float) -> str:
    """The candidate near ties go to: among those eligible in every timed group, the first in TIE_ORDER whose total
    time (per-layer time x layers, over the timed groups) is within NEAR_TIE of the least. "None" if no candidate is
    eligible everywhere."""
    timed = [(group, eligible_ms(group, max_error)) for group in groups if group.timings_ms]
    if not timed:
        return "None"
    everywhere = set.intersection(*(set(times) for _, times in timed))
    if not everywhere:
        return "None"
    totals = {name: sum(times[name] * len(group.layers) for group, times in timed) for name in everywhere}
    least = min(totals.values())
    tied = [name for name in totals if totals[name] <= least * NEAR_TIE]
    return min(tied, key=lambda name: (TIE_ORDER.index(name) if name in TIE_ORDER else len(TIE_ORDER), name))


def choose(group: LayerGroup, max_error: float, preferred: str = "None") -> str:
    """The fastest candidate under the error bound, or `preferred` when it is within NEAR_TIE of that; bf16 ("None")
    unless the pick is at least MIN_GAIN faster than bf16."""
    eligible = {name: ms for name, ms in eligible_ms(group, max_error).items() if group.bf16_ms / ms >= MIN_GAIN}
    if not eligible:
        return "None"
    best = min(eligible, key=eligible.get)
    if preferred in eligible and eligible[preferred] <= eligible[best] * NEAR_TIE:
        return preferred
    return best


def planning_settings(max_error: float, base_dtype: str, skip_pattern: str | None, compile_mode: str | None,
                      candidates=CANDIDATES, few_rows_pattern: str | None = None) -> dict:
    settings = {"max_error": max_error, "candidates": sorted(candidates), "base_dtype": base_dtype,
                "skip_pattern": skip_pattern, "compile_mode": compile_mode}
    if few_rows_pattern:  # only where set, so the plans made before it keep their fingerprints
        settings["few_rows_pattern"] = few_rows_pattern
    return settings


def make_plan(model: torch.nn.Module, run: Callable[[], object], *, device: str, base_dtype: str = "bf16",
              max_error: float = DEFAULT_MAX_ERROR, candidates=CANDIDATES, skip_pattern: str | None = None,
              few_rows_pattern: str | None = None, compile_mode: str | None = None,
              set_inductor_config: bool = False) -> Plan:
    """`skip_pattern`: regex of layer names that stay bf16. `few_rows_pattern`: layers fed one row per prompt token,
    unpadded (Preset.few_rows_layers): the recorded forward's row count is not the one they will always see, so they
    get weight-only candidates only. `compile_mode`: how the benchmark compiles (None: it runs eager), so that the
    candidates are timed the way they will run."""
    import re

    candidates = list(candidates)
    groups, inputs = record_linear_inputs(model, run, re.compile(skip_pattern) if skip_pattern else None)
    from tqdm.auto import tqdm

    few_rows = re.compile(few_rows_pattern) if few_rows_pattern else None
    for group in tqdm(groups, desc="autoquant: timing candidates", unit="group"):
        key = (group.out_features, group.in_features, group.rows)
        if group.rows <= PER_IMAGE_ROWS:
            group.skipped = {name: f"{group.rows} activation rows (at most {PER_IMAGE_ROWS}): too small to gain"
                             for name in candidates}
            continue
        timed = candidates
        if few_rows and all(few_rows.search(name) for name in group.layers):
            timed = [name for name in candidates if name in WEIGHT_ONLY]
            group.skipped = {name: "one row per prompt token, unpadded: weight-only candidates only"
                             for name in candidates if name not in timed}
        measure_group(model, group, inputs.pop(key), timed, device, base_dtype, compile_mode, set_inductor_config)
    torch._dynamo.reset()
    preferred = model_wide_fastest(groups, max_error)
    for group in groups:
        if group.timings_ms:
            group.choice = choose(group, max_error, preferred)
    settings = planning_settings(max_error, base_dtype, skip_pattern, compile_mode, candidates, few_rows_pattern)
    return Plan(fingerprint(model, device, settings), type(model).__name__, device_name(device), max_error,
                candidates, groups, preferred)


def save_plan(plan: Plan, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(asdict(plan), indent=1) + "\n")


def load_plan(path: Path) -> Plan:
    try:
        data = json.loads(Path(path).read_text())
        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"plan version {data.get('version')}, expected {PLAN_VERSION}")
        groups = [LayerGroup(**group) for group in data.pop("groups")]
        return Plan(**data, groups=groups)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise ValueError(f"{path} is not an autoquant plan this version can read ({error})") from error


def apply_plan(model: torch.nn.Module, plan: Plan, set_inductor_config: bool = False) -> int:
    """Quantize each planned layer with its group's choice (torchao FqnToConfig); returns how many were replaced."""
    from torchao.quantization import FqnToConfig, quantize_

    configs = {name: QUANTIZATIONS[name].make_config(set_inductor_config) for name in plan.counts() if name != "None"}
    mapping = OrderedDict((layer, configs[group.choice]) for group in plan.groups if group.choice != "None"
                          for layer in group.layers)
    if mapping:
        quantize_(model, FqnToConfig(fqn_to_config=mapping), filter_fn=None)
    return count_quantized_linears(model)


def autoquant(model: torch.nn.Module, run: Callable[[], object], *, device: str, plan_path: Path | None = None,
              base_dtype: str = "bf16", max_error: float = DEFAULT_MAX_ERROR, skip_pattern: str | None = None,
              few_rows_pattern: str | None = None, compile_mode: str | None = None,
              set_inductor_config: bool = False) -> tuple[Plan, bool]:
    """Plan (or reuse the plan at `plan_path`) and apply it. Returns the plan and whether it was reused."""
    reused = False
    expected = fingerprint(model, device, planning_settings(max_error, base_dtype, skip_pattern, compile_mode,
                                                            few_rows_pattern=few_rows_pattern))
    if plan_path is not None and Path(plan_path).exists():
        plan = load_plan(plan_path)
        if plan.fingerprint != expected:
            raise ValueError(f"{plan_path} was planned for another model, device, package version or settings "
                             f"({plan.model} on {plan.device}, max error {plan.max_error}; the base dtype, skip "
                             "pattern and compile mode count too); pass another --autoquant_plan or move that file "
                             "aside")
        reused = True
    else:
        plan = make_plan(model, run, device=device, base_dtype=base_dtype, max_error=max_error,
                         skip_pattern=skip_pattern, few_rows_pattern=few_rows_pattern, compile_mode=compile_mode,
                         set_inductor_config=set_inductor_config)
        if plan_path is not None:
            save_plan(plan, plan_path)
    apply_plan(model, plan, set_inductor_config)
    logger.debug("autoquant %s: %s", "reused " + str(plan_path) if reused else "planned", plan.summary())
    return plan, reused
