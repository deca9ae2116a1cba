#!/usr/bin/env bash
# autoquant against the single configs it chooses from, and 2:4 sparsity, on random-weight FLUX.1-dev, 1024x1024, all
# compiled (fused QKV, regional compile, mode default). Each autoquant config runs twice: first it plans (times every
# candidate per layer group) and writes the plan, then it reuses the plan with no timing. Sparsity runs at batch 16,
# where the seed measured it, with 4 steps (the per-step effect; 28 steps at batch 16 would cost minutes per call).
# The int8 autotuner has its own script, int8-autotuner.sh.
# The whole list does not fit one 10-minute GPU call: split it with ONLY, e.g. ONLY='^bs1-', then '^bs4-', then
# '^bs16-' (the logs give each configuration's time).
# The plan rows start from scratch: their plan files are removed first.
# Usage: bash results/commands/flux-autoquant.sh OUT_CSV [LOG_DIR]   (ONLY=regex runs a subset; plans go to LOG_DIR)
set -u
source "$(dirname "$0")/lib.sh"
csv=${1:?usage: flux-autoquant.sh OUT_CSV [LOG_DIR]}
logs=${2:-$(dirname "$csv")}
configs=()
for batch in 1 4; do
  configs+=(
    "bs$batch-autoquant-plan|--batch_size $batch --quantization autoquant --autoquant_plan $logs/autoquant-plan-bs$batch.json"
    "bs$batch-autoquant-reuse|--batch_size $batch --quantization autoquant --autoquant_plan $logs/autoquant-plan-bs$batch.json"
    "bs$batch-bf16|--batch_size $batch"
    "bs$batch-int8dq|--batch_size $batch --quantization int8dq"
    "bs$batch-fp8dqrow|--batch_size $batch --quantization fp8dqrow"
  )
done
configs+=(
  "bs16-bf16|--batch_size 16 --num_inference_steps 4"
  "bs16-sparse-2of4|--batch_size 16 --num_inference_steps 4 --sparsify"
  "bs16-fp8dqrow|--batch_size 16 --num_inference_steps 4 --quantization fp8dqrow"
  "bs16-fp8dqrow-sparse-2of4|--batch_size 16 --num_inference_steps 4 --quantization fp8dqrow --sparsify"
)
[[ -z "${ONLY:-}" || "bs1-autoquant-plan" =~ ${ONLY} ]] && rm -f "$logs/autoquant-plan-bs1.json"
[[ -z "${ONLY:-}" || "bs4-autoquant-plan" =~ ${ONLY} ]] && rm -f "$logs/autoquant-plan-bs4.json"
run_configs inference/benchmark_image.py "$csv" "$logs" "${CONFIG_TIMEOUT_S:-540}" \
  "--ckpt_id black-forest-labs/FLUX.1-dev --weights random --fuse_attn_projections --regional_compile --compile_mode default --warmup 1 --runs 3" \
  "${configs[@]}"
finish_job
