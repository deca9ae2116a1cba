#!/usr/bin/env bash
# Save/load, AOT and compile-cache measurements for random-weight FLUX.1-dev (for results/serialization.md):
# serialize.py measure per quantization (file size, load time, load memory, time to first image; AOT for fp8dqrow),
# then the same compiled benchmark twice with one --compile_cache file (cold, then warm compile_s).
# Usage: bash results/commands/serialization.sh OUT_DIR [WORKDIR]   (ONLY=regex runs a subset; WORKDIR needs room for
# a bf16 and a quantized FLUX.1-dev transformer)
set -u
source "$(dirname "$0")/lib.sh"  # the campaign id
out=${1:?usage: serialization.sh OUT_DIR [WORKDIR]}
work=${2:-/tmp/serialization}
mkdir -p "$out" "$work"
flux="--ckpt_id black-forest-labs/FLUX.1-dev --weights random"
# The AOT row gets its own process: the AOT build runs before the load paths are timed and takes minutes, so a
# timeout would take the fp8dqrow load rows down with it.
for entry in None int8wo fp8dqrow fp8dqrow-aot; do
  quantization=${entry%-aot}
  name="measure-$entry"
  [[ -n "${ONLY:-}" && ! "$name" =~ ${ONLY} ]] && continue
  extra="" limit=${CONFIG_TIMEOUT_S:-400}
  [[ $entry == *-aot ]] && extra="--aot" limit=${CONFIG_TIMEOUT_S:-560}
  echo "=== $name"
  # shellcheck disable=SC2086
  timeout "$limit" python3 inference/serialize.py measure $flux --quantization "$quantization" $extra \
    --workdir "$work" --json "$out/$name.json" > "$out/$name.log" 2>&1
  status=$?
  record_exit "$status" "$name"; tail -6 "$out/$name.log"
  # Free the disk for the next one, but only what measure wrote: exit 2 means it refused to run (e.g. a folder there
  # that it did not write), and then nothing is deleted.
  [ "$status" -le 1 ] && rm -rf "${work:?}/$quantization" "$work/$quantization.pt2"
done
# Each process gets empty inductor and Triton cache directories, so the warm run's speed-up comes from the artifacts
# alone.
compiled="--quantization fp8dqrow --fuse_attn_projections --regional_compile --compile_mode default --warmup 1 --runs 3"
for phase in cold warm; do
  name="compile-cache-$phase"
  [[ -n "${ONLY:-}" && ! "$name" =~ ${ONLY} ]] && continue
  echo "=== $name"
  rm -rf "$work/inductor-$phase"  # empty, whatever an earlier run left
  [ "$phase" = cold ] && rm -f "$work/fp8dqrow-compile-cache.bin"  # the cold run writes it, the warm run loads it
  # shellcheck disable=SC2086
  TORCHINDUCTOR_CACHE_DIR="$work/inductor-$phase" TRITON_CACHE_DIR="$work/inductor-$phase/triton" \
    timeout "${CONFIG_TIMEOUT_S:-400}" python3 inference/benchmark_image.py \
    $flux $compiled --compile_cache "$work/fp8dqrow-compile-cache.bin" --csv "$out/compile-cache.csv" > "$out/$name.log" 2>&1
  record_exit $? "$name"; grep -E '^\| black|Error|: error: ' "$out/$name.log" | tail -2 | cut -c1-300
done
finish_job
