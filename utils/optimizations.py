"""One function per optimization, each switchable by a flag; `optimize()` applies them in the one right order:
fuse -> channels_last -> sparsify -> quantize -> VAE tiling/slicing -> CPU offload -> context parallel -> step
cache -> compile.
Each applier mutates the pipeline in place; what they did goes into the results row."""

import time

import torch

from utils.quant import apply_quantization, count_quantized_linears
from utils.timing import synchronize

CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # the torch.compile modes that record CUDA graphs


def denoiser(pipe) -> torch.nn.Module:
    """The model that runs every step: `transformer` (Flux, CogVideoX, SD3) or `unet` (SDXL and older)."""
    return pipe.transformer if getattr(pipe, "transformer", None) is not None else pipe.unet


def apply_qkv_fusion(pipe) -> None:
    """Fuse the attention Q/K/V projections into one GEMM (transformer and VAE). diffusers keeps the unfused
    weights too, so model memory grows by their size."""
    denoiser(pipe).fuse_qkv_projections()
    if hasattr(pipe.vae, "fuse_qkv_projections"):
        pipe.vae.fuse_qkv_projections()


def apply_channels_last(pipe) -> None:
    """channels_last helps the VAE's convolutions; the transformer is all Linear layers, so it is left alone."""
    pipe.vae.to(memory_format=torch.channels_last)


def quantization_targets(pipe, quantize_vae: bool, quantize_text_encoders: bool) -> dict[str, torch.nn.Module]:
    targets = {"denoiser": denoiser(pipe)}
    names = (["vae"] if quantize_vae else []) + (list(TEXT_ENCODERS) if quantize_text_encoders else [])
    targets.update({name: getattr(pipe, name) for name in names if getattr(pipe, name, None) is not None})
    return targets


def apply_quantization_to(pipe, name: str, *, quantize_vae=False, quantize_text_encoders=False,
                          skip_pattern=None, set_inductor_config=False) -> dict:
    """Quantize the denoiser (and optionally the VAE and text encoders); time it on the model's device."""
    start = time.perf_counter()
    n_layers = sum(
        apply_quantization(module, name, skip_pattern=skip_pattern, set_inductor_config=set_inductor_config)
        for module in quantization_targets(pipe, quantize_vae, quantize_text_encoders).values()
    )
    synchronize(pipe.device)
    return {"n_layers_quantized": n_layers, "quant_s": time.perf_counter() - start}


def apply_autoquant(pipe, args, sample_call) -> dict:
    """Plan a quantization per layer group of the denoiser from one real forward pass of `sample_call` (or reuse
    --autoquant_plan), then apply it."""
    from utils.autoquant import autoquant

    if sample_call is None:
        raise ValueError("autoquant needs a sample pipeline call to record the inputs of the Linear layers")
    start = time.perf_counter()
    if torch.device(args.device).type == "cuda":
        disable_cpu_int8_weight_only_rewrite()  # the candidates are compiled: the first compiles of the process
    plan, reused = autoquant(denoiser(pipe), sample_call, device=args.device, plan_path=args.autoquant_plan,
                             base_dtype=args.base_dtype, max_error=args.autoquant_max_error,
                             skip_pattern=args.quant_skip_pattern,
                             compile_mode=args.compile_mode if args.compile else None,
                             set_inductor_config=args.torchao_inductor_config)
    synchronize(pipe.device)
    summary = f"{'reused' if reused else 'planned'}: {plan.summary()}"
    print(f"autoquant {summary}" + (f" (plan {args.autoquant_plan})" if args.autoquant_plan else ""))
    return {"n_layers_quantized": count_quantized_linears(denoiser(pipe)), "quant_s": time.perf_counter() - start,
            "autoquant": summary}


def int8_autotuner_unavailable_reason() -> str | None:
    """Why torchao's int8 matmul autotuner cannot serve --quantization int8dq here, or None. Checked on the installed
    torchao, not on its version number: the int8dq weight type must still call torchao.kernel.intmm.int_scaled_matmul
    (the one op the autotuner tunes), that module must still have its switch and Triton kernel, and Triton must be
    installed (torchao.kernel.autotuner imports it)."""
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


# (BLOCK_M, BLOCK_N, BLOCK_K, num_stages, num_warps): the int8 GEMM configs that PyTorch inductor's mm_common used
# as its baseline; torchao's intmm_triton keeps this list in a comment next to its own 960-config search space.
BASELINE_INT8_MM_CONFIGS = ((64, 64, 32, 2, 4), (64, 128, 32, 3, 4), (128, 64, 32, 3, 4), (64, 128, 32, 4, 8),
                            (128, 64, 32, 4, 8), (64, 32, 32, 5, 8), (32, 64, 32, 5, 8), (128, 128, 32, 2, 8),
                            (64, 64, 64, 3, 8), (128, 256, 128, 3, 8), (256, 128, 128, 3, 8))
