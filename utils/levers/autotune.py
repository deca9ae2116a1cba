"""--autotune: torchao's int8 matmul autotuner for int8dq (TORCHAO_AUTOTUNER_ENABLE in the seed). Every int8 matmul
of int8dq runs through torchao's Triton kernel with a config tuned for its shape; the tuned configs are kept in a
pickle. Not autoquant, which picks a quantization per layer."""

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from utils.errors import UsageError
from utils.levers.base import text
from utils.paths import CACHE_DIR

SEARCH_SPACES = ("baseline", "all")
# (BLOCK_M, BLOCK_N, BLOCK_K, num_stages, num_warps): the int8 GEMM configs that PyTorch inductor's mm_common used
# as its baseline; torchao's intmm_triton keeps this list in a comment next to its own 960-config search space.
BASELINE_INT8_MM_CONFIGS = ((64, 64, 32, 2, 4), (64, 128, 32, 3, 4), (128, 64, 32, 3, 4), (64, 128, 32, 4, 8),
                            (128, 64, 32, 4, 8), (64, 32, 32, 5, 8), (32, 64, 32, 5, 8), (128, 128, 32, 2, 8),
                            (64, 64, 64, 3, 8), (128, 256, 128, 3, 8), (256, 128, 128, 3, 8))
OWN_COMPILE_CACHE = "int8-autotuner"
_TORCHAO_INT8_MM_CONFIGS = []  # torchao's own search space, kept when we first narrow it
_TUNING_S = [0.0]  # seconds this process spent choosing configs (the row's plan_s)


@dataclass(frozen=True, kw_only=True)
class Settings:
    autotune: bool = False
    autotune_configs: str = "baseline"
    autotune_cache: Path | None = None


@dataclass
class Columns:
    # cold (tuned in the first call, in compile_s) | warm (cache file loaded), and the configs tried per shape
    int8_autotuner: str = ""


def add_flags(parser) -> None:
    group = parser.add_argument_group("int8 autotuner (--quantization int8dq)")
    group.add_argument("--autotune", action="store_true",
                       help="int8dq on CUDA only: run its int8 matmuls through torchao's Triton kernel with a config "
                            "tuned per matmul shape (TORCHAO_AUTOTUNER_ENABLE in the seed). The first call with a new "
                            "shape benchmarks every config of --autotune_configs (counted in compile_s); the tuned "
                            "configs are kept in --autotune_cache. Not autoquant")
    group.add_argument("--autotune_configs", choices=SEARCH_SPACES, default="baseline",
                       help="--autotune: the configs tried per matmul shape. baseline: the 11 int8 GEMM configs "
                            "PyTorch inductor used as its baseline; all: torchao's 960, each compiled and timed for "
                            "every new shape")
    group.add_argument("--autotune_cache", type=Path, default=None,
                       help="--autotune: pickle of the tuned configs, loaded when it exists and rewritten after each "
                            "newly tuned shape; default .cache/int8-autotuner/<GPU name>-<search space>.pkl")


def default_cache(device: str, search_space: str) -> Path:
    """One pickle per GPU model: a config tuned on one GPU is not the best on another."""
    gpu = re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")
    return CACHE_DIR / "int8-autotuner" / f"{gpu}-{search_space}.pkl"


def settings(flags, run) -> Settings:
    cache = flags.autotune_cache
    if flags.autotune and cache is None and torch.device(run.device).type == "cuda" and torch.cuda.is_available():
        cache = default_cache(run.device, flags.autotune_configs)
    return Settings(autotune=flags.autotune, autotune_configs=flags.autotune_configs, autotune_cache=cache)


def check(config) -> None:
    if not config.autotune:
        if config.autotune_cache is not None:
            raise UsageError("--autotune_cache needs --autotune")
        if config.autotune_configs != "baseline":
            raise UsageError("--autotune_configs needs --autotune")
        return
    if config.quantization != "int8dq":
        raise UsageError(f"--autotune tunes torchao's int8 x int8 matmul, which only --quantization int8dq uses "
                         f"(got --quantization {config.quantization})")
    if torch.device(config.device).type != "cuda":
        raise UsageError(f"--autotune needs CUDA: the tuned int8 matmul is a Triton GPU kernel; this run is on "
                         f"{torch.device(config.device).type}")
    reason = unavailable_reason()
    if reason:
        raise UsageError(f"--autotune: {reason}")
    if config.autotune_cache.is_dir():
        raise UsageError(f"--autotune_cache {config.autotune_cache} is a directory; give a file path")


def columns(config) -> dict:
    return {}


def label(row) -> str | None:
    state = text(row.get("int8_autotuner"))
    return f"int8 autotuner ({state})" if state else None


