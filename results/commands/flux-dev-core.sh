#!/usr/bin/env bash
# The H100 rows of results/flux-dev.csv for the core issue: random-weight FLUX.1-dev, bs1, 1024x1024, 28 steps.
# Usage: bash results/commands/flux-dev-core.sh OUT_CSV [LOG_DIR]
set -u
source "$(dirname "$0")/lib.sh"
csv=${1:?usage: flux-dev-core.sh OUT_CSV [LOG_DIR]}
logs=${2:-$(dirname "$csv")}
common=(--ckpt_id black-forest-labs/FLUX.1-dev --weights random)
compiled=(--regional_compile --compile_mode default --warmup 2 --runs 5)
configs=(
  "bf16-eager|--warmup 1 --runs 3"
  "bf16-compiled|${compiled[*]}"
  "int8wo-compiled|--quantization int8wo ${compiled[*]}"
  "fp8dqrow-fused-compiled-vae|--quantization fp8dqrow --fuse_attn_projections --compile_vae ${compiled[*]}"
  "int8dq-compiled|--quantization int8dq ${compiled[*]}"
  "fp8wo-compiled|--quantization fp8wo ${compiled[*]}"
)
run_configs inference/benchmark_image.py "$csv" "$logs" "${CONFIG_TIMEOUT_S:-240}" "${common[*]}" "${configs[@]}"
