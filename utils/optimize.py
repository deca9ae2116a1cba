"""optimize(): the levers a run config selects, applied to a pipeline in their one right order: fp8 attention's
processor -> fuse -> channels_last -> one-pass GELU fp8 -> sparsify -> quantize -> int8 autotuner -> VAE
tiling/slicing -> CPU offload -> attention backend -> context parallel -> step cache -> inductor reductions -> compile
-> CUDA graph. Each lever is a module of utils/levers; LEVERS is their list (their flags, config fields, results
columns and report labels come from it, in this order)."""

from utils.levers import (
    attention,
    autoquant,
    autotune,
    compilation,
    context_parallel,
    cuda_graph,
    fusion,
    gelu_fp8,
    memory,
    quantization,
    reductions,
    sparsity,
    step_cache,
)

LEVERS = (quantization, autoquant, autotune, sparsity, fusion, gelu_fp8, compilation, attention, context_parallel,
          memory, step_cache, reductions, cuda_graph)


def describe(row) -> str:
    """A results row's configuration in words: each lever's label, in the order of LEVERS ("bf16" for the baseline:
    the base precision alone, every lever off)."""
    return ", ".join(words for lever in LEVERS if (words := lever.label(row)))


def output_changing_lever(row):
    """The lever that made this row's output differ from the model's (a lever with changes_output(row), e.g. a step
    cache), or None."""
    return next((lever for lever in LEVERS if getattr(lever, "changes_output", None) and lever.changes_output(row)),
                None)


def optimize(pipe, config, sample_call=None) -> dict:
    """Apply the levers of `config` in place; returns the columns saying what was applied. `sample_call` runs the
    pipeline once (autoquant records the real inputs of the layers with it). Compilation happens in the first call."""
    applied = {"n_layers_quantized": 0, "quant_s": 0.0}
    if config.attention_backend == attention.FP8:  # before anything calls the model (autoquant)
        attention.apply_fp8(pipe)
    if config.fuse_attn_projections:
        fusion.fuse_qkv(pipe)
    if config.channels_last:
        fusion.vae_channels_last(pipe)
    if config.gelu_fp8_one_pass:  # before torchao, which then leaves these layers alone
        one_pass = gelu_fp8.apply(pipe, config)
    if config.sparsify:
        applied |= sparsity.apply(pipe, config)
    if config.quantization == "autoquant":
        applied |= autoquant.apply(pipe, config, sample_call)
    elif config.quantization != "None":
        applied |= quantization.apply(pipe, config)
    if config.gelu_fp8_one_pass:
        applied["n_layers_quantized"] += one_pass["n_layers_quantized"]
    if config.autotune:  # process-wide, so before the first int8dq call
        applied |= autotune.apply(config)
    memory.apply(pipe, config)
    if config.attention_backend not in ("default", attention.FP8):
        attention.apply(pipe, config)
    if config.context_parallel != "none":
        context_parallel.apply(pipe, config)
    if config.step_cache != "none":
        applied |= step_cache.apply(pipe, config)
    if config.persistent_reductions_up_to:  # process-wide, so before the first compile
        reductions.apply(config)
    if compilation.compiles_anything(config):
        compilation.apply(pipe, config)
    if config.cuda_graph:  # around the compiled forward: its warm-up calls compile
        cuda_graph.apply(pipe, config)
    return applied