AUTOTUNE_SEARCH_SPACES = ("baseline", "all")
_TORCHAO_INT8_MM_CONFIGS = []  # torchao's own search space, kept when we first narrow it


def set_int8_autotune_search_space(space: str) -> int:
    """The configs torchao's autotuner benchmarks for each new int8 matmul shape: "all" is torchao's list (960),
    "baseline" the 11 of BASELINE_INT8_MM_CONFIGS. torchao reads its module global at call time. Returns the count."""
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
        raise ValueError(f"autotune search space {space!r}: choose from {', '.join(AUTOTUNE_SEARCH_SPACES)}")
    intmm_triton.int8_mm_kernel_configs = configs
    return len(configs)


AUTOTUNER_COMPILE_CACHE = "int8-autotuner"


def use_own_compile_cache() -> str:
    """Point inductor's cache at a subdirectory of the current one for the rest of this process. The switch decides
    what int8dq's matmul becomes when the compiled graph is built, but torch.compile's cache key does not see it: on
    an H200, a plain int8dq run that followed an --autotune run in the same cache directory loaded the autotuned
    graph and began benchmarking torchao's 960 configs per shape. Must run before the first compile. Returns the
    directory."""
    import os

    from torch._inductor.runtime.cache_dir_utils import cache_dir

    current = cache_dir()
    if os.path.basename(current) != AUTOTUNER_COMPILE_CACHE:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(current, AUTOTUNER_COMPILE_CACHE)
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


def enable_int8_autotuner(cache_path, search_space: str = "baseline") -> str:
    """Send int8dq's matmuls (torchao.kernel.intmm.int_scaled_matmul, CUDA) to torchao's Triton int8 kernel with a
    config tuned per matmul: the first call with a new (dtype, shape, stride) key benchmarks every config of the
    search space and keeps the fastest, and torchao rewrites the pickle at `cache_path` after each new key, so a
    later process with the same file tunes only the keys it lacks. The switch is process-wide, and it is not
    autoquant (which picks a quantization per layer). Compiled graphs go to their own inductor cache
    (use_own_compile_cache). Returns "cold" or "warm" (the file existed) and the number of
    configs per shape, e.g. "cold, 11 configs per shape"."""
    from pathlib import Path

    reason = int8_autotuner_unavailable_reason()
    if reason:
        raise RuntimeError(f"--autotune: {reason}")
    from torchao.kernel import autotuner, intmm

    cache_path = Path(cache_path)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    state = "warm" if cache_path.is_file() else "cold"
    # torchao reads TORCHAO_AUTOTUNER_ENABLE and TORCHAO_AUTOTUNER_DATA_PATH once, when it is imported; these are the
    # module globals those env vars set, read at call time. Forget any configs already loaded from another file.
    intmm.AUTOTUNER_ENABLE = True
    autotuner.AUTOTUNER_DATA_PATH = str(cache_path)
    autotuner._best_configs = None
    use_own_compile_cache()
    return f"{state}, {set_int8_autotune_search_space(search_space)} configs per shape"


def prune_to_2_4(weight: torch.Tensor) -> torch.Tensor:
    """Zero the two smallest-magnitude values in every group of four along the input dimension."""
    groups = weight.reshape(-1, 4)
    keep = groups.abs().topk(2, dim=1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, keep, True)
    return (groups * mask).reshape(weight.shape)


SPARSE_QUANTIZATIONS = ("None", "fp8dqrow")  # what --sparsify combines with in torchao 0.18
SPARSE_FP8_MIN_CAPABILITY = (9, 0)  # the CUTLASS float8 2:4 kernels are built for SM90 (H100)


