"""The one runner behind every benchmark script: load -> reference -> fuse/quantize/compile -> warm up -> time ->
fidelity -> record. A script supplies its flags, its pipeline-call arguments and how to read frames from an output."""

import inspect
import logging
import platform
import subprocess
import time
import traceback
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from utils import fidelity
from utils.cli import REPO_ROOT
from utils.compile_cache import load_compile_cache, save_compile_cache
from utils.optimizations import compiles_anything, optimize
from utils.parallel import init_distributed
from utils.pipelines import build_pipeline
from utils.presets import get_preset
from utils.profiling import write_profile
from utils.quant import effective_skip_pattern
from utils.results import Row, append_row, render_row
from utils.timing import allocated_GiB, host_peak_GiB, peak_allocated_GiB, time_calls

logger = logging.getLogger(__name__)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def configure_torch() -> None:
    """Process-wide settings, made here (never at import) so that every script runs under the same ones."""
    torch.set_float32_matmul_precision("high")


def inductor_config() -> str:
    """The inductor settings that matter for compile time and speed, as the run really had them."""
    import torch._inductor.config as config

    names = ("coordinate_descent_tuning", "coordinate_descent_check_all_directions", "epilogue_fusion",
             "conv_1x1_as_mm", "max_autotune")
    settings = [f"{name}={int(bool(getattr(config, name)))}" for name in names]
    return ",".join([*settings, f"mkldnn_patterns={int(torch.backends.mkldnn.enabled)}"])


def git_sha() -> str:
    """The commit the code came from; BENCH_GIT_SHA overrides it on machines that have the tree but no .git."""
    import os

    if os.environ.get("BENCH_GIT_SHA"):
        return os.environ["BENCH_GIT_SHA"]
    try:
        sha = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return sha + ("-dirty" if dirty else "")


def device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def default_csv(ckpt_id: str, prefix: str = "") -> Path:
    """results/<prefix><model slug>.csv: the preset's slug, else the checkpoint folder's name."""
    preset = get_preset(ckpt_id)
    stem = preset.slug if preset else Path(ckpt_id.rstrip("/")).name.lower()
    return REPO_ROOT / "results" / f"{prefix}{stem}.csv"


def call_kwargs(pipe, args) -> dict:
    """The pipeline-call arguments: flags, else the preset's defaults; only those the pipeline accepts."""
    preset = get_preset(args.ckpt_id)
    defaults = dict(preset.call_defaults) if preset else {}
    # A list of prompts rather than num_*_per_prompt: CogVideoX ignores num_videos_per_prompt in diffusers 0.42.
    kwargs = {**defaults, "prompt": [args.prompt] * args.batch_size}
    for name in ("num_inference_steps", "height", "width", "num_frames", "guidance_scale", "max_sequence_length"):
        if getattr(args, name, None) is not None:
            kwargs[name] = getattr(args, name)
    accepted = inspect.signature(pipe.__call__).parameters
    return {name: value for name, value in kwargs.items() if name in accepted}


def make_call(pipe, kwargs: dict, seed: int, device: str, frames_of: Callable) -> Callable[[], fidelity.Output]:
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


def reference_inputs(args, kwargs: dict) -> dict:
    """Everything the bf16 eager output depends on: the cache key of the fidelity reference."""
    import diffusers
    import torchao

    return {"model": args.ckpt_id, "weights": args.weights_resolved,
            "weights_seed": args.seed if args.weights_resolved == "random" else None,
            "call": kwargs, "seed": args.seed, "dtype": args.base_dtype, "device": device_name(args.device),
            "versions": [torch.__version__, diffusers.__version__, torchao.__version__]}


def load_or_make_reference(args, call, kwargs, save: bool = True) -> fidelity.Output:
    """The eager output of this exact model and input in its base precision (bf16 unless --dtype fp16), without
    any optimization: it must run before optimize(). Under torchrun every rank makes it and only rank 0 saves it."""
    inputs = reference_inputs(args, kwargs)
    key = fidelity.reference_key(inputs)
    reference = fidelity.load_reference(args.reference_dir, key)
    if reference is None:
        logger.info("computing the bf16 eager reference output (cached as %s)", key)
        reference = call()
        if save:
            fidelity.save_reference(args.reference_dir, key, reference, inputs)
    return reference


