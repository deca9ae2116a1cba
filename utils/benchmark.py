"""The one runner behind both benchmark scripts: load -> reference -> fuse/quantize/compile -> warm up -> time ->
fidelity -> record. A script supplies its run config, how to read frames from an output and how to save a sample."""

import inspect
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from utils import fidelity
from utils.campaign import CAMPAIGN_ENV, caches_at_launch, compile_start
from utils.config import CALL_FIELDS
from utils.distributed import init_distributed
from utils.errors import INTERRUPTED_EXIT_CODE, StopSignals, failure_recorded, stop_signals_raise
from utils.levers import autotune, compilation
from utils.optimize import LEVERS, optimize
from utils.pipelines import build_pipeline
from utils.presets import DTYPES
from utils.profiling import write_profile
from utils.provenance import device_name, provenance, versions
from utils.results import Row, append_row_or_save_aside, render_row
from utils.timing import CallTimes, allocated_GiB, host_peak_GiB, peak_allocated_GiB, time_calls

logger = logging.getLogger(__name__)


def configure_torch() -> None:
    """Process-wide settings, made here (never at import) so that every script runs under the same ones."""
    torch.set_float32_matmul_precision("high")


def call_kwargs(pipe, config) -> dict:
    """The pipeline-call arguments: the config's (its preset, prompt, batch size and any of CALL_FIELDS it sets),
    else the preset's defaults; only those the pipeline accepts. --guidance_scale sets the preset's guidance argument
    (Qwen-Image: true_cfg_scale)."""
    defaults = dict(config.preset.call_defaults) if config.preset else {}
    # A list of prompts rather than num_*_per_prompt: CogVideoX ignores num_videos_per_prompt in diffusers 0.42.
    kwargs = {**defaults, "prompt": [config.prompt] * config.batch_size}
    if isinstance(kwargs.get("negative_prompt"), str):  # one per prompt: Qwen-Image pairs a lone one with the first
        kwargs["negative_prompt"] = [kwargs["negative_prompt"]] * config.batch_size
    for name in CALL_FIELDS:
        if getattr(config, name, None) is not None:
            kwargs[call_argument(name, config.preset)] = getattr(config, name)
    accepted = inspect.signature(pipe.__call__).parameters
    for field in CALL_FIELDS:  # the pipeline's own defaults, so that the row records what the call used
        name = call_argument(field, config.preset)
        if name not in kwargs and name in accepted and accepted[name].default not in (None, inspect.Parameter.empty):
            kwargs[name] = accepted[name].default
    return {name: value for name, value in kwargs.items() if name in accepted}


def call_argument(field: str, preset) -> str:
    """The pipeline-call argument that the run config's `field` (one of CALL_FIELDS) sets."""
    return preset.guidance_argument if field == "guidance_scale" and preset else field


def call_columns(kwargs: dict, preset) -> dict:
    """The row's CALL_FIELDS columns from the call arguments (the guidance column holds Qwen-Image's true CFG)."""
    return {field: kwargs[call_argument(field, preset)] for field in CALL_FIELDS
            if call_argument(field, preset) in kwargs}


def output_size(output: fidelity.Output) -> dict:
    """Height, width (and frames, for videos) of what a call produced: what a pipeline chose by itself when the call
    left them to it (height=None means its default size)."""
    shape = output.images.shape  # (batch, [frames,] height, width, 3)
    size = {"height": shape[-3], "width": shape[-2]}
    return size | ({"num_frames": shape[1]} if len(shape) == 5 else {})


def frames_of(result):
    """The images (text-to-image pipelines) or video frames (text-to-video) of a pipeline result."""
    images = getattr(result, "images", None)
    return images if images is not None else result.frames