def sparse_fp8_config():
    """fp8dqrow with the weights packed for CUTLASS's float8 2:4 sparse kernel (per-row scales fused into it)."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow
    from torchao.quantization.quantize_.workflows.float8.float8_packing_format import Float8PackingFormat

    return Float8DynamicActivationFloat8WeightConfig(
        granularity=PerRow(), packing_format=Float8PackingFormat.SPARSE_2D_DATA_2D_METADATA, set_inductor_config=False)


def apply_sparsity(transformer: torch.nn.Module, quantization: str = "None") -> int:
    """Magnitude-prune the transformer's Linear weights to 2:4, then run them with 2:4 kernels: bf16 semi-structured
    (quantization None) or float8 rowwise + 2:4 (fp8dqrow, CUTLASS, CUDA only). Per-image layers (adaLN, embedders:
    one row per image) are left dense: nothing to gain on one row. Returns how many layers were made sparse."""
    import re

    from torchao.quantization import quantize_
    from torchao.sparsity import sparsify_
    from torchao.sparsity.sparse_api import SemiSparseWeightConfig  # not re-exported by torchao.sparsity in 0.18

    from utils.quant import PER_IMAGE_LAYERS, quantizable_linear

    per_image = re.compile(PER_IMAGE_LAYERS)
    layers = {fqn: module for fqn, module in transformer.named_modules() if quantizable_linear(module, fqn, per_image)}
    for module in layers.values():
        module.weight.data = prune_to_2_4(module.weight.data)
    chosen = lambda module, fqn: fqn in layers  # noqa: E731
    if quantization == "None":
        sparsify_(transformer, SemiSparseWeightConfig(), filter_fn=chosen)
    elif quantization == "fp8dqrow":
        quantize_(transformer, sparse_fp8_config(), filter_fn=chosen)
    else:
        raise ValueError(f"2:4 sparsity combines with {' or '.join(SPARSE_QUANTIZATIONS)}, not {quantization}")
    for module in layers.values():  # sparsify_ and quantize_ swap the weights, not the modules
        run_on_rows(module)
    return len(layers)


class RowwiseLinear(torch.nn.Linear):
    """nn.Linear that flattens its input's leading dimensions into rows before the matmul. Both 2:4 kernels take
    2-D activations only: torchao's float8 one refuses 3-D input ("Expected Xq scale argument to be 2D tensor"), and
    under torch.compile the bf16 one failed on FLUX's 3-D activations with "SparseSemiStructuredTensorCUSPARSELT only
    supports a specific set of operations, can't perform requested op (expand.default)" (both on the H100)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        rows = super().forward(input.reshape(-1, input.shape[-1]))
        return rows.reshape(*input.shape[:-1], rows.shape[-1])


def run_on_rows(linear: torch.nn.Linear) -> None:
    """Make `linear` a RowwiseLinear in place: same parameters and names, survives copying and pickling."""
    if type(linear) is not torch.nn.Linear:
        raise TypeError(f"run_on_rows takes a plain nn.Linear, not {type(linear).__name__}")
    linear.__class__ = RowwiseLinear


def disable_cpu_int8_weight_only_rewrite() -> None:
    """Stop inductor from rewriting int8 weight-only matmuls into aten._weight_int8pack_mm on CUDA.

    Inductor registers that rewrite with its mkldnn (CPU) patterns, but it also matches CUDA tensors; the kernel is
    made for a few rows and, measured on the H100 at Flux's 4608x3072x3072, took 94 ms against 0.23 ms eager. The
    patterns are registered once, at the first compile, and only while mkldnn is enabled, so this must run before
    any compilation. It changes nothing on the GPU besides that rewrite."""
    torch.backends.mkldnn.enabled = False


def apply_vae_memory_savers(pipe, tiling: bool, slicing: bool) -> None:
    """Decode in overlapping tiles (tiling) and one sample at a time (slicing): lower peak memory, a bit slower."""
    if tiling:
        pipe.vae.enable_tiling()
    if slicing:
        pipe.vae.enable_slicing()


def apply_offload(pipe, mode: str, device: str) -> None:
    """Keep weights on the CPU: `model` moves one whole model at a time to the GPU, `sequential` one layer at a
    time (least memory, slowest). Both move the pipeline to the CPU first."""
    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)


# Ring attention merges the partial attentions of the K/V chunks by their log-sum-exp, which the default "native"
# backend (F.scaled_dot_product_attention) does not return. "_native_flash" calls torch's flash-attention op, which
# returns it: the kernel SDPA itself tries first (priority flash, efficient, math, cuDNN) for bf16 without a mask, so
# ring and single-GPU rows run the same attention kernel. Ulysses keeps the default backend.
CONTEXT_PARALLEL_ATTENTION = {"ulysses": None, "ring": "_native_flash"}


def apply_context_parallel(pipe, mode: str, degree: int) -> None:
    """Split the denoiser's token sequence across `degree` GPUs (diffusers context parallelism; the process group
    must exist). ulysses: an all-to-all before and after attention trades sequence shards for head shards, so the
    head count must divide by `degree`. ring: every GPU keeps its queries and attends to the K/V chunks of all the
    others in turn. Both need the text and image token counts to divide by `degree`."""
    from diffusers import ContextParallelConfig

    model = denoiser(pipe)
    if CONTEXT_PARALLEL_ATTENTION[mode]:
        model.set_attention_backend(CONTEXT_PARALLEL_ATTENTION[mode])
    config = ContextParallelConfig(ulysses_degree=degree) if mode == "ulysses" else ContextParallelConfig(
        ring_degree=degree)
    model.enable_parallelism(config=config)


