#!/usr/bin/env bash
# The CogVideoX-5b memory ladder (random weights, 49 frames, 480x720, batch 1). Peak memory does not depend on the
# number of denoising steps, so these rows use 2 steps (the steps column says so); their times are not latencies.
# Usage: bash results/commands/cogvideox-5b-memory.sh OUT_CSV [LOG_DIR]   (ONLY=regex runs a subset)
set -u
source "$(dirname "$0")/lib.sh"
csv=${1:?usage: cogvideox-5b-memory.sh OUT_CSV [LOG_DIR]}
logs=${2:-$(dirname "$csv")}
common=(--model_id THUDM/CogVideoX-5b --weights random --num_inference_steps 2 --warmup 1 --runs 1)
int8_all="--dtype int8wo --quantize_text_encoder --quantize_vae"
configs=(
  "1-bf16|--dtype bf16"
  "2-int8wo-all|$int8_all"
  "3-int8wo-all-model-offload|$int8_all --offload model"
  "4-int8wo-all-model-offload-tiling|$int8_all --offload model --vae_tiling"
  "5-bf16-sequential-offload-tiling|--dtype bf16 --offload sequential --vae_tiling"
  "6-int8wo-all-sequential-offload-tiling|$int8_all --offload sequential --vae_tiling"
  "7-int4dq|--dtype int4dq"
)
run_configs inference/benchmark_video.py "$csv" "$logs" "${CONFIG_TIMEOUT_S:-150}" "${common[*]}" "${configs[@]}"