def make_call(pipe, kwargs: dict, seed: int, device: str) -> Callable[[], fidelity.Output]:
    """A no-argument pipeline call with fixed inputs and a fresh seeded generator, so every call computes the
    same thing. The final latents are caught with the step-end callback, which costs a Python call per step.
    The generator lives on the execution device: with CPU offload `pipe.device` is the CPU (or meta), and noise
    drawn there would differ from the reference's."""
    accepts_callback = "callback_on_step_end" in inspect.signature(pipe.__call__).parameters

    def call() -> fidelity.Output:
        last = {}

        def keep_latents(_pipe, _step, _timestep, tensors):
            last["latents"] = tensors["latents"]
            return {}

        extra = {"callback_on_step_end": keep_latents} if accepts_callback else {}
        generator = torch.Generator(device).manual_seed(seed)
        result = pipe(**kwargs, generator=generator, output_type="np", **extra)
        return fidelity.Output(images=frames_of(result), latents=last.get("latents", torch.empty(0)))

    return call


def reference_inputs(config, kwargs: dict) -> dict:
    """Everything the bf16 eager output depends on: the cache key of the fidelity reference."""
    found = versions()
    return {"model": config.ckpt_id, "weights": config.weights,
            "weights_seed": config.seed if config.weights == "random" else None,
            "call": kwargs, "seed": config.seed, "dtype": config.base_dtype, "device": device_name(config.device),
            "versions": [found["torch"], found["diffusers"], found["torchao"]]}


def load_or_make_reference(config, call, kwargs, save: bool = True) -> fidelity.Output:
    """The eager output of this exact model and input in its base precision (bf16 unless fp16), without any
    optimization: it must run before optimize(). Under torchrun every rank makes it and only rank 0 saves it."""
    inputs = reference_inputs(config, kwargs)
    key = fidelity.reference_key(inputs)
    reference = fidelity.load_reference(config.reference_dir, key)
    if reference is None:
        logger.info("computing the bf16 eager reference output (cached as %s)", key)
        reference = call()
        if save:
            fidelity.save_reference(config.reference_dir, key, reference, inputs)
    return reference


def new_row(config) -> Row:
    """The row of a run before anything is measured: provenance, what ran, every lever's columns."""
    row = Row(**provenance(config.command, config.device), model=config.ckpt_id, weights=config.weights,
              device=config.device, dtype=config.base_dtype, batch_size=config.batch_size, seed=config.seed,
              prompt=config.prompt, world_size=config.world_size, warmup=config.warmup, runs=config.runs,
              memory_only=config.memory_only, step=config.ladder_step, lever=config.ladder_lever or "",
              base_step=config.ladder_base)
    record(row, {name: getattr(config, name) for name in CALL_FIELDS if getattr(config, name) is not None})
    for lever in LEVERS:
        record(row, lever.columns(config))
    return row


def record(row, values: dict) -> None:
    for name, value in values.items():
        if hasattr(row, name):
            setattr(row, name, value)


def profile_title(config, row) -> str:
    """The profile's heading: the command, then what a reader needs to trust the numbers (GPU, code, versions)."""
    weights = "random weights (timings and memory are real, images are noise)" if config.weights == "random" else \
        f"weights {config.weights}"
    return (f"Where one call's time goes: {config.command}\n\n{row.gpu or config.device}, git {row.git_sha}, torch "
            f"{row.torch_version}, diffusers {row.diffusers_version}, torchao {row.torchao_version}, {weights}")


def run_benchmark(config, *, save_sample: Callable) -> tuple[Row, Path | None]:
    """Run one configuration and append its row to config.csv (also on failure, or when a sweep stops it; beside it
    if that append fails); `save_sample` writes the first output to config.sample_path. Returns the row and the file
    that holds it, None in processes that record nothing: under torchrun every rank makes the same calls (the
    collectives inside the transformer keep them in lockstep) and only rank 0 records."""
    configure_torch()
    caches_at_launch()  # before anything compiles: whether this run's compile starts cold
    rank = init_distributed(config.device, config.world_size)
    row = new_row(config)
    times = CallTimes([], [])
    with stop_signals_raise() as stop:
        with failure_recorded(row, stop):
            measure(config, row, rank, save_sample, times, stop)
        if stop.signum is not None and not stop.ran_on:
            if row.time_median_s is not None:
                row.error += " (after its timed runs: their times are kept; later columns and the sample are not)"
            elif times.run_s:
                record(row, times.summary())
                row.error += (f" (after {len(times.run_s)} of {config.runs} timed runs: their times are kept; "
                              "later columns and the sample are not)")
        row.host_peak_memory_GiB = host_peak_GiB()
        # 7. record
        return row, append_row_or_save_aside(config.csv, row) if rank == 0 else None


