#!/usr/bin/env bash
# Quantization time and peak GPU memory of the FLUX.1-dev transformer (random weights, bf16): for each quantization,
# inference/quantization_time.py times the three ways (quantize on the CPU then move; move then quantize; torchao's
# quantize_(..., device="cuda") one layer at a time), each in its own subprocess, and renders
# results/quantization-time.md from the CSV. Run from the repository root, on a CUDA machine.
# Usage: bash results/commands/quantization-time.sh [OUT_CSV [LOG_DIR]]   (ONLY=regex runs a subset)
set -u
source "$(dirname "$0")/lib.sh"
csv=${1:-results/quantization-time.csv}
logs=${2:-.cache/logs/quantization-time}
configs=(
  "int8wo|--quantization int8wo"
  "int8dq|--quantization int8dq"
  "fp8dqrow|--quantization fp8dqrow"
)
# Each way builds the 12B-parameter model on the CPU first, then quantizes it, in its own subprocess. The limits fit
# one quantization in a 10-minute GPU call (three ways of at most 180 s); run one at a time with ONLY=^int8wo etc.
run_configs inference/quantization_time.py "$csv" "$logs" "${CONFIG_TIMEOUT_S:-570}" \
  "--ckpt_id black-forest-labs/FLUX.1-dev --weights random --device cuda --timeout_s ${WAY_TIMEOUT_S:-180}" "${configs[@]}"