def apply_attention_backend(pipe, backend: str) -> None:
    """Route the denoiser's attention through one diffusers backend (e.g. _native_cudnn: torch's cuDNN SDPA)."""
    denoiser(pipe).set_attention_backend(backend)


STEP_CACHES = ("none", "first_block", "taylorseer")
FIRST_BLOCK_CACHE_THRESHOLD = 0.05  # FirstBlockCacheConfig's documented default in diffusers 0.42.1


def enable_step_cache(model: torch.nn.Module, kind: str, threshold: float | None = None) -> int:
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
    if kind not in STEP_CACHES[1:]:
        raise ValueError(f"--step_cache {kind!r}: not one of {', '.join(STEP_CACHES[1:])}")
    if kind == "first_block":
        config = FirstBlockCacheConfig(threshold=FIRST_BLOCK_CACHE_THRESHOLD if threshold is None else threshold)
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
        raise ValueError(f"--step_cache {kind}: diffusers hooked no module of {name} (TaylorSeer's default patterns "
                         "take attention modules named '...blocks.N...attn'; CogVideoX's are named attn1)")
    return n_hooked


def apply_step_cache(pipe, kind: str, threshold: float | None) -> dict:
    """Opt-in step caching on the denoiser (diffusers' cache hooks): skips computation in some denoising steps, so
    the output changes; rows with it are reported apart from the others. The hooks reset at the end of every
    pipeline call, so every timed call caches the same way."""
    if kind == "first_block" and threshold is None:
        threshold = FIRST_BLOCK_CACHE_THRESHOLD
    enable_step_cache(denoiser(pipe), kind, threshold)
    return {"step_cache": kind, "step_cache_threshold": threshold if kind == "first_block" else None}


def repeated_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The blocks of every `*blocks` ModuleList (Flux: transformer_blocks + single_transformer_blocks)."""
    return [block for name, child in model.named_children()
            if isinstance(child, torch.nn.ModuleList) and name.endswith("blocks") for block in child]


def apply_compile(pipe, mode: str, regional: bool) -> None:
    compile_model(denoiser(pipe), mode, regional)


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


def apply_vae_compile(pipe, mode: str) -> None:
    pipe.vae.decode = torch.compile(pipe.vae.decode, fullgraph=True, mode=mode)


TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")


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


def apply_text_encoder_compile(pipe, mode: str) -> None:
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


def compiles_anything(args) -> bool:
    """Whether any torch.compile flag is set (transformer, VAE decode or text encoders)."""
    return args.compile or args.compile_vae or args.compile_text_encoders


def optimize(pipe, args, sample_call=None) -> dict:
    """Apply the levers selected in `args`, in order. Returns the columns describing what was applied.
    `sample_call` runs the pipeline once (autoquant records the real layer inputs with it)."""
    applied = {"n_layers_quantized": 0, "quant_s": 0.0}
    if args.fuse_attn_projections:
        apply_qkv_fusion(pipe)
    if args.channels_last:
        apply_channels_last(pipe)
    if args.sparsify:  # before quantizing: fp8dqrow then quantizes only the layers left dense
        applied["n_layers_sparsified"] = apply_sparsity(denoiser(pipe), args.quantization)
    if args.quantization == "autoquant":
        applied.update(apply_autoquant(pipe, args, sample_call))
    elif args.quantization != "None":
        applied.update(apply_quantization_to(
            pipe, args.quantization, quantize_vae=args.quantize_vae,
            quantize_text_encoders=args.quantize_text_encoders, skip_pattern=args.quant_skip_pattern,
            set_inductor_config=args.torchao_inductor_config))
    if getattr(args, "autotune", False):  # process-wide, so before the first int8dq call
        applied["int8_autotuner"] = enable_int8_autotuner(args.autotune_cache, args.autotune_configs)
    apply_vae_memory_savers(pipe, args.vae_tiling, args.vae_slicing)
    if args.offload != "none":
        apply_offload(pipe, args.offload, args.device)
    if args.attention_backend != "default":
        apply_attention_backend(pipe, args.attention_backend)
    if args.context_parallel != "none":  # after quantization (it wraps the attention, not the weights), before compile
        apply_context_parallel(pipe, args.context_parallel, args.cp_degree)
    if args.step_cache != "none":  # after quantization (the hooks wrap blocks, whatever their weights), before compile
        applied.update(apply_step_cache(pipe, args.step_cache, args.step_cache_threshold))
    if compiles_anything(args) and torch.device(args.device).type == "cuda":
        disable_cpu_int8_weight_only_rewrite()
    if args.compile:
        apply_compile(pipe, args.compile_mode, args.regional_compile)
    if args.compile_vae:
        apply_vae_compile(pipe, args.compile_mode)
    if args.compile_text_encoders:
        apply_text_encoder_compile(pipe, args.compile_mode)
    return applied