def measure(config, row: Row, rank: int, save_sample: Callable, times: CallTimes, stop: StopSignals) -> None:
    """Steps 1-6 of one configuration, each filling in its columns of `row` as it finishes (and `times` call by
    call, so that a stopped run keeps the calls it timed)."""
    # 1. load
    start = time.perf_counter()
    pipe = build_pipeline(config.ckpt_id, config.weights, config.device, DTYPES[config.base_dtype], config.seed)
    row.load_s = time.perf_counter() - start
    kwargs = call_kwargs(pipe, config)
    record(row, call_columns(kwargs, config.preset))
    call = make_call(pipe, kwargs, config.seed, config.device)
    # 2. the eager reference for the fidelity columns, before anything is changed
    reference = None if config.no_fidelity else load_or_make_reference(config, call, kwargs, save=rank == 0)
    # 3. fuse -> quantize -> compile (compilation itself happens lazily in the first call)
    record(row, optimize(pipe, config, sample_call=call))
    if config.compile_cache:
        row.compile_cache = compilation.start_from_cache(config)
    row.compile_start = compile_start(compilation.compiles_anything(config),
                                      loaded_cache=row.compile_cache == "warm")
    row.inductor_config = compilation.inductor_config()
    row.model_memory_GiB = allocated_GiB(config.device)
    stop.raise_if_swallowed()
    # 4. warm up, then time
    output = time_calls(call, times, warmup=config.warmup, runs=config.runs, device=config.device,
                        after_each_call=stop.raise_if_swallowed,
                        label=f"{config.ckpt_id.rstrip('/').split('/')[-1]} "
                              f"{config.base_dtype if config.quantization == 'None' else config.quantization}",
                        show_progress=rank == 0)
    record(row, times.summary())
    if compilation.compiles_anything(config):
        record(row, compilation.compile_phases())
    if config.autotune:  # the autotuner's config search ran inside the first call: planning, not compiling
        row.plan_s = autotune.tuning_seconds()
        row.compile_s -= row.plan_s
    record(row, output_size(output))
    row.inference_memory_GiB = peak_allocated_GiB(config.device)
    if config.compile_cache and rank == 0:
        compilation.save_compile_cache(config.compile_cache)
    if config.profile and rank == 0:
        write_profile(call, config.device, config.profile, profile_title(config, row), pipe=pipe)
        logger.info("profile written to %s", config.profile)
    # 5. fidelity
    if reference is not None:
        record(row, fidelity.compare(output, reference))
    if not output.finite():
        row.status, row.error = "nan", "non-finite values in the output latents or images"
    # 6. the sample, before the row: a failed write must not leave an ok row behind
    if config.sample_path and rank == 0:
        save_sample(output.images_uint8()[0], config.sample_path)
        logger.info("sample written to %s", config.sample_path)


def run_and_print(config, save_sample: Callable) -> int:
    """What a benchmark script does once its flags are checked: run, print the row on stdout (the script's output),
    return the exit code (0 when the run measured and its row is in --csv)."""
    row, row_path = run_benchmark(config, save_sample=save_sample)
    if row_path is not None:
        print(render_row(row))
        print(f"row appended to {row_path}")
        if row.status == "ok" and not config.memory_only and not os.environ.get(CAMPAIGN_ENV):
            print(f"This run is its own campaign ({row.campaign}); the report's speedups compare rows of one campaign "
                  "only: run the configurations to compare, bf16 eager among them, through inference/sweep.py, or "
                  "export one BENCH_CAMPAIGN for all of them (docs/campaigns.md).")
    if row.status == "interrupted":
        return INTERRUPTED_EXIT_CODE
    saved_aside = row_path is not None and Path(row_path) != Path(config.csv)
    return 0 if row.status == "ok" and not saved_aside else 1
