#!/usr/bin/env bash
# The FLUX.1-dev performance ladder (random weights, bs1, 1024x1024, 28 steps): one lever added per row, each row
# in its own process, all in one call so the rows compare on one machine. The last rows are the lean variant
# (quantized text encoders) and the fastest configuration again under torch.profiler; row 14 is the lean variant
# with its text encoders compiled layer by layer (row 10 ran them in eager: 0.14 s slower than row 7).
# Most rows take 1-1.5 minutes, so the whole ladder needs two 10-minute calls, or both GPUs of an x2 machine:
#   CUDA_VISIBLE_DEVICES=0 ONLY='^(1|2|3|4|5|8)-' bash ... & CUDA_VISIBLE_DEVICES=1 ONLY='^(6|7|9|10|11)-' bash ... & wait
# Row 8 autotunes every fp8 GEMM shape (about 75 s each on the H100): it did not finish in 229 s, give it a call.
# Rows 12-13 are opt-in step caching (bf16 eager: the cache hooks do not compile), reported apart from the ladder.
# Row 9 compiles the whole transformer: CUDA graphs with --regional_compile failed (the blocks overwrite each
# other's outputs), so the flags now refuse that combination.
# Usage: bash results/commands/flux-perf-ladder.sh OUT_CSV [LOG_DIR]   (ONLY=regex runs a subset)
set -u
source "$(dirname "$0")/lib.sh"
csv=${1:?usage: flux-perf-ladder.sh OUT_CSV [LOG_DIR]}
logs=${2:-$(dirname "$csv")}
timed="--warmup 2 --runs 5"
step2="--regional_compile --compile_mode default"
step3="$step2 --quantization fp8dqrow"
step4="$step3 --fuse_attn_projections"
step5="$step4 --compile_vae"
step6="$step5 --attention_backend _native_cudnn"
step7="$step6 --channels_last"
configs=(
  "1-bf16-eager|--warmup 1 --runs 3"
  "2-regional-compile|$step2 $timed"
  "3-fp8dqrow|$step3 $timed"
  "4-fused-qkv|$step4 $timed"
  "5-compiled-vae|$step5 $timed"
  "6-cudnn-attention|$step6 $timed"
  "7-channels-last|$step7 $timed"
  "8-max-autotune-no-cudagraphs|${step7/--compile_mode default/--compile_mode max-autotune-no-cudagraphs} $timed"
  "9-whole-model-cudagraphs|${step7/--regional_compile --compile_mode default/--compile --compile_mode reduce-overhead} $timed"
  "10-lean-fp8-text-encoders|$step7 --quantize_text_encoders $timed"
  "11-profile|$step7 --warmup 2 --runs 3 --profile $logs/flux-profile.md"
  "12-step-cache-first-block|--step_cache first_block --warmup 1 --runs 3"
  "13-step-cache-taylorseer|--step_cache taylorseer --warmup 1 --runs 3"
  "14-lean-compiled-text-encoders|$step7 --quantize_text_encoders --compile_text_encoders $timed"
)
run_configs inference/benchmark_image.py "$csv" "$logs" "${CONFIG_TIMEOUT_S:-300}" \
  "--ckpt_id black-forest-labs/FLUX.1-dev --weights random" "${configs[@]}"
