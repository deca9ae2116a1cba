#!/usr/bin/env bash
# The int8 autotuner (--autotune) against plain int8dq on random-weight FLUX.1-dev, 1024x1024, batch 1, compiled (fused
# QKV, regional compile, mode default), and a check that the two never share compiled graphs. The three runs use ONE
# inductor cache directory, in this order: tune (--autotune, no tuned-config pickle yet), plain int8dq, reuse
# (--autotune with the tune run's pickle). The plain run must log no "Starting autotune search": --autotune compiles
# into its own subdirectory (utils.levers.autotune). The reuse run's compile_s therefore also profits from the tune
# run's compiled graphs.
# Usage: bash results/commands/int8-autotuner.sh OUT_CSV [LOG_DIR]   (the pickle goes to LOG_DIR)
set -u
source "$(dirname "$0")/lib.sh"  # the campaign id
csv=${1:?usage: int8-autotuner.sh OUT_CSV [LOG_DIR]}
logs=${2:-$(dirname "$csv")}
mkdir -p "$logs"
cache=$(mktemp -d -t inductor-XXXXXX) || exit 1
trap 'rm -rf "$cache"' EXIT
rm -f "$logs/int8-autotune.pkl"
common="--ckpt_id black-forest-labs/FLUX.1-dev --weights random --fuse_attn_projections --regional_compile
  --compile_mode default --warmup 1 --runs 3 --quantization int8dq --csv $csv"
tuned="--autotune --autotune_cache $logs/int8-autotune.pkl"
for run in "tune|$tuned" "plain|" "reuse|$tuned"; do
  name=${run%%|*}
  # shellcheck disable=SC2086
  TORCHINDUCTOR_CACHE_DIR=$cache TRITON_CACHE_DIR=$cache/triton \
    timeout "${CONFIG_TIMEOUT_S:-300}" python3 inference/benchmark_image.py $common ${run#*|} > "$logs/$name.log" 2>&1
  record_exit $? "$name"
  echo "$name: $(grep -c 'Starting autotune search' "$logs/$name.log") shapes tuned"
  grep -E 'Error|: error: ' "$logs/$name.log" | tail -1 | cut -c1-300
done
finish_job
