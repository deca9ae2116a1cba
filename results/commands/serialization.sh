#!/usr/bin/env bash
# Save/load, AOT and compile-cache measurements for random-weight FLUX.1-dev (for results/serialization.md):
# serialize.py measure per quantization (file size, load time, load memory, time to first image; AOT for fp8dqrow),
# then the same compiled benchmark twice with one --compile_cache file (cold, then warm compile_s).
# Usage: bash results/commands/serialization.sh OUT_DIR [WORKDIR]   (ONLY=regex runs a subset; WORKDIR needs ~60 GB)
set -u
out=${1:?usage: serialization.sh OUT_DIR [WORKDIR]}
work=${2:-/tmp/serialization}
mkdir -p "$out" "$work"
flux="--ckpt_id black-forest-labs/FLUX.1-dev --weights random"
# The AOT row gets its own process: `measure --aot` for fp8dqrow did not finish within a 200 s limit on the H100
# (it runs before the load paths are timed, so it would take the fp8dqrow load rows down with it).
for entry in None int8wo fp8dqrow fp8dqrow-aot; do
  quantization=${entry%-aot}
  name="measure-$entry"
  [[ -n "${ONLY:-}" && ! "$name" =~ ${ONLY} ]] && continue
  extra="" limit=${CONFIG_TIMEOUT_S:-400}
  [[ $entry == *-aot ]] && extra="--aot" limit=${CONFIG_TIMEOUT_S:-560}  # the AOT build alone took 235-299 s
  echo "=== $name"
  # shellcheck disable=SC2086
  timeout "$limit" python3 inference/serialize.py measure $flux --quantization "$quantization" $extra \
    --workdir "$work" --json "$out/$name.json" > "$out/$name.log" 2>&1
  echo "exit $? after ${SECONDS}s"; tail -6 "$out/$name.log"
  rm -rf "${work:?}/$quantization" "$work/$quantization.pt2"
done
# Each process gets an empty inductor cache directory, so the warm run's speed-up comes from the artifacts alone.
compiled="--quantization fp8dqrow --fuse_attn_projections --regional_compile --compile_mode default --warmup 1 --runs 3"
for phase in cold warm; do
  name="compile-cache-$phase"
  [[ -n "${ONLY:-}" && ! "$name" =~ ${ONLY} ]] && continue
  echo "=== $name"
  # shellcheck disable=SC2086
  TORCHINDUCTOR_CACHE_DIR="$work/inductor-$phase" timeout "${CONFIG_TIMEOUT_S:-400}" python3 inference/benchmark_image.py \
    $flux $compiled --compile_cache "$work/fp8dqrow-compile-cache.bin" --csv "$out/compile-cache.csv" > "$out/$name.log" 2>&1
  echo "exit $? after ${SECONDS}s"; grep -E '^\| black|Error' "$out/$name.log" | tail -2 | cut -c1-300
done
