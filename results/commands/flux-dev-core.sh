#!/usr/bin/env bash
# The H100 rows of results/flux-dev.csv for the core issue: random-weight FLUX.1-dev, bs1, 1024x1024, 28 steps.
# One process per configuration, so a crash or hang in one never ends the others.
# Usage: bash results/commands/flux-dev-core.sh OUT_CSV [LOG_DIR]
set -u
csv=${1:?usage: flux-dev-core.sh OUT_CSV [LOG_DIR]}
logs=${2:-$(dirname "$csv")}
common=(--ckpt_id black-forest-labs/FLUX.1-dev --weights random --csv "$csv")
compiled=(--regional_compile --compile_mode default --warmup 2 --runs 5)
configs=(
  "bf16-eager|--warmup 1 --runs 3"
  "bf16-compiled|${compiled[*]}"
  "int8wo-compiled|--quantization int8wo ${compiled[*]}"
  "fp8dqrow-fused-compiled-vae|--quantization fp8dqrow --fuse_attn_projections --compile_vae ${compiled[*]}"
  "int8dq-compiled|--quantization int8dq ${compiled[*]}"
  "fp8wo-compiled|--quantization fp8wo ${compiled[*]}"
)
for entry in "${configs[@]}"; do
  name=${entry%%|*}; flags=${entry#*|}
  echo "=== $name: $flags"
  # shellcheck disable=SC2086
  timeout "${CONFIG_TIMEOUT_S:-240}" python3 inference/benchmark_image.py "${common[@]}" $flags > "$logs/$name.log" 2>&1
  echo "exit $? after ${SECONDS}s"; grep -E '^\| black|Error' "$logs/$name.log" | tail -3
done
