#!/usr/bin/env bash
# The CogVideoX-5b memory ladder (random weights, 49 frames, 480x720, batch 1). Peak memory does not depend on the
# number of denoising steps, so these rows use 2 steps (the steps column says so); their times are not latencies.
# One process per configuration. Usage: bash results/commands/cogvideox-5b-memory.sh OUT_CSV [LOG_DIR]
set -u
csv=${1:?usage: cogvideox-5b-memory.sh OUT_CSV [LOG_DIR]}
logs=${2:-$(dirname "$csv")}
common=(--model_id THUDM/CogVideoX-5b --weights random --num_inference_steps 2 --warmup 1 --runs 1 --csv "$csv")
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
for entry in "${configs[@]}"; do
  [[ -n "${ONLY:-}" && ! "$entry" =~ ${ONLY} ]] && continue  # ONLY=regex reruns a subset
  name=${entry%%|*}; flags=${entry#*|}
  echo "=== $name: $flags"
  # shellcheck disable=SC2086
  timeout "${CONFIG_TIMEOUT_S:-150}" python3 inference/benchmark_video.py "${common[@]}" $flags > "$logs/$name.log" 2>&1
  echo "exit $? after ${SECONDS}s"; grep -E '^\| THUDM|Error' "$logs/$name.log" | tail -2 | cut -c1-250
done
