#!/usr/bin/env bash
# CogVideoX latency rows (random weights, 49 frames, 480x720, batch 1, guidance 6). The 5b bf16 and fp8dqrow compiled
# rows run the full 50 steps (no fidelity: the 50-step eager reference would cost another ~2 minutes each); the other
# rows run 10 steps to fit the GPU time, with fidelity against the eager reference of the same steps.
# Usage: bash results/commands/cogvideox-latency.sh OUT_CSV [LOG_DIR]   (ONLY=regex runs a subset)
set -u
source "$(dirname "$0")/lib.sh"
csv=${1:?usage: cogvideox-latency.sh OUT_CSV [LOG_DIR]}
logs=${2:-$(dirname "$csv")}
compiled="--regional_compile --compile_mode default"
ten="--num_inference_steps 10 --warmup 1 --runs 2"
configs=(
  "5b-50-bf16-compiled|--model_id THUDM/CogVideoX-5b --dtype bf16 $compiled --num_inference_steps 50 --warmup 1 --runs 1 --no_fidelity"
  "5b-50-fp8dqrow-compiled|--model_id THUDM/CogVideoX-5b --dtype fp8dqrow $compiled --num_inference_steps 50 --warmup 1 --runs 1 --no_fidelity"
  "5b-10-bf16-eager|--model_id THUDM/CogVideoX-5b --dtype bf16 $ten"
  "5b-10-bf16-compiled|--model_id THUDM/CogVideoX-5b --dtype bf16 $compiled $ten"
  "5b-10-int8wo-compiled|--model_id THUDM/CogVideoX-5b --dtype int8wo $compiled $ten"
  "5b-10-int8dq-compiled|--model_id THUDM/CogVideoX-5b --dtype int8dq $compiled $ten"
  "5b-10-fp8dqrow-compiled|--model_id THUDM/CogVideoX-5b --dtype fp8dqrow $compiled $ten"
  "2b-10-fp16-eager|--model_id THUDM/CogVideoX-2b --dtype fp16 $ten"
  "2b-10-bf16-eager|--model_id THUDM/CogVideoX-2b --dtype bf16 $ten"
  "2b-10-fp16-compiled|--model_id THUDM/CogVideoX-2b --dtype fp16 $compiled $ten"
  "2b-10-bf16-compiled|--model_id THUDM/CogVideoX-2b --dtype bf16 $compiled $ten"
  "2b-10-int8wo-compiled|--model_id THUDM/CogVideoX-2b --dtype int8wo $compiled $ten"
  "2b-10-int8dq-compiled|--model_id THUDM/CogVideoX-2b --dtype int8dq $compiled $ten"
  "2b-10-fp8dqrow-compiled|--model_id THUDM/CogVideoX-2b --dtype fp8dqrow --base_dtype bf16 $compiled $ten"
)
run_configs inference/benchmark_video.py "$csv" "$logs" "${CONFIG_TIMEOUT_S:-300}" "--weights random" "${configs[@]}"