def unavailable_reason() -> str | None:
    """Why torchao's int8 matmul autotuner cannot serve int8dq here, or None. Checked on the installed torchao, not on
    its version number: the int8dq weight type must still call torchao.kernel.intmm.int_scaled_matmul (the one op
    the autotuner tunes), that module must still have its switch and Triton kernel, and Triton must be installed."""
    from torchao.kernel import intmm
    from torchao.quantization.quantize_.workflows.int8 import int8_tensor

    if getattr(int8_tensor, "int_scaled_matmul", None) is not intmm.int_scaled_matmul:
        return ("torchao's int8dq path (Int8Tensor) no longer calls torchao.kernel.intmm.int_scaled_matmul, the only "
                "matmul the autotuner tunes")
    if not hasattr(intmm, "AUTOTUNER_ENABLE"):
        return "torchao.kernel.intmm no longer has its AUTOTUNER_ENABLE switch"
    if getattr(intmm, "intmm_triton", None) is None:
        return "the tuned int8 matmul is a Triton kernel and Triton is not installed here"
    if not hasattr(intmm.intmm_triton, "int8_mm_kernel_configs"):
        return "torchao.kernel.intmm_triton no longer keeps its search space in int8_mm_kernel_configs"
    from torchao.kernel import autotuner

    if not (hasattr(autotuner, "AUTOTUNER_DATA_PATH") and hasattr(autotuner, "_best_configs")):
        return "torchao.kernel.autotuner no longer keeps its configs in AUTOTUNER_DATA_PATH"
    return None


def set_search_space(space: str) -> int:
    """The configs torchao's autotuner benchmarks for each new int8 matmul shape: "all" is torchao's list, "baseline"
    BASELINE_INT8_MM_CONFIGS. torchao reads its module global at call time. Returns the count."""
    import triton
    from torchao.kernel import intmm

    intmm_triton = intmm.intmm_triton  # the module whose kernels int_scaled_matmul calls
    if not _TORCHAO_INT8_MM_CONFIGS:
        _TORCHAO_INT8_MM_CONFIGS.extend(intmm_triton.int8_mm_kernel_configs)
    if space == "all":
        configs = list(_TORCHAO_INT8_MM_CONFIGS)
    elif space == "baseline":
        configs = [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k, "GROUP_M": 8}, num_stages=stages,
                                 num_warps=warps) for m, n, k, stages, warps in BASELINE_INT8_MM_CONFIGS]
    else:
        raise ValueError(f"autotune search space {space!r}: choose from {', '.join(SEARCH_SPACES)}")
    intmm_triton.int8_mm_kernel_configs = configs
    return len(configs)


def use_own_compile_cache() -> str:
    """Point inductor's cache at a subdirectory of the current one for the rest of this process. The switch decides
    what int8dq's matmul becomes when the compiled graph is built, but torch.compile's cache key does not see it, so
    a plain int8dq run in the same cache directory would load an autotuned graph. Must run before the first compile.
    Returns the directory."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    current = cache_dir()
    if os.path.basename(current) != OWN_COMPILE_CACHE:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(current, OWN_COMPILE_CACHE)
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


def enable(cache_path, search_space: str = "baseline") -> str:
    """Send int8dq's matmuls (torchao.kernel.intmm.int_scaled_matmul, CUDA) to torchao's Triton int8 kernel with a
    config tuned per matmul: the first call with a new (dtype, shape, stride) key benchmarks every config of the
    search space and keeps the fastest; torchao rewrites the pickle at `cache_path` after each new key, so a later
    process tunes only the keys it lacks. Process-wide. Returns e.g. "cold, 11 configs per shape" ("warm" when the
    file existed)."""
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"--autotune: {reason}")
    from torchao.kernel import autotuner, intmm

    cache_path = Path(cache_path)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    state = "warm" if cache_path.is_file() else "cold"
    # torchao reads TORCHAO_AUTOTUNER_ENABLE and TORCHAO_AUTOTUNER_DATA_PATH once, when it is imported; these are the
    # module globals those variables set, read at call time. Forget any configs already loaded from another file.
    intmm.AUTOTUNER_ENABLE = True
    autotuner.AUTOTUNER_DATA_PATH = str(cache_path)
    autotuner._best_configs = None
    use_own_compile_cache()
    time_config_search(intmm.intmm_triton)
    return f"{state}, {set_search_space(search_space)} configs per shape"


def time_config_search(intmm_triton) -> None:
    """Count the seconds torchao's kernels spend in get_best_config_fn (the search, or a dictionary read once a shape
    is tuned), so that the tuning inside the first call is reported as plan_s rather than as compile time."""
    search = getattr(intmm_triton, "get_best_config_fn", None)
    if search is None or getattr(search, "timed", False):  # nothing to time, or timed already
        return

    def timed_search(*args, **kwargs):
        start = time.perf_counter()
        try:
            return search(*args, **kwargs)
        finally:
            _TUNING_S[0] += time.perf_counter() - start

    timed_search.timed = True
    intmm_triton.get_best_config_fn = timed_search


def tuning_seconds() -> float:
    """Seconds spent choosing int8 matmul configs since the process started."""
    return _TUNING_S[0]


def apply(config) -> dict:
    return {"int8_autotuner": enable(config.autotune_cache, config.autotune_configs)}