def provenance(command: str, device: str) -> dict:
    """The values of utils.results.Provenance for a row made now, by `command`, on `device`."""
    import diffusers
    import torchao

    return dict(timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"), git_sha=git_sha(),
                command=command, gpu=device_name(device), torch_version=torch.__version__,
                diffusers_version=diffusers.__version__, torchao_version=torchao.__version__)


def new_row(args) -> Row:
    row = Row(**provenance(args.command, args.device), model=args.ckpt_id, weights=args.weights_resolved,
              dtype=args.base_dtype)
    for field in fields(Row):
        value = getattr(args, field.name, None)
        if value is not None and field.name not in ("weights", "model", "dtype", "compile_cache"):
            setattr(row, field.name, value)
    if args.quantization != "None":
        row.quant_skip_pattern = effective_skip_pattern(args.quantization, args.quant_skip_pattern) or ""
    if not compiles_anything(args):
        row.compile_mode = ""
    return row


def record(row: Row, values: dict) -> None:
    for name, value in values.items():
        if hasattr(row, name):
            setattr(row, name, value)


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


def run_benchmark(args, *, frames_of: Callable, save_sample: Callable) -> int:
    """Run one configuration, append its row (also on failure) and print it. Returns the process exit code.
    Under torchrun every rank makes the same calls (the collectives inside the transformer keep them in lockstep)
    and only rank 0 records."""
    configure_torch()
    rank, _ = init_distributed(args)
    row = new_row(args)
    output = None
    try:
        # 1. load
        start = time.perf_counter()
        pipe = build_pipeline(args.ckpt_id, args.weights_resolved, args.device, DTYPES[args.base_dtype], args.seed)
        row.load_s = time.perf_counter() - start
        kwargs = call_kwargs(pipe, args)
        record(row, {name: value for name, value in kwargs.items() if name != "prompt"})
        call = make_call(pipe, kwargs, args.seed, args.device, frames_of)
        # 2. the eager reference for the fidelity columns, before anything is changed
        reference = None if args.no_fidelity else load_or_make_reference(args, call, kwargs, save=rank == 0)
        # 3. fuse -> quantize -> compile (compilation itself happens lazily in the first call)
        record(row, optimize(pipe, args, sample_call=call))
        if args.compile_cache:
            row.compile_cache = "warm" if args.compile_cache.exists() else "cold"
            if row.compile_cache == "warm":
                load_compile_cache(args.compile_cache)
        row.inductor_config = inductor_config()
        row.model_memory_GiB = allocated_GiB(args.device)
        # 4. warm up, then time
        times, output = time_calls(call, warmup=args.warmup, runs=args.runs, device=args.device,
                                   label=f"{Path(args.ckpt_id).name} {args.quantization}", show_progress=rank == 0)
        record(row, times.summary())
        row.inference_memory_GiB = peak_allocated_GiB(args.device)
        if args.compile_cache and rank == 0:
            save_compile_cache(args.compile_cache)
        if args.profile and rank == 0:
            write_profile(call, args.device, args.profile, f"Where one call's time goes: {args.command}")
            print(f"profile written to {args.profile}")
        # 5. fidelity
        if reference is not None:
            record(row, fidelity.compare(output, reference))
        if not output.finite():
            row.status, row.error = "nan", "non-finite values in the output latents or images"
        # 6. the sample, before the row: a failed write must not leave an ok row behind
        sample_path = getattr(args, "save_image", None) or getattr(args, "save_video", None)
        if sample_path and rank == 0:
            save_sample(output.images_uint8()[0], sample_path)
            print(f"sample written to {sample_path}")
    except torch.OutOfMemoryError as error:
        row.status, row.error = "oom", one_line(error)
    except Exception as error:  # noqa: BLE001 - a failed configuration is recorded, not lost
        traceback.print_exc()
        row.status, row.error = "error", one_line(error)
    row.host_peak_memory_GiB = host_peak_GiB()
    # 7. record
    if rank == 0:
        csv_path = args.csv or default_csv(args.ckpt_id)
        append_row(csv_path, row)
        print(render_row(row))
        print(f"row appended to {csv_path}")
    return 0 if row.status == "ok" else 1
