#!/usr/bin/env bash
# Issue 20's GPU check: the README recipe on the old code (c25af7c, before the redesign) and on the new code, in one
# call, alternating old/new/new/old, each run in its own process with an empty compile cache.
set -u
flags="--ckpt_id black-forest-labs/FLUX.1-dev --weights random --quantization fp8dqrow --fuse_attn_projections --regional_compile --compile_mode default --compile_vae --warmup 2 --runs 5 --no_fidelity"
python3 -m pip list 2>/dev/null > $OUT/gpu-pip-list.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > $OUT/gpu.txt
for which in old new new old; do
  dir=.; [ $which = old ] && dir=outputs/old
  cache=$(mktemp -d -t inductor-XXXXXX)
  echo "=== $which $(date +%T)"
  TORCHINDUCTOR_CACHE_DIR=$cache TRITON_CACHE_DIR=$cache/triton timeout 240 python3 $dir/inference/benchmark_image.py $flags --csv $OUT/check20-$which.csv >> $OUT/check20-$which.log 2>&1
  echo "exit $? at ${SECONDS}s"; rm -rf $cache
  tail -2 $OUT/check20-$which.log | cut -c1-400
done
