# The command of this call (one H100, 2026-12-07, sha 9a97fee), after the usual wheel install line:
export BENCH_CAMPAIGN=$(python3 -c "from utils.campaign import _own_campaign; print(_own_campaign())")
C=$(mktemp -d); TORCHINDUCTOR_CACHE_DIR=$C TRITON_CACHE_DIR=$C/t timeout 240 python3 inference/benchmark_image.py --ckpt_id black-forest-labs/FLUX.1-dev --recipe fastest --weights random --warmup 2 --runs 3 --profile $OUT/profile-fastest.md --csv $OUT/profile.csv > $OUT/profile.log 2>&1
for q in int8dq int8wo; do C=$(mktemp -d); TORCHINDUCTOR_CACHE_DIR=$C TRITON_CACHE_DIR=$C/t timeout 150 python3 inference/benchmark_image.py --ckpt_id black-forest-labs/FLUX.1-dev --weights random --quantization $q --num_inference_steps 2 --warmup 1 --runs 1 --csv $OUT/mem.csv > $OUT/mem-$q.log 2>&1; done
