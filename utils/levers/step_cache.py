"""Opt-in step caching: diffusers' cache hooks skip part of the denoiser's work in some steps (FirstBlockCache,
TaylorSeer). It changes the output, so the reports show these rows in a section of their own."""

import inspect
import math
from dataclasses import dataclass

import torch

from utils.errors import UsageError
from utils.levers.base import off_as, same_named, text
from utils.pipelines import build_random_transformer, denoisers, pipeline_class

CACHES = ("none", "first_block", "taylorseer")
FIRST_BLOCK_THRESHOLD = 0.05  # FirstBlockCacheConfig's documented default in diffusers 0.42.1
SECTION_TITLE = "Step caching (opt-in, changes the output)"
SECTION_NOTE = """These rows skip computation in some denoising steps (diffusers cache hooks, `--step_cache`), so
their output differs from the model's: the PSNR and latent rel L2 columns say by how much. Speedup is against the
bf16 eager row above. They are never in the table, the picks or the plot above."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    step_cache: str = "none"
    step_cache_threshold: float | None = None  # first_block only


@dataclass
class Columns:
    step_cache: str = "none"
    step_cache_threshold: float | None = None


def add_flags(parser) -> None:
    group = parser.add_argument_group("step caching (opt-in: skips computation, changes the output; reported apart)")
    group.add_argument("--step_cache", type=off_as("none"), choices=CACHES, default="none",
                       help="diffusers cache hooks on the denoiser (transformer.enable_cache): first_block = when the "
                            "first block's output residual barely changed since the last step, reuse the cached "
                            "residual of all the other blocks; taylorseer = TaylorSeerCacheConfig's defaults (full "
                            "steps 0-2, then one in 5, the attention outputs in between extrapolated). Not with "
                            "--compile (its fullgraph compiles reject the hooks)")
    group.add_argument("--step_cache_threshold", type=float, default=None,
                       help="first_block only: the relative change of the first block's residual under which the other "
                            f"blocks are skipped; unset means {FIRST_BLOCK_THRESHOLD}, FirstBlockCacheConfig's "
                            "default (higher: more steps skipped, larger output change)")


def settings(flags, run) -> Settings:
    threshold = flags.step_cache_threshold
    if flags.step_cache == "first_block" and threshold is None:
        threshold = FIRST_BLOCK_THRESHOLD
    return Settings(step_cache=flags.step_cache, step_cache_threshold=threshold)


def check(config) -> None:
    """The combinations that cannot work and, for presets (whose architecture is kept here), whether diffusers can
    hook the denoiser at all, tried on a meta-device copy. Checkpoints that are not presets are checked after
    loading."""
    if config.step_cache != "first_block" and config.step_cache_threshold is not None:
        raise UsageError("--step_cache_threshold needs --step_cache first_block")
    if config.step_cache == "none":
        return
    if config.step_cache == "first_block" and not 0 <= config.step_cache_threshold < math.inf:
        raise UsageError(f"--step_cache_threshold must be a number >= 0, got {config.step_cache_threshold}")
    if config.compile:  # both caches fail in the first call under fullgraph=True
        raise UsageError(f"--step_cache {config.step_cache} cannot be combined with --compile/--regional_compile: "
                         "diffusers' cache hooks call torch.compiler.disable'd functions, which fullgraph=True "
                         "compiles reject")
    if config.context_parallel != "none":
        raise UsageError("--step_cache cannot be combined with --context_parallel: first_block decides to skip from "
                         "each rank's own shard, so ranks can disagree and hang in a collective; neither was run on "
                         "GPUs")
    if config.preset is None:
        return
    pipeline = pipeline_class(config.preset.pipeline_class)
    if "cache_context" not in inspect.getsource(pipeline.__call__):  # the hooks raise "No cache context is set"
        import diffusers

        raise UsageError(f"--step_cache {config.step_cache}: diffusers {diffusers.__version__}'s {pipeline.__name__} "
                         "calls its transformer outside a cache context, which the cache hooks need")
    model = build_random_transformer(config.preset, "meta", torch.bfloat16, seed=0)  # no memory, no weights
    try:
        enable(model, config.step_cache, config.step_cache_threshold)
    except ValueError as error:
        raise UsageError(str(error)) from error


def columns(config) -> dict:
    return same_named(config, Columns)


def changes_output(row) -> bool:
    """Whether a results row used a step cache (CSVs written before the column existed had none)."""
    return text(row.get("step_cache")) not in ("", "none")


def label(row) -> str | None:
    if not changes_output(row):
        return None
    threshold = row.get("step_cache_threshold")
    return f"{row.step_cache} step cache" + (f" (threshold {threshold:g})" if threshold == threshold and
                                             threshold is not None else "")


def enable(model: torch.nn.Module, kind: str, threshold: float | None = None) -> int:
    """Put one of diffusers' step caches on the denoiser (`model.enable_cache`); returns how many submodules got a
    cache hook. first_block: after the first block, if its output residual changed by less than `threshold`
    (relative mean absolute difference) since the last full step, reuse the cached residual of all the other blocks.
    taylorseer: TaylorSeerCacheConfig's defaults: full steps 0-2, then one full step in 5, the attention outputs of
    the steps in between extrapolated (first-order Taylor). Works on the meta device, for up-front checks."""
    from diffusers import FirstBlockCacheConfig, TaylorSeerCacheConfig
    from diffusers.hooks.first_block_cache import FBCBlockHook, FBCHeadBlockHook
    from diffusers.hooks.taylorseer_cache import TaylorSeerCacheHook
    from diffusers.models.cache_utils import CacheMixin

    name = type(model).__name__
    if not isinstance(model, CacheMixin):
        raise ValueError(  # noqa: TRY004 - the callers turn ValueErrors into one-line errors
            f"--step_cache {kind}: {name} has no diffusers cache support (not a CacheMixin)")
    if kind not in CACHES[1:]:
        raise ValueError(f"--step_cache {kind!r}: not one of {', '.join(CACHES[1:])}")
    if kind == "first_block":
        config = FirstBlockCacheConfig(threshold=FIRST_BLOCK_THRESHOLD if threshold is None else threshold)
    else:
        config = TaylorSeerCacheConfig()
    try:
        model.enable_cache(config)
    except Exception as error:  # diffusers fails with ValueError, IndexError, ... for blocks it does not know
        raise ValueError(f"--step_cache {kind}: diffusers cannot put it on {name}: {error}") from error
    cache_hooks = (FBCHeadBlockHook, FBCBlockHook, TaylorSeerCacheHook)
    n_hooked = sum(any(isinstance(hook, cache_hooks) for hook in module._diffusers_hook.hooks.values())
                   for module in model.modules() if hasattr(module, "_diffusers_hook"))
    if not n_hooked:  # TaylorSeer hooks the modules its name patterns match, and matching none is no error there
        attention = next((fqn for fqn, module in model.named_modules() if type(module).__name__.endswith("Attention")),
                         "none")
        raise ValueError(f"--step_cache {kind}: diffusers hooked no module of {name} (TaylorSeer's default patterns "
                         f"match whole module names that start with blocks, transformer_blocks, "
                         f"single_transformer_blocks or temporal_transformer_blocks and end in 'attn'; this model's "
                         f"attention modules are named like {attention})")
    return n_hooked


def apply(pipe, config) -> dict:
    """After quantization (the hooks wrap blocks, whatever their weights), before compile. The hooks reset at the end
    of every pipeline call, so every timed call caches the same way."""
    for model in denoisers(pipe):  # each expert of Wan 2.2 A14B caches its own steps
        enable(model, config.step_cache, config.step_cache_threshold)
    return columns(config)
